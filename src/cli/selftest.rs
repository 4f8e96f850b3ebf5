//! `alexnet selftest`: every kernel family this adapter would use, checked against the CPU
//! reference, per op with its error and speed — what a bug report needs.

use alexnet_wgpu::runtime::device::backend_names;
use alexnet_wgpu::runtime::{list_adapters, parse_backend, Gpu, GpuOptions};
use alexnet_wgpu::selftest::{self, SelftestOptions, SelftestReport};
use anyhow::{bail, Context};
use clap::Args;

use super::DeviceArgs;

#[derive(Args, Debug)]
pub struct SelftestArgs {
    /// Without --backend or --device: every adapter wgpu finds, one after another.
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Also write the reports as JSON.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

pub fn run(args: &SelftestArgs) -> anyhow::Result<()> {
    let base = args.device.options()?;
    // Each adapter on its own backend: the same llvmpipe may appear on Vulkan and on GL.
    let targets: Vec<GpuOptions> = if args.device.backend.is_some() || args.device.device.is_some()
    {
        vec![base]
    } else {
        let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
        list_adapters(backends)
            .iter()
            .map(|a| {
                let info = a.get_info();
                GpuOptions {
                    backends: Some(
                        parse_backend(&format!("{:?}", info.backend)).unwrap_or(backends),
                    ),
                    adapter_name: Some(info.name),
                    ..base.clone()
                }
            })
            .collect()
    };
    if targets.is_empty() {
        bail!(alexnet_wgpu::Error::NoAdapter {
            tried: backend_names(wgpu::Backends::all()),
            name_filter: String::new(),
        });
    }
    let mut reports = Vec::new();
    for options in &targets {
        let gpu = Gpu::new(options)?;
        args.device.policy().apply(&gpu)?;
        let report = selftest::run(&gpu, &SelftestOptions::default())
            .with_context(|| format!("selftest on '{}'", gpu.adapter_name()))?;
        print_report(&report);
        reports.push(report);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed())
        .map(|r| format!("{} ({})", r.adapter, r.backend))
        .collect();
    if !failed.is_empty() {
        bail!("selftest FAILED on {}", failed.join(", "));
    }
    Ok(())
}

fn print_report(r: &SelftestReport) {
    println!("\n{} ({}), driver {}", r.adapter, r.backend, r.driver);
    println!("  kernels: {}", r.kernels);
    println!("  limits: {}", r.limits);
    println!(
        "  {:<14} {:<18} {:<20} {:>10} {:>10} {:>7} {:>9}  result",
        "layer", "op", "part", "rel err", "max abs", "tol", "GFLOP/s"
    );
    for c in &r.checks {
        println!(
            "  {:<14} {:<18} {:<20} {:>10.2e} {:>10.2e} {:>7.0e} {:>9}  {}",
            c.layer,
            c.op,
            c.part,
            c.rel_err,
            c.max_abs_err,
            c.tolerance,
            c.gflops.map_or(String::new(), |g| format!("{g:.2}")),
            if c.passed { "pass" } else { "FAIL" }
        );
    }
    let failed = r.checks.iter().filter(|c| !c.passed).count();
    println!(
        "  {}: {} checks, {} failed, {:.1} s",
        if failed == 0 { "PASS" } else { "FAIL" },
        r.checks.len(),
        failed,
        r.seconds
    );
}
