//! `alexnet train`: the options (`train::TrainOptions`, flattened into flags) and the run,
//! over `train::trainer`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use alexnet_wgpu::runtime::Gpu;
use alexnet_wgpu::train::checkpoint::resumed_config;
use alexnet_wgpu::train::parallel::{Alone, Collective};
use alexnet_wgpu::train::trainer::{default_observers, train_observed};
use alexnet_wgpu::train::{Devices, Shares, TrainOptions};
use anyhow::{Context, Result};
use clap::Args;

use crate::cli::DeviceArgs;

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub options: TrainOptions,
    /// Continue from a checkpoint (default: <out>/checkpoint.safetensors).
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    pub resume: Option<PathBuf>,
    /// Data parallel: train on these adapters at once, a replica on each, every batch split
    /// between them and the gradients averaged each step. `all` (every GPU of one backend),
    /// numbers as `alexnet devices` lists them, or parts of names (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<String>,
    /// With --devices: samples of each batch per device, in --devices order, summing to
    /// --batch-size (default: in proportion to each device's speed, measured before training).
    #[arg(long, value_delimiter = ',')]
    pub shares: Vec<usize>,
    /// Join the other processes `mpirun` started (data parallel across processes and
    /// machines; built with `--features mpi`). Each rank trains on its own adapter: the
    /// local-rank-th of those --device matches on its machine, or its --devices.
    #[cfg(feature = "mpi")]
    #[arg(long)]
    pub mpi: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let options = &args.options;
    let image_size = options.resolved_image_size();
    let data = options.open_data()?;
    let classes = data.train.classes().len();
    let mut config = options.config(classes)?;
    let resume = resume_path(&args);
    if let Some(path) = &resume {
        config = resumed_config(path, config)?;
    }
    // Bad flags fail here, before minutes of adapter start-up and data loading.
    config.validate()?;
    println!(
        "{}; {} training / {} validation images; {:?} AlexNet at width {:.2}, {}x{} input; {} epochs, batch {}, {:?} lr {}",
        data.description,
        data.train.len(),
        data.val.len(),
        config.model.arch,
        config.model.channels[0] as f64 / config.model.arch_default_channels()[0] as f64,
        image_size,
        image_size,
        config.epochs,
        config.batch_size,
        config.optimizer.kind,
        config.optimizer.lr
    );
    if let Some(weights) = &config.weights {
        println!(
            "starting from {} (the head is re-initialised if its class count differs)",
            weights.display()
        );
    }
    if !config.freeze.is_empty() {
        let frozen = config.model.frozen_parameters(&config.freeze)?;
        println!("frozen ({} tensors): {}", frozen.len(), frozen.join(", "));
        if config.weights.is_none() {
            println!("note: without --weights the frozen layers keep their random initialisation");
        }
    }
    if let Some(lr) = config.optimizer.lr_backbone {
        println!(
            "parameter groups: the head (classifier.6) at lr {}, the rest at {lr}",
            config.optimizer.lr
        );
    }
    if !args.shares.is_empty() && args.devices.is_empty() {
        anyhow::bail!("--shares needs --devices (the adapters the batch is shared between)");
    }
    #[cfg(feature = "mpi")]
    let world = args
        .mpi
        .then(alexnet_wgpu::train::mpi::World::init)
        .transpose()?;
    #[cfg(feature = "mpi")]
    let (collective, local_rank): (&dyn Collective, Option<usize>) = match &world {
        Some(world) => (world, Some(world.local_rank())),
        None => (&Alone, None),
    };
    #[cfg(not(feature = "mpi"))]
    let (collective, local_rank): (&dyn Collective, Option<usize>) = (&Alone, None);
    let gpus = match args.devices.as_slice() {
        [] if local_rank.is_some() => vec![args.device.open_local(local_rank.unwrap_or(0))?],
        [] => vec![args.device.open()?],
        names => args.device.open_many(names)?,
    };
    if gpus.iter().any(Gpu::is_cpu) {
        println!("note: a CPU (software) driver runs at about 1 GFLOP/s");
    }
    if gpus.len() > 1 {
        println!(
            "data parallel over {} devices: {}",
            gpus.len(),
            gpus.iter().map(describe).collect::<Vec<_>>().join(", ")
        );
    }
    let devices = Devices {
        gpus: &gpus,
        shares: match args.shares.as_slice() {
            [] => Shares::Measured,
            fixed => Shares::Fixed(fixed.to_vec()),
        },
        collective,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("second interrupt: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!(
            "interrupt: finishing this step and writing a checkpoint (Ctrl-C again to abort)"
        );
    })
    .context("installing the Ctrl-C handler")?;
    let mut observers = default_observers(&config);
    let outcome = train_observed(
        &devices,
        &config,
        data.train,
        data.val,
        resume.as_deref(),
        stop,
        &mut observers,
    )?;
    if outcome.interrupted {
        println!(
            "stopped; checkpoint in {}. Resume with: alexnet train --resume {} {}",
            outcome.checkpoint.display(),
            outcome.checkpoint.display(),
            data_flags(options)
        );
        return Ok(());
    }
    if let Some(last) = outcome.epochs.last() {
        println!(
            "done: validation top-1 {:.1}%, top-5 {:.1}%, loss {:.4}. Checkpoint, metrics.jsonl/csv and loss/top1/top5/lr plots in {}",
            100.0 * last.val_top1,
            100.0 * last.val_top5,
            last.val_loss,
            config.out_dir.display()
        );
    }
    if !outcome.skipped.is_empty() {
        println!(
            "skipped {} unreadable images (listed in the log)",
            outcome.skipped.len()
        );
        for s in &outcome.skipped {
            log::warn!("skipped: {s}");
        }
    }
    Ok(())
}

/// An adapter's name and backend: two devices of a run may share the name.
fn describe(gpu: &Gpu) -> String {
    match &gpu.adapter_info {
        Some(info) => format!("{} ({:?})", info.name, info.backend),
        None => gpu.adapter_name(),
    }
}

fn resume_path(args: &TrainArgs) -> Option<PathBuf> {
    args.resume.as_ref().map(|p| {
        if p.as_os_str().is_empty() {
            args.options.out.join("checkpoint.safetensors")
        } else {
            p.clone()
        }
    })
}

/// The data flags to repeat when resuming.
fn data_flags(args: &TrainOptions) -> String {
    let mut flags = String::new();
    if let Some(d) = &args.data {
        flags += &format!("--data {}", d.display());
    }
    if let Some(v) = &args.val {
        flags += &format!(" --val {}", v.display());
    }
    if args.out != TrainOptions::default().out {
        flags += &format!(" --out {}", args.out.display());
    }
    flags
}
