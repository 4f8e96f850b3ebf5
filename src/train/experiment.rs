//! Experiments: several training variants on the same data, each at several seeds, and one
//! report comparing them (`train::report`): mean ± standard deviation over the seeds, curves
//! of every variant on the same axes, and the listed claims judged from the numbers.
//!
//! The configuration is TOML: a `[data]` table (dataset, sizes, seed, output folder), a
//! `[train]` table of settings every variant shares, and `[[variant]]` tables, each a `name`
//! and the settings it overrides. Every table holds [`TrainOptions`], the options of
//! `alexnet train` by the same names with `_` for `-` (`weight_decay`, `activation`, `pool`,
//! `norm`, `augment`, …; `path` for `data`), merged key by key in that order.

mod progress;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::data::source::Splits;
use crate::data::Dataset;
use crate::data::{dataset, Subset};
use crate::error::{Error, Result};
use crate::runtime::Gpu;
use crate::train::claim::Claim;
use crate::train::metrics::{read_metrics, EpochMetrics};
use crate::train::optim::OptimizerKind;
use crate::train::options::TrainOptions;
use crate::train::replicas::Devices;
use crate::train::report;
use crate::train::trainer::{
    default_observers, evaluate_checkpoint, train_observed, Evaluation, TrainConfig,
};
use progress::{Progress, ProgressHook};

/// The network input side when no table sets `image_size`: the embedded set's.
const DEFAULT_IMAGE_SIZE: usize = 64;

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
    /// shuffling and augmentation; the data subset stays the one of `[data] seed`). Absent:
    /// `[data] seed` alone.
    #[serde(default)]
    pub seeds: Option<Vec<u64>>,
    /// Adapters to spread the runs over, as `alexnet train --devices` takes them: `all`,
    /// numbers as `alexnet devices` lists them, or case-insensitive parts of adapter names
    /// (the same name twice opens the adapter twice). Absent: the one `--device` chooses.
    #[serde(default)]
    pub devices: Option<Vec<String>>,
    /// How many runs train at once on each of those adapters, each with a device of its own
    /// (default 1). Two on a software driver overlap one run's CPU-side work with the other's
    /// shaders.
    #[serde(default)]
    pub runs_per_device: Option<usize>,
    /// The data every variant trains on, and in `out` where the report goes. With a dataset
    /// folder, `train_size`/`val_size` (when given) take a stratified subset of its training
    /// and validation sets, drawn with `seed`.
    pub data: TrainOptions,
    #[serde(default)]
    pub train: TrainOptions,
    #[serde(rename = "variant")]
    pub variants: Vec<TrainOptions>,
    /// The claims the report judges from the results.
    #[serde(default, rename = "claim")]
    pub claims: Vec<Claim>,
    /// What the results mean, in words, written after reading them: the report puts it after
    /// the verdicts (paragraphs separated by blank lines).
    #[serde(default)]
    pub conclusions: Option<String>,
    /// `[data] train_size` and `val_size` when the file sets them (a real dataset is cut only then).
    #[serde(skip)]
    subset: (Option<usize>, Option<usize>),
    /// Each variant's options: `[data]`, `[train]` and its own table merged (see [`Self::parse`]).
    #[serde(skip)]
    merged: Vec<TrainOptions>,
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
        // Typed first, so that a bad key or value is reported with its line; then the tables
        // are merged key by key, so a variant overrides only what it names.
        let mut experiment: Experiment = toml::from_str(text).map_err(|e| e.to_string())?;
        let raw: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let table = |key: &str| match raw.get(key) {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => toml::Table::new(),
        };
        if !table("data").contains_key("out") {
            return Err("[data]: 'out' (the report's folder) is required".into());
        }
        experiment.check()?;
        let size = |key: &str| table("data").get(key).and_then(|v| v.as_integer());
        experiment.subset = (
            size("train_size").map(|n| n as usize),
            size("val_size").map(|n| n as usize),
        );
        let mut shared = table("data");
        shared.extend(table("train"));
        let variants = match raw.get("variant") {
            Some(toml::Value::Array(v)) => v.clone(),
            _ => Vec::new(),
        };
        for variant in variants {
            let mut merged = shared.clone();
            if let toml::Value::Table(own) = variant {
                merged.extend(own);
            }
            let mut options: TrainOptions = toml::Value::Table(merged)
                .try_into()
                .map_err(|e| e.to_string())?;
            let name = options.name.clone().unwrap_or_default();
            options.out = experiment.data.out.join(&name);
            options.image_size = options.image_size.or(Some(DEFAULT_IMAGE_SIZE));
            experiment.merged.push(options);
        }
        Ok(experiment)
    }

    /// [`Self::runs_per_device`], 1 when absent.
    pub fn runs_per_device(&self) -> usize {
        self.runs_per_device.unwrap_or(1)
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
        if self.runs_per_device == Some(0) {
            return Err("runs_per_device = 0: expected 1 or more".into());
        }
        if self.devices.as_ref().is_some_and(|d| d.is_empty()) {
            return Err("devices = []: name at least one adapter, or leave devices out".into());
        }
        if self.train.name.is_some() || self.data.name.is_some() {
            return Err("[data], [train]: 'name' belongs in a [[variant]] table".into());
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

    /// Each variant's options: `[data]`, then `[train]`, then the variant's own, with `out`
    /// set to the variant's folder inside the report's.
    pub fn variant_options(&self) -> &[TrainOptions] {
        &self.merged
    }

    /// The data every variant trains on ([`TrainOptions::open_data`] of `[data]`), a dataset
    /// folder cut to `train_size`/`val_size` when the file gives them.
    pub fn open_data(&self) -> Result<Splits> {
        // In the file's words: the library's own message names alexnet train's flag.
        if let Some(path) = self.data.data.as_ref().filter(|p| !p.is_dir()) {
            return Err(Error::Config(format!(
                "[data] path = \"{}\": not a folder; expected a dataset folder (CIFAR-10/100, \
                 IDX files such as Debian's dataset-fashion-mnist, or one sub-folder per class)",
                path.display()
            )));
        }
        let mut data = self.data.clone();
        data.image_size = data.image_size.or(Some(DEFAULT_IMAGE_SIZE));
        let mut splits = data.open_data()?;
        if self.data.data.is_some() {
            let seed = self.data.seed;
            splits.train = subset(splits.train, self.subset.0, seed, "train_size")?;
            splits.val = subset(splits.val, self.subset.1, seed, "val_size")?;
        }
        Ok(splits)
    }

    /// Every run: each variant at each seed, into `out/<variant>/seed-<seed>`, for data with
    /// `classes` classes, seed by seed — every variant at the first seed before any at the
    /// second — so an experiment stopped part-way still compares all variants. Errors name the
    /// variant.
    pub fn jobs(&self, classes: usize) -> Result<Vec<Job>> {
        let mut jobs = Vec::new();
        for seed in self.seeds() {
            for options in &self.merged {
                let name = options.name.clone().unwrap_or_default();
                let in_variant = |e: Error| Error::Config(format!("variant '{name}': {e}"));
                let mut options = options.clone();
                options.seed = seed;
                options.out = options.out.join(format!("seed-{seed}"));
                let mut config = options.config(classes).map_err(in_variant)?;
                // Many runs in one terminal: one log line per epoch instead of bars.
                config.show_progress = false;
                config.validate().map_err(in_variant)?;
                jobs.push(Job {
                    name,
                    summary: describe(&config),
                    seed,
                    config,
                });
            }
        }
        Ok(jobs)
    }
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
        Some(n) if n == 0 || n > ds.len() => Err(Error::Config(format!(
            "[data] {key} = {n}: expected 1 to {} (the images the dataset has)",
            ds.len()
        ))),
        Some(n) => {
            let (_, part): (Subset, Subset) =
                dataset::split(ds.clone(), n as f64 / ds.len() as f64, seed)?;
            Ok(Arc::new(part))
        }
    }
}

/// The training images every run's final network is also evaluated on ([`train_evaluation`]):
/// as many as `val_len` (so that its top-1 and validation's carry the same sampling noise;
/// each class's share is rounded), stratified by class and drawn with `seed`, the same for
/// every run.
pub fn train_probe(
    train_set: Arc<dyn Dataset>,
    val_len: usize,
    seed: u64,
) -> Result<Arc<dyn Dataset>> {
    let n = val_len.min(train_set.len());
    subset(train_set, Some(n), seed, "the training probe's size")
}

/// The file in a run's folder with its final network's figures on the training probe.
const TRAIN_EVALUATION_FILE: &str = "train-evaluation.json";

/// A finished run's final network on `probe` ([`train_probe`]) in evaluation mode: no
/// augmentation and no dropout, so its top-1 against validation's is the generalization gap
/// (the training batches' own top-1 is lowered by both). Read from the run's folder when it
/// was evaluated before on as many images; otherwise evaluated on `gpu` from the run's
/// checkpoint and saved there. `None`, with a warning, for a run with neither (a report
/// rebuilt from committed metrics alone) or without a device ([`needs_train_evaluation`]
/// says when one is needed).
pub fn train_evaluation(
    gpu: Option<&Gpu>,
    job: &Job,
    probe: &Arc<dyn Dataset>,
) -> Result<Option<Evaluation>> {
    if let Some(saved) = saved_train_evaluation(job, probe.len()) {
        return Ok(Some(saved));
    }
    let (Some(gpu), true) = (gpu, job.config.checkpoint_path().is_file()) else {
        log::warn!(
            "'{}' seed {}: no saved evaluation on training images and no checkpoint (or \
             device) to make one; its generalization gap is left out",
            job.name,
            job.seed
        );
        return Ok(None);
    };
    log::info!(
        "'{}' seed {}: evaluating the final network on {} training images",
        job.name,
        job.seed,
        probe.len()
    );
    let evaluation = evaluate_checkpoint(gpu, &job.config, probe)?;
    let path = job.config.out_dir.join(TRAIN_EVALUATION_FILE);
    let json = serde_json::to_vec_pretty(&evaluation)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    crate::atomic_file::write(&path, &json)?;
    Ok(Some(evaluation))
}

/// Whether [`train_evaluation`] of a run would evaluate its checkpoint: one is there and no
/// evaluation over `images` images is saved.
pub fn needs_train_evaluation(job: &Job, images: usize) -> bool {
    saved_train_evaluation(job, images).is_none() && job.config.checkpoint_path().is_file()
}

/// The saved [`train_evaluation`] of a run, when there is one over `images` images.
pub fn saved_train_evaluation(job: &Job, images: usize) -> Option<Evaluation> {
    let text = std::fs::read(job.config.out_dir.join(TRAIN_EVALUATION_FILE)).ok()?;
    let saved: Evaluation = serde_json::from_slice(&text).ok()?;
    (saved.samples == images).then_some(saved)
}

/// The settings a reader compares, in one line.
pub fn describe(c: &TrainConfig) -> String {
    let m = &c.model;
    let o = &c.optimizer;
    let momentum = match o.kind {
        OptimizerKind::Sgd => format!(" momentum {}", o.momentum),
        _ => String::new(),
    };
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
        "{}, {}, {}, dropout {}, {} lr {}{momentum} weight decay {}, {}, augmentation random {augment}, \
         {} epochs, batch {}",
        m.activation,
        m.pool,
        m.resolved_norm(),
        m.dropout,
        o.kind,
        o.lr,
        o.weight_decay,
        c.schedule,
        c.epochs,
        c.batch_size
    )
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
    /// The final network on the training probe ([`train_evaluation`]); `None` until measured.
    pub train_eval: Option<Evaluation>,
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
            train_eval: None,
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
/// run so a long experiment can be read while it runs. Every finished run's final network is
/// also evaluated on the training probe ([`train_evaluation`]). Resumable: a job whose metrics show
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
    let probe = train_probe(train_set.clone(), val_set.len(), experiment.data.seed)?;
    let progress = Arc::new(Mutex::new(Progress::new(jobs)));
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
                let result = VariantResult {
                    train_eval: train_evaluation(Some(gpu), job, &probe)?,
                    ..VariantResult::new(job, epochs)
                };
                record(index, result)?;
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
            let mut observers = default_observers(&job.config);
            observers.0.push(Box::new(ProgressHook(progress.clone())));
            let outcome = train_observed(
                &Devices::one(gpu),
                &job.config,
                train_set.clone(),
                val_set.clone(),
                resume,
                stop.clone(),
                &mut observers,
            )?;
            // The whole history, epochs of an earlier (killed) run included.
            let epochs = read_metrics(&job.config.metrics_path())?;
            let train_eval = match outcome.interrupted {
                true => None,
                false => train_evaluation(Some(gpu), job, &probe)?,
            };
            let result = VariantResult {
                device: Some(device),
                train_eval,
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
    use crate::model::Pool;

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
        let v = exp.variant_options();
        assert_eq!((v[0].pool, v[0].epochs), (Some(Pool::Avg3), Some(2)));
        assert_eq!((v[1].pool, v[1].epochs), (Some(Pool::Max2), Some(2)));
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
        let missing =
            "[data]\nout = \"x\"\npath = \"/no/such/fashion-mnist\"\n[[variant]]\nname = \"a\"\n";
        let Err(err) = Experiment::parse(missing).unwrap().open_data() else {
            panic!("a missing dataset folder was accepted");
        };
        let err = err.to_string();
        assert!(
            err.contains("[data] path = \"/no/such/fashion-mnist\": not a folder"),
            "{err}"
        );
    }
}
