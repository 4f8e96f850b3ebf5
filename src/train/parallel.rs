//! Data parallelism over several adapters in one process: one model replica per device, each
//! batch split between them in fixed shares, the gradients averaged through host memory in a
//! fixed order (device 0, then 1, ...) so the result does not depend on which device finishes
//! first, and every device applying the same update to its own copy of the parameters and its
//! own optimizer state.
//!
//! A step at shares `[n₀, n₁, …]` computes what one device computes for a batch of `Σ nᵢ`: each
//! replica's loss is the mean over its own samples, so the batch-mean gradient is
//! `Σ (nᵢ / Σ n) · gᵢ`. Two things differ from one device, as with PyTorch's
//! DistributedDataParallel: dropout masks (drawn per replica, from the sample's place in its
//! replica's share) and BatchNorm's batch statistics (per replica, not synchronised).

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::{AlexNet, AlexNetConfig, Init, Plan, PlanOptions};
use crate::ops::cross_entropy::totals;
use crate::runtime::Gpu;
use crate::train::optim::{Optimizer, OptimizerConfig};

/// Where one step's time went.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepTimes {
    /// Forward and backward on every device, until the slowest finished.
    pub compute: Duration,
    /// Reading every gradient, averaging and writing the average back to every device.
    pub exchange: Duration,
    /// The optimizer's update on every device.
    pub update: Duration,
}

/// One device's copy of the model, its training plan and its optimizer state.
pub struct Replica {
    pub model: AlexNet,
    pub plan: Plan,
    pub optimizer: Optimizer,
}

/// The replicas of one model on `gpus[i]`, device `i` taking `shares[i]` samples of a batch.
pub struct DataParallel<'g> {
    gpus: &'g [Gpu],
    pub replicas: Vec<Replica>,
    shares: Vec<usize>,
}

impl<'g> DataParallel<'g> {
    /// Builds a replica per device, initialised with `init` and `seed` on device 0 and copied
    /// to the others, so every replica starts from the same parameters.
    ///
    /// # Errors
    /// [`Error::Config`] unless there is one positive share per device.
    pub fn new(
        gpus: &'g [Gpu],
        config: &AlexNetConfig,
        init: Init,
        seed: u64,
        shares: &[usize],
        image_size: usize,
        optimizer: OptimizerConfig,
    ) -> Result<Self> {
        if gpus.is_empty() || shares.len() != gpus.len() || shares.contains(&0) {
            return Err(Error::Config(format!(
                "data parallel: {} device(s) and shares {shares:?}; expected one positive \
                 share per device",
                gpus.len()
            )));
        }
        let mut replicas = Vec::with_capacity(gpus.len());
        for (gpu, &batch) in gpus.iter().zip(shares) {
            let model = AlexNet::new(gpu, config.clone())?;
            let options = PlanOptions {
                batch,
                image_h: image_size,
                image_w: image_size,
                training: true,
                input_grad: false,
            };
            let plan = Plan::new(gpu, &model, options)?;
            let optimizer = Optimizer::new(gpu, &model, optimizer.clone())?;
            replicas.push(Replica {
                model,
                plan,
                optimizer,
            });
        }
        replicas[0].model.initialize(&gpus[0], init, seed)?;
        let parallel = Self {
            gpus,
            replicas,
            shares: shares.to_vec(),
        };
        parallel.broadcast_parameters()?;
        Ok(parallel)
    }

    /// Samples per batch: the sum of the shares.
    pub fn batch(&self) -> usize {
        self.shares.iter().sum()
    }

    /// Copies device 0's parameters and buffers to every other replica.
    pub fn broadcast_parameters(&self) -> Result<()> {
        let (first, rest) = self.replicas.split_first().expect("at least one replica");
        let source = first.model.state_tensors();
        for (gpu, replica) in self.gpus[1..].iter().zip(rest) {
            for ((_, from), (_, to)) in source.iter().zip(replica.model.state_tensors()) {
                to.write_f32(gpu, &from.read_f32(&self.gpus[0])?)?;
            }
        }
        Ok(())
    }

    /// Writes a batch of `batch()` images (`[N, 3, H, W]`, flattened) and labels, each
    /// device taking its share in order.
    pub fn write_batch(&self, images: &[f32], labels: &[u32]) -> Result<()> {
        let n = self.batch();
        if labels.len() != n || !images.len().is_multiple_of(n.max(1)) {
            return Err(Error::Config(format!(
                "data parallel batch: {} labels and {} image values for a batch of {n}",
                labels.len(),
                images.len()
            )));
        }
        let per_image = images.len() / n;
        let mut first = 0;
        for ((gpu, replica), &share) in self.gpus.iter().zip(&self.replicas).zip(&self.shares) {
            let end = first + share;
            replica
                .plan
                .input
                .write_f32(gpu, &images[first * per_image..end * per_image])?;
            replica.plan.labels.write_u32(gpu, &labels[first..end])?;
            first = end;
        }
        Ok(())
    }

    /// One training step on the written batch: forward and backward on every device (they
    /// run at the same time), the gradients averaged in device order and written back, then
    /// every device's update. `seed` draws the dropout masks.
    pub fn step(&mut self, seed: u32) -> Result<StepTimes> {
        let started = Instant::now();
        for (gpu, replica) in self.gpus.iter().zip(&self.replicas) {
            gpu.check()?;
            replica.plan.totals.write_f32(gpu, &[0.0; totals::LEN])?;
            replica.plan.forward_backward(gpu, seed)?;
        }
        for gpu in self.gpus {
            gpu.wait()?;
        }
        let compute = started.elapsed();
        let total = self.batch() as f32;
        let trained: Vec<usize> = (0..self.replicas[0].model.params.len())
            .filter(|&j| !self.replicas[0].model.params[j].frozen)
            .collect();
        for j in trained {
            let mut mean: Vec<f32> = Vec::new();
            for ((gpu, replica), &share) in self.gpus.iter().zip(&self.replicas).zip(&self.shares) {
                let grad = replica.model.params[j].grad.read_f32(gpu)?;
                let weight = share as f32 / total;
                if mean.is_empty() {
                    mean = grad.iter().map(|g| g * weight).collect();
                } else {
                    for (m, g) in mean.iter_mut().zip(&grad) {
                        *m += g * weight;
                    }
                }
            }
            for (gpu, replica) in self.gpus.iter().zip(&self.replicas) {
                replica.model.params[j].grad.write_f32(gpu, &mean)?;
            }
        }
        let exchange = started.elapsed() - compute;
        for (gpu, replica) in self.gpus.iter().zip(&mut self.replicas) {
            replica.optimizer.begin_step(gpu);
            replica.optimizer.program().run(gpu)?;
        }
        for gpu in self.gpus {
            gpu.wait()?;
        }
        Ok(StepTimes {
            compute,
            exchange,
            update: started.elapsed() - compute - exchange,
        })
    }

    /// Forward and backward on device `i` alone, waited for: its share's compute time.
    pub fn time_device(&self, i: usize, seed: u32) -> Result<Duration> {
        let started = Instant::now();
        self.replicas[i]
            .plan
            .forward_backward(&self.gpus[i], seed)?;
        self.gpus[i].wait()?;
        Ok(started.elapsed())
    }

    /// Bytes moved through host memory per step: every trained gradient read from each device
    /// and the average written back to each.
    pub fn exchange_bytes(&self) -> u64 {
        let floats: usize = self.replicas[0]
            .model
            .params
            .iter()
            .filter(|p| !p.frozen)
            .map(|p| p.grad.numel())
            .sum();
        (2 * 4 * floats * self.gpus.len()) as u64
    }

    /// The batch-mean loss of the last step, over every device's share.
    pub fn loss(&self) -> Result<f64> {
        let mut sum = 0.0;
        let mut samples = 0.0;
        for (gpu, replica) in self.gpus.iter().zip(&self.replicas) {
            let t = replica.plan.totals.read_f32(gpu)?;
            sum += f64::from(t[totals::LOSS_SUM]);
            samples += f64::from(t[totals::SAMPLES]);
        }
        Ok(sum / samples.max(1.0))
    }
}
