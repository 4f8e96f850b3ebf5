//! `alexnet bench --devices`: training with data parallelism over several adapters — each
//! device's images/s on its share alone, the images/s of the whole, and where a step's time
//! goes (compute, gradient exchange through host memory, update) — against the first device
//! alone on the whole batch, measured in the same run.

use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::model::{AlexNetConfig, Init};
use crate::runtime::Gpu;
use crate::train::parallel::{even_shares, proportional_shares, DataParallel, StepTimes};
use crate::train::split::GroupSplit;
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
    /// With two devices and `split`: the paper's model-parallel split at the same batch.
    pub group_split: Option<SplitRow>,
}

/// The paper's split over two devices (`train::split`), timed like the data-parallel step.
#[derive(Clone, Debug, Serialize)]
pub struct SplitRow {
    pub images_per_sec: f64,
    pub compute_ms: f64,
    pub exchange_ms: f64,
    pub update_ms: f64,
    /// Activation and activation-gradient bytes through host memory per step.
    pub exchange_bytes: u64,
}

/// Times `iterations` data-parallel training steps of `model` at `batch` (after one warm-up)
/// over `gpus`, and the same steps on the first device alone; with `split` (two devices),
/// also the paper's model-parallel split.
pub fn run(
    gpus: &[Gpu],
    model: &AlexNetConfig,
    image_size: usize,
    batch: usize,
    iterations: usize,
    split: bool,
) -> Result<ParallelReport> {
    let iterations = iterations.max(1);
    let sgd = OptimizerConfig::sgd();
    let timed = |parallel: &mut DataParallel| timed_steps(iterations, || parallel.step(0));
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
    let group_split = match gpus {
        [a, b] if split => {
            let mut split =
                GroupSplit::new([a, b], model, batch, image_size, OptimizerConfig::sgd())?;
            let total = timed_steps(iterations, || split.step(0))?;
            Some(SplitRow {
                images_per_sec: (batch * iterations) as f64 / seconds(&total),
                compute_ms: per_step_ms(total.compute),
                exchange_ms: per_step_ms(total.exchange),
                update_ms: per_step_ms(total.update),
                exchange_bytes: split.exchange_bytes(),
            })
        }
        _ if split => {
            return Err(crate::error::Error::Config(format!(
                "--split groups needs two --devices, not {}",
                gpus.len()
            )))
        }
        _ => None,
    };
    Ok(ParallelReport {
        group_split,
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

/// `iterations` steps after one warm-up, their times added up.
fn timed_steps(
    iterations: usize,
    mut step: impl FnMut() -> Result<StepTimes>,
) -> Result<StepTimes> {
    step()?;
    let mut total = StepTimes::default();
    for _ in 0..iterations {
        total += step()?;
    }
    Ok(total)
}
