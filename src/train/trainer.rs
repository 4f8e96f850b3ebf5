//! The training loop: epochs of (load → forward → loss → backward → update) with the GPU
//! fed by the prefetching loader, validation every epoch, metrics, plots, and checkpoints
//! every epoch and on a stop request (Ctrl-C), from which `resume` continues exactly.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::data::{Augment, AugmentOn, Dataset, DecodeMode, Loader, OnBadSample};
use crate::error::{Error, Result};
use crate::model::{summary, AlexNetConfig, Init, Norm};
use crate::ops::cross_entropy::totals;
use crate::runtime::Gpu;
use crate::train::checkpoint::CheckpointState;
use crate::train::feed::loader_config;
use crate::train::guard::{NonFiniteReport, OnNonFinite};
use crate::train::metrics::{EpochMetrics, MetricsLog};
use crate::train::observer::{EpochObserver, Observers, Plots, ProgressBar};
use crate::train::optim::OptimizerConfig;
use crate::train::replicas::{Devices, Replicas};
use crate::train::schedule::{LrScheduler, Schedule};

/// Everything that defines a run; saved in every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: AlexNetConfig,
    pub init: Init,
    pub image_size: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    pub augment: Augment,
    pub seed: u64,
    pub workers: usize,
    pub on_bad_sample: OnBadSample,
    /// Where augmentation runs after decoding (default: the CPU).
    #[serde(default)]
    pub augment_on: AugmentOn,
    /// Exact (Pillow's pixels, the default) or reduced-scale JPEG decoding.
    #[serde(default)]
    pub decode: DecodeMode,
    /// What to do when the loss or a gradient turns NaN/Inf (default: stop).
    #[serde(default)]
    pub on_nan: OnNonFinite,
    /// Steps between reads of the loss totals (the only readback in the loop).
    pub log_every: usize,
    pub out_dir: PathBuf,
    /// Stop (with a checkpoint) after this many optimizer steps in total, as an interrupt would.
    pub max_steps: Option<u64>,
    pub show_progress: bool,
    /// Start from these weights (`--weights`): every tensor whose name and shape match is
    /// loaded; the head is re-initialised when the class count differs.
    #[serde(default)]
    pub weights: Option<PathBuf>,
    /// Parameters that stay as initialised or loaded (`--freeze`): names or name prefixes.
    #[serde(default)]
    pub freeze: Vec<String>,
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::Config("--batch-size must be at least 1".into()));
        }
        if self.epochs == 0 {
            return Err(Error::Config("--epochs must be at least 1".into()));
        }
        let smallest = summary::smallest_input(&self.model)?;
        if self.image_size < smallest {
            return Err(Error::Config(format!(
                "--image-size {} is below {smallest}, the smallest input this architecture accepts",
                self.image_size
            )));
        }
        self.optimizer.validate()?;
        self.model.frozen_parameters(&self.freeze)?;
        self.augment.check()
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.out_dir.join("checkpoint.safetensors")
    }

    pub fn metrics_path(&self) -> PathBuf {
        self.out_dir.join("metrics.jsonl")
    }
}

/// The result of a run (or of the part of it this call ran).
pub struct TrainOutcome {
    pub epochs: Vec<EpochMetrics>,
    /// `(step, loss)` at every totals readback, for curves and resume checks.
    pub step_losses: Vec<(u64, f32)>,
    /// True when the run stopped early (stop request or `max_steps`) and can be resumed.
    pub interrupted: bool,
    pub checkpoint: PathBuf,
    pub skipped: Vec<String>,
    /// Each NaN/Inf rollback, in order (only with [`OnNonFinite::Rollback`]).
    pub rollbacks: Vec<Rollback>,
}

/// One rollback after non-finite values.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollback {
    pub report: NonFiniteReport,
    /// The step of the checkpoint it went back to.
    pub to_step: u64,
    /// The learning-rate factor from then on.
    pub lr_scale: f64,
}

/// Trains `config.model` on `train`, validating on `val` every epoch. With `resume`, continues
/// from that checkpoint. `stop` is polled after every step (the CLI sets it on Ctrl-C).
///
/// # Errors
/// Bad configuration or data ([`Error::Config`], [`Error::File`]), a batch that does not fit
/// ([`Error::OutOfMemory`], with the batch size that would), a lost device
/// ([`Error::DeviceLost`]), and NaN/Inf in the loss or a gradient ([`Error::NonFinite`], with
/// the step and the tensors) unless `config.on_nan` rolls back. A checkpoint is never written
/// with non-finite weights: on any of these errors the last one on disk is the last good one.
pub fn train(
    gpu: &Gpu,
    config: &TrainConfig,
    train_set: Arc<dyn Dataset>,
    val_set: Arc<dyn Dataset>,
    resume: Option<&Path>,
    stop: Arc<AtomicBool>,
) -> Result<TrainOutcome> {
    let mut observers = default_observers(config);
    train_observed(
        &Devices::one(gpu),
        config,
        train_set,
        val_set,
        resume,
        stop,
        &mut observers,
    )
}

/// The observers [`train`] reports to: a progress bar where `config.show_progress`, and the
/// plots in `config.out_dir`.
pub fn default_observers(config: &TrainConfig) -> Observers {
    let mut observers: Vec<Box<dyn EpochObserver>> = Vec::new();
    if config.show_progress {
        observers.push(Box::new(ProgressBar::default()));
    }
    observers.push(Box::new(Plots {
        dir: config.out_dir.clone(),
    }));
    Observers(observers)
}

/// [`train`] on `devices` (data parallel over several; see `train::parallel`), reporting
/// progress to `observer` instead of the default bar and plots (pass [`default_observers`]
/// with hooks of your own added to keep them). Checkpoints have the single-device format;
/// only the process of rank 0 writes them, the metrics and the plots.
pub fn train_observed(
    devices: &Devices,
    config: &TrainConfig,
    train_set: Arc<dyn Dataset>,
    val_set: Arc<dyn Dataset>,
    resume: Option<&Path>,
    stop: Arc<AtomicBool>,
    observer: &mut dyn EpochObserver,
) -> Result<TrainOutcome> {
    config.validate()?;
    if train_set.classes().len() != config.model.classes {
        return Err(Error::Config(format!(
            "the data has {} classes but the model {}",
            train_set.classes().len(),
            config.model.classes
        )));
    }
    let mut quiet = Observers(Vec::new());
    let observer: &mut dyn EpochObserver = if devices.leads() {
        observer
    } else {
        &mut quiet
    };
    let mut replicas = Replicas::new(devices, config, resume.is_some())?;
    let mut scheduler = LrScheduler::new(config.schedule.clone(), config.optimizer.lr);
    let mut position = CheckpointState {
        epoch: 0,
        batch: 0,
        step: 0,
        epoch_loss_sum: 0.0,
        epoch_top1: 0.0,
        epoch_samples: 0.0,
        lr_scale: 1.0,
        config: serde_json::Value::Null,
    };
    if let Some(path) = resume {
        position = restore(&mut replicas, path, &mut scheduler)?;
        log::info!(
            "resuming {} at epoch {}, batch {}",
            path.display(),
            position.epoch + 1,
            position.batch
        );
    }
    let (mut metrics, mut history) = match (devices.leads(), resume) {
        (false, _) => (None, Vec::new()),
        (true, Some(_)) => {
            let (log, history) = MetricsLog::resume_at(&config.metrics_path(), position.epoch)?;
            (Some(log), history)
        }
        (true, None) => (
            Some(MetricsLog::create(&config.metrics_path())?),
            Vec::new(),
        ),
    };
    let mut outcome = TrainOutcome {
        epochs: Vec::new(),
        step_losses: Vec::new(),
        interrupted: false,
        checkpoint: config.checkpoint_path(),
        skipped: Vec::new(),
        rollbacks: Vec::new(),
    };
    // The checkpoint on disk this run may fall back to, and its step.
    let mut last_good = resume.map(|p| (p.to_path_buf(), position.step));
    if config.on_nan == OnNonFinite::Rollback {
        // Rolling back needs something to roll back to, even before the first epoch ends.
        save_checkpoint(config, &scheduler, &replicas, &mut position)?;
        last_good = Some((config.checkpoint_path(), position.step));
    }

    let mut epoch = position.epoch;
    while epoch < config.epochs {
        let lr = scheduler.lr(epoch) * position.lr_scale;
        replicas.set_lr(lr);
        let started = Instant::now();
        let run = run_epoch(
            &mut replicas,
            config,
            &train_set,
            epoch,
            &mut position,
            &stop,
            &mut outcome,
            observer,
        )?;
        if let Some(report) = run.non_finite {
            let action = config.on_nan.stop_reason(
                outcome.rollbacks.len(),
                &config.checkpoint_path(),
                last_good.as_ref(),
            );
            if let Some(action) = action {
                return Err(Error::NonFinite {
                    step: report.step,
                    tensors: report.tensors,
                    action,
                });
            }
            let scale = position.lr_scale * 0.1;
            position = restore(&mut replicas, &config.checkpoint_path(), &mut scheduler)?;
            position.lr_scale = scale;
            replicas.reset_guards()?;
            log::warn!(
                "non-finite values at step {} in {}: rolled back to step {} and lowered the learning rate x0.1 (scale now {scale:e})",
                report.step,
                report.tensors.join(", "),
                position.step
            );
            outcome.rollbacks.push(Rollback {
                report,
                to_step: position.step,
                lr_scale: scale,
            });
            epoch = position.epoch;
            continue;
        }
        if run.interrupted {
            save_checkpoint(config, &scheduler, &replicas, &mut position)?;
            outcome.interrupted = true;
            return Ok(outcome);
        }
        let val = replicas.evaluate(config, &val_set)?;
        scheduler.observe(1.0 - val.top1);
        let m = EpochMetrics {
            epoch: epoch + 1,
            step: replicas.step(),
            lr,
            train_loss: position.epoch_loss_sum / position.epoch_samples.max(1.0),
            val_loss: val.loss,
            val_top1: val.top1,
            val_top5: val.top5,
            train_top1: position.epoch_top1 / position.epoch_samples.max(1.0),
            images_per_sec: run.images as f64 / started.elapsed().as_secs_f64(),
            gpu_wait_secs: run.gpu_wait.as_secs_f64(),
            epoch_secs: started.elapsed().as_secs_f64(),
            skipped_samples: run.skipped,
        };
        log::info!(
            "epoch {}: train loss {:.4}, val loss {:.4}, top-1 {:.1}%, top-5 {:.1}%, {:.1} img/s, GPU waited {:.1}s for data",
            m.epoch,
            m.train_loss,
            m.val_loss,
            100.0 * m.val_top1,
            100.0 * m.val_top5,
            m.images_per_sec,
            m.gpu_wait_secs
        );
        if let Some(scaler) = &replicas.lead().scaler {
            let status = scaler.read(replicas.lead().gpu)?;
            log::info!(
                "mixed precision: loss scale {}, {} steps skipped for overflow so far",
                status.scale,
                status.skipped
            );
        }
        if let Some(metrics) = &mut metrics {
            metrics.write(&m)?;
        }
        history.push(m.clone());
        outcome.epochs.push(m);
        observer.epoch_ended(&history)?;
        position = CheckpointState {
            epoch: epoch + 1,
            batch: 0,
            step: replicas.step(),
            epoch_loss_sum: 0.0,
            epoch_top1: 0.0,
            epoch_samples: 0.0,
            lr_scale: position.lr_scale,
            config: serde_json::Value::Null,
        };
        // Different drivers may round the same update differently: start every epoch equal.
        replicas.broadcast()?;
        save_checkpoint(config, &scheduler, &replicas, &mut position)?;
        last_good = Some((config.checkpoint_path(), position.step));
        if replicas.any(stop.load(Ordering::SeqCst))? {
            outcome.interrupted = epoch + 1 < config.epochs;
            break;
        }
        epoch += 1;
    }
    for r in &replicas.list {
        r.gpu.save_pipeline_cache();
    }
    Ok(outcome)
}

/// The network of a finished run's checkpoint (`config.checkpoint_path()`, written after its
/// last epoch) over `data`, in evaluation mode: the validation transform, no dropout,
/// batch-norm's running statistics — what validation measures, on any dataset.
///
/// # Errors
/// [`Error::Config`] when the checkpoint stops before the end of the run's epochs (a killed
/// run: its network is not the final one) or the data's classes differ from the model's;
/// those of loading a checkpoint.
pub fn evaluate_checkpoint(
    gpu: &Gpu,
    config: &TrainConfig,
    data: &Arc<dyn Dataset>,
) -> Result<Evaluation> {
    let path = config.checkpoint_path();
    if data.classes().len() != config.model.classes {
        return Err(Error::Config(format!(
            "{}: the data has {} classes but the model {}",
            path.display(),
            data.classes().len(),
            config.model.classes
        )));
    }
    let mut replicas = Replicas::new(&Devices::one(gpu), config, true)?;
    let position = replicas.restore(&path)?;
    if position.epoch < config.epochs || position.batch != 0 {
        return Err(Error::Config(format!(
            "{}: the checkpoint is at epoch {}, batch {}; expected the end of the run's {} \
             epochs (finish the run first)",
            path.display(),
            position.epoch + 1,
            position.batch,
            config.epochs
        )));
    }
    replicas.evaluate(config, data)
}

/// Loads a checkpoint into every replica and `scheduler`; returns its position.
fn restore(
    replicas: &mut Replicas,
    path: &Path,
    scheduler: &mut LrScheduler,
) -> Result<CheckpointState> {
    let position = replicas.restore(path)?;
    if let Some(s) = position.config.get("scheduler") {
        *scheduler = serde_json::from_value(s.clone()).map_err(|e| Error::Config(e.to_string()))?;
    }
    Ok(position)
}

/// Writes the run's checkpoint at `position`, with the configuration and schedule state.
fn save_checkpoint(
    config: &TrainConfig,
    scheduler: &LrScheduler,
    replicas: &Replicas,
    position: &mut CheckpointState,
) -> Result<()> {
    position.config = run_state(config, scheduler)?;
    replicas.save(&config.checkpoint_path(), position)
}

/// What a checkpoint stores besides tensors: the config and the schedule's state.
fn run_state(config: &TrainConfig, scheduler: &LrScheduler) -> Result<serde_json::Value> {
    let as_json =
        |v: serde_json::Result<serde_json::Value>| v.map_err(|e| Error::Config(e.to_string()));
    Ok(serde_json::json!({
        "train": as_json(serde_json::to_value(config))?,
        "scheduler": as_json(serde_json::to_value(scheduler))?,
    }))
}

struct EpochRun {
    images: usize,
    gpu_wait: Duration,
    skipped: usize,
    interrupted: bool,
    /// Set when the guard found NaN/Inf; the epoch ended there.
    non_finite: Option<NonFiniteReport>,
}

/// Trains one epoch from `position.batch`, updating `position` after every step.
#[allow(clippy::too_many_arguments)]
fn run_epoch(
    replicas: &mut Replicas,
    config: &TrainConfig,
    data: &Arc<dyn Dataset>,
    epoch: usize,
    position: &mut CheckpointState,
    stop: &AtomicBool,
    outcome: &mut TrainOutcome,
    observer: &mut dyn EpochObserver,
) -> Result<EpochRun> {
    // BatchNorm would count a short batch's zero padding in its batch statistics: drop it.
    let drop_last = config.model.resolved_norm() == Norm::BatchNorm;
    let loader_config = loader_config(config, config.augment.clone(), true, drop_last);
    let batches = Loader::batches_per_epoch(data.len(), config.batch_size, drop_last);
    let mut loader = Loader::new(data.clone(), loader_config, epoch, position.batch)?;
    observer.epoch_started(epoch, config.epochs, batches, position.batch);
    replicas.clear_totals()?;
    let mut images = 0;
    let mut pending = 0;
    let mut interrupted = false;
    let mut non_finite = None;
    while let Some(batch) = loader.next_batch() {
        let batch = batch?;
        replicas.train_step(&batch, config.seed)?;
        images += batch.len;
        pending += 1;
        position.batch = batch.index + 1;
        position.step = replicas.step();
        let stopping = replicas.any(stop.load(Ordering::SeqCst))?
            || config.max_steps.is_some_and(|m| position.step >= m);
        let last = position.batch == batches;
        // Every checkpoint is preceded by this read, so none is written after a bad step.
        if pending >= config.log_every.max(1) || stopping || last {
            non_finite = replicas.read_guard()?;
            if non_finite.is_some() {
                break;
            }
            let t = replicas.take_train_totals()?;
            position.epoch_loss_sum += f64::from(t[totals::LOSS_SUM]);
            position.epoch_top1 += f64::from(t[totals::TOP1]);
            position.epoch_samples += f64::from(t[totals::SAMPLES]);
            outcome.step_losses.push((position.step, t[totals::LOSS]));
            pending = 0;
            let loss = position.epoch_loss_sum / position.epoch_samples.max(1.0);
            observer.step(
                position.batch,
                Some((loss, replicas.lead().optimizer.config.lr)),
            );
        } else {
            observer.step(position.batch, None);
        }
        if stopping && !last {
            interrupted = true;
            break;
        }
    }
    observer.steps_ended();
    for s in loader.skipped() {
        log::warn!("skipped a bad sample: {s}");
    }
    outcome.skipped.extend(loader.skipped().iter().cloned());
    Ok(EpochRun {
        images,
        gpu_wait: loader.wait_time(),
        skipped: loader.skipped().len(),
        interrupted,
        non_finite,
    })
}

/// A network's mean loss, top-1 and top-5 over a dataset, in evaluation mode.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub loss: f64,
    pub top1: f64,
    pub top5: f64,
    pub samples: usize,
}
