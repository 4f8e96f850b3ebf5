//! The devices a run trains on: a [`Replica`] per device (model, optimizer state, plans,
//! feeders and NaN guard), each batch split between them in shares, their gradients averaged
//! (`train::parallel`) before every device's update. With one device in one process this is
//! the plain training step: one submission and nothing read back.

use std::sync::Arc;
use std::time::Instant;

use crate::data::{Batch, Dataset, Loader};
use crate::error::{Error, Result};
use crate::model::{AlexNet, Plan, PlanOptions};
use crate::ops::cross_entropy::totals;
use crate::runtime::Gpu;
use crate::train::checkpoint::{self, CheckpointState};
use crate::train::feed::{loader_config, Feeder};
use crate::train::guard::{NonFiniteGuard, NonFiniteReport};
use crate::train::loss_scale::LossScaler;
use crate::train::memory::plans_that_fit;
use crate::train::optim::Optimizer;
use crate::train::parallel::{
    average_gradients, broadcast_state, proportional_shares, split_counts, Alone, Collective,
};
use crate::train::trainer::{Evaluation, TrainConfig};
use crate::train::{begin_step, train_step_checked};

/// How a batch is divided between the devices of a data-parallel run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Shares {
    /// In proportion to each device's speed, measured on a few steps before training.
    #[default]
    Measured,
    /// Samples per device (across processes, in rank then device order), summing to the batch.
    Fixed(Vec<usize>),
}

/// Where a run trains: this process's adapters, how a batch is shared between all the run's
/// devices, and the other processes of the run ([`Alone`] unless MPI joins several).
pub struct Devices<'g> {
    pub gpus: &'g [Gpu],
    pub shares: Shares,
    pub collective: &'g dyn Collective,
}

impl<'g> Devices<'g> {
    /// One adapter in one process: the plain training run.
    pub fn one(gpu: &'g Gpu) -> Self {
        Devices {
            gpus: std::slice::from_ref(gpu),
            shares: Shares::Measured,
            collective: &Alone,
        }
    }

    /// Whether this process writes metrics, plots and checkpoints (rank 0).
    pub fn leads(&self) -> bool {
        self.collective.rank() == 0
    }
}

/// One device's part of a run.
pub(crate) struct Replica<'g> {
    pub gpu: &'g Gpu,
    pub model: AlexNet,
    pub optimizer: Optimizer,
    pub train_plan: Plan,
    pub eval_plan: Plan,
    train_feed: Feeder,
    eval_feed: Feeder,
    pub guard: NonFiniteGuard,
    /// With mixed precision: the loss scaler wired into the training plan and optimizer.
    pub scaler: Option<LossScaler>,
}

/// Every replica of this process, and where they sit among the run's.
pub(crate) struct Replicas<'g> {
    pub list: Vec<Replica<'g>>,
    /// Every device's share of a full batch, across processes.
    pub shares: Vec<usize>,
    /// This process's first device in `shares`.
    first: usize,
    collective: &'g dyn Collective,
}

impl<'g> Replicas<'g> {
    /// Builds a replica per device: replica 0 initialised (and loaded from `config.weights`
    /// unless `resuming`), copied to every other device and process.
    pub fn new(devices: &Devices<'g>, config: &TrainConfig, resuming: bool) -> Result<Self> {
        let (shares, first) = resolve_shares(devices, config)?;
        let mut list = Vec::with_capacity(devices.gpus.len());
        for (i, gpu) in devices.gpus.iter().enumerate() {
            let mut model = AlexNet::new(gpu, config.model.clone())?;
            if i == 0 {
                model.initialize(gpu, config.init, config.seed)?;
                if let (Some(weights), false) = (&config.weights, resuming) {
                    for r in model.load_pretrained(gpu, weights)? {
                        log::info!("re-initialised for {} classes: {r}", config.model.classes);
                    }
                }
            }
            model.freeze(&config.freeze)?;
            let mut optimizer = Optimizer::new(gpu, &model, config.optimizer.clone())?;
            let (mut train_plan, eval_plan) =
                plans_that_fit(gpu, &model, config, shares[first + i])?;
            let train_feed = Feeder::new(gpu, config.augment_on, &train_plan, &config.augment)?;
            let eval_feed =
                Feeder::new(gpu, config.augment_on, &eval_plan, &config.augment.eval())?;
            // With a scaler, overflowing gradients are its to handle: the guard checks the loss.
            let scaler = LossScaler::for_device(gpu, &model, &mut train_plan, &mut optimizer)?;
            let guard = match scaler {
                Some(_) => NonFiniteGuard::loss_only(gpu, &train_plan)?,
                None => NonFiniteGuard::new(gpu, &model, &train_plan)?,
            };
            list.push(Replica {
                gpu,
                model,
                optimizer,
                train_plan,
                eval_plan,
                train_feed,
                eval_feed,
                guard,
                scaler,
            });
        }
        let replicas = Self {
            list,
            shares,
            first,
            collective: devices.collective,
        };
        if !resuming {
            replicas.broadcast()?;
        }
        Ok(replicas)
    }

    fn single(&self) -> bool {
        self.shares.len() == 1
    }

    /// The first replica: its parameters and optimizer state stand for all of them.
    pub fn lead(&self) -> &Replica<'g> {
        &self.list[0]
    }

    pub fn step(&self) -> u64 {
        self.lead().optimizer.step
    }

    /// Copies replica 0's parameters and buffers to every other replica.
    pub fn broadcast(&self) -> Result<()> {
        if self.single() {
            return Ok(());
        }
        let pairs: Vec<_> = self.list.iter().map(|r| (r.gpu, &r.model)).collect();
        broadcast_state(&pairs, self.collective)
    }

    pub fn set_lr(&mut self, lr: f64) {
        for r in &mut self.list {
            r.optimizer.set_lr(lr);
        }
    }

    /// Loads a checkpoint into every replica (each process reads the file: a shared folder or
    /// a copy at the same path) and returns its position.
    pub fn restore(&mut self, path: &std::path::Path) -> Result<CheckpointState> {
        let mut position = None;
        for r in &mut self.list {
            position = Some(checkpoint::load(r.gpu, path, &r.model, &mut r.optimizer)?);
        }
        Ok(position.expect("at least one replica"))
    }

    /// Writes replica 0's checkpoint (rank 0 only); every process waits until it is written.
    pub fn save(&self, path: &std::path::Path, position: &CheckpointState) -> Result<()> {
        if self.collective.rank() == 0 {
            let lead = self.lead();
            checkpoint::save(lead.gpu, path, &lead.model, &lead.optimizer, position)?;
        }
        self.barrier()
    }

    fn barrier(&self) -> Result<()> {
        self.collective.sum_in_rank_order(&mut [0.0])
    }

    /// Whether `flag` holds on any process.
    pub fn any(&self, flag: bool) -> Result<bool> {
        let mut votes = [f32::from(u8::from(flag))];
        self.collective.sum_in_rank_order(&mut votes)?;
        Ok(votes[0] > 0.0)
    }

    /// One training step on `batch`: every device its part (forward, loss, backward and the
    /// guard's checks), the gradients averaged, every device's update. `seed` is the run's.
    pub fn train_step(&mut self, batch: &Batch, seed: u64) -> Result<()> {
        if self.single() {
            let r = &mut self.list[0];
            r.train_feed.feed(r.gpu, &r.train_plan, batch)?;
            let seed = step_seed(seed, r.optimizer.step);
            return train_step_checked(
                r.gpu,
                &r.train_plan,
                &mut r.optimizer,
                seed,
                Some(&r.guard),
            );
        }
        let counts = split_counts(batch.len, &self.shares);
        let parts = batch.split(&counts);
        let local = self.first..self.first + self.list.len();
        for ((i, r), part) in local.clone().zip(&mut self.list).zip(&parts[local.clone()]) {
            // Each device draws its own dropout masks (device 0's are a single device's).
            let seed = step_seed(
                seed ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407),
                r.optimizer.step,
            );
            begin_step(r.gpu, &r.train_plan, &mut r.optimizer, seed, Some(&r.guard))?;
            if part.len == 0 {
                continue;
            }
            r.train_feed.feed(r.gpu, &r.train_plan, part)?;
            let plan = &r.train_plan;
            r.gpu.submit("a training step's gradients", |encoder| {
                for program in [&plan.forward, &plan.loss, &plan.backward, r.guard.program()] {
                    program.record(encoder);
                }
            })?;
        }
        let total = batch.len.max(1) as f32;
        let weights: Vec<f32> = counts[local].iter().map(|&n| n as f32 / total).collect();
        let pairs: Vec<_> = self.list.iter().map(|r| (r.gpu, &r.model)).collect();
        average_gradients(&pairs, &weights, self.collective)?;
        for r in &self.list {
            r.gpu.submit("the optimizer's update", |e| {
                r.optimizer.program().record(e)
            })?;
        }
        Ok(())
    }

    /// Zeroes every replica's loss totals.
    pub fn clear_totals(&self) -> Result<()> {
        for r in &self.list {
            r.train_plan.totals.write_f32(r.gpu, &[0.0; totals::LEN])?;
            r.eval_plan.totals.write_f32(r.gpu, &[0.0; totals::LEN])?;
        }
        Ok(())
    }

    /// The training totals since the last call, summed over devices and processes; zeroes them.
    pub fn take_train_totals(&self) -> Result<Vec<f32>> {
        let sums = self.sum_totals(false)?;
        self.clear_totals()?;
        Ok(sums)
    }

    /// The loss totals of the training or the evaluation plans, summed over devices and processes; `LOSS`,
    /// the last batch's mean, is the replicas' means weighted by the samples each has seen.
    fn sum_totals(&self, evaluation: bool) -> Result<Vec<f32>> {
        let mut sums = vec![0.0f32; totals::LEN];
        let mut weighted_loss = 0.0;
        for r in &self.list {
            let plan = if evaluation {
                &r.eval_plan
            } else {
                &r.train_plan
            };
            let t = plan.totals.read_f32(r.gpu)?;
            for (s, v) in sums.iter_mut().zip(&t) {
                *s += v;
            }
            weighted_loss += t[totals::LOSS] * t[totals::SAMPLES];
        }
        if self.single() {
            return Ok(sums);
        }
        sums[totals::LOSS] = weighted_loss;
        self.collective.sum_in_rank_order(&mut sums)?;
        sums[totals::LOSS] /= sums[totals::SAMPLES].max(1.0);
        Ok(sums)
    }

    /// The guard's verdict: the first non-finite report of any replica, agreed between the
    /// processes (one without a report of its own names the step it is at).
    pub fn read_guard(&self) -> Result<Option<NonFiniteReport>> {
        let mut report = None;
        for r in &self.list {
            if let Some(found) = r.guard.read(r.gpu)? {
                report = Some(found);
                break;
            }
        }
        if self.any(report.is_some())? && report.is_none() {
            report = Some(NonFiniteReport {
                step: self.step(),
                tensors: vec!["(a gradient on another process)".into()],
            });
        }
        Ok(report)
    }

    /// Marks every guard's tensors finite again (after a rollback).
    pub fn reset_guards(&self) -> Result<()> {
        self.list.iter().try_for_each(|r| r.guard.reset(r.gpu))
    }

    /// Loss, top-1 and top-5 over a whole dataset, each batch split between the devices.
    pub fn evaluate(
        &mut self,
        config: &TrainConfig,
        data: &Arc<dyn Dataset>,
    ) -> Result<Evaluation> {
        let loader_config = loader_config(config, config.augment.eval(), false, false);
        let mut loader = Loader::new(data.clone(), loader_config, 0, 0)?;
        self.clear_totals()?;
        let local = self.first..self.first + self.list.len();
        while let Some(batch) = loader.next_batch() {
            let batch = batch?;
            let parts = batch.split(&split_counts(batch.len, &self.shares));
            for (r, part) in self.list.iter_mut().zip(&parts[local.clone()]) {
                if part.len > 0 {
                    r.eval_feed.feed(r.gpu, &r.eval_plan, part)?;
                    r.eval_plan.forward_loss(r.gpu)?;
                }
            }
        }
        let t = self.sum_totals(true)?;
        let n = f64::from(t[totals::SAMPLES]).max(1.0);
        Ok(Evaluation {
            loss: f64::from(t[totals::LOSS_SUM]) / n,
            top1: f64::from(t[totals::TOP1]) / n,
            top5: f64::from(t[totals::TOP5]) / n,
            samples: t[totals::SAMPLES] as usize,
        })
    }
}

/// The run's shares (one per device, across processes) and this process's first device among
/// them. Measured shares time each device on a few forward and backward passes.
fn resolve_shares(devices: &Devices, config: &TrainConfig) -> Result<(Vec<usize>, usize)> {
    let local = devices.gpus.len();
    if local == 0 {
        return Err(Error::Config("no device to train on".into()));
    }
    // Every process learns how many devices each one has: its own count in its rank's slot.
    let mut counts = vec![0.0f32; devices.collective.size()];
    counts[devices.collective.rank()] = local as f32;
    devices.collective.sum_in_rank_order(&mut counts)?;
    let first = counts[..devices.collective.rank()].iter().sum::<f32>() as usize;
    let total = counts.iter().sum::<f32>() as usize;
    let batch = config.batch_size;
    if batch < total {
        return Err(Error::Config(format!(
            "--batch-size {batch} is smaller than the {total} devices it is shared between"
        )));
    }
    let shares = match &devices.shares {
        _ if total == 1 => vec![batch],
        Shares::Fixed(shares) => shares.clone(),
        Shares::Measured => {
            let mut speeds = vec![0.0f32; total];
            for (i, gpu) in devices.gpus.iter().enumerate() {
                speeds[first + i] = measure_speed(gpu, config, (batch / total).max(1))? as f32;
            }
            devices.collective.sum_in_rank_order(&mut speeds)?;
            let speeds: Vec<f64> = speeds.iter().map(|&s| f64::from(s)).collect();
            let shares = proportional_shares(batch, &speeds);
            log::info!(
                "data parallel over {total} devices: measured {:?} images/s, shares {shares:?}",
                speeds.iter().map(|s| s.round()).collect::<Vec<_>>()
            );
            shares
        }
    };
    if shares.len() != total || shares.contains(&0) || shares.iter().sum::<usize>() != batch {
        return Err(Error::Config(format!(
            "--shares {shares:?}: expected one positive number per device ({total}) summing to \
             --batch-size {batch}"
        )));
    }
    Ok((shares, first))
}

/// A device's training images/s at `batch`: one warm-up forward and backward (it compiles
/// the pipelines), then two timed.
fn measure_speed(gpu: &Gpu, config: &TrainConfig, batch: usize) -> Result<f64> {
    let model = AlexNet::new(gpu, config.model.clone())?;
    let options = PlanOptions::training(batch, config.image_size);
    let plan = Plan::new(gpu, &model, options)?;
    plan.forward_backward(gpu, 0)?;
    gpu.wait()?;
    let started = Instant::now();
    for _ in 0..2 {
        plan.forward_backward(gpu, 0)?;
    }
    gpu.wait()?;
    Ok(2.0 * batch as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// The dropout seed of optimizer step `step`: a pure function, so a resumed run draws the
/// same masks.
pub(crate) fn step_seed(seed: u64, step: u64) -> u32 {
    let mut z = seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u32
}
