//! `alexnet classify`: top-5 classes of image files, batched; `alexnet eval`: top-1/top-5 of
//! a labelled set, optionally with the paper's ten-crop test.

use std::path::PathBuf;
use std::sync::Arc;

use alexnet_wgpu::data::dataset::load_image;
use alexnet_wgpu::data::Dataset;
use alexnet_wgpu::infer::{top_k, Classifier, Prediction};
use anyhow::Result;
use clap::Args;

use crate::cli::DeviceArgs;
use alexnet_wgpu::data::source::open_eval;

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// Weights (safetensors, PyTorch names; a checkpoint works too). The architecture and
    /// class count are read from the file.
    #[arg(long)]
    pub weights: PathBuf,
    /// Class names, one per line (default: ImageNet's for 1000 classes).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Classes to print per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    #[arg(long, default_value_t = 224)]
    pub image_size: usize,
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// One JSON object per image instead of a table.
    #[arg(long)]
    pub json: bool,
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

fn read_labels(path: &Option<PathBuf>) -> Result<Option<Vec<String>>> {
    Ok(path
        .as_deref()
        .map(alexnet_wgpu::infer::read_labels)
        .transpose()?)
}

pub fn run_classify(args: &ClassifyArgs) -> Result<()> {
    let gpu = args.device.open()?;
    let batch = args.batch_size.clamp(1, args.images.len());
    let classifier = Classifier::from_file(
        &gpu,
        &args.weights,
        args.image_size,
        batch,
        read_labels(&args.labels)?,
    )?;
    for paths in args.images.chunks(batch) {
        let images = paths
            .iter()
            .map(|p| load_image(p))
            .collect::<alexnet_wgpu::Result<Vec<_>>>()?;
        let results = classifier.classify_images(&gpu, &images, args.top)?;
        for (path, predictions) in paths.iter().zip(results) {
            print_predictions(path, &predictions, args.json)?;
        }
    }
    Ok(())
}

fn print_predictions(path: &std::path::Path, predictions: &[Prediction], json: bool) -> Result<()> {
    if json {
        let line = serde_json::json!({ "image": path.display().to_string(), "top": predictions });
        println!("{line}");
        return Ok(());
    }
    println!("{}", path.display());
    for p in predictions {
        println!(
            "  {:6.2}%  {:4}  {}",
            100.0 * p.probability,
            p.class,
            p.label
        );
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[arg(long)]
    pub weights: PathBuf,
    /// A labelled set: image folder (its val/ sub-folder if present), CIFAR-10 (test batch)
    /// or IDX (t10k files).
    #[arg(long)]
    pub data: PathBuf,
    /// The paper's test: average the softmax over four corner and centre crops and mirrors.
    #[arg(long)]
    pub ten_crop: bool,
    #[arg(long, default_value_t = 224)]
    pub image_size: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run_eval(args: &EvalArgs) -> Result<()> {
    let gpu = args.device.open()?;
    let data: Arc<dyn Dataset> = open_eval(&args.data)?;
    let batch = if args.ten_crop {
        10
    } else {
        args.batch_size.max(1)
    };
    let classifier = Classifier::from_file(&gpu, &args.weights, args.image_size, batch, None)?;
    if classifier.model.config.classes != data.classes().len() {
        anyhow::bail!(
            "{}: the weights have {} classes, the data {}",
            args.weights.display(),
            classifier.model.config.classes,
            data.classes().len()
        );
    }
    let bar = indicatif::ProgressBar::new(data.len() as u64);
    let (mut top1, mut top5) = (0usize, 0usize);
    let mut score = |probabilities_or_logits: &[f32], label: usize| {
        let ranked = top_k(probabilities_or_logits, 5, &[]);
        top1 += usize::from(ranked[0].class == label);
        top5 += usize::from(ranked.iter().any(|p| p.class == label));
    };
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(if args.ten_crop { 1 } else { batch }) {
        let images = chunk
            .iter()
            .map(|&i| data.load(i))
            .collect::<alexnet_wgpu::Result<Vec<_>>>()?;
        if args.ten_crop {
            let probabilities = classifier.ten_crop_probabilities(&gpu, &images[0])?;
            score(&probabilities, data.label(chunk[0]));
        } else {
            let tensors: Vec<f32> = images
                .iter()
                .flat_map(|img| classifier.preprocess_image(img))
                .collect();
            for (logits, &i) in classifier.logits(&gpu, &tensors)?.iter().zip(chunk) {
                score(logits, data.label(i));
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let n = data.len().max(1) as f64;
    println!(
        "{} images{}: top-1 {:.2}%, top-5 {:.2}%",
        data.len(),
        if args.ten_crop { " (ten-crop)" } else { "" },
        100.0 * top1 as f64 / n,
        100.0 * top5 as f64 / n
    );
    Ok(())
}
