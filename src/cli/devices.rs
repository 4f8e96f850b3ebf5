//! `alexnet devices`: every adapter wgpu finds, with what matters for compute.

use alexnet_wgpu::ops::GemmCoop;
use alexnet_wgpu::runtime::device::backend_names;
use alexnet_wgpu::runtime::{list_adapters, parse_backend, OPTIONAL_FEATURES};

pub fn run(backend: Option<&str>) -> anyhow::Result<()> {
    let backends = backend
        .map(parse_backend)
        .transpose()?
        .or_else(wgpu::Backends::from_env)
        .unwrap_or(wgpu::Backends::all());
    let adapters = list_adapters(backends);
    if adapters.is_empty() {
        anyhow::bail!(alexnet_wgpu::Error::NoAdapter {
            tried: backend_names(backends),
            name_filter: String::new(),
        });
    }
    for (number, adapter) in adapters.iter().enumerate() {
        let info = adapter.get_info();
        let limits = adapter.limits();
        // The number is what `--devices 0,1` takes.
        println!(
            "{number}: {} ({:?}, {:?})",
            info.name, info.backend, info.device_type
        );
        println!("  driver: {} {}", info.driver, info.driver_info);
        println!(
            "  max storage binding: {} MiB, max buffer: {} MiB, workgroup memory: {} KiB, invocations per workgroup: {}",
            limits.max_storage_buffer_binding_size >> 20,
            limits.max_buffer_size >> 20,
            limits.max_compute_workgroup_storage_size >> 10,
            limits.max_compute_invocations_per_workgroup
        );
        println!(
            "  subgroup sizes: {}..{}",
            info.subgroup_min_size, info.subgroup_max_size
        );
        println!(
            "  optional features used here: {:?}",
            adapter.features() & OPTIONAL_FEATURES
        );
        let matrices = adapter.cooperative_matrix_properties();
        if !matrices.is_empty() {
            // MxNxK A·B -> C, and which of them the GEMM uses (`--matrix`; where `auto` passes
            // them over, only when asked for).
            let when = if GemmCoop::auto_takes(info.device_type) {
                ""
            } else {
                " with --matrix on"
            };
            let listed: Vec<String> = matrices
                .iter()
                .map(|p| {
                    let used = GemmCoop::ALL
                        .into_iter()
                        .find(|c| {
                            c.properties()
                                == wgpu::CooperativeMatrixProperties {
                                    saturating_accumulation: false,
                                    ..*p
                                }
                        })
                        .map_or(String::new(), |c| {
                            format!(" (GEMM{when}, {})", c.precision())
                        });
                    format!(
                        "{}x{}x{} {:?}->{:?}{used}",
                        p.m_size, p.n_size, p.k_size, p.ab_type, p.cr_type
                    )
                })
                .collect();
            println!("  cooperative matrices: {}", listed.join(", "));
        }
    }
    Ok(())
}
