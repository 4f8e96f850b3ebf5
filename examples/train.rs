//! Train AlexNet through the library API, without the CLI.
//!
//! Trains the seed's topology at a quarter of its width on 64×64 images of the embedded
//! synthetic dataset (coloured shapes on textured backgrounds, ten classes, generated on the
//! fly: nothing to download) for two epochs, then prints the validation accuracy. Checkpoint,
//! metrics and plots go to `runs/example-train/`.
//!
//! ```sh
//! cargo run --release --example train
//! ```
//!
//! To train on your own images instead, pass an `ImageFolder` (one sub-folder per class):
//! `Arc::new(ImageFolder::open(Path::new("photos/train"))?)`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use alexnet_wgpu::data::{Augment, Dataset, OnBadSample, Synthetic};
use alexnet_wgpu::model::{AlexNetConfig, Init};
use alexnet_wgpu::train::trainer::{train, TrainConfig};
use alexnet_wgpu::train::{OnNonFinite, OptimizerConfig, Schedule};
use alexnet_wgpu::{Gpu, GpuOptions};

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let gpu = Gpu::new(&GpuOptions::default())?;
    let image_size = 64;
    let train_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(2000, image_size, 0, 0));
    let val_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(500, image_size, 0, 1));
    let epochs = 2;
    let config = TrainConfig {
        model: AlexNetConfig::original(train_set.classes().len()).scaled(0.25),
        init: Init::Kaiming,
        image_size,
        epochs,
        batch_size: 32,
        optimizer: OptimizerConfig::adam(),
        schedule: Schedule::Cosine {
            epochs,
            min_lr: 0.0,
        },
        augment: Augment::imagenet(image_size),
        seed: 0,
        workers: 2,
        on_bad_sample: OnBadSample::Stop,
        augment_on: Default::default(),
        decode: Default::default(),
        on_nan: OnNonFinite::Stop,
        log_every: 10,
        out_dir: "runs/example-train".into(),
        max_steps: None,
        show_progress: true,
        weights: None,
        freeze: Vec::new(),
    };
    let outcome = train(
        &gpu,
        &config,
        train_set,
        val_set,
        None,
        Arc::new(AtomicBool::new(false)),
    )?;
    for m in &outcome.epochs {
        println!(
            "epoch {}: train loss {:.3}, validation loss {:.3}, top-1 {:.1}%, top-5 {:.1}%",
            m.epoch,
            m.train_loss,
            m.val_loss,
            100.0 * m.val_top1,
            100.0 * m.val_top5
        );
    }
    Ok(())
}
