//! Crops and flips on RGB8 images; to-tensor, normalisation and colour on CHW floats.

use image::RgbImage;

use super::SampleRng;

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
    let (left, top) = center_window(img.width() as usize, img.height() as usize, size);
    crop(img, left, top, size, size)
}

/// Where [`center_crop`]'s `size` window starts in a `w × h` image, `(left, top)`; negative
/// when the crop is larger than the image (the outside is zeros).
pub fn center_window(w: usize, h: usize, size: usize) -> (i64, i64) {
    let (w, h) = (w as i64, h as i64);
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
    (left, top)
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
    add_channel_shift(chw, lighting_shift(alphas));
}

/// PCA lighting's shift of channel `c`: `Σ_j eigvec[c][j] · alphas[j] · eigval[j]`.
pub fn lighting_shift(alphas: [f32; 3]) -> [f32; 3] {
    std::array::from_fn(|c| {
        (0..3)
            .map(|j| IMAGENET_EIGVEC[c][j] * alphas[j] * IMAGENET_EIGVAL[j])
            .sum()
    })
}

/// Adds `shift[c]` to every value of channel `c` of a CHW image.
pub(super) fn add_channel_shift(chw: &mut [f32], shift: [f32; 3]) {
    let plane = chw.len() / 3;
    for (c, s) in shift.into_iter().enumerate() {
        for v in &mut chw[c * plane..(c + 1) * plane] {
            *v += s;
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
#[cfg(test)]
mod tests {
    use super::super::test_images::*;
    use super::*;

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
}
