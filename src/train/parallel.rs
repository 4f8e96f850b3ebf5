//! Data parallelism: one model replica per device, each batch split between them in shares,
//! the gradients averaged through host memory in a fixed order (device 0, then 1, ...) so the
//! result does not depend on which device finishes first, and every device applying the same
//! update to its own copy of the parameters and its own optimizer state.
//!
//! A step at shares `[n₀, n₁, …]` computes what one device computes for a batch of `Σ nᵢ`: each
//! replica's loss is the mean over its own samples, so the batch-mean gradient is
//! `Σ (nᵢ / Σ n) · gᵢ`. Two things differ from one device, as with PyTorch's
//! DistributedDataParallel: dropout masks (drawn per replica, from the sample's place in its
//! replica's share) and BatchNorm's batch statistics (per replica, not synchronised).
//!
//! Several processes (MPI ranks, each with its own devices) join through a [`Collective`]: the
//! replicas are numbered across processes, each process runs its own, and the collective adds
//! the processes' partial sums in rank order, which is the order one process would use.
//! [`DataParallel`] is the bare step (benchmarks, tests); `train::trainer` runs the same
//! mechanism ([`average_gradients`], [`broadcast_state`]) with data, checkpoints and guards.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::{AlexNet, AlexNetConfig, Init, Plan, PlanOptions};
use crate::ops::cross_entropy::totals;
use crate::runtime::{Gpu, Readback, Tensor};
use crate::train::optim::{Optimizer, OptimizerConfig};

/// How the processes of a run agree on numbers. One process alone has nothing to agree with
/// ([`Alone`]); with the `mpi` feature, `train::mpi` joins MPI ranks.
pub trait Collective {
    /// This process's place among the processes of the run.
    fn rank(&self) -> usize;
    /// How many processes the run has.
    fn size(&self) -> usize;
    /// Replaces `values` on every process with their sum over the processes, added in rank
    /// order (rank 0's, plus rank 1's, ...), so that every process and every run of the same
    /// data gets the same bits.
    fn sum_in_rank_order(&self, values: &mut [f32]) -> Result<()>;
    /// Replaces `values` on every process with rank 0's.
    fn broadcast(&self, values: &mut [f32]) -> Result<()>;
}

/// The collective of a run in one process: sums and broadcasts leave the values as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct Alone;

impl Collective for Alone {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_in_rank_order(&self, _: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn broadcast(&self, _: &mut [f32]) -> Result<()> {
        Ok(())
    }
}

/// `batch` split evenly over `devices` (the first devices take the remainder).
pub fn even_shares(batch: usize, devices: usize) -> Vec<usize> {
    (0..devices)
        .map(|i| batch / devices + usize::from(i < batch % devices))
        .collect()
}

/// `batch` split in proportion to `weights` (each device's images/s, or its share of a full
/// batch), by largest remainders; every device keeps at least one sample while the batch
/// allows, so that a short batch still keeps every device busy.
pub fn proportional_shares(batch: usize, weights: &[f64]) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    if total.is_nan() || total <= 0.0 || batch < weights.len() {
        return even_shares(batch, weights.len());
    }
    let spare = batch - weights.len();
    let exact: Vec<f64> = weights.iter().map(|s| spare as f64 * s / total).collect();
    let mut shares: Vec<usize> = exact.iter().map(|e| 1 + e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let left = batch - shares.iter().sum::<usize>();
    for &i in order.iter().take(left) {
        shares[i] += 1;
    }
    shares
}

/// How `len` samples split over devices whose shares of a full batch are `shares`: the shares
/// themselves for a full batch; for a short one, in proportion to them by largest remainders,
/// never more than a device's share (its plan holds no more), a device possibly getting none.
pub fn split_counts(len: usize, shares: &[usize]) -> Vec<usize> {
    let total: usize = shares.iter().sum();
    if len >= total {
        return shares.to_vec();
    }
    let exact: Vec<f64> = shares
        .iter()
        .map(|&s| (len * s) as f64 / total as f64)
        .collect();
    // Each count is at most ⌈exact⌉ ≤ its share, since exact ≤ share when len < total.
    let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let left = len - counts.iter().sum::<usize>();
    for &i in order.iter().take(left) {
        counts[i] += 1;
    }
    counts
}

/// Checks that there is one positive share per device.
pub fn check_shares(devices: usize, shares: &[usize]) -> Result<()> {
    if devices == 0 || shares.len() != devices || shares.contains(&0) {
        return Err(Error::Config(format!(
            "data parallel: {devices} device(s) and shares {shares:?}; expected one positive \
             share per device"
        )));
    }
    Ok(())
}

/// The gradients a step trains (frozen parameters have none worth moving).
fn trained_gradients(model: &AlexNet) -> Vec<&Tensor> {
    model
        .params
        .iter()
        .filter(|p| !p.frozen)
        .map(|p| &p.grad)
        .collect()
}

/// Replaces every replica's trained gradients with `Σ weights[i] · gradient of replica i`,
/// summed over this process's replicas in order and then over the processes by `collective`.
/// `weights` are the replicas' sample counts over the whole batch's (a replica with weight 0
/// had no samples and is not read). Each device's gradients come back in one readback, all
/// started before any is waited for.
pub fn average_gradients(
    replicas: &[(&Gpu, &AlexNet)],
    weights: &[f32],
    collective: &dyn Collective,
) -> Result<()> {
    let mut readbacks = Vec::with_capacity(replicas.len());
    for (&(gpu, model), &weight) in replicas.iter().zip(weights) {
        let started = (weight != 0.0)
            .then(|| Readback::start(gpu, &trained_gradients(model)))
            .transpose()?;
        readbacks.push(started);
    }
    let mut mean: Vec<f32> = Vec::new();
    for ((&(gpu, _), &weight), readback) in replicas.iter().zip(weights).zip(readbacks) {
        let Some(readback) = readback else { continue };
        let bytes = readback.finish(gpu)?;
        let grads: &[f32] = bytemuck::cast_slice(&bytes);
        if mean.is_empty() {
            mean = grads.iter().map(|g| g * weight).collect();
        } else {
            for (m, g) in mean.iter_mut().zip(grads) {
                *m += g * weight;
            }
        }
    }
    if mean.is_empty() {
        let floats = trained_gradients(replicas[0].1)
            .iter()
            .map(|t| t.numel())
            .sum();
        mean = vec![0.0; floats];
    }
    collective.sum_in_rank_order(&mut mean)?;
    for &(gpu, model) in replicas {
        write_flat(gpu, &trained_gradients(model), &mean)?;
    }
    Ok(())
}

/// Copies the first replica's parameters and buffers (of rank 0, across processes) to every
/// other replica: one readback, one broadcast of the whole state.
pub fn broadcast_state(replicas: &[(&Gpu, &AlexNet)], collective: &dyn Collective) -> Result<()> {
    let Some(&(gpu, model)) = replicas.first() else {
        return Ok(());
    };
    let state = |model: &AlexNet| -> Vec<Tensor> {
        model
            .state_tensors()
            .into_iter()
            .map(|(_, t)| t.clone())
            .collect()
    };
    let source = state(model);
    let bytes = Readback::start(gpu, &source.iter().collect::<Vec<_>>())?.finish(gpu)?;
    let mut values: Vec<f32> = bytemuck::cast_slice(&bytes).to_vec();
    collective.broadcast(&mut values)?;
    for (k, &(gpu, model)) in replicas.iter().enumerate() {
        if k > 0 || collective.rank() > 0 {
            write_flat(gpu, &state(model).iter().collect::<Vec<_>>(), &values)?;
        }
    }
    Ok(())
}

/// Writes `values` into `tensors`, one after the other (the layout a [`Readback`] of them has).
fn write_flat(gpu: &Gpu, tensors: &[&Tensor], values: &[f32]) -> Result<()> {
    let mut first = 0;
    for t in tensors {
        t.write_f32(gpu, &values[first..first + t.numel()])?;
        first += t.numel();
    }
    Ok(())
}

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

impl std::ops::AddAssign for StepTimes {
    fn add_assign(&mut self, other: Self) {
        self.compute += other.compute;
        self.exchange += other.exchange;
        self.update += other.update;
    }
}

/// One device's copy of the model, its training plan and its optimizer state.
pub struct Replica {
    pub model: AlexNet,
    pub plan: Plan,
    pub optimizer: Optimizer,
}

/// The replicas of one model on `gpus[i]`, device `i` taking `shares[first + i]` samples of
/// each batch (`first` is 0 in one process).
pub struct DataParallel<'g> {
    gpus: &'g [Gpu],
    pub replicas: Vec<Replica>,
    shares: Vec<usize>,
    first: usize,
    collective: Box<dyn Collective + 'g>,
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
        check_shares(gpus.len(), shares)?;
        Self::joined(
            Box::new(Alone),
            gpus,
            config,
            init,
            seed,
            shares,
            0,
            image_size,
            optimizer,
        )
    }

    /// [`DataParallel::new`] for one process of several: `shares` are every replica's, across
    /// the processes, and this process's devices are replicas `first..first + gpus.len()`.
    #[allow(clippy::too_many_arguments)]
    pub fn joined(
        collective: Box<dyn Collective + 'g>,
        gpus: &'g [Gpu],
        config: &AlexNetConfig,
        init: Init,
        seed: u64,
        shares: &[usize],
        first: usize,
        image_size: usize,
        optimizer: OptimizerConfig,
    ) -> Result<Self> {
        let local = shares.get(first..first + gpus.len()).unwrap_or_default();
        check_shares(gpus.len(), local)?;
        check_shares(shares.len(), shares)?;
        let mut replicas = Vec::with_capacity(gpus.len());
        for (gpu, &batch) in gpus.iter().zip(local) {
            let model = AlexNet::new(gpu, config.clone())?;
            let options = PlanOptions::training(batch, image_size);
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
            first,
            collective,
        };
        broadcast_state(&parallel.pairs(), parallel.collective.as_ref())?;
        Ok(parallel)
    }

    fn pairs(&self) -> Vec<(&Gpu, &AlexNet)> {
        self.gpus
            .iter()
            .zip(&self.replicas)
            .map(|(gpu, r)| (gpu, &r.model))
            .collect()
    }

    fn local_shares(&self) -> &[usize] {
        &self.shares[self.first..self.first + self.gpus.len()]
    }

    /// Samples per batch: the sum of the shares.
    pub fn batch(&self) -> usize {
        self.shares.iter().sum()
    }

    /// Copies device 0's parameters and buffers to every other replica.
    pub fn broadcast_parameters(&self) -> Result<()> {
        broadcast_state(&self.pairs(), self.collective.as_ref())
    }

    /// Writes this process's part of a batch of `batch()` images (`[N, 3, H, W]`, flattened)
    /// and labels, each device taking its share in order.
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
        let mut first: usize = self.shares[..self.first].iter().sum();
        for ((gpu, replica), &share) in self
            .gpus
            .iter()
            .zip(&self.replicas)
            .zip(self.local_shares())
        {
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
        let weights: Vec<f32> = self
            .local_shares()
            .iter()
            .map(|&s| s as f32 / total)
            .collect();
        average_gradients(&self.pairs(), &weights, self.collective.as_ref())?;
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

    /// Bytes moved through host memory per step in this process: every trained gradient read
    /// from each device and the average written back to each.
    pub fn exchange_bytes(&self) -> u64 {
        let floats: usize = trained_gradients(&self.replicas[0].model)
            .iter()
            .map(|t| t.numel())
            .sum();
        (2 * 4 * floats * self.gpus.len()) as u64
    }

    /// The batch-mean loss of the last step, over every device's share.
    pub fn loss(&self) -> Result<f64> {
        let mut sums = [0.0f32; 2];
        for (gpu, replica) in self.gpus.iter().zip(&self.replicas) {
            let t = replica.plan.totals.read_f32(gpu)?;
            sums[0] += t[totals::LOSS_SUM];
            sums[1] += t[totals::SAMPLES];
        }
        self.collective.sum_in_rank_order(&mut sums)?;
        Ok(f64::from(sums[0]) / f64::from(sums[1]).max(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_the_speeds_and_sum_to_the_batch() {
        assert_eq!(even_shares(7, 3), [3, 2, 2]);
        assert_eq!(proportional_shares(32, &[100.0, 100.0]), [16, 16]);
        assert_eq!(proportional_shares(32, &[300.0, 100.0]), [24, 8]);
        assert_eq!(proportional_shares(10, &[1000.0, 1.0]), [9, 1]);
        assert_eq!(proportional_shares(2, &[5.0, 5.0, 5.0]), [1, 1, 0]);
        assert_eq!(proportional_shares(9, &[0.0, 0.0, 0.0]), [3, 3, 3]);
        for (batch, speeds) in [(37, vec![3.3, 1.7, 9.1]), (5, vec![1.0, 2.0])] {
            let s = proportional_shares(batch, &speeds);
            assert_eq!(s.iter().sum::<usize>(), batch);
            assert!(s.iter().all(|&n| n >= 1));
        }
    }

    #[test]
    fn a_short_batch_splits_in_proportion_to_the_shares() {
        assert_eq!(split_counts(8, &[6, 2]), [6, 2]);
        assert_eq!(split_counts(4, &[6, 2]), [3, 1]);
        assert_eq!(split_counts(1, &[6, 2]), [1, 0]);
        assert_eq!(split_counts(0, &[6, 2]), [0, 0]);
        assert_eq!(split_counts(15, &[1, 15]), [1, 14]);
        // No device ever gets more than its share, whatever the batch.
        for shares in [vec![1, 15], vec![3, 1, 7], vec![2, 2], vec![5]] {
            let total: usize = shares.iter().sum();
            for len in 0..=total {
                let counts = split_counts(len, &shares);
                assert_eq!(counts.iter().sum::<usize>(), len, "{shares:?} {len}");
                assert!(
                    counts.iter().zip(&shares).all(|(c, s)| c <= s),
                    "{shares:?} {len}: {counts:?}"
                );
            }
        }
    }
}
