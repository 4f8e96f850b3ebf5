//! `alexnet bench --devices`: training with data parallelism over several adapters — each
//! device's images/s on its share alone, the images/s of the whole, and where a step's time
//! goes (compute, gradient exchange through host memory, update) — against the first device
//! alone on the whole batch, measured in the same run.

use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::model::{AlexNetConfig, Init};
use crate::runtime::Gpu;
use crate::train::parallel::{DataParallel, StepTimes};
use crate::train::OptimizerConfig;

#[derive(Clone, Debug, Serialize)]
pub struct DeviceRow {
    pub adapter: String,
    pub share: usize,
    /// Its share's forward and backward alone.
    pub images_per_sec: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ParallelReport {
    pub batch: usize,
    pub devices: Vec<DeviceRow>,
    /// The split that would make the devices finish together, from their measured speeds.
    pub balanced_shares: Vec<usize>,
    /// The first device alone on the whole batch (forward, backward and update).
    pub single_images_per_sec: f64,
    pub parallel_images_per_sec: f64,
    pub compute_ms: f64,
    pub exchange_ms: f64,
    pub update_ms: f64,
    /// Gradient bytes read from and written to the devices per step.
    pub exchange_bytes: u64,
}

/// `batch` split evenly over `gpus` (the first devices take the remainder).
pub fn even_shares(batch: usize, devices: usize) -> Vec<usize> {
    (0..devices)
        .map(|i| batch / devices + usize::from(i < batch % devices))
        .collect()
}

/// `batch` split in proportion to each device's images/s (largest remainders; every device
/// keeps at least one sample while the batch allows), so the devices finish together.
pub fn proportional_shares(batch: usize, images_per_sec: &[f64]) -> Vec<usize> {
    let total: f64 = images_per_sec.iter().sum();
    if total.is_nan() || total <= 0.0 || batch < images_per_sec.len() {
        return even_shares(batch, images_per_sec.len());
    }
    let spare = batch - images_per_sec.len();
    let exact: Vec<f64> = images_per_sec
        .iter()
        .map(|s| spare as f64 * s / total)
        .collect();
    let mut shares: Vec<usize> = exact.iter().map(|e| 1 + e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let left = batch - shares.iter().sum::<usize>();
    for &i in order.iter().take(left) {
        shares[i] += 1;
    }
    shares
}

/// Times `iterations` data-parallel training steps of `model` at `batch` (after one warm-up)
/// over `gpus`, and the same steps on the first device alone.
pub fn run(
    gpus: &[Gpu],
    model: &AlexNetConfig,
    image_size: usize,
    batch: usize,
    iterations: usize,
) -> Result<ParallelReport> {
    let iterations = iterations.max(1);
    let sgd = OptimizerConfig::sgd();
    let timed = |parallel: &mut DataParallel| -> Result<StepTimes> {
        parallel.step(0)?;
        let mut total = StepTimes::default();
        for _ in 0..iterations {
            let t = parallel.step(0)?;
            total.compute += t.compute;
            total.exchange += t.exchange;
            total.update += t.update;
        }
        Ok(total)
    };
    let seconds = |t: &StepTimes| (t.compute + t.exchange + t.update).as_secs_f64();
    let per_step_ms = |d: Duration| d.as_secs_f64() * 1e3 / iterations as f64;

    let mut single = DataParallel::new(
        &gpus[..1],
        model,
        Init::PyTorch,
        0,
        &[batch],
        image_size,
        sgd.clone(),
    )?;
    let single_images_per_sec = (batch * iterations) as f64 / seconds(&timed(&mut single)?);
    drop(single);

    let shares = even_shares(batch, gpus.len());
    let mut parallel = DataParallel::new(gpus, model, Init::PyTorch, 0, &shares, image_size, sgd)?;
    let times = timed(&mut parallel)?;
    let mut devices = Vec::new();
    for (i, gpu) in gpus.iter().enumerate() {
        parallel.time_device(i, 0)?;
        let mut alone = Duration::ZERO;
        for _ in 0..iterations {
            alone += parallel.time_device(i, 0)?;
        }
        devices.push(DeviceRow {
            adapter: gpu.adapter_name(),
            share: shares[i],
            images_per_sec: (shares[i] * iterations) as f64 / alone.as_secs_f64(),
        });
    }
    let speeds: Vec<f64> = devices.iter().map(|d| d.images_per_sec).collect();
    Ok(ParallelReport {
        batch,
        balanced_shares: proportional_shares(batch, &speeds),
        devices,
        single_images_per_sec,
        parallel_images_per_sec: (batch * iterations) as f64 / seconds(&times),
        compute_ms: per_step_ms(times.compute),
        exchange_ms: per_step_ms(times.exchange),
        update_ms: per_step_ms(times.update),
        exchange_bytes: parallel.exchange_bytes(),
    })
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
}
