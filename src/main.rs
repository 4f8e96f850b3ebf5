//! The `alexnet` command-line tool: a thin layer over the library.

use anyhow::Result;
use clap::{Parser, Subcommand};

use alexnet_wgpu::runtime::{list_adapters, parse_backend, OPTIONAL_FEATURES};

#[derive(Parser)]
#[command(
    name = "alexnet",
    version,
    about = "AlexNet in WGSL compute shaders on wgpu"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every GPU adapter wgpu finds, with the limits and features that matter here.
    Devices {
        /// Only this backend: vulkan, metal, dx12 or gl.
        #[arg(long)]
        backend: Option<String>,
    },
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match Cli::parse().command {
        Command::Devices { backend } => devices(backend.as_deref()),
    }
}

fn devices(backend: Option<&str>) -> Result<()> {
    let backends = backend
        .map(parse_backend)
        .transpose()?
        .unwrap_or(wgpu::Backends::all());
    let adapters = list_adapters(backends);
    if adapters.is_empty() {
        anyhow::bail!(alexnet_wgpu::Error::NoAdapter {
            tried: alexnet_wgpu::runtime::device::backend_names(backends),
            name_filter: String::new(),
        });
    }
    for adapter in adapters {
        let info = adapter.get_info();
        let limits = adapter.limits();
        println!("{} ({:?}, {:?})", info.name, info.backend, info.device_type);
        println!("  driver: {} {}", info.driver, info.driver_info);
        println!(
            "  max storage binding: {} MiB, max buffer: {} MiB, workgroup memory: {} KiB",
            limits.max_storage_buffer_binding_size >> 20,
            limits.max_buffer_size >> 20,
            limits.max_compute_workgroup_storage_size >> 10
        );
        println!(
            "  subgroup sizes: {}..{}",
            adapter.get_info().subgroup_min_size,
            adapter.get_info().subgroup_max_size
        );
        println!(
            "  optional features used here: {:?}",
            adapter.features() & OPTIONAL_FEATURES
        );
    }
    Ok(())
}
