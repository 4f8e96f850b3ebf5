//! `alexnet bench`: plain vs tiled kernels on this adapter, as a table and JSON.

use std::path::PathBuf;

use alexnet_wgpu::bench::parallel;
use alexnet_wgpu::bench::{run, BenchConfig, Report};
use alexnet_wgpu::data::{default_workers, Augment, AugmentOn, DecodeMode, LoaderConfig};
use alexnet_wgpu::train::throughput::{self, DataBenchConfig};
use anyhow::{Context, Result};
use clap::Args;

use crate::cli::DeviceArgs;
use alexnet_wgpu::data::source::open_splits;
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
    /// Also time the tiled kernels unfused (each ReLU its own dispatch, one optimizer
    /// dispatch per parameter, LRN's windows read from global memory): the baseline of the
    /// fusions, with its fused/unfused ratio.
    #[arg(long)]
    pub unfused: bool,
    /// Skip the per-layer timestamp profile.
    #[arg(long)]
    pub no_profile: bool,
    /// Write the report as JSON here (it is always printed as a table).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// End-to-end training with real loading from this data folder (an image folder, CIFAR-10
    /// or IDX): images/s against the same steps without loading, the fraction of the time
    /// the GPU waited, and the loader's images/s per core. Uses the first --arch, the first
    /// --training-batches and --image-size; the paper's augmentation.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// With --data: run only the loader (no GPU) for --epochs epochs.
    #[arg(long, requires = "data")]
    pub loader_only: bool,
    /// With --data: decoding threads (default: every core but one).
    #[arg(long)]
    pub workers: Option<usize>,
    /// With --data: where augmentation runs, cpu or gpu (default: both, one after the
    /// other; cpu only with --loader-only).
    #[arg(long)]
    pub augment_on: Option<String>,
    /// With --data: exact or fast JPEG decoding.
    #[arg(long, default_value = "exact")]
    pub decode: String,
    /// With --data: timed training steps.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// With --loader-only: epochs (the first is not timed: it warms the file cache).
    #[arg(long, default_value_t = 2)]
    pub epochs: usize,
    /// With --data: print only the JSON (one line per measurement).
    #[arg(long)]
    pub quiet: bool,
    /// Data-parallel training over these adapters (`all`, numbers as `alexnet devices` lists
    /// them, or parts of names, comma-separated; a name given twice opens that adapter twice): images/s per device and in total, and the
    /// time spent exchanging gradients, against the first alone. Uses the first --arch, the
    /// first --training-batches, --width and --image-size.
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<String>,
    /// With two --devices: also time the paper's model-parallel split (`groups`: each device
    /// half of every layer, meeting at conv3, the LRNs and the FC layers) at the same batch.
    #[arg(long)]
    pub split: Option<SplitScheme>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// A model-parallel scheme for `--split`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SplitScheme {
    /// The paper's: each of two devices half of every layer.
    Groups,
}

pub fn run_bench(args: &BenchArgs) -> Result<()> {
    if let Some(dir) = &args.data {
        return run_data_bench(args, dir);
    }
    if !args.devices.is_empty() {
        return run_parallel_bench(args);
    }
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
        unfused: args.unfused,
    };
    let options = args.device.options()?;
    let report = run(&options, args.device.policy(), &cfg)?;
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
        "{:<22} {:<25} {:>5} {:>9} {:>11} {:>9} {:>11}",
        "model", "mode", "batch", "kernel", "images/s", "GFLOP/s", "peak MiB"
    );
    for m in &r.measurements {
        println!(
            "{:<22} {:<25} {:>5} {:>9} {:>11.2} {:>9.2} {:>11.1}",
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
        let autotuned = s
            .autotuned_over_tiled
            .map(|a| format!(", autotuned/tiled {a:.2}x"))
            .unwrap_or_default();
        let mixed = s
            .mixed_over_tiled
            .map(|a| format!(", mixed/f32 tiled {a:.2}x"))
            .unwrap_or_default();
        let fused = s
            .fused_over_unfused
            .map(|f| format!(", fused/unfused {f:.2}x"))
            .unwrap_or_default();
        let direct = s
            .direct_over_simt
            .map(|d| format!(", direct/SIMT GEMM {d:.2}x"))
            .unwrap_or_default();
        println!(
            "speed-up tiled/plain: {} {} batch {}: {:.2}x{autotuned}{mixed}{fused}{direct}",
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

/// `bench --data`: the loader alone, or end-to-end training with real loading.
fn run_data_bench(args: &BenchArgs, dir: &std::path::Path) -> Result<()> {
    let data = open_splits(dir, None, 0.1, 0, Default::default())?;
    let batch = args.training_batches.first().copied().unwrap_or(128);
    let base = LoaderConfig {
        workers: args.workers.unwrap_or_else(default_workers),
        decode: args.decode.parse::<DecodeMode>()?,
        ..LoaderConfig::new(batch, Augment::imagenet(args.image_size))
    };
    let places = match &args.augment_on {
        Some(on) => vec![on.parse::<AugmentOn>()?],
        None if args.loader_only => vec![AugmentOn::Cpu],
        None => vec![AugmentOn::Cpu, AugmentOn::Gpu],
    };
    let mut lines = Vec::new();
    if args.loader_only {
        for on in places {
            let cfg = LoaderConfig {
                augment_on: on,
                ..base.clone()
            };
            let r = throughput::loader_only(data.train.clone(), &cfg, args.epochs)?;
            if !args.quiet {
                println!(
                    "loader ({} workers, batch {}, augment on {:?}, decode {:?}): {:.1} images/s, {:.1} images/s per core",
                    r.workers, r.batch, r.augment_on, r.decode, r.loader_images_per_sec, r.images_per_sec_per_core
                );
            }
            lines.push(serde_json::to_string(&r)?);
        }
    } else {
        let gpu = args.device.open()?;
        let arch = args.arch.first().copied().unwrap_or(ArchChoice::Original);
        let classes = data.train.classes().len();
        for on in places {
            let cfg = DataBenchConfig {
                model: arch.config(classes).scaled(args.width),
                loader: LoaderConfig {
                    augment_on: on,
                    ..base.clone()
                },
                steps: args.steps,
                warmup: 3,
            };
            let r = throughput::run(&gpu, data.train.clone(), &cfg)?;
            if !args.quiet {
                println!(
                    "{} ({}x{}, batch {}, {} workers, augment on {:?}, decode {:?}): {:.1} images/s with loading, \
                     {:.1} without ({:.0}%); GPU waited {:.0}% of the time, the loop waited for the loader {:.0}%; \
                     decoding {:.1} images/s per core; {} bytes uploaded per image",
                    r.adapter, r.image_size, r.image_size, r.batch, r.workers, r.augment_on, r.decode,
                    r.images_per_sec, r.synthetic_images_per_sec, 100.0 * r.fraction_of_synthetic,
                    100.0 * r.gpu_wait_fraction, 100.0 * r.loader_wait_fraction,
                    r.decode_images_per_sec_per_core, r.upload_bytes_per_image
                );
            }
            lines.push(serde_json::to_string(&r)?);
        }
    }
    for l in &lines {
        println!("{l}");
    }
    if let Some(path) = &args.json {
        std::fs::write(path, lines.join("\n") + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn run_parallel_bench(args: &BenchArgs) -> Result<()> {
    let gpus = args.device.open_many(&args.devices)?;
    let arch = args.arch.first().cloned().unwrap_or(ArchChoice::Original);
    let model = arch.config(1000).scaled(args.width);
    let batch = args.training_batches.first().copied().unwrap_or(32);
    let split = args.split.is_some();
    let r = parallel::run(
        &gpus,
        &model,
        args.image_size,
        batch,
        args.iterations,
        split,
    )?;
    println!(
        "data-parallel training, batch {} split {:?}, {}x{} input",
        r.batch,
        r.devices.iter().map(|d| d.share).collect::<Vec<_>>(),
        args.image_size,
        args.image_size
    );
    for (i, d) in r.devices.iter().enumerate() {
        println!(
            "  device {i} ({}): {:.1} images/s on its share of {} alone",
            d.adapter, d.images_per_sec, d.share
        );
    }
    println!(
        "  together: {:.1} images/s; the first device alone on the whole batch: {:.1} ({:.2}x)",
        r.parallel_images_per_sec,
        r.single_images_per_sec,
        r.parallel_images_per_sec / r.single_images_per_sec
    );
    println!(
        "  shares that would finish together, from these speeds: {:?}",
        r.balanced_shares
    );
    println!(
        "  per step: compute {:.1} ms, gradient exchange {:.1} ms ({:.1} MB through host memory), update {:.1} ms",
        r.compute_ms,
        r.exchange_ms,
        r.exchange_bytes as f64 / 1e6,
        r.update_ms
    );
    if let Some(s) = &r.group_split {
        println!(
            "  the paper's group split: {:.1} images/s ({:.2}x data parallel); per step: compute {:.1} ms, exchange {:.1} ms ({:.1} MB of activations and their gradients through host memory), update {:.1} ms",
            s.images_per_sec,
            s.images_per_sec / r.parallel_images_per_sec,
            s.compute_ms,
            s.exchange_ms,
            s.exchange_bytes as f64 / 1e6,
            s.update_ms
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
