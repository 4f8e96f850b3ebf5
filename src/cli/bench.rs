//! `alexnet bench`: plain vs tiled kernels on this adapter, as a table and JSON.

use std::path::PathBuf;

use alexnet_wgpu::bench::{run, BenchConfig, Report};
use anyhow::{Context, Result};
use clap::Args;

use crate::cli::DeviceArgs;
use alexnet_wgpu::train::options::ArchChoice;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Architectures to measure (default: both).
    #[arg(long, value_enum)]
    pub arch: Vec<ArchChoice>,
    #[arg(long, default_value_t = 224)]
    pub image_size: usize,
    /// Channel and FC-width multiplier (1 = the real model).
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    pub inference_batches: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "32,128")]
    pub training_batches: Vec<usize>,
    #[arg(long, default_value_t = 3)]
    pub iterations: usize,
    /// Skip the per-layer timestamp profile.
    #[arg(long)]
    pub no_profile: bool,
    /// Write the report as JSON here (it is always printed as a table).
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run_bench(args: &BenchArgs) -> Result<()> {
    let archs = if args.arch.is_empty() {
        vec![ArchChoice::Original, ArchChoice::Torchvision]
    } else {
        args.arch.clone()
    };
    let cfg = BenchConfig {
        models: archs
            .iter()
            .map(|a| a.config(1000).scaled(args.width))
            .collect(),
        image_size: args.image_size,
        inference_batches: args.inference_batches.clone(),
        training_batches: args.training_batches.clone(),
        iterations: args.iterations.max(1),
        profile_layers: !args.no_profile,
    };
    let options = args.device.options()?;
    let report = run(&options, &cfg)?;
    print_table(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    Ok(())
}

fn print_table(r: &Report) {
    println!(
        "adapter: {} ({}, driver {}), {}x{} input",
        r.adapter, r.backend, r.driver, r.image_size, r.image_size
    );
    println!(
        "first call: {:.2}s (plan + first step; {} pipelines compiled in {:.2}s)",
        r.first_plan_seconds, r.pipelines_compiled, r.pipeline_compile_seconds,
    );
    println!(
        "start-up (device, model, every training pipeline): first run {:.2}s, second run {:.2}s \
         ({} pipelines; on-disk driver cache: {})",
        r.startup.cold_seconds,
        r.startup.warm_seconds,
        r.startup.pipelines,
        r.startup.driver_pipeline_cache
    );
    println!(
        "{:<22} {:<25} {:>5} {:>6} {:>11} {:>9} {:>11}",
        "model", "mode", "batch", "kernel", "images/s", "GFLOP/s", "peak MiB"
    );
    for m in &r.measurements {
        println!(
            "{:<22} {:<25} {:>5} {:>6} {:>11.2} {:>9.2} {:>11.1}",
            m.model,
            m.mode,
            m.batch,
            m.kernels,
            m.images_per_sec,
            m.gflops,
            m.peak_memory_bytes as f64 / (1 << 20) as f64
        );
    }
    for s in &r.speedups {
        println!(
            "speed-up tiled/plain: {} {} batch {}: {:.2}x",
            s.model, s.mode, s.batch, s.tiled_over_plain
        );
    }
    for f in &r.frozen_steps {
        println!(
            "training step with features frozen: {} b{} {}: {:.3} s vs {:.3} s full ({:.0}%)",
            f.model,
            f.batch,
            f.kernels,
            f.frozen_seconds,
            f.full_seconds,
            100.0 * f.frozen_over_full
        );
    }
    for c in &r.ceilings {
        println!(
            "GEMM ceiling: {} b{} {}: conv {:.1} GFLOP/s, dense GEMM of the same M, N, K {:.1} \
             GFLOP/s ({:.0}%)",
            c.model,
            c.batch,
            c.layer,
            c.conv_gflops,
            c.dense_gemm_gflops,
            100.0 * c.fraction
        );
    }
    if !r.layers.is_empty() {
        println!("per-layer GPU time (timestamp queries):");
        for l in &r.layers {
            let g = l
                .gflops
                .map(|g| format!("{g:.2} GFLOP/s"))
                .unwrap_or_default();
            println!(
                "  {:<18} {:<9} b{:<4} {:<6} {:<26} {:>9.3} ms {}",
                l.model, l.mode, l.batch, l.kernels, l.layer, l.milliseconds, g
            );
        }
    }
}
