//! Training end to end: weights crossing to and from PyTorch, initialisation, the loop on the
//! embedded data, the full-width model, resuming from a checkpoint, fine-tuning, and the
//! experiment runner. One module per subject; the helpers they share are here.

#[path = "../common/mod.rs"]
mod common;

mod experiment;
mod finetune;
mod learning;
mod weights;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use alexnet_wgpu::data::{Augment, Dataset, OnBadSample};
use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Init, Plan, PlanOptions};
use alexnet_wgpu::runtime::Gpu;
use alexnet_wgpu::train::trainer::{train, TrainConfig, TrainOutcome};
use alexnet_wgpu::train::{OnNonFinite, OptimizerConfig, Schedule};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alexnet-wgpu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The model of `tests/fixtures/pytorch_state_dict*.safetensors`.
fn state_dict_config() -> AlexNetConfig {
    AlexNetConfig {
        channels: [8, 16, 24, 24, 16],
        fc_width: 64,
        ..AlexNetConfig::original(10)
    }
}

fn eval_logits(gpu: &Gpu, model: &AlexNet, input: &[f32], batch: usize, size: usize) -> Vec<f32> {
    let options = PlanOptions::inference(batch, size);
    let plan = Plan::new(gpu, model, options).unwrap();
    plan.input.write_f32(gpu, input).unwrap();
    plan.forward.run(gpu).unwrap();
    plan.logits.read_f32(gpu).unwrap()
}

/// A small but complete run: the seed's topology at a quarter of its width on 64×64 images.
fn demo_config(out_dir: PathBuf, epochs: usize) -> TrainConfig {
    TrainConfig {
        model: AlexNetConfig::original(10).scaled(0.25),
        init: Init::Kaiming,
        image_size: 64,
        epochs,
        batch_size: 32,
        optimizer: OptimizerConfig::adam(),
        schedule: Schedule::Cosine {
            epochs,
            min_lr: 0.0,
        },
        augment: Augment::imagenet(64),
        seed: 1,
        workers: 2,
        on_bad_sample: OnBadSample::Stop,
        augment_on: Default::default(),
        decode: Default::default(),
        on_nan: OnNonFinite::Stop,
        log_every: 10,
        out_dir,
        max_steps: None,
        show_progress: false,
        weights: None,
        freeze: Vec::new(),
    }
}

/// A stop flag nobody raises.
fn never() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// `train` as these tests run it: from `resume`'s checkpoint where given, never stopped.
fn run_train(
    gpu: &Gpu,
    config: &TrainConfig,
    train_set: &Arc<dyn Dataset>,
    val_set: &Arc<dyn Dataset>,
    resume: Option<&Path>,
) -> TrainOutcome {
    train(
        gpu,
        config,
        train_set.clone(),
        val_set.clone(),
        resume,
        never(),
    )
    .unwrap()
}
