//! How batches reach a plan's input: the loader options of a run, and the [`Feeder`] that
//! uploads the CPU's f32 tensors or lets the GPU augment u8 crops.

use crate::data::{Augment, AugmentOn, Batch, LoaderConfig};
use crate::error::Result;
use crate::model::Plan;
use crate::ops::augment::GpuAugment;
use crate::ops::cross_entropy::IGNORE_LABEL;
use crate::runtime::Gpu;
use crate::train::trainer::TrainConfig;

/// The loader options of a run: training (`shuffle`) or evaluation batches.
pub fn loader_config(
    config: &TrainConfig,
    augment: Augment,
    shuffle: bool,
    drop_last: bool,
) -> LoaderConfig {
    LoaderConfig {
        batch_size: config.batch_size,
        shuffle,
        drop_last,
        augment,
        seed: config.seed,
        workers: config.workers,
        prefetch: config.workers.max(2),
        on_bad_sample: config.on_bad_sample,
        augment_on: config.augment_on,
        decode: config.decode,
    }
}

/// Writes batches into a plan's input: the CPU's f32 tensors, or u8 crops that the GPU
/// augments ([`AugmentOn::Gpu`]). A short batch is padded with zero images whose label the
/// loss ignores.
pub struct Feeder {
    gpu_augment: Option<GpuAugment>,
}

impl Feeder {
    pub fn new(gpu: &Gpu, on: AugmentOn, plan: &Plan, augment: &Augment) -> Result<Self> {
        let gpu_augment = match on {
            AugmentOn::Cpu => None,
            AugmentOn::Gpu => Some(GpuAugment::new(gpu, augment, &plan.input)?),
        };
        Ok(Self { gpu_augment })
    }

    /// Writes `batch` (made for this feeder's [`AugmentOn`]) into `plan`'s input and labels.
    pub fn feed(&mut self, gpu: &Gpu, plan: &Plan, batch: &Batch) -> Result<()> {
        if batch.len > plan.options.batch {
            return Err(crate::Error::Config(format!(
                "a batch of {} samples fed to a plan of {}",
                batch.len, plan.options.batch
            )));
        }
        match &mut self.gpu_augment {
            None => {
                let mut padded_images = batch.images.clone();
                padded_images.resize(plan.input.numel(), 0.0);
                plan.input.write_f32(gpu, &padded_images)?;
            }
            Some(augment) => {
                augment.upload(gpu, &batch.gpu)?;
                augment.program().run(gpu)?;
            }
        }
        let mut padded_labels = batch.labels.clone();
        padded_labels.resize(plan.labels.numel(), IGNORE_LABEL);
        plan.labels.write_u32(gpu, &padded_labels)
    }
}
