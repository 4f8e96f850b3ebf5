//! Data-parallel training through the library: a run like `examples/train.rs`'s (one epoch),
//! on every adapter named on the command line (the default opens the first adapter twice,
//! which shows the mechanism on a machine with one GPU), each batch split in proportion to the
//! devices' measured speeds and the gradients averaged every step. The checkpoint in
//! `runs/example-parallel/` is an ordinary one-device checkpoint.
//!
//! ```sh
//! cargo run --release --example parallel                # one adapter, opened twice
//! cargo run --release --example parallel -- nvidia amd  # two adapters, by part of the name
//! ```

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use alexnet_wgpu::data::{Dataset, Synthetic};
use alexnet_wgpu::model::AlexNetConfig;
use alexnet_wgpu::train::parallel::Alone;
use alexnet_wgpu::train::trainer::{default_observers, train_observed};
use alexnet_wgpu::train::{Devices, Shares, TrainOptions};
use alexnet_wgpu::{Gpu, GpuOptions};

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        names = vec![String::new(), String::new()];
    }
    let gpus = names
        .iter()
        .map(|name| {
            Gpu::new(&GpuOptions {
                adapter_name: Some(name.clone()).filter(|n| !n.is_empty()),
                ..Default::default()
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let image_size = 64;
    let train_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(2000, image_size, 0, 0));
    let val_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(500, image_size, 0, 1));
    // The CLI's defaults (Adam, cosine schedule, the paper's augmentation), then this run's.
    let mut config = TrainOptions::default().config(train_set.classes().len())?;
    config.model = AlexNetConfig::original(train_set.classes().len()).scaled(0.25);
    config.image_size = image_size;
    config.augment = alexnet_wgpu::data::Augment::imagenet(image_size);
    config.epochs = 1;
    config.batch_size = 32;
    config.out_dir = "runs/example-parallel".into();
    let devices = Devices {
        gpus: &gpus,
        shares: Shares::Measured,
        collective: &Alone,
    };
    let mut observers = default_observers(&config);
    let stop = Arc::new(AtomicBool::new(false));
    let outcome = train_observed(
        &devices,
        &config,
        train_set,
        val_set,
        None,
        stop,
        &mut observers,
    )?;
    for m in &outcome.epochs {
        println!(
            "epoch {}: train loss {:.3}, validation top-1 {:.1}%, {:.1} images/s over {} devices",
            m.epoch,
            m.train_loss,
            100.0 * m.val_top1,
            m.images_per_sec,
            gpus.len()
        );
    }
    Ok(())
}
