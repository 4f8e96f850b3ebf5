//! The per-sample train / eval pipeline.

use image::RgbImage;

use super::tensor::add_channel_shift;
use super::{
    adjust_brightness, adjust_contrast, adjust_saturation, center_window, crop, hflip,
    lighting_shift, normalize, resize_shorter, shorter_side_size, to_tensor, ColorJitter,
    SampleRng, IMAGENET_MEAN, IMAGENET_STD,
};
use crate::error::{Error, Result};

/// The largest image the first resize may produce (the same bound as decoding's).
const MAX_RESIZED_PIXELS: u64 = crate::data::dataset::MAX_IMAGE_PIXELS;

/// The per-sample pipeline.
///
/// - train: `Resize(resize)` → random `image_size` crop → random horizontal flip (if `flip`)
///   → `ToTensor` → colour jitter (if any) → PCA lighting (if `lighting_std > 0`) →
///   `Normalize(mean, std)`.
/// - eval (`train == false`): `Resize(resize)` → `CenterCrop(image_size)` → `ToTensor` →
///   `Normalize(mean, std)`: torchvision's standard evaluation preprocessing.
///
/// Sources smaller than `resize` (CIFAR's 32×32, MNIST's 28×28) are scaled up, which is how
/// the image size of the whole pipeline is chosen.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// Side of the square network input.
    pub image_size: usize,
    /// Shorter side after the first resize.
    pub resize: usize,
    /// Random crop/flip/colour (true) or centre crop only (false).
    pub train: bool,
    pub flip: bool,
    /// Standard deviation of the PCA lighting alphas (0 disables it).
    pub lighting_std: f32,
    pub color_jitter: Option<ColorJitter>,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Augment {
    /// The AlexNet/ImageNet training pipeline for `image_size`: resize to
    /// `round(image_size · 256 / 224)` (256 for 224), ImageNet mean/std, flips, PCA lighting
    /// with σ = 0.1, no colour jitter. Set `train = false` for evaluation.
    pub fn imagenet(image_size: usize) -> Augment {
        Augment {
            image_size,
            resize: ((image_size as f64) * 256.0 / 224.0).round() as usize,
            train: true,
            flip: true,
            lighting_std: 0.1,
            color_jitter: None,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// The same pipeline in evaluation mode.
    pub fn eval(&self) -> Augment {
        Augment {
            train: false,
            ..self.clone()
        }
    }

    /// Refuses an input whose first resize would be absurdly large: resizing the shorter side
    /// of a 1×20000 strip to 256 would make a 256×5,120,000 image (3.9 GB).
    ///
    /// # Errors
    /// [`Error::Config`] saying the size, the resized size and the limit.
    pub fn check_input(&self, width: u32, height: u32) -> Result<()> {
        let (short, long) = (width.min(height) as u64, width.max(height) as u64);
        let resized_long = (long * self.resize as u64).div_ceil(short.max(1));
        let pixels = resized_long * self.resize as u64;
        if pixels > MAX_RESIZED_PIXELS {
            return Err(Error::Config(format!(
                "image is {width}x{height}: resizing its shorter side to {} would make it {}x{resized_long} \
                 pixels; expected an aspect ratio under about 1:{}",
                self.resize,
                self.resize,
                MAX_RESIZED_PIXELS / (self.resize as u64).pow(2).max(1)
            )));
        }
        Ok(())
    }

    /// Floats per output image: `3 · image_size²`.
    pub fn output_len(&self) -> usize {
        3 * self.image_size * self.image_size
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero size, a training `resize` below `image_size` (a random
    /// crop would not fit), a zero or non-finite std, or a negative lighting std.
    pub fn check(&self) -> Result<()> {
        if self.image_size == 0 || self.resize == 0 {
            return Err(Error::Config(format!(
                "augment: image_size ({}) and resize ({}) must be positive",
                self.image_size, self.resize
            )));
        }
        if self.train && self.resize < self.image_size {
            return Err(Error::Config(format!(
                "augment: resize ({}) is smaller than the random crop image_size ({})",
                self.resize, self.image_size
            )));
        }
        if self.std.iter().any(|s| *s == 0.0 || !s.is_finite())
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return Err(Error::Config(format!(
                "augment: mean {:?} / std {:?} must be finite and std non-zero",
                self.mean, self.std
            )));
        }
        if !self.lighting_std.is_finite() || self.lighting_std < 0.0 {
            return Err(Error::Config(format!(
                "augment: lighting_std must be >= 0, got {}",
                self.lighting_std
            )));
        }
        if let Some(j) = &self.color_jitter {
            if [j.brightness, j.contrast, j.saturation]
                .iter()
                .any(|x| !x.is_finite() || *x < 0.0)
            {
                return Err(Error::Config(format!(
                    "augment: colour jitter strengths must be >= 0, got {j:?}"
                )));
            }
        }
        Ok(())
    }

    /// Runs the pipeline on one image and returns the CHW `[3, image_size, image_size]`
    /// tensor. The random choices come from `rng` in a fixed order (crop top, crop left,
    /// flip, jitter factors, lighting alphas). An empty source image gives the normalised
    /// black image. Equal to [`Augment::finish`] of [`Augment::crop`].
    pub fn apply(&self, img: &RgbImage, rng: &mut SampleRng) -> Vec<f32> {
        let (crop, draws) = self.crop(img, rng);
        self.finish(&crop, &draws)
    }

    /// Every random draw for a `width × height` source, in [`Augment::apply`]'s order (crop
    /// top, crop left, flip, jitter factors, lighting alphas): where the crop window lies in
    /// the resized image, and what the colour half must do. Needs only the source's size.
    pub fn place(
        &self,
        width: usize,
        height: usize,
        rng: &mut SampleRng,
    ) -> (Placement, ColorDraws) {
        let s = self.image_size;
        let (rw, rh) = shorter_side_size(width, height, self.resize);
        if !self.train {
            let (left, top) = center_window(rw, rh, s);
            let placement = Placement {
                resized: (rw, rh),
                left,
                top,
            };
            return (placement, ColorDraws::NONE);
        }
        let top = rng.below((rh + 1).saturating_sub(s)) as i64;
        let left = rng.below((rw + 1).saturating_sub(s)) as i64;
        let flip = self.flip && rng.uniform() < 0.5;
        let jitter = match &self.color_jitter {
            Some(j) => j.sample_factors(rng),
            None => [1.0; 3],
        };
        let lighting_shift = if self.lighting_std > 0.0 {
            lighting_shift([
                rng.normal() * self.lighting_std,
                rng.normal() * self.lighting_std,
                rng.normal() * self.lighting_std,
            ])
        } else {
            [0.0; 3]
        };
        let placement = Placement {
            resized: (rw, rh),
            left,
            top,
        };
        let draws = ColorDraws {
            flip,
            jitter,
            lighting_shift,
        };
        (placement, draws)
    }

    /// The integer half of the pipeline on the CPU: `Resize(resize)`, then the
    /// `image_size` window [`Augment::place`] drew (random in training, centred in
    /// evaluation); with the colour draws for [`Augment::finish`].
    pub fn crop(&self, img: &RgbImage, rng: &mut SampleRng) -> (RgbImage, ColorDraws) {
        let s = self.image_size;
        let (placement, draws) = self.place(img.width() as usize, img.height() as usize, rng);
        let resized = resize_shorter(img, self.resize);
        (crop(&resized, placement.left, placement.top, s, s), draws)
    }

    /// The most bytes of a decoded image the GPU path uploads whole (and resizes on the
    /// GPU): a `2·resize` square. Larger images are resized and cropped on the CPU first.
    pub fn gpu_upload_cap(&self) -> usize {
        3 * (2 * self.resize).pow(2)
    }

    /// Whether the GPU path resizes a `width × height` source itself: it fits
    /// [`Augment::gpu_upload_cap`], and the shader's exact integer filter taps stay in `i32`
    /// (`2 · in · out` below 2^31 on each axis).
    pub fn gpu_resizes(&self, width: usize, height: usize) -> bool {
        let (rw, rh) = shorter_side_size(width, height, self.resize);
        let fits = |n_in: usize, n_out: usize| 2 * n_in * n_out + n_in + n_out < 1 << 31;
        3 * width * height <= self.gpu_upload_cap() && fits(width, rw) && fits(height, rh)
    }

    /// The colour half on the CPU, from [`Augment::crop`]'s output: flip, `ToTensor`,
    /// brightness/contrast/saturation, PCA lighting, `Normalize(mean, std)`. The GPU path's
    /// shader (`shaders/augment.wgsl`) computes the same from the same inputs.
    pub fn finish(&self, crop: &RgbImage, draws: &ColorDraws) -> Vec<f32> {
        let mut t = if draws.flip {
            to_tensor(&hflip(crop))
        } else {
            to_tensor(crop)
        };
        let [b, c, s] = draws.jitter;
        adjust_brightness(&mut t, b);
        adjust_contrast(&mut t, c);
        adjust_saturation(&mut t, s);
        if self.train && self.lighting_std > 0.0 {
            add_channel_shift(&mut t, draws.lighting_shift);
        }
        normalize(&mut t, self.mean, self.std);
        t
    }
}

/// Where the `image_size` crop window lies: in the source resized to `resized` (width,
/// height), starting at `(left, top)`; pixels outside the resized image are zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub resized: (usize, usize),
    pub left: i64,
    pub top: i64,
}

/// What the colour half of augmentation does to one image, drawn on the CPU: the random
/// choices after the crop window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColorDraws {
    /// Mirror left–right.
    pub flip: bool,
    /// Brightness, contrast and saturation factors; 1.0 leaves that adjustment out.
    pub jitter: [f32; 3],
    /// PCA lighting's per-channel shift ([`lighting_shift`]); zeros without lighting.
    pub lighting_shift: [f32; 3],
}

impl ColorDraws {
    /// Evaluation's: no flip, no jitter, no lighting.
    pub const NONE: ColorDraws = ColorDraws {
        flip: false,
        jitter: [1.0; 3],
        lighting_shift: [0.0; 3],
    };
}

#[cfg(test)]
mod tests {
    use super::super::test_images::*;
    use super::super::*;
    use super::*;

    #[test]
    fn augment_eval_is_resize_center_crop_normalise() {
        let a = Augment {
            color_jitter: None,
            ..Augment::imagenet(4)
        }
        .eval();
        assert_eq!(a.resize, 5); // round(4 * 256 / 224) = round(4.57)
        let src = gray_img(10, 5, &(0..50).map(|v| v * 5).collect::<Vec<u8>>());
        let want = to_tensor_normalized(&center_crop(&resize_shorter(&src, 5), 4), a.mean, a.std);
        assert_eq!(a.apply(&src, &mut SampleRng::new(0, 0, 0)), want);
        assert!(a.check().is_ok());
        assert!(Augment {
            resize: 3,
            ..Augment::imagenet(4)
        }
        .check()
        .is_err());
        assert!(Augment {
            std: [0.0; 3],
            ..Augment::imagenet(4)
        }
        .check()
        .is_err());
    }

    #[test]
    fn augment_train_is_deterministic_and_sized() {
        let a = Augment {
            color_jitter: Some(ColorJitter {
                brightness: 0.4,
                contrast: 0.4,
                saturation: 0.4,
            }),
            ..Augment::imagenet(8)
        };
        let src = img(
            12,
            9,
            &(0..12 * 9 * 3)
                .map(|v| (v * 7 % 256) as u8)
                .collect::<Vec<u8>>(),
        );
        let x = a.apply(&src, &mut SampleRng::new(5, 1, 2));
        assert_eq!(x.len(), a.output_len());
        assert_eq!(x, a.apply(&src, &mut SampleRng::new(5, 1, 2)));
        assert_ne!(x, a.apply(&src, &mut SampleRng::new(5, 1, 3)));
        // An empty image does not panic.
        assert_eq!(
            a.apply(&RgbImage::new(0, 0), &mut SampleRng::new(0, 0, 0))
                .len(),
            a.output_len()
        );
    }
}
