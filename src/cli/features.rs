//! `alexnet features`: one layer's output for each image (`infer::features`), batched, into a
//! safetensors file with the labels (for class folders) and file names.

use std::path::PathBuf;

use alexnet_wgpu::data::dataset::load_image;
use alexnet_wgpu::data::{Dataset, ImageFolder};
use alexnet_wgpu::infer::features::{Embeddings, FeatureExtractor, FeatureLayer};
use anyhow::{bail, Result};
use clap::Args;

use crate::cli::DeviceArgs;

#[derive(Args, Debug)]
pub struct FeaturesArgs {
    /// Weights (safetensors, PyTorch names); the architecture is read from the file.
    #[arg(long)]
    pub weights: PathBuf,
    /// The layer whose output is the embedding.
    #[arg(long, value_enum, default_value_t = FeatureLayer::Classifier4)]
    pub layer: FeatureLayer,
    /// Where the embeddings go (safetensors: features [N, D], labels [N], file names).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 224)]
    pub image_size: usize,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Image files, or one folder: of class sub-folders (labels saved) or of images.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// The files to embed, with labels and class names when they come from class folders.
struct Inputs {
    files: Vec<PathBuf>,
    labels: Option<Vec<usize>>,
    classes: Vec<String>,
}

fn inputs(args: &FeaturesArgs) -> Result<Inputs> {
    let unlabelled = |files: Vec<PathBuf>| Inputs {
        files,
        labels: None,
        classes: Vec::new(),
    };
    let [dir] = args.images.as_slice() else {
        return Ok(unlabelled(args.images.clone()));
    };
    if !dir.is_dir() {
        return Ok(unlabelled(args.images.clone()));
    }
    let has_class_folders = std::fs::read_dir(dir)?.flatten().any(|e| e.path().is_dir());
    if has_class_folders {
        let folder = ImageFolder::open(dir)?;
        let (files, labels) = folder.samples().iter().cloned().unzip();
        return Ok(Inputs {
            files,
            labels: Some(labels),
            classes: folder.classes().to_vec(),
        });
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no images", dir.display());
    }
    Ok(unlabelled(files))
}

pub fn run(args: &FeaturesArgs) -> Result<()> {
    let Inputs {
        files,
        labels,
        classes,
    } = inputs(args)?;
    let gpu = args.device.open()?;
    let batch = args.batch_size.clamp(1, files.len());
    let extractor =
        FeatureExtractor::from_file(&gpu, &args.weights, args.layer, args.image_size, batch)?;
    let mut features = Vec::with_capacity(files.len() * extractor.dim);
    for paths in files.chunks(batch) {
        let images = paths
            .iter()
            .map(|p| load_image(p))
            .collect::<alexnet_wgpu::Result<Vec<_>>>()?;
        for row in extractor.embed(&gpu, &images)? {
            features.extend(row);
        }
    }
    let embeddings = Embeddings {
        features,
        dim: extractor.dim,
        labels,
        classes,
        files: files.iter().map(|p| p.display().to_string()).collect(),
        layer: args.layer.module().to_string(),
    };
    embeddings.save(&args.out)?;
    println!(
        "{} embeddings of {} values ({}) in {}{}",
        embeddings.len(),
        embeddings.dim,
        embeddings.layer,
        args.out.display(),
        if embeddings.labels.is_some() {
            format!(", with labels of {} classes", embeddings.classes.len())
        } else {
            String::new()
        }
    );
    Ok(())
}
