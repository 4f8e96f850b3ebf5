//! Resize: Pillow's bilinear `ImagingResample`, bit-exact.

use image::RgbImage;

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
        for (row, out_row) in src
            .chunks_exact(in_w * 3)
            .zip(out.chunks_exact_mut(width * 3))
        {
            for ((xmin, k), o) in coeffs.iter().zip(out_row.chunks_exact_mut(3)) {
                // Iterators over exact slices: no bounds check in the tap loop.
                let taps = &row[xmin * 3..(xmin + k.len()) * 3];
                let mut acc = [round; 3];
                for (p, &w) in taps.chunks_exact(3).zip(k) {
                    acc[0] += i32::from(p[0]) * w;
                    acc[1] += i32::from(p[1]) * w;
                    acc[2] += i32::from(p[2]) * w;
                }
                o[0] = clip8(acc[0]);
                o[1] = clip8(acc[1]);
                o[2] = clip8(acc[2]);
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
        let mut acc = vec![round; stride];
        for (yy, (ymin, k)) in coeffs.iter().enumerate() {
            acc.fill(round);
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
#[cfg(test)]
mod tests {
    use super::super::test_images::*;
    use super::*;

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
}
