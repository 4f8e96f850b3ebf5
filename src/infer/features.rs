//! Embeddings: the output of one layer of a trained AlexNet for each image, batched on the
//! GPU, for linear probes and retrieval; saved as safetensors (`features` `[N, D]`, `labels`
//! `[N]` when the images came in class folders, file names and class names in the metadata).

use std::collections::HashMap;
use std::path::Path;

use image::RgbImage;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::infer::Classifier;
use crate::model::weights;
use crate::runtime::{Gpu, Tensor};

/// The layers whose output can serve as an embedding, by their PyTorch module names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum FeatureLayer {
    /// The second hidden FC layer's output (before its ReLU): `fc_width` values.
    #[default]
    #[value(name = "classifier.4")]
    #[serde(rename = "classifier.4")]
    Classifier4,
    /// The first hidden FC layer's output (before its ReLU): `fc_width` values.
    #[value(name = "classifier.1")]
    #[serde(rename = "classifier.1")]
    Classifier1,
    /// The pooled convolutional features: conv5's channels × 6 × 6 values.
    #[value(name = "avgpool")]
    #[serde(rename = "avgpool")]
    Avgpool,
}

impl FeatureLayer {
    pub fn module(self) -> &'static str {
        match self {
            FeatureLayer::Classifier4 => "classifier.4",
            FeatureLayer::Classifier1 => "classifier.1",
            FeatureLayer::Avgpool => "avgpool",
        }
    }
}

/// A classifier whose forward pass also yields one layer's output.
pub struct FeatureExtractor {
    pub classifier: Classifier,
    pub layer: FeatureLayer,
    output: Tensor,
    /// Values per image.
    pub dim: usize,
}

impl FeatureExtractor {
    /// Loads `weights` (architecture read from the file) for batches of up to `batch` images
    /// of side `image_size`.
    pub fn from_file(
        gpu: &Gpu,
        weights: &Path,
        layer: FeatureLayer,
        image_size: usize,
        batch: usize,
    ) -> Result<Self> {
        // The FC layers' outputs before their ReLU: not fused with it.
        let model = crate::infer::load_model(gpu, weights)?;
        let keep = [layer.module()];
        let classifier = Classifier::keeping_outputs(gpu, model, image_size, batch, None, &keep)?;
        let output = classifier
            .plan
            .outputs
            .iter()
            .find(|(name, _)| name == layer.module())
            .map(|(_, t)| t.clone())
            .ok_or_else(|| Error::Config(format!("the model has no layer '{}'", layer.module())))?;
        let dim = output.numel() / batch;
        Ok(Self {
            classifier,
            layer,
            output,
            dim,
        })
    }

    /// One embedding per image, `dim` values each, in order; any number of images, run in
    /// batches with torchvision's evaluation preprocessing.
    pub fn embed(&self, gpu: &Gpu, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.classifier.batch_size()) {
            let tensors: Vec<f32> = chunk
                .iter()
                .flat_map(|img| self.classifier.preprocess_image(img))
                .collect();
            self.classifier.logits(gpu, &tensors)?;
            let values = self.output.read_f32(gpu)?;
            out.extend(
                values
                    .chunks(self.dim)
                    .take(chunk.len())
                    .map(<[f32]>::to_vec),
            );
        }
        Ok(out)
    }
}

/// Embeddings of a set of images, as `alexnet features` writes them.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    /// `[N, dim]`, row-major.
    pub features: Vec<f32>,
    pub dim: usize,
    /// Each image's class index, when the images came from class folders.
    pub labels: Option<Vec<usize>>,
    /// The class names `labels` index.
    pub classes: Vec<String>,
    /// Each image's file.
    pub files: Vec<String>,
    /// The layer the embeddings come from.
    pub layer: String,
}

impl Embeddings {
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Image `i`'s embedding.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    /// Writes `features` (F32 `[N, D]`), `labels` (I64 `[N]`, if any) and, in the metadata,
    /// `files`, `classes` (JSON lists) and `layer`, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let fail = |message: String| Error::File {
            path: path.display().to_string(),
            message,
        };
        let features: Vec<u8> = bytemuck::cast_slice(&self.features).to_vec();
        let labels: Option<Vec<u8>> = self
            .labels
            .as_ref()
            .map(|l| l.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect());
        let mut views = vec![(
            "features".to_string(),
            TensorView::new(Dtype::F32, vec![self.len(), self.dim], &features)
                .map_err(|e| fail(e.to_string()))?,
        )];
        if let Some(labels) = &labels {
            views.push((
                "labels".to_string(),
                TensorView::new(Dtype::I64, vec![self.len()], labels)
                    .map_err(|e| fail(e.to_string()))?,
            ));
        }
        let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
        let metadata = HashMap::from([
            ("files".to_string(), json(&self.files)),
            ("classes".to_string(), json(&self.classes)),
            ("layer".to_string(), self.layer.clone()),
        ]);
        let bytes =
            safetensors::serialize(views, Some(metadata)).map_err(|e| fail(e.to_string()))?;
        crate::atomic_file::write(path, &bytes)
    }

    /// Reads a file [`Embeddings::save`] wrote.
    pub fn load(path: &Path) -> Result<Embeddings> {
        let fail = |message: String| Error::Safetensors {
            path: path.display().to_string(),
            message,
        };
        let bytes = weights::read_file(path)?;
        let (tensors, metadata) = weights::parse(path, &bytes)?;
        let (shape, features) = tensors
            .get("features")
            .ok_or_else(|| fail("no 'features' tensor: not an embeddings file".into()))?;
        let [n, dim] = shape[..] else {
            return Err(fail(format!(
                "'features' has shape {shape:?}; expected [N, D]"
            )));
        };
        let list = |key: &str| -> Result<Vec<String>> {
            metadata
                .get(key)
                .map(|v| serde_json::from_str(v).map_err(|e| fail(format!("'{key}': {e}"))))
                .unwrap_or_else(|| Ok(Vec::new()))
        };
        let files = list("files")?;
        if files.len() != n {
            return Err(fail(format!(
                "{} file names for {n} embeddings",
                files.len()
            )));
        }
        let labels = tensors
            .get("labels")
            .map(|(_, l)| l.iter().map(|&v| v as usize).collect());
        Ok(Embeddings {
            features: features.clone(),
            dim,
            labels,
            classes: list("classes")?,
            files,
            layer: metadata.get("layer").cloned().unwrap_or_default(),
        })
    }
}
