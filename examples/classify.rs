//! Headless inference on image files through the library API.
//!
//! Loads AlexNet weights (safetensors with PyTorch names — e.g. torchvision's pretrained
//! AlexNet exported by `tools/export_torchvision.py`, or a checkpoint from `alexnet train`),
//! reads the architecture and class count from the file, preprocesses each image exactly as
//! torchvision's `Resize(256)`, `CenterCrop(224)`, `ToTensor`, `Normalize` do, and prints the
//! top-5 classes with probabilities (ImageNet's names for a 1000-class model).
//!
//! ```sh
//! cargo run --release --example classify -- WEIGHTS.safetensors IMAGE [IMAGE ...]
//! ```

use std::path::PathBuf;

use alexnet_wgpu::data::dataset::load_image;
use alexnet_wgpu::infer::Classifier;
use alexnet_wgpu::{Gpu, GpuOptions};
use anyhow::{bail, Result};

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [weights, images @ ..] = args.as_slice() else {
        bail!("usage: classify WEIGHTS.safetensors IMAGE [IMAGE ...]");
    };
    if images.is_empty() {
        bail!("usage: classify WEIGHTS.safetensors IMAGE [IMAGE ...]");
    }
    let gpu = Gpu::new(&GpuOptions::default())?;
    let image_size = std::env::var("IMAGE_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(224);
    let classifier = Classifier::from_file(&gpu, weights, image_size, images.len().min(8), None)?;
    let decoded = images
        .iter()
        .map(|p| load_image(p))
        .collect::<alexnet_wgpu::Result<Vec<_>>>()?;
    for (path, top5) in images
        .iter()
        .zip(classifier.classify_images(&gpu, &decoded, 5)?)
    {
        println!("{}", path.display());
        for p in top5 {
            println!("  {:6.2}%  {}", 100.0 * p.probability, p.label);
        }
    }
    Ok(())
}
