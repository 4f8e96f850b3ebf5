//! Image transforms: torchvision's classic AlexNet pipeline on RGB8 images.
//!
//! - [`resize_shorter`] = `torchvision.transforms.Resize(size)` on a PIL image, bit-exact with
//!   Pillow's bilinear `ImagingResample` (8-bit fixed point, horizontal pass then vertical).
//! - [`center_crop`] = `CenterCrop`, [`crop`], [`hflip`].
//! - [`to_tensor`] / [`normalize`] / [`to_tensor_normalized`] = `ToTensor()` + `Normalize`.
//! - [`pca_lighting`]: the AlexNet paper's PCA colour augmentation (fb.resnet.torch `Lighting`).
//! - [`ColorJitter`]: brightness, contrast and saturation as torchvision defines them.
//! - [`Augment`]: the whole train / eval pipeline, driven by a [`SampleRng`] that is a pure
//!   function of `(seed, epoch, position)`, so a resumed run reproduces an uninterrupted one.

use image::RgbImage;

use crate::error::{Error, Result};

// ---------------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------------

/// SplitMix64's finaliser: a bijective 64-bit hash with good avalanche.
fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small deterministic random number generator (SplitMix64).
///
/// Built from a `(seed, epoch, position)` triple by hashing, so the random numbers a sample
/// gets depend on nothing else: not on the worker that handles it, nor on whether the run was
/// resumed.
#[derive(Clone, Debug)]
pub struct SampleRng {
    state: u64,
}

impl SampleRng {
    /// The stream for sample `position` of `epoch` under `seed`.
    pub fn new(seed: u64, epoch: u64, position: u64) -> SampleRng {
        SampleRng {
            state: mix64(mix64(mix64(seed) ^ epoch) ^ position),
        }
    }

    /// Next raw 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in `[0, 1)` with 53 bits.
    pub fn uniform_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal N(0, 1) (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.uniform_f64(); // (0, 1]: ln is finite
        let u2 = self.uniform_f64();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// Uniform integer in `0..n` (0 when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Resize: Pillow's bilinear ImagingResample, bit-exact
// ---------------------------------------------------------------------------------------------

/// Pillow's `PRECISION_BITS` for 8-bit images: coefficients are fixed point with this many
/// fraction bits, leaving 8 bits for the pixel value and 2 for headroom in an `i32`.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// The bilinear (triangle) filter, support 1.
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// Per output pixel: the first input index and the fixed-point weights of the inputs it reads.
/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`.
fn precompute_coeffs(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    // When shrinking, the filter is stretched by the scale factor (this is the antialias).
    let filterscale = scale.max(1.0);
    let support = 1.0 * filterscale;
    let ss = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) cast truncates toward zero; both values are > -1 here so truncation
            // and Pillow's arithmetic agree.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let count = xmax.saturating_sub(xmin);
            let mut w: Vec<f64> = (0..count)
                .map(|x| triangle((x as f64 + xmin as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                for v in &mut w {
                    *v /= total;
                }
            }
            let one = (1u32 << PRECISION_BITS) as f64;
            let k = w
                .iter()
                .map(|&v| {
                    if v < 0.0 {
                        (-0.5 + v * one) as i32
                    } else {
                        (0.5 + v * one) as i32
                    }
                })
                .collect();
            (xmin, k)
        })
        .collect()
}

/// Pillow's `clip8`: drop the fraction bits (floor) and clamp to 0..=255.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// `img.resize((width, height), Image.BILINEAR)` in Pillow, exactly: a separable convolution
/// with the triangle filter widened by the downscale factor, horizontal pass first, each pass
/// rounded and clipped to 8 bits. A zero target size or an empty source gives an empty image.
pub fn resize_bilinear(img: &RgbImage, width: usize, height: usize) -> RgbImage {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    if width == 0 || height == 0 || in_w == 0 || in_h == 0 {
        // Nothing to sample from (or nothing to produce): a black image of the asked size.
        return RgbImage::new(width as u32, height as u32);
    }
    if width == in_w && height == in_h {
        return img.clone();
    }
    let src = img.as_raw();
    let round = 1i32 << (PRECISION_BITS - 1);

    // Horizontal pass: in_h rows of `width` pixels. (Pillow only resamples the rows the
    // vertical pass reads, which changes nothing in the result.)
    let horizontal = if width != in_w {
        let coeffs = precompute_coeffs(in_w, width);
        let mut out = vec![0u8; width * in_h * 3];
        for y in 0..in_h {
            let row = &src[y * in_w * 3..(y + 1) * in_w * 3];
            for (xx, (xmin, k)) in coeffs.iter().enumerate() {
                let mut acc = [round; 3];
                for (i, &w) in k.iter().enumerate() {
                    let p = &row[(xmin + i) * 3..(xmin + i) * 3 + 3];
                    for c in 0..3 {
                        acc[c] += p[c] as i32 * w;
                    }
                }
                let o = (y * width + xx) * 3;
                for c in 0..3 {
                    out[o + c] = clip8(acc[c]);
                }
            }
        }
        out
    } else {
        src.to_vec()
    };

    // Vertical pass on the 8-bit intermediate.
    let out = if height != in_h {
        let coeffs = precompute_coeffs(in_h, height);
        let mut out = vec![0u8; width * height * 3];
        let stride = width * 3;
        for (yy, (ymin, k)) in coeffs.iter().enumerate() {
            let mut acc = vec![round; stride];
            for (i, &w) in k.iter().enumerate() {
                let row = &horizontal[(ymin + i) * stride..(ymin + i + 1) * stride];
                for (a, &p) in acc.iter_mut().zip(row) {
                    *a += p as i32 * w;
                }
            }
            for (o, &a) in out[yy * stride..(yy + 1) * stride].iter_mut().zip(&acc) {
                *o = clip8(a);
            }
        }
        out
    } else {
        horizontal
    };
    RgbImage::from_raw(width as u32, height as u32, out).expect("buffer size matches")
}

/// The output size of `torchvision.transforms.Resize(size)`: the shorter side becomes `size`,
/// the longer `int(size * long / short)` (truncated, as torchvision does).
/// Returns `(width, height)`.
pub fn shorter_side_size(width: usize, height: usize, size: usize) -> (usize, usize) {
    if width == 0 || height == 0 {
        return (0, 0);
    }
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = ((size * long) as f64 / short as f64) as usize;
    if width <= height {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// `torchvision.transforms.Resize(size)` on a PIL image (bilinear, antialiased): the shorter
/// side becomes `size`, the aspect ratio is kept.
pub fn resize_shorter(img: &RgbImage, size: usize) -> RgbImage {
    let (w, h) = shorter_side_size(img.width() as usize, img.height() as usize, size);
    resize_bilinear(img, w, h)
}

// ---------------------------------------------------------------------------------------------
// Crops and flips
// ---------------------------------------------------------------------------------------------

/// The `w × h` window at `(left, top)`. Pixels outside the source are black (0), as PIL's
/// `Image.crop` fills them.
pub fn crop(img: &RgbImage, left: i64, top: i64, w: usize, h: usize) -> RgbImage {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    let mut out = RgbImage::new(w as u32, h as u32);
    for y in 0..h as i64 {
        let sy = top + y;
        if sy < 0 || sy >= ih {
            continue;
        }
        for x in 0..w as i64 {
            let sx = left + x;
            if sx < 0 || sx >= iw {
                continue;
            }
            out.put_pixel(x as u32, y as u32, *img.get_pixel(sx as u32, sy as u32));
        }
    }
    out
}

/// Where CenterCrop's window starts along an axis of `len` pixels for a crop of `size ≤ len`.
pub fn center_offset(len: usize, size: usize) -> usize {
    round_half_even_div2(len as i64 - size as i64).max(0) as usize
}

/// Python 3's `round` (half to even) of `x / 2` for an integer `x`, as CenterCrop computes
/// `int(round((image_height - crop_height) / 2.0))`.
fn round_half_even_div2(x: i64) -> i64 {
    let q = x.div_euclid(2);
    // x / 2 = q + 0.5 when x is odd: round to whichever of q, q + 1 is even.
    if x.rem_euclid(2) == 1 && q % 2 != 0 {
        q + 1
    } else {
        q
    }
}

/// `torchvision.transforms.CenterCrop(size)`: `top = int(round((h - size) / 2))` with Python's
/// half-to-even rounding, `left` likewise. A crop larger than the image is zero-padded as
/// torchvision does (pad left/top by `(size - w) // 2`, then crop).
pub fn center_crop(img: &RgbImage, size: usize) -> RgbImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let s = size as i64;
    // torchvision pads first when the crop is larger, then crops the padded image; the net
    // effect is an offset window whose outside is zero.
    let (pad_l, pad_t) = (
        if s > w { (s - w) / 2 } else { 0 },
        if s > h { (s - h) / 2 } else { 0 },
    );
    let (pad_r, pad_b) = (
        if s > w { (s - w + 1) / 2 } else { 0 },
        if s > h { (s - h + 1) / 2 } else { 0 },
    );
    let (pw, ph) = (w + pad_l + pad_r, h + pad_t + pad_b);
    let top = round_half_even_div2(ph - s) - pad_t;
    let left = round_half_even_div2(pw - s) - pad_l;
    crop(img, left, top, size, size)
}

/// Mirror left–right.
pub fn hflip(img: &RgbImage) -> RgbImage {
    image::imageops::flip_horizontal(img)
}

// ---------------------------------------------------------------------------------------------
// To tensor, normalise, colour
// ---------------------------------------------------------------------------------------------

/// `ToTensor()`: RGB8 `[h, w, 3]` → f32 CHW `[3, h, w]` in `[0, 1]` (`v / 255`).
pub fn to_tensor(img: &RgbImage) -> Vec<f32> {
    let plane = (img.width() * img.height()) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in img.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = p[c] as f32 / 255.0;
        }
    }
    out
}

/// `Normalize(mean, std)` in place on a CHW tensor: `(x - mean[c]) / std[c]`.
pub fn normalize(chw: &mut [f32], mean: [f32; 3], std: [f32; 3]) {
    let plane = chw.len() / 3;
    for c in 0..3 {
        for v in &mut chw[c * plane..(c + 1) * plane] {
            *v = (*v - mean[c]) / std[c];
        }
    }
}

/// `ToTensor()` then `Normalize(mean, std)`: CHW `(v / 255 - mean) / std`.
pub fn to_tensor_normalized(img: &RgbImage, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    let mut t = to_tensor(img);
    normalize(&mut t, mean, std);
    t
}

/// ImageNet RGB eigenvalues of the pixel covariance (fb.resnet.torch).
pub const IMAGENET_EIGVAL: [f32; 3] = [0.2175, 0.0188, 0.0045];
/// ImageNet eigenvectors: rows are the R, G, B channels, column `j` is eigenvector `j`.
pub const IMAGENET_EIGVEC: [[f32; 3]; 3] = [
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.8140],
    [-0.5836, -0.6948, 0.4203],
];
/// ImageNet channel means (torchvision).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (torchvision).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The AlexNet paper's PCA colour augmentation on a `[0, 1]` CHW image (before
/// normalisation): every pixel gets `Σ_j eigvec[:, j] · alpha_j · eigval_j` added, the same
/// shift for the whole image (fb.resnet.torch's `Lighting`). Draw `alpha_j ~ N(0, 0.1)`.
pub fn pca_lighting(chw: &mut [f32], alphas: [f32; 3]) {
    let plane = chw.len() / 3;
    for c in 0..3 {
        let shift: f32 = (0..3)
            .map(|j| IMAGENET_EIGVEC[c][j] * alphas[j] * IMAGENET_EIGVAL[j])
            .sum();
        for v in &mut chw[c * plane..(c + 1) * plane] {
            *v += shift;
        }
    }
}

/// torchvision's `ColorJitter(brightness, contrast, saturation)` on `[0, 1]` values (hue is
/// not implemented). Each factor is drawn uniformly from `[max(0, 1 - x), 1 + x]`; a zero
/// strength leaves that adjustment out.
///
/// - brightness `b`: `x · b`
/// - contrast `c`: blend with the mean of the whole image's grayscale `m`: `c·x + (1 - c)·m`
/// - saturation `s`: blend with each pixel's grayscale `g`: `s·x + (1 - s)·g`
///
/// with grayscale `0.299 R + 0.587 G + 0.114 B` and a clamp to `[0, 1]` after each step.
/// torchvision applies the three in a random order; here the order is fixed (brightness,
/// contrast, saturation), which keeps the random stream simpler and is what the original
/// AlexNet-era pipelines did.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ColorJitter {
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
}

impl ColorJitter {
    /// Draw the three factors (1.0 where a strength is 0) in the order brightness, contrast,
    /// saturation.
    pub fn sample_factors(&self, rng: &mut SampleRng) -> [f32; 3] {
        let mut draw = |x: f32| {
            if x > 0.0 {
                rng.range((1.0 - x).max(0.0), 1.0 + x)
            } else {
                1.0
            }
        };
        let b = draw(self.brightness);
        let c = draw(self.contrast);
        let s = draw(self.saturation);
        [b, c, s]
    }

    /// Draw factors and apply them to a `[0, 1]` CHW image.
    pub fn apply(&self, chw: &mut [f32], rng: &mut SampleRng) {
        let [b, c, s] = self.sample_factors(rng);
        adjust_brightness(chw, b);
        adjust_contrast(chw, c);
        adjust_saturation(chw, s);
    }
}

fn gray(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// `x · factor`, clamped to `[0, 1]`.
pub fn adjust_brightness(chw: &mut [f32], factor: f32) {
    if factor == 1.0 {
        return;
    }
    for v in chw.iter_mut() {
        *v = (*v * factor).clamp(0.0, 1.0);
    }
}

/// Blend with the mean grayscale value of the image, clamped to `[0, 1]`.
pub fn adjust_contrast(chw: &mut [f32], factor: f32) {
    if factor == 1.0 {
        return;
    }
    let plane = chw.len() / 3;
    if plane == 0 {
        return;
    }
    let (r, rest) = chw.split_at(plane);
    let (g, b) = rest.split_at(plane);
    let sum: f64 = (0..plane).map(|i| gray(r[i], g[i], b[i]) as f64).sum();
    let mean = (sum / plane as f64) as f32;
    for v in chw.iter_mut() {
        *v = (factor * *v + (1.0 - factor) * mean).clamp(0.0, 1.0);
    }
}

/// Blend each pixel with its own grayscale value, clamped to `[0, 1]`.
pub fn adjust_saturation(chw: &mut [f32], factor: f32) {
    if factor == 1.0 {
        return;
    }
    let plane = chw.len() / 3;
    for i in 0..plane {
        let g = gray(chw[i], chw[plane + i], chw[2 * plane + i]);
        for c in 0..3 {
            let v = &mut chw[c * plane + i];
            *v = (factor * *v + (1.0 - factor) * g).clamp(0.0, 1.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The pipeline
// ---------------------------------------------------------------------------------------------

/// The largest image the first resize may produce (the same bound as decoding's).
const MAX_RESIZED_PIXELS: u64 = super::dataset::MAX_IMAGE_PIXELS;

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
    /// black image.
    pub fn apply(&self, img: &RgbImage, rng: &mut SampleRng) -> Vec<f32> {
        let s = self.image_size;
        let resized = resize_shorter(img, self.resize);
        let cropped = if self.train {
            let (w, h) = (resized.width() as usize, resized.height() as usize);
            let top = rng.below((h + 1).saturating_sub(s));
            let left = rng.below((w + 1).saturating_sub(s));
            let c = crop(&resized, left as i64, top as i64, s, s);
            if self.flip && rng.uniform() < 0.5 {
                hflip(&c)
            } else {
                c
            }
        } else {
            center_crop(&resized, s)
        };
        let mut t = to_tensor(&cropped);
        if self.train {
            if let Some(j) = &self.color_jitter {
                j.apply(&mut t, rng);
            }
            if self.lighting_std > 0.0 {
                let alphas = [
                    rng.normal() * self.lighting_std,
                    rng.normal() * self.lighting_std,
                    rng.normal() * self.lighting_std,
                ];
                pca_lighting(&mut t, alphas);
            }
        }
        normalize(&mut t, self.mean, self.std);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: u32, h: u32, data: &[u8]) -> RgbImage {
        RgbImage::from_raw(w, h, data.to_vec()).unwrap()
    }

    fn gray_img(w: u32, h: u32, data: &[u8]) -> RgbImage {
        let rgb: Vec<u8> = data.iter().flat_map(|&v| [v, v, v]).collect();
        img(w, h, &rgb)
    }

    fn channel0(i: &RgbImage) -> Vec<u8> {
        i.as_raw().chunks(3).map(|p| p[0]).collect()
    }

    #[test]
    fn rng_is_a_pure_function_of_the_triple() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = SampleRng::new(1, 2, 3);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = SampleRng::new(1, 2, 3);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        assert_ne!(
            SampleRng::new(1, 2, 4).next_u64(),
            SampleRng::new(1, 2, 3).next_u64()
        );
        assert_ne!(
            SampleRng::new(1, 3, 3).next_u64(),
            SampleRng::new(1, 2, 3).next_u64()
        );
        let mut r = SampleRng::new(7, 0, 0);
        let n = 20000;
        let (mut s, mut s2, mut u) = (0f64, 0f64, 0f64);
        for _ in 0..n {
            let x = r.normal() as f64;
            s += x;
            s2 += x * x;
            u += r.uniform() as f64;
            assert!(r.below(5) < 5);
        }
        assert!((s / n as f64).abs() < 0.03);
        assert!((s2 / n as f64 - 1.0).abs() < 0.05);
        assert!((u / n as f64 - 0.5).abs() < 0.01);
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn center_crop_4x2_to_2() {
        // 4 wide, 2 high: top = round(0/2) = 0, left = round(2/2) = 1.
        let i = gray_img(4, 2, &[0, 1, 2, 3, 10, 11, 12, 13]);
        assert_eq!(channel0(&center_crop(&i, 2)), vec![1, 2, 11, 12]);
        // 5 wide: left = round(3/2) = round(1.5) = 2 (half to even); 7 wide → round(2.5) = 2.
        let i = gray_img(5, 1, &[0, 1, 2, 3, 4]);
        assert_eq!(channel0(&center_crop(&i, 2))[..2], [2, 3]);
        let i = gray_img(7, 2, &[0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(channel0(&center_crop(&i, 2)), vec![2, 3, 2, 3]);
        // 1×1 crop of 4×4: round(1.5) = 2.
        let i = gray_img(4, 4, &(0..16).collect::<Vec<u8>>());
        assert_eq!(channel0(&center_crop(&i, 1)), vec![10]);
        // Larger than the image: zero padding, left pad (3-1)//2 = 1.
        let i = gray_img(1, 1, &[9]);
        assert_eq!(
            channel0(&center_crop(&i, 3)),
            vec![0, 0, 0, 0, 9, 0, 0, 0, 0]
        );
        let i = gray_img(1, 1, &[9]);
        assert_eq!(channel0(&center_crop(&i, 2)), vec![9, 0, 0, 0]);
    }

    #[test]
    fn python_round_half_even() {
        for (x, want) in [
            (0, 0),
            (1, 0),
            (2, 1),
            (3, 2),
            (5, 2),
            (7, 4),
            (-1, 0),
            (-3, -2),
        ] {
            assert_eq!(round_half_even_div2(x), want, "round({x}/2)");
        }
    }

    #[test]
    fn crop_and_flip() {
        let i = img(3, 1, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(hflip(&i).as_raw(), &vec![7, 8, 9, 4, 5, 6, 1, 2, 3]);
        let i = gray_img(3, 2, &[0, 1, 2, 3, 4, 5]);
        assert_eq!(channel0(&crop(&i, 1, 1, 2, 1)), vec![4, 5]);
        assert_eq!(channel0(&crop(&i, 2, 0, 2, 1)), vec![2, 0]);
    }

    #[test]
    fn normalisation_of_a_known_pixel() {
        let i = img(1, 1, &[255, 0, 51]);
        let t = to_tensor_normalized(&i, IMAGENET_MEAN, IMAGENET_STD);
        let want = [
            (1.0 - 0.485) / 0.229,
            (0.0 - 0.456) / 0.224,
            (0.2 - 0.406) / 0.225,
        ];
        for c in 0..3 {
            assert!((t[c] - want[c]).abs() < 1e-6, "{t:?}");
        }
        // CHW order.
        let i = img(2, 1, &[1, 2, 3, 4, 5, 6]);
        let t = to_tensor(&i);
        let want: Vec<f32> = [1, 4, 2, 5, 3, 6]
            .iter()
            .map(|&v| v as f32 / 255.0)
            .collect();
        assert_eq!(t, want);
    }

    #[test]
    fn lighting_first_component_on_grey() {
        let mut t = vec![0.5f32; 3];
        pca_lighting(&mut t, [1.0, 0.0, 0.0]);
        for c in 0..3 {
            let want = 0.5 + IMAGENET_EIGVEC[c][0] * 0.2175;
            assert!((t[c] - want).abs() < 1e-7);
        }
        assert!((t[0] - (0.5 - 0.5675 * 0.2175)).abs() < 1e-6);
    }

    #[test]
    fn jitter_semantics() {
        let mut t = vec![0.2, 0.8, 0.4, 0.6, 1.0, 0.0];
        adjust_brightness(&mut t, 0.5);
        assert_eq!(t, vec![0.1, 0.4, 0.2, 0.3, 0.5, 0.0]);
        adjust_brightness(&mut t, 4.0);
        assert_eq!(t, vec![0.4, 1.0, 0.8, 1.0, 1.0, 0.0]);
        // Contrast 0 → every value is the mean grayscale.
        let mut t = vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]; // pixel 0 red, pixel 1 green
        adjust_contrast(&mut t, 0.0);
        let m = (0.299 + 0.587) / 2.0;
        assert!(t.iter().all(|v| (v - m).abs() < 1e-6), "{t:?}");
        // Saturation 0 → each pixel's own grayscale.
        let mut t = vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        adjust_saturation(&mut t, 0.0);
        let want = [0.299, 0.587, 0.299, 0.587, 0.299, 0.587];
        for (a, b) in t.iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
        // Factors stay in range.
        let j = ColorJitter {
            brightness: 0.4,
            contrast: 0.0,
            saturation: 2.0,
        };
        let mut r = SampleRng::new(0, 0, 0);
        for _ in 0..100 {
            let [b, c, s] = j.sample_factors(&mut r);
            assert!((0.6..1.4).contains(&b) && c == 1.0 && (0.0..3.0).contains(&s));
        }
    }

    #[test]
    fn resize_output_size_like_torchvision() {
        assert_eq!(shorter_side_size(300, 200, 256), (384, 256));
        assert_eq!(shorter_side_size(37, 53, 24), (24, 34)); // int(24*53/37) = int(34.37)
        assert_eq!(shorter_side_size(500, 375, 256), (341, 256)); // int(341.33)
        assert_eq!(shorter_side_size(32, 32, 73), (73, 73));
        assert_eq!(shorter_side_size(3, 7, 2), (2, 4)); // int(4.67)
    }

    /// Values computed with Pillow 13:
    /// `Image.frombytes('L', (2,2), bytes([0,100,200,255])).resize((4,4), Image.BILINEAR)`
    /// and the 4×4 ramp `bytes(range(0,160,10))` resized to (2,2).
    #[test]
    fn resize_matches_pil_small_cases() {
        let up = resize_bilinear(&gray_img(2, 2, &[0, 100, 200, 255]), 4, 4);
        assert_eq!(
            channel0(&up),
            vec![0, 25, 75, 100, 50, 72, 117, 139, 150, 167, 200, 216, 200, 214, 241, 255]
        );
        let down = resize_bilinear(
            &gray_img(4, 4, &(0..16).map(|v| v * 10).collect::<Vec<u8>>()),
            2,
            2,
        );
        assert_eq!(channel0(&down), vec![36, 52, 98, 114]);
    }

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
