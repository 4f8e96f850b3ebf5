//! `alexnet experiment --config FILE`: runs the variants of a TOML experiment, each at every
//! seed, on the same data and writes one report (`train::experiment`, `train::report`). Each
//! variant's settings become `alexnet train` options, so the two accept the same values.
//! Rerunning a killed experiment continues it: finished runs are read, not trained again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use alexnet_wgpu::data::{dataset, Dataset};
use alexnet_wgpu::train::experiment::{self, Experiment, Job, Settings, VariantResult};
use alexnet_wgpu::train::report;
use alexnet_wgpu::train::trainer::TrainConfig;
use anyhow::{anyhow, Context, Result};
use clap::{Args, ValueEnum};

use crate::cli::train::{build_config, open_data, TrainArgs};
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
    let base = base_args(&exp);
    let image_size = base.image_size.unwrap_or(64);
    let mut data = open_data(&base, image_size)?;
    if exp.data.path.is_some() {
        // A real dataset cut to the sizes asked for, the same images for every run.
        data.train = subset(data.train, exp.data.train_size, exp.data.seed, "train_size")?;
        data.val = subset(data.val, exp.data.val_size, exp.data.seed, "val_size")?;
    }
    let classes = data.train.classes().len();
    let mut jobs = Vec::new();
    for settings in exp.variant_settings() {
        let name = settings.name.clone().unwrap_or_default();
        for seed in exp.seeds() {
            let config = variant_config(&exp, &settings, seed, image_size, classes)
                .with_context(|| format!("{}: variant '{name}'", args.config.display()))?;
            let summary = describe(&config);
            if seed == exp.seeds()[0] {
                println!("{name}: {summary}");
            }
            jobs.push(Job {
                name: name.clone(),
                summary,
                seed,
                config,
            });
        }
    }
    if args.dry_run {
        return Ok(());
    }
    if args.report_only {
        return rebuild_report(&exp, &jobs);
    }
    let gpus = match &exp.devices {
        None => vec![args.device.open()?],
        Some(names) => names
            .iter()
            .map(|name| {
                let device = DeviceArgs {
                    device: Some(name.clone()),
                    ..args.device.clone()
                };
                device
                    .open()
                    .with_context(|| format!("{}: devices: '{name}'", args.config.display()))
            })
            .collect::<Result<_>>()?,
    };
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

/// `n` images of `ds`, stratified by class and drawn with `seed`; all of them without `n`.
fn subset(
    ds: Arc<dyn Dataset>,
    n: Option<usize>,
    seed: u64,
    key: &str,
) -> Result<Arc<dyn Dataset>> {
    match n {
        None => Ok(ds),
        Some(n) if n == 0 || n > ds.len() => Err(anyhow!(
            "[data] {key} = {n}: expected 1 to {} (the images the dataset has)",
            ds.len()
        )),
        Some(n) => {
            let (_, part) = dataset::split(ds.clone(), n as f64 / ds.len() as f64, seed)?;
            Ok(Arc::new(part))
        }
    }
}

fn rebuild_report(exp: &Experiment, jobs: &[Job]) -> Result<()> {
    let mut results = Vec::new();
    // Only runs with all their epochs: a half-trained run would pull its variant's figures
    // towards an earlier epoch.
    for job in jobs {
        match experiment::finished(job) {
            Some(epochs) => results.push(VariantResult::new(job, epochs)),
            None => log::warn!("'{}' seed {}: not finished, left out", job.name, job.seed),
        }
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

/// The `alexnet train` arguments of the shared data settings.
fn base_args(exp: &Experiment) -> TrainArgs {
    let d = &exp.data;
    let defaults = TrainArgs::default();
    TrainArgs {
        data: d.path.clone(),
        image_size: d.image_size,
        train_size: d.train_size.unwrap_or(2000),
        val_size: d.val_size.unwrap_or(500),
        val_split: 0.1,
        seed: d.seed,
        out: d.out.clone(),
        dropout: 0.5,
        step_every: 30,
        gamma: 0.1,
        lighting: 0.1,
        leaky_slope: 0.01,
        elu_alpha: 1.0,
        on_bad_image: "stop".into(),
        on_nan: "stop".into(),
        log_every: 10,
        ..defaults
    }
}

/// Parses a setting as the value of the `alexnet train` flag of the same name.
fn choice<T: ValueEnum>(key: &str, value: &Option<String>) -> Result<Option<T>> {
    value
        .as_deref()
        .map(|v| {
            T::from_str(v, true).map_err(|_| {
                let names: Vec<String> = T::value_variants()
                    .iter()
                    .filter_map(|x| x.to_possible_value().map(|p| p.get_name().to_string()))
                    .collect();
                anyhow!("{key} = '{v}': expected one of {}", names.join(", "))
            })
        })
        .transpose()
}

fn variant_config(
    exp: &Experiment,
    s: &Settings,
    seed: u64,
    image_size: usize,
    classes: usize,
) -> Result<TrainConfig> {
    let mut a = base_args(exp);
    a.out = exp
        .data
        .out
        .join(s.name.as_deref().unwrap_or("variant"))
        .join(format!("seed-{seed}"));
    a.seed = seed;
    a.arch = choice("arch", &s.arch)?;
    a.width = s.width;
    a.epochs = s.epochs;
    a.batch_size = s.batch_size;
    a.optimizer = choice("optimizer", &s.optimizer)?;
    a.lr = s.lr;
    a.momentum = s.momentum;
    a.weight_decay = s.weight_decay;
    a.schedule = choice("schedule", &s.schedule)?;
    a.step_every = s.step_every.unwrap_or(a.step_every);
    a.gamma = s.gamma.unwrap_or(a.gamma);
    a.dropout = s.dropout.unwrap_or(a.dropout);
    a.activation = choice("activation", &s.activation)?;
    a.leaky_slope = s.leaky_slope.unwrap_or(a.leaky_slope);
    a.elu_alpha = s.elu_alpha.unwrap_or(a.elu_alpha);
    a.pool = choice("pool", &s.pool)?;
    a.norm = choice("norm", &s.norm)?;
    a.augment = choice("augment", &s.augment)?;
    a.init = choice("init", &s.init)?;
    a.workers = s.workers;
    let mut config = build_config(&a, a.data.is_none(), image_size, classes)?;
    // Many variants in one terminal: one log line per epoch instead of bars.
    config.show_progress = false;
    config.validate()?;
    Ok(config)
}

/// The settings a reader compares, in one line.
fn describe(c: &TrainConfig) -> String {
    let m = &c.model;
    let norm = format!("{:?}", m.resolved_norm()).to_lowercase();
    let augment = match (
        &c.augment.color_jitter,
        c.augment.lighting_std > 0.0,
        c.augment.flip,
    ) {
        (Some(_), _, _) => "crop+flip+lighting+jitter",
        (None, true, true) => "crop+flip+lighting",
        (None, false, true) => "crop+flip",
        (None, true, false) => "crop+lighting",
        (None, false, false) => "crop only",
    };
    format!(
        "{:?} activation, {:?} pool, norm {norm}, dropout {}, {:?} lr {} weight decay {}, {:?} schedule, augment {augment}, {} epochs, batch {}",
        m.activation,
        m.pool,
        m.dropout,
        c.optimizer.kind,
        c.optimizer.lr,
        c.optimizer.weight_decay,
        c.schedule,
        c.epochs,
        c.batch_size
    )
}
