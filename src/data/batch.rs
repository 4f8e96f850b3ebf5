//! What a loader batch carries: finished f32 tensors (augmentation on the CPU) or decoded
//! images with their draws for the GPU ([`AugmentOn`]).

use super::transforms::{crop, resize_shorter, Augment, ColorDraws, Placement, SampleRng};
use crate::error::{Error, Result};

/// Where augmentation runs after decoding (resize, crop, flip, jitter, lighting, normalise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AugmentOn {
    /// Batches are finished f32 tensors ([`Batch::images`]).
    #[default]
    Cpu,
    /// Batches are decoded u8 images with their crop placement and colour draws
    /// ([`Batch::gpu`]) for `ops::augment::GpuAugment`, which resizes, crops and colours
    /// them on the GPU into the same tensor.
    Gpu,
}

impl std::fmt::Display for AugmentOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AugmentOn::Cpu => "cpu",
            AugmentOn::Gpu => "gpu",
        })
    }
}

impl std::str::FromStr for AugmentOn {
    type Err = Error;
    fn from_str(s: &str) -> Result<AugmentOn> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(AugmentOn::Cpu),
            "gpu" => Ok(AugmentOn::Gpu),
            _ => Err(Error::Config(format!(
                "--augment-on '{s}': expected 'cpu' or 'gpu'"
            ))),
        }
    }
}

/// One batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Batch number within the epoch.
    pub index: usize,
    /// `[len, 3, S, S]`, normalised, S = `augment.image_size` ([`AugmentOn::Cpu`]; empty
    /// otherwise).
    pub images: Vec<f32>,
    /// `[len]` samples for GPU augmentation ([`AugmentOn::Gpu`]; empty otherwise).
    pub gpu: Vec<GpuSample>,
    /// `[len]`.
    pub labels: Vec<u32>,
    /// Samples in this batch: `batch_size`, less for the last partial batch or when bad
    /// samples were skipped.
    pub len: usize,
}

impl Batch {
    /// The batch cut into consecutive parts of `counts` samples (which sum to `len`), one per
    /// device of a data-parallel run; each part keeps the batch's index.
    pub fn split(&self, counts: &[usize]) -> Vec<Batch> {
        let per_image = self.images.len() / self.len.max(1);
        let mut first = 0;
        counts
            .iter()
            .map(|&n| {
                let end = (first + n).min(self.len);
                let part = Batch {
                    index: self.index,
                    images: self
                        .images
                        .get(first * per_image..end * per_image)
                        .unwrap_or_default()
                        .to_vec(),
                    gpu: self.gpu.get(first..end).unwrap_or_default().to_vec(),
                    labels: self.labels[first..end].to_vec(),
                    len: end - first,
                };
                first = end;
                part
            })
            .collect()
    }
}

/// One sample for GPU augmentation: `width × height` RGB8 pixels (row-major), where the
/// crop window lies once they are resized to `placement.resized`, and the colour draws. A
/// large image arrives already resized and cropped on the CPU (S × S, window at 0, 0).
#[derive(Clone, Debug, PartialEq)]
pub struct GpuSample {
    pub pixels: Vec<u8>,
    pub width: usize,
    pub height: usize,
    pub placement: Placement,
    pub draws: ColorDraws,
}

impl GpuSample {
    /// Decoded `img` for the GPU path, with its draws from `rng` (in the CPU path's order).
    pub fn new(augment: &Augment, img: image::RgbImage, rng: &mut SampleRng) -> GpuSample {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (placement, draws) = augment.place(w, h, rng);
        if augment.gpu_resizes(w, h) {
            return GpuSample {
                pixels: img.into_raw(),
                width: w,
                height: h,
                placement,
                draws,
            };
        }
        let s = augment.image_size;
        let resized = resize_shorter(&img, augment.resize);
        GpuSample {
            pixels: crop(&resized, placement.left, placement.top, s, s).into_raw(),
            width: s,
            height: s,
            placement: Placement {
                resized: (s, s),
                left: 0,
                top: 0,
            },
            draws,
        }
    }
}
