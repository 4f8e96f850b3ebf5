//! `alexnet experiment --config FILE`: runs the variants of a TOML experiment one after
//! another on the same data and seed and writes one report (`train::experiment`). Each
//! variant's table holds `alexnet train`'s options (`train::TrainOptions`), so the two accept
//! the same values.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use alexnet_wgpu::train::experiment::{self, Experiment, VariantResult};
use alexnet_wgpu::train::metrics::read_metrics;
use alexnet_wgpu::train::trainer::TrainConfig;
use anyhow::{Context, Result};
use clap::Args;

use crate::cli::DeviceArgs;

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    /// The experiment: TOML with [data], [train] and [[variant]] tables
    /// (example: docs/experiments/seed_section8.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Only check the file and print each variant's configuration.
    #[arg(long)]
    pub dry_run: bool,
    /// Rebuild the report from the variants' metrics.jsonl of an earlier run, training nothing.
    #[arg(long)]
    pub report_only: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run(args: &ExperimentArgs) -> Result<()> {
    let exp = Experiment::load(&args.config)?;
    let data = exp.open_data()?;
    let configs = exp
        .configs(data.train.classes().len())
        .with_context(|| args.config.display().to_string())?;
    for (name, summary, _) in &configs {
        println!("{name}: {summary}");
    }
    if args.dry_run {
        return Ok(());
    }
    if args.report_only {
        return rebuild_report(&exp, &configs);
    }
    println!(
        "{}; {} training / {} validation images; {} variants; report in {}",
        data.description,
        data.train.len(),
        data.val.len(),
        configs.len(),
        exp.data.out.display()
    );
    let gpu = args.device.open()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    let results = experiment::run(&gpu, &exp, &configs, data.train, data.val, stop)?;
    println!(
        "done: {} variants; report in {}",
        results.len(),
        exp.data.out.join("report.md").display()
    );
    Ok(())
}

fn rebuild_report(exp: &Experiment, configs: &[(String, String, TrainConfig)]) -> Result<()> {
    let mut results = Vec::new();
    for (name, summary, config) in configs {
        let epochs = read_metrics(&config.metrics_path())
            .with_context(|| format!("variant '{name}': run the experiment first"))?;
        results.push(VariantResult::new(name, summary, epochs));
    }
    experiment::write_report(exp, &results)?;
    println!("report in {}", exp.data.out.join("report.md").display());
    Ok(())
}
