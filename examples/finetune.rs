//! Fine-tuning against training from scratch, on the embedded data and through the library
//! API alone (`TrainOptions` → `TrainConfig` → `train`), as `alexnet train --weights` does.
//!
//! 1. Pretrain a narrow AlexNet on six of the ten synthetic shapes.
//! 2. Fine-tune it on the other four shapes from a small training set: the head is
//!    re-initialised for 4 classes, `features` frozen, the rest of the classifier at a
//!    learning rate 10x below the head's.
//! 3. Train the same architecture on the same four shapes from scratch, for as many epochs.
//!
//! It prints validation top-1 after every epoch of both.
//!
//! ```sh
//! cargo run --release --example finetune -- [OUT_DIR] [EPOCHS]
//! ```

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use alexnet_wgpu::data::{Dataset, Synthetic};
use alexnet_wgpu::train::trainer::{train, TrainConfig};
use alexnet_wgpu::train::TrainOptions;
use alexnet_wgpu::{Gpu, GpuOptions};
use anyhow::Result;

const SIZE: usize = 64;
const SEED: u64 = 7;
const PRETRAIN_SHAPES: [usize; 6] = [0, 1, 2, 3, 4, 5];
const TARGET_SHAPES: [usize; 4] = [6, 7, 8, 9];

fn shapes(count: usize, split: u64, shapes: &[usize]) -> Result<Arc<dyn Dataset>> {
    Ok(Arc::new(Synthetic::with_shapes(
        count, SIZE, SEED, split, shapes,
    )?))
}

fn run(
    gpu: &Gpu,
    config: &TrainConfig,
    train_set: &Arc<dyn Dataset>,
    val: &Arc<dyn Dataset>,
) -> Result<Vec<f64>> {
    let mut config = config.clone();
    config.show_progress = false;
    let never = Arc::new(AtomicBool::new(false));
    let outcome = train(gpu, &config, train_set.clone(), val.clone(), None, never)?;
    Ok(outcome.epochs.iter().map(|m| m.val_top1).collect())
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "runs/finetune-demo".into()));
    let epochs: usize = args.next().map_or(Ok(4), |e| e.parse())?;
    let gpu = Gpu::new(&GpuOptions::default())?;

    // A narrow model (1/8 width) at 64x64 keeps this to minutes on a software driver.
    let pretrain = TrainOptions {
        width: Some(0.125),
        epochs: Some(6),
        seed: SEED,
        out: out.join("pretrain"),
        ..Default::default()
    }
    .config(PRETRAIN_SHAPES.len())?;
    let pretrain_scores = run(
        &gpu,
        &pretrain,
        &shapes(2400, 0, &PRETRAIN_SHAPES)?,
        &shapes(480, 1, &PRETRAIN_SHAPES)?,
    )?;
    println!(
        "pretrained on {} shapes: top-1 {:.1}%",
        PRETRAIN_SHAPES.len(),
        100.0 * pretrain_scores.last().copied().unwrap_or(f64::NAN)
    );

    // Few labelled images of the new shapes: where a pretrained backbone pays.
    let (train_set, val) = (
        shapes(400, 0, &TARGET_SHAPES)?,
        shapes(400, 1, &TARGET_SHAPES)?,
    );
    let fine_tune = TrainOptions {
        weights: Some(pretrain.checkpoint_path()),
        freeze: vec!["features".into()],
        lr_backbone: Some(1e-4),
        epochs: Some(epochs),
        seed: SEED,
        out: out.join("finetune"),
        ..Default::default()
    }
    .config(TARGET_SHAPES.len())?;
    let scratch = TrainOptions {
        width: Some(0.125),
        epochs: Some(epochs),
        seed: SEED,
        out: out.join("scratch"),
        ..Default::default()
    }
    .config(TARGET_SHAPES.len())?;
    let tuned = run(&gpu, &fine_tune, &train_set, &val)?;
    let fresh = run(&gpu, &scratch, &train_set, &val)?;
    println!("epoch  fine-tuned top-1  from scratch top-1");
    for (e, (a, b)) in tuned.iter().zip(&fresh).enumerate() {
        println!("{:>5}  {:>15.1}%  {:>17.1}%", e + 1, 100.0 * a, 100.0 * b);
    }
    Ok(())
}
