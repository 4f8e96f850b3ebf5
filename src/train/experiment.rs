//! Experiments: several training variants on the same data, each at several seeds, and one
//! report comparing them (`train::report`): mean ± standard deviation over the seeds, curves
//! of every variant on the same axes, and the listed claims judged from the numbers.
//!
//! The configuration is TOML: a `[data]` table (dataset, sizes, seed, output folder), a
//! `[train]` table of settings every variant shares, and `[[variant]]` tables, each a `name`
//! and the settings it overrides. Settings are the options of `alexnet train`, by the same
//! names with `_` for `-` (`weight_decay`, `activation`, `pool`, `norm`, `augment`, …); the
//! caller turns merged settings into a [`TrainConfig`], so both speak one vocabulary.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::runtime::Gpu;
use crate::train::metrics::{read_metrics, EpochMetrics};
use crate::train::report::{self, Claim};
use crate::train::trainer::{train, TrainConfig};

/// A whole experiment file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Heading of the report.
    #[serde(default)]
    pub title: Option<String>,
    /// Free text put under the heading (what is compared, and why).
    #[serde(default)]
    pub description: Option<String>,
    /// Every variant is trained once per seed (the training seed: initialisation, dropout,
    /// shuffling and augmentation; the data subset stays the one of `data.seed`). Absent:
    /// `[data.seed]`.
    #[serde(default)]
    pub seeds: Option<Vec<u64>>,
    /// Adapters to spread the runs over, one worker each, by a case-insensitive part of the
    /// adapter name as `--device` takes it (the same name twice opens the adapter twice).
    /// Absent: the one `--device` chooses.
    #[serde(default)]
    pub devices: Option<Vec<String>>,
    pub data: DataSettings,
    #[serde(default)]
    pub train: Settings,
    #[serde(rename = "variant")]
    pub variants: Vec<Settings>,
    /// The claims the report judges from the results.
    #[serde(default, rename = "claim")]
    pub claims: Vec<Claim>,
}

/// The data every variant trains on, and where the report goes.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    /// A dataset folder as `alexnet train --data` takes; absent: the embedded synthetic set.
    pub path: Option<PathBuf>,
    pub image_size: Option<usize>,
    /// Training and validation images: the embedded set's sizes, or a stratified subset
    /// (drawn with `seed`) of a dataset folder's training and validation sets.
    pub train_size: Option<usize>,
    pub val_size: Option<usize>,
    #[serde(default)]
    pub seed: u64,
    /// Output folder (relative paths are relative to the current directory).
    pub out: PathBuf,
}

/// Training options; every field optional so a variant names only what it changes.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A variant's name (required in `[[variant]]`, refused in `[train]`).
    pub name: Option<String>,
    pub arch: Option<String>,
    pub width: Option<f64>,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub optimizer: Option<String>,
    pub lr: Option<f64>,
    pub momentum: Option<f64>,
    pub weight_decay: Option<f64>,
    pub schedule: Option<String>,
    pub step_every: Option<usize>,
    pub gamma: Option<f64>,
    pub dropout: Option<f32>,
    pub activation: Option<String>,
    pub leaky_slope: Option<f32>,
    pub elu_alpha: Option<f32>,
    pub pool: Option<String>,
    pub norm: Option<String>,
    pub augment: Option<String>,
    pub init: Option<String>,
    pub workers: Option<usize>,
}

impl Settings {
    /// `self` with every field `over` sets replaced.
    pub fn merged(&self, over: &Settings) -> Settings {
        macro_rules! pick {
            ($($f:ident),*) => { Settings { $($f: over.$f.clone().or_else(|| self.$f.clone()),)* } };
        }
        pick!(
            name,
            arch,
            width,
            epochs,
            batch_size,
            optimizer,
            lr,
            momentum,
            weight_decay,
            schedule,
            step_every,
            gamma,
            dropout,
            activation,
            leaky_slope,
            elu_alpha,
            pool,
            norm,
            augment,
            init,
            workers
        )
    }
}

impl Experiment {
    /// Reads and checks an experiment file. Errors name the file and, for TOML errors, the
    /// line, column and key, with what was expected.
    pub fn load(path: &Path) -> Result<Experiment> {
        let fail = |message: String| Error::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::parse(&text).map_err(fail)
    }

    /// Parses and checks the TOML text of an experiment; the error is a message.
    pub fn parse(text: &str) -> std::result::Result<Experiment, String> {
        let experiment: Experiment = toml::from_str(text).map_err(|e| e.to_string())?;
        experiment.check()?;
        Ok(experiment)
    }

    /// The training seeds, in order.
    pub fn seeds(&self) -> Vec<u64> {
        self.seeds.clone().unwrap_or_else(|| vec![self.data.seed])
    }

    fn check(&self) -> std::result::Result<(), String> {
        let seeds = self.seeds();
        if seeds.is_empty() {
            return Err("seeds = []: give at least one seed".into());
        }
        if (1..seeds.len()).any(|i| seeds[..i].contains(&seeds[i])) {
            return Err(format!("seeds = {seeds:?}: a seed is listed twice"));
        }
        if self.devices.as_ref().is_some_and(|d| d.is_empty()) {
            return Err("devices = []: name at least one adapter, or leave devices out".into());
        }
        if self.train.name.is_some() {
            return Err("[train]: 'name' belongs in a [[variant]] table".into());
        }
        if self.variants.is_empty() {
            return Err("no [[variant]] tables: an experiment needs at least one".into());
        }
        let mut seen = Vec::new();
        for (i, v) in self.variants.iter().enumerate() {
            let name = v
                .name
                .as_deref()
                .ok_or_else(|| format!("[[variant]] number {} has no 'name'", i + 1))?;
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
            if !ok {
                return Err(format!(
                    "[[variant]] name '{name}': expected letters, digits and - _ . + only (it names a folder)"
                ));
            }
            if seen.contains(&name) {
                return Err(format!("[[variant]] name '{name}' is used twice"));
            }
            seen.push(name);
        }
        for claim in &self.claims {
            claim.check(&seen)?;
        }
        Ok(())
    }

    /// Each variant's settings: `[train]` overridden by the variant's own.
    pub fn variant_settings(&self) -> Vec<Settings> {
        self.variants.iter().map(|v| self.train.merged(v)).collect()
    }
}

/// One training run: a variant at one seed, trained into `config.out_dir`.
#[derive(Clone, Debug)]
pub struct Job {
    pub name: String,
    /// A one-line description of the variant's settings, for the report.
    pub summary: String,
    pub seed: u64,
    pub config: TrainConfig,
}

/// What one run produced.
#[derive(Clone, Debug)]
pub struct VariantResult {
    pub name: String,
    /// A one-line description of its settings, for the report.
    pub summary: String,
    pub seed: u64,
    /// Which of the experiment's devices trained it in this invocation (an index into the
    /// devices given to [`run`]); `None` for a run finished earlier and read from disk.
    pub device: Option<usize>,
    pub epochs: Vec<EpochMetrics>,
    /// Training and validation time of all epochs.
    pub wall_secs: f64,
}

impl VariantResult {
    /// The result of a run's epochs; its wall time is the sum of their times (training and
    /// validation), which a report rebuilt from `metrics.jsonl` gives identically.
    pub fn new(job: &Job, epochs: Vec<EpochMetrics>) -> Self {
        Self {
            name: job.name.clone(),
            summary: job.summary.clone(),
            seed: job.seed,
            device: None,
            wall_secs: epochs.iter().map(|m| m.epoch_secs).sum(),
            epochs,
        }
    }
}

/// The epochs a job has already finished, when it has finished all of them: a run the
/// experiment may skip.
pub fn finished(job: &Job) -> Option<Vec<EpochMetrics>> {
    let epochs = read_metrics(&job.config.metrics_path()).ok()?;
    (epochs.len() >= job.config.epochs).then_some(epochs)
}

/// Trains every job (each into its own `out_dir`), spreading them over `gpus` — one worker
/// per device, each taking the next job not yet started — and writes the report after each
/// run so a long experiment can be read while it runs. Resumable: a job whose metrics show
/// all its epochs is read, not trained again; one with a checkpoint continues from it (the
/// last finished epoch of a killed run).
pub fn run(
    gpus: &[Gpu],
    experiment: &Experiment,
    jobs: &[Job],
    train_set: Arc<dyn Dataset>,
    val_set: Arc<dyn Dataset>,
    stop: Arc<AtomicBool>,
) -> Result<Vec<VariantResult>> {
    if gpus.is_empty() {
        return Err(Error::Config(
            "an experiment needs at least one device".into(),
        ));
    }
    let results: Mutex<Vec<Option<VariantResult>>> = Mutex::new(vec![None; jobs.len()]);
    let next = AtomicUsize::new(0);
    let record = |index: usize, result: VariantResult| -> Result<()> {
        let mut all = results.lock().unwrap_or_else(|e| e.into_inner());
        all[index] = Some(result);
        let done: Vec<VariantResult> = all.iter().flatten().cloned().collect();
        report::write_report(experiment, &done)
    };
    let worker = |device: usize, gpu: &Gpu| -> Result<()> {
        loop {
            let index = next.fetch_add(1, Ordering::SeqCst);
            let Some(job) = jobs.get(index) else {
                return Ok(());
            };
            if let Some(epochs) = finished(job) {
                log::info!("'{}' seed {}: finished earlier, kept", job.name, job.seed);
                record(index, VariantResult::new(job, epochs))?;
                continue;
            }
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let checkpoint = job.config.checkpoint_path();
            let resume = checkpoint.is_file().then_some(checkpoint.as_path());
            log::info!(
                "run {}/{} '{}' seed {}{} on {}: {}",
                index + 1,
                jobs.len(),
                job.name,
                job.seed,
                if resume.is_some() { " (resumed)" } else { "" },
                gpu.adapter_name(),
                job.summary
            );
            let outcome = train(
                gpu,
                &job.config,
                train_set.clone(),
                val_set.clone(),
                resume,
                stop.clone(),
            )?;
            // The whole history, epochs of an earlier (killed) run included.
            let epochs = read_metrics(&job.config.metrics_path())?;
            let result = VariantResult {
                device: Some(device),
                ..VariantResult::new(job, epochs)
            };
            record(index, result)?;
            if outcome.interrupted {
                log::warn!(
                    "interrupted during '{}' seed {}: rerun to continue",
                    job.name,
                    job.seed
                );
                stop.store(true, Ordering::SeqCst);
                return Ok(());
            }
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = gpus
            .iter()
            .enumerate()
            .map(|(i, g)| scope.spawn(move || worker(i, g)))
            .collect();
        let mut first_error = Ok(());
        for h in handles {
            let outcome = h
                .join()
                .unwrap_or_else(|_| Err(Error::Config("an experiment worker panicked".into())));
            if let Err(e) = outcome {
                // One device failing stops the others at their next job.
                stop.store(true, Ordering::SeqCst);
                if first_error.is_ok() {
                    first_error = Err(e);
                }
            }
        }
        first_error
    })?;
    let all = results.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(all.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[data]
out = "x"
[train]
epochs = 2
pool = "avg3"
[[variant]]
name = "a"
[[variant]]
name = "b"
pool = "max2"
"#;

    #[test]
    fn variants_override_the_shared_settings() {
        let exp = Experiment::parse(GOOD).unwrap();
        let v = exp.variant_settings();
        assert_eq!((v[0].pool.as_deref(), v[0].epochs), (Some("avg3"), Some(2)));
        assert_eq!((v[1].pool.as_deref(), v[1].epochs), (Some("max2"), Some(2)));
    }

    #[test]
    fn a_bad_file_names_the_line_and_the_key() {
        let typo = GOOD.replace("pool = \"max2\"", "pooling = \"max2\"");
        let err = Experiment::parse(&typo).unwrap_err();
        assert!(err.contains("line 11") && err.contains("pooling"), "{err}");
        let wrong_type = GOOD.replace("epochs = 2", "epochs = \"two\"");
        let err = Experiment::parse(&wrong_type).unwrap_err();
        assert!(
            err.contains("line 5") && err.contains("expected usize"),
            "{err}"
        );
        let twice = GOOD.replace("name = \"b\"", "name = \"a\"");
        assert!(Experiment::parse(&twice)
            .unwrap_err()
            .contains("used twice"));
        let none = "[data]\nout = \"x\"\n";
        assert!(Experiment::parse(none).unwrap_err().contains("variant"));
    }
}
