//! End-to-end training throughput with real data (`alexnet bench --data DIR`): the training
//! loop as the trainer runs it (loader → upload or GPU augmentation → step, reading back every
//! [`READ_EVERY`] steps), against the same steps on an input already on the GPU (the
//! synthetic speed); and the loader alone, for images/s per core.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::data::{AugmentOn, Dataset, DecodeMode, Loader, LoaderConfig};
use crate::error::{Error, Result};
use crate::model::{AlexNet, AlexNetConfig, Init, Plan, PlanOptions};
use crate::runtime::Gpu;
use crate::train::feed::Feeder;
use crate::train::{train_step, Optimizer, OptimizerConfig};

/// Steps between waits for the GPU, as the trainer's default `log_every` reads the totals.
pub const READ_EVERY: usize = 10;

/// What to measure.
#[derive(Clone, Debug)]
pub struct DataBenchConfig {
    pub model: AlexNetConfig,
    /// Batch size, augmentation, workers, where augmentation runs, decoding.
    pub loader: LoaderConfig,
    /// Timed steps (the loader starts a new epoch when one ends).
    pub steps: usize,
    /// Untimed steps first: pipeline compilation, the loader's first batches.
    pub warmup: usize,
}

/// The loader alone.
#[derive(Clone, Debug, Serialize)]
pub struct LoaderReport {
    pub workers: usize,
    pub batch: usize,
    pub augment_on: AugmentOn,
    pub decode: DecodeMode,
    /// Images in the timed epochs (all but the first, which warms the file cache).
    pub images: usize,
    pub seconds: f64,
    pub loader_images_per_sec: f64,
    /// Images per second of thread time spent loading (decode, resize, augment), i.e. per
    /// busy core; on a machine shared with other work this is wall time of the threads.
    pub images_per_sec_per_core: f64,
}

/// End-to-end training with real loading.
#[derive(Clone, Debug, Serialize)]
pub struct DataBenchReport {
    pub adapter: String,
    pub batch: usize,
    pub image_size: usize,
    pub workers: usize,
    pub augment_on: AugmentOn,
    pub decode: DecodeMode,
    pub steps: usize,
    pub seconds: f64,
    pub images_per_sec: f64,
    /// The same steps with the input already on the GPU (no loading, no upload).
    pub synthetic_images_per_sec: f64,
    pub fraction_of_synthetic: f64,
    /// `1 − fraction_of_synthetic`: the share of the run the GPU had no work (it waited for
    /// data or for the upload).
    pub gpu_wait_fraction: f64,
    /// The share of the run the loop was blocked waiting for the loader.
    pub loader_wait_fraction: f64,
    /// Images per second of loader-thread time (decode, resize, augment), per core.
    pub decode_images_per_sec_per_core: f64,
    /// Bytes uploaded per image: the f32 tensor on the CPU path, the decoded u8 image (or,
    /// for a large one, its u8 crop) on the GPU path.
    pub upload_bytes_per_image: usize,
}

/// Runs the loader alone for `epochs` epochs; times all but the first.
///
/// # Errors
/// A bad configuration or a bad sample (with `OnBadSample::Stop`).
pub fn loader_only(
    dataset: Arc<dyn Dataset>,
    config: &LoaderConfig,
    epochs: usize,
) -> Result<LoaderReport> {
    let (mut images, mut seconds, mut busy) = (0, 0.0, Duration::ZERO);
    for epoch in 0..epochs.max(1) {
        let t0 = Instant::now();
        let mut loader = Loader::new(dataset.clone(), config.clone(), epoch, 0)?;
        let mut n = 0;
        while let Some(batch) = loader.next_batch() {
            n += batch?.len;
        }
        if epoch > 0 || epochs <= 1 {
            images += n;
            seconds += t0.elapsed().as_secs_f64();
            busy += loader.busy_time();
        }
    }
    Ok(LoaderReport {
        workers: config.workers,
        batch: config.batch_size,
        augment_on: config.augment_on,
        decode: config.decode,
        images,
        seconds,
        loader_images_per_sec: images as f64 / seconds.max(1e-9),
        images_per_sec_per_core: images as f64 / busy.as_secs_f64().max(1e-9),
    })
}

/// Batches from consecutive epochs, without end.
struct Epochs {
    dataset: Arc<dyn Dataset>,
    config: LoaderConfig,
    epoch: usize,
    loader: Loader,
    /// Totals of the loaders already finished.
    waited: Duration,
    busy: Duration,
    images: usize,
}

impl Epochs {
    fn new(dataset: Arc<dyn Dataset>, config: LoaderConfig) -> Result<Self> {
        let loader = Loader::new(dataset.clone(), config.clone(), 0, 0)?;
        Ok(Self {
            dataset,
            config,
            epoch: 0,
            loader,
            waited: Duration::ZERO,
            busy: Duration::ZERO,
            images: 0,
        })
    }

    fn next(&mut self) -> Result<crate::data::Batch> {
        for _ in 0..2 {
            if let Some(batch) = self.loader.next_batch() {
                let batch = batch?;
                self.images += batch.len;
                return Ok(batch);
            }
            self.waited += self.loader.wait_time();
            self.busy += self.loader.busy_time();
            self.epoch += 1;
            self.loader = Loader::new(self.dataset.clone(), self.config.clone(), self.epoch, 0)?;
        }
        Err(Error::Config(
            "bench --data: the data set gives no batch (empty, or every image bad)".into(),
        ))
    }

    fn waited(&self) -> Duration {
        self.waited + self.loader.wait_time()
    }

    fn busy(&self) -> Duration {
        self.busy + self.loader.busy_time()
    }
}

/// Trains `cfg.model` on `dataset` for `cfg.warmup + cfg.steps` steps with real loading, then
/// the same steps on the last batch already on the GPU.
///
/// # Errors
/// Bad configuration, a bad sample, or a device error.
pub fn run(gpu: &Gpu, dataset: Arc<dyn Dataset>, cfg: &DataBenchConfig) -> Result<DataBenchReport> {
    let lc = &cfg.loader;
    let size = lc.augment.image_size;
    let model = AlexNet::new(gpu, cfg.model.clone())?;
    model.initialize(gpu, Init::PyTorch, 0)?;
    let plan = Plan::new(gpu, &model, PlanOptions::training(lc.batch_size, size))?;
    let mut optimizer = Optimizer::new(gpu, &model, OptimizerConfig::sgd())?;
    let mut feeder = Feeder::new(gpu, lc.augment_on, &plan, &lc.augment)?;
    let mut epochs = Epochs::new(dataset, lc.clone())?;
    // Returns the seconds and the bytes uploaded: f32 tensors, or the GPU path's u8 images.
    let mut run_steps = |epochs: &mut Epochs, steps: usize, real: bool| -> Result<(f64, usize)> {
        let t0 = Instant::now();
        let mut uploaded = 0;
        for step in 0..steps {
            if real {
                let batch = epochs.next()?;
                uploaded += 4 * batch.images.len()
                    + batch.gpu.iter().map(|g| g.pixels.len()).sum::<usize>();
                feeder.feed(gpu, &plan, &batch)?;
            }
            train_step(gpu, &plan, &mut optimizer, step as u32)?;
            if (step + 1) % READ_EVERY == 0 {
                gpu.wait()?;
            }
        }
        gpu.wait()?;
        Ok((t0.elapsed().as_secs_f64(), uploaded))
    };
    run_steps(&mut epochs, cfg.warmup.max(1), true)?;
    let (waited0, busy0, images0) = (epochs.waited(), epochs.busy(), epochs.images);
    let (seconds, uploaded) = run_steps(&mut epochs, cfg.steps.max(1), true)?;
    let waited = epochs.waited() - waited0;
    let made = epochs.images - images0;
    let busy = epochs.busy().saturating_sub(busy0);
    let (synthetic, _) = run_steps(&mut epochs, cfg.steps.max(1), false)?;
    let images = cfg.steps.max(1) * lc.batch_size;
    let fraction = synthetic / seconds;
    let upload_bytes_per_image = uploaded / made.max(1);
    Ok(DataBenchReport {
        adapter: gpu.adapter_name(),
        batch: lc.batch_size,
        image_size: size,
        workers: lc.workers,
        augment_on: lc.augment_on,
        decode: lc.decode,
        steps: cfg.steps.max(1),
        seconds,
        images_per_sec: images as f64 / seconds,
        synthetic_images_per_sec: images as f64 / synthetic,
        fraction_of_synthetic: fraction,
        gpu_wait_fraction: (1.0 - fraction).max(0.0),
        loader_wait_fraction: waited.as_secs_f64() / seconds,
        decode_images_per_sec_per_core: made as f64 / busy.as_secs_f64().max(1e-9),
        upload_bytes_per_image,
    })
}
