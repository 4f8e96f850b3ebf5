//! Inference: a `Classifier` that loads weights (its architecture read from the file),
//! preprocesses as torchvision does, and returns top-k classes — from image files on the CPU
//! side, or from a `wgpu::Texture` an app rendered, without leaving the GPU.

pub mod features;

use std::path::Path;

use image::RgbImage;

use crate::data::transforms::{self, Augment};
use crate::error::{Error, Result};
use crate::model::weights;
use crate::model::{AlexNet, AlexNetConfig, Plan, PlanOptions};
use crate::ops::preprocess::{preprocess_texture, PreprocessConfig};
use crate::runtime::{Dispatch, Gpu, Program};

/// ImageNet-1k's class names in index order, as torchvision ships them.
pub fn imagenet_classes() -> Vec<String> {
    include_str!("../data/imagenet_classes.txt")
        .lines()
        .map(str::to_string)
        .collect()
}

/// The model a weights file describes (its architecture read from the file), its weights
/// loaded, dropout off.
pub(crate) fn load_model(gpu: &Gpu, weights: &Path) -> Result<AlexNet> {
    let bytes = weights::read_file(weights)?;
    let (tensors, _) = weights::parse(weights, &bytes)?;
    let mut config = AlexNetConfig::from_weights(weights, &tensors)?;
    config.dropout = 0.0;
    let model = AlexNet::new(gpu, config)?;
    model.load_tensors(gpu, weights, &tensors)?;
    Ok(model)
}

/// Class names from a text file, one per line: UTF-8 with or without a byte-order mark,
/// `\n`, `\r\n` or `\r` line ends (files written on Windows or old Macs), blank lines and
/// surrounding spaces ignored. The error names the file.
pub fn read_labels(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: format!("cannot read the labels file: {e}"),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: format!(
            "the labels file is not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })?;
    Ok(text
        .trim_start_matches('\u{feff}')
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// One ranked class.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Prediction {
    pub class: usize,
    pub label: String,
    pub probability: f32,
}

/// Softmax of `logits` (stable), then the `k` most probable classes, best first.
pub fn top_k(logits: &[f32], k: usize, labels: &[String]) -> Vec<Prediction> {
    let probabilities = softmax(logits);
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    order
        .into_iter()
        .take(k)
        .map(|class| Prediction {
            class,
            label: labels
                .get(class)
                .cloned()
                .unwrap_or_else(|| format!("class {class}")),
            probability: probabilities[class],
        })
        .collect()
}

pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = logits.iter().map(|&z| f64::from(z - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| (v / s) as f32).collect()
}

/// A model with its weights and an evaluation plan for batches of `batch` images.
pub struct Classifier {
    pub model: AlexNet,
    pub plan: Plan,
    pub labels: Vec<String>,
    pub preprocess: PreprocessConfig,
}

impl Classifier {
    /// Loads `weights` (architecture read from the file) for `image_size` inputs. Labels:
    /// ImageNet's names for 1000 classes, `class N` otherwise, unless given.
    pub fn from_file(
        gpu: &Gpu,
        weights: &Path,
        image_size: usize,
        batch: usize,
        labels: Option<Vec<String>>,
    ) -> Result<Self> {
        Self::new(gpu, load_model(gpu, weights)?, image_size, batch, labels)
    }

    pub fn new(
        gpu: &Gpu,
        model: AlexNet,
        image_size: usize,
        batch: usize,
        labels: Option<Vec<String>>,
    ) -> Result<Self> {
        Self::keeping_outputs(gpu, model, image_size, batch, labels, &[])
    }

    /// As [`Classifier::new`], the layers named in `keep` keeping their own outputs in the
    /// plan ([`Plan::keeping_outputs`]).
    pub(crate) fn keeping_outputs(
        gpu: &Gpu,
        model: AlexNet,
        image_size: usize,
        batch: usize,
        labels: Option<Vec<String>>,
        keep: &[&str],
    ) -> Result<Self> {
        let classes = model.config.classes;
        let labels = match labels {
            Some(l) if l.len() != classes => {
                return Err(Error::Config(format!(
                    "the labels list has {} names but the model {classes} classes",
                    l.len()
                )))
            }
            Some(l) => l,
            None if classes == 1000 => imagenet_classes(),
            None => (0..classes).map(|c| format!("class {c}")).collect(),
        };
        let options = PlanOptions::inference(batch, image_size);
        let plan = Plan::keeping_outputs(gpu, &model, options, keep)?;
        Ok(Self {
            model,
            plan,
            labels,
            preprocess: PreprocessConfig::imagenet(image_size),
        })
    }

    pub fn batch_size(&self) -> usize {
        self.plan.options.batch
    }

    /// torchvision's evaluation transform on the CPU: Resize, CenterCrop, ToTensor, Normalize.
    pub fn preprocess_image(&self, image: &RgbImage) -> Vec<f32> {
        let mut augment = Augment::imagenet(self.preprocess.size).eval();
        augment.resize = self.preprocess.resize;
        augment.mean = self.preprocess.mean;
        augment.std = self.preprocess.std;
        augment.apply(image, &mut transforms::SampleRng::new(0, 0, 0))
    }

    /// Logits `[n, classes]` for up to `batch` preprocessed images `[n, 3, S, S]`.
    pub fn logits(&self, gpu: &Gpu, images: &[f32]) -> Result<Vec<Vec<f32>>> {
        let per_image = self.plan.input.numel() / self.batch_size();
        let n = images.len() / per_image;
        if n == 0 || n > self.batch_size() || !images.len().is_multiple_of(per_image) {
            return Err(Error::Shape {
                op: "classify",
                what: format!(
                    "{} floats are not 1..={} images of {per_image}",
                    images.len(),
                    self.batch_size()
                ),
            });
        }
        let mut padded = images.to_vec();
        padded.resize(self.plan.input.numel(), 0.0);
        self.plan.input.write_f32(gpu, &padded)?;
        self.plan.forward.run(gpu)?;
        let logits = self.plan.logits.read_f32(gpu)?;
        Ok(logits
            .chunks(self.model.config.classes)
            .take(n)
            .map(<[f32]>::to_vec)
            .collect())
    }

    /// Top-`k` for each image, in batches.
    pub fn classify_images(
        &self,
        gpu: &Gpu,
        images: &[RgbImage],
        k: usize,
    ) -> Result<Vec<Vec<Prediction>>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.batch_size()) {
            let tensors: Vec<f32> = chunk
                .iter()
                .flat_map(|img| self.preprocess_image(img))
                .collect();
            for logits in self.logits(gpu, &tensors)? {
                out.push(top_k(&logits, k, &self.labels));
            }
        }
        Ok(out)
    }

    /// The paper's test: the four corner crops, the centre crop and their mirror images of the
    /// image resized to `resize`, softmax averaged over the ten. Needs a batch of at least 10.
    pub fn ten_crop_probabilities(&self, gpu: &Gpu, image: &RgbImage) -> Result<Vec<f32>> {
        if self.batch_size() < 10 {
            return Err(Error::Config(
                "ten-crop evaluation needs a batch of at least 10".into(),
            ));
        }
        let s = self.preprocess.size;
        let resized = transforms::resize_shorter(image, self.preprocess.resize);
        let (w, h) = (resized.width() as usize, resized.height() as usize);
        let origins = [
            (0, 0),
            (w - s, 0),
            (0, h - s),
            (w - s, h - s),
            (
                transforms::center_offset(w, s),
                transforms::center_offset(h, s),
            ),
        ];
        let mut tensors = Vec::with_capacity(10 * 3 * s * s);
        for (left, top) in origins {
            let crop = transforms::crop(&resized, left as i64, top as i64, s, s);
            for view in [crop.clone(), transforms::hflip(&crop)] {
                tensors.extend(transforms::to_tensor_normalized(
                    &view,
                    self.preprocess.mean,
                    self.preprocess.std,
                ));
            }
        }
        let all = self.logits(gpu, &tensors)?;
        let mut mean = vec![0.0f32; self.model.config.classes];
        for logits in &all {
            for (m, p) in mean.iter_mut().zip(softmax(logits)) {
                *m += p / all.len() as f32;
            }
        }
        Ok(mean)
    }

    /// Prepares the GPU preprocessing of `texture` into image `batch_index` of the input, for
    /// a texture an app renders into: record it (then [`Classifier::forward`]) every frame.
    pub fn prepare_texture(
        &self,
        gpu: &Gpu,
        texture: &wgpu::Texture,
        view: &wgpu::TextureView,
        batch_index: usize,
    ) -> Result<Dispatch> {
        preprocess_texture(
            gpu,
            texture,
            view,
            &self.preprocess,
            &self.plan.input,
            batch_index,
        )
    }

    /// The forward pass as a program, to record after the texture preprocessing.
    pub fn forward(&self) -> &Program {
        &self.plan.forward
    }
}
