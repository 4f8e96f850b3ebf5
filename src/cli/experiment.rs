//! `alexnet experiment --config FILE`: runs the variants of a TOML experiment, each at every
//! seed, on the same data and writes one report (`train::experiment`, `train::report`). Each
//! variant's table holds `alexnet train`'s options (`train::TrainOptions`), so the two accept
//! the same values. Rerunning a killed experiment continues it: finished runs are read, not
//! trained again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use alexnet_wgpu::data::source::Splits;
use alexnet_wgpu::train::experiment::{self, Experiment, Job, VariantResult};
use alexnet_wgpu::train::report;
use anyhow::{Context, Result};
use clap::Args;

use crate::cli::DeviceArgs;

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    /// The experiment: TOML with [data], [train], [[variant]] and [[claim]] tables
    /// (example: docs/experiments/section8.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Only check the file and print each variant's configuration.
    #[arg(long)]
    pub dry_run: bool,
    /// Rebuild the report from the runs' metrics.jsonl of an earlier run, training nothing
    /// (a finished run's checkpoint is still evaluated on training images once, if that was
    /// not saved yet).
    #[arg(long)]
    pub report_only: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run(args: &ExperimentArgs) -> Result<()> {
    let exp = Experiment::load(&args.config)?;
    let data = exp
        .open_data()
        .with_context(|| args.config.display().to_string())?;
    let jobs = exp
        .jobs(data.train.classes().len())
        .with_context(|| args.config.display().to_string())?;
    for job in jobs.iter().filter(|j| j.seed == exp.seeds()[0]) {
        println!("{}: {}", job.name, job.summary);
    }
    if args.dry_run {
        return Ok(());
    }
    if args.report_only {
        return rebuild_report(&exp, &jobs, &data, &args.device);
    }
    // Each adapter opened once per concurrent run: every worker has a device of its own.
    let mut gpus = Vec::new();
    for _ in 0..exp.runs_per_device() {
        match &exp.devices {
            None => gpus.push(args.device.open()?),
            Some(names) => gpus.extend(
                args.device
                    .open_many(names)
                    .with_context(|| format!("{}: devices", args.config.display()))?,
            ),
        }
    }
    println!(
        "{}; {} training / {} validation images; {} variants x {} seeds on {} device(s); report in {}",
        data.description,
        data.train.len(),
        data.val.len(),
        exp.variants.len(),
        exp.seeds().len(),
        gpus.len(),
        exp.data.out.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    experiment::run(&gpus, &exp, &jobs, data.train, data.val, stop)?;
    let complete = jobs.iter().filter(|j| experiment::finished(j).is_some());
    println!(
        "{}/{} runs finished; report in {}",
        complete.count(),
        jobs.len(),
        exp.data.out.join("report.md").display()
    );
    Ok(())
}

/// The report from the runs on disk. A finished run without a saved evaluation on the
/// training probe is evaluated from its checkpoint (the device opened only then); one without
/// either (a report rebuilt from committed metrics alone) is reported without it.
fn rebuild_report(
    exp: &Experiment,
    jobs: &[Job],
    data: &Splits,
    device: &DeviceArgs,
) -> Result<()> {
    let probe = experiment::train_probe(data.train.clone(), data.val.len(), exp.data.seed)?;
    // Only runs with all their epochs: a half-trained run would pull its variant's figures
    // towards an earlier epoch.
    let finished: Vec<(&Job, _)> = jobs
        .iter()
        .filter_map(|job| {
            let epochs = experiment::finished(job);
            if epochs.is_none() {
                log::warn!("'{}' seed {}: not finished, left out", job.name, job.seed);
            }
            Some((job, epochs?))
        })
        .collect();
    let gpu = match finished
        .iter()
        .any(|(job, _)| experiment::needs_train_evaluation(job, probe.len()))
    {
        true => Some(device.open()?),
        false => None,
    };
    let mut results = Vec::new();
    for (job, epochs) in finished {
        results.push(VariantResult {
            train_eval: experiment::train_evaluation(gpu.as_ref(), job, &probe)?,
            ..VariantResult::new(job, epochs)
        });
    }
    report::write_report(exp, &results)?;
    println!(
        "{}/{} runs; report in {}",
        results.len(),
        jobs.len(),
        exp.data.out.join("report.md").display()
    );
    Ok(())
}
