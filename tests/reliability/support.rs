//! Helpers the reliability modules share: temporary folders, error-text checks, generated
//! images and the tiny model and training run most tests use.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use alexnet_wgpu::data::{Augment, Dataset, OnBadSample, Synthetic};
use alexnet_wgpu::model::{AlexNetConfig, Init};
use alexnet_wgpu::train::trainer::{train, TrainConfig, TrainOutcome};
use alexnet_wgpu::train::{OnNonFinite, OptimizerConfig, Schedule};
use image::{Rgb, RgbImage};

use crate::common::{gpu, Rng};

/// A fresh, empty temporary folder for one test.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("alexnet-rel-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts that `text` contains every one of `parts`, printing the text either way so the
/// test log shows each error message.
pub fn assert_mentions(text: &str, parts: &[&str]) {
    eprintln!("error text: {text}");
    for p in parts {
        assert!(text.contains(p), "expected {p:?} in: {text}");
    }
}

pub fn err_text<T>(r: alexnet_wgpu::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

pub fn noise(w: u32, h: u32) -> RgbImage {
    let mut rng = Rng::new(u64::from(w * 31 + h));
    RgbImage::from_fn(w, h, |_, _| {
        let v = rng.next_u64();
        Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    })
}

pub fn jpeg_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut out),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    out
}

pub fn tiny_model() -> AlexNetConfig {
    AlexNetConfig::original(10).scaled(0.125)
}

/// Rewrites a safetensors file through `edit`, keeping its metadata.
pub fn rewrite_safetensors(
    path: &Path,
    out: &Path,
    edit: impl FnOnce(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut tensors: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let data = safetensors::serialize(views, header.metadata().clone()).unwrap();
    std::fs::write(out, data).unwrap();
}

/// The tiny run every training test here uses: the seed's topology at 1/8 width, 64x64.
pub fn tiny_config(out_dir: PathBuf) -> TrainConfig {
    TrainConfig {
        model: tiny_model(),
        init: Init::Kaiming,
        image_size: 64,
        epochs: 1,
        batch_size: 8,
        optimizer: OptimizerConfig::sgd(),
        schedule: Schedule::Constant,
        augment: Augment::imagenet(64),
        seed: 4,
        workers: 1,
        on_bad_sample: OnBadSample::Stop,
        augment_on: Default::default(),
        decode: Default::default(),
        on_nan: OnNonFinite::Stop,
        log_every: 1,
        out_dir,
        max_steps: None,
        show_progress: false,
        weights: None,
        freeze: Vec::new(),
    }
}

pub fn run_training(
    config: &TrainConfig,
    resume: Option<&Path>,
) -> alexnet_wgpu::Result<TrainOutcome> {
    let train_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(32, 64, 9, 0));
    let val_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(16, 64, 9, 1));
    train(
        gpu(),
        config,
        train_set,
        val_set,
        resume,
        Arc::new(AtomicBool::new(false)),
    )
}
