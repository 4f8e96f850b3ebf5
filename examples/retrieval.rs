//! Image retrieval on AlexNet embeddings, through the library API: embed every image of a
//! folder of class folders (`infer::features`), then for each image find its nearest other
//! image by cosine similarity. Prints the leave-one-out nearest-neighbour accuracy (how often
//! the nearest image has the same class) and the three nearest images of the first few.
//!
//! ```sh
//! cargo run --release --example retrieval -- WEIGHTS.safetensors PHOTOS_DIR [LAYER]
//! ```
//! LAYER is `classifier.4` (default), `classifier.1` or `avgpool`. With `alexnet features`
//! the same embeddings land in a file (`Embeddings::load` reads it back).

use std::path::PathBuf;

use alexnet_wgpu::data::{Dataset, ImageFolder};
use alexnet_wgpu::infer::features::{FeatureExtractor, FeatureLayer};
use alexnet_wgpu::{Gpu, GpuOptions};
use anyhow::{bail, Result};
use clap::ValueEnum;

fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(|x| x / norm).collect()
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (weights, dir, layer) = match args.as_slice() {
        [w, d] => (w, d, FeatureLayer::default()),
        [w, d, l] => (
            w,
            d,
            FeatureLayer::from_str(l, true).map_err(anyhow::Error::msg)?,
        ),
        _ => bail!("usage: retrieval WEIGHTS.safetensors PHOTOS_DIR [LAYER]"),
    };
    let folder = ImageFolder::open(&PathBuf::from(dir))?;
    let gpu = Gpu::new(&GpuOptions::default())?;
    let size = std::env::var("IMAGE_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(224);
    let extractor = FeatureExtractor::from_file(&gpu, &PathBuf::from(weights), layer, size, 16)?;
    let images = (0..folder.len())
        .map(|i| folder.load(i))
        .collect::<alexnet_wgpu::Result<Vec<_>>>()?;
    let embeddings: Vec<Vec<f32>> = extractor
        .embed(&gpu, &images)?
        .iter()
        .map(|e| normalized(e))
        .collect();
    let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let mut hits = 0;
    for (i, query) in embeddings.iter().enumerate() {
        let mut ranked: Vec<(f32, usize)> = embeddings
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, e)| (cosine(query, e), j))
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let Some(&(_, nearest)) = ranked.first() else {
            bail!("retrieval needs at least two images");
        };
        hits += usize::from(folder.label(nearest) == folder.label(i));
        if i < 3 {
            let name = |k: usize| folder.samples()[k].0.display().to_string();
            println!("{}:", name(i));
            for (score, j) in ranked.iter().take(3) {
                println!("  {score:.3}  {}", name(*j));
            }
        }
    }
    println!(
        "{} images, {} embeddings of {} values: nearest neighbour has the same class for {:.1}%",
        images.len(),
        extractor.layer.module(),
        extractor.dim,
        100.0 * hits as f64 / images.len() as f64
    );
    Ok(())
}
