//! From decoded coefficients to pixels: block smoothing, the IDCT (full or reduced size),
//! chroma upsampling and colour conversion, as libjpeg-turbo's output pass.

use super::{color, idct, smooth, upsample, Decoder, JpegError, JpegImage};

/// libjpeg-turbo's IDCT size for a component at a reduced scale (`jpeg_calc_output_dimensions`):
/// start from the luma size `min` (8 / denom) and double it while the component's sampling
/// still divides evenly, so subsampled chroma is enlarged by its IDCT rather than upsampled.
fn component_idct_size(max_h: usize, max_v: usize, h: usize, v: usize, min: usize) -> usize {
    let mut size = min;
    while size < 8
        && (max_h * min).is_multiple_of(h * size * 2)
        && (max_v * min).is_multiple_of(v * size * 2)
    {
        size *= 2;
    }
    size
}

impl Decoder {
    /// The image at 1/`denom` scale (1 = full size).
    pub(super) fn output(self, denom: usize) -> Result<JpegImage, JpegError> {
        let frame = self.frame.expect("a scan implies a frame");
        let (w, h) = (frame.width.div_ceil(denom), frame.height.div_ceil(denom));
        let min = 8 / denom;
        let rgb = match (frame.comps.len(), self.jfif, self.adobe_transform) {
            (1, ..) => false,
            (_, true, _) => false,
            (_, false, Some(0)) => true,
            (_, false, Some(_)) => false,
            _ => frame.comps.iter().map(|c| c.id).eq(*b"RGB"),
        };
        let smoothing = frame.progressive
            && smooth::useful(
                &frame
                    .comps
                    .iter()
                    .map(|c| (c.quant.as_ref(), &c.coef_bits))
                    .collect::<Vec<_>>(),
            );
        let imcu_rows = frame.mcuy;
        let mut planes = Vec::with_capacity(frame.comps.len());
        for comp in frame.comps {
            let size = component_idct_size(frame.max_h, frame.max_v, comp.h, comp.v, min);
            // The upsampler's input and output groups (jdsample.c): integral ratios only.
            let (h_in, v_in) = (comp.h * size / min, comp.v * size / min);
            if !frame.max_h.is_multiple_of(h_in) || !frame.max_v.is_multiple_of(v_in) {
                return Err(JpegError::unsupported(format!(
                    "sampling {}x{} of {}x{} at scale 1/{denom}",
                    comp.h, comp.v, frame.max_h, frame.max_v
                )));
            }
            let stride = comp.bw * size;
            let mut samples = vec![0u8; stride * comp.bh * size];
            let quant = comp.quant.unwrap_or([0; 64]);
            let (wib, hib) = (comp.w.div_ceil(8), comp.hgt.div_ceil(8));
            let dc = |bx: usize, by: usize| i64::from(comp.coefs[(by * comp.bw + bx) * 64]);
            for by in 0..hib {
                let rows = smooth::Neighbours::rows(by, comp.v, hib, imcu_rows);
                for bx in 0..wib {
                    let b = (by * comp.bw + bx) * 64;
                    let mut block: [i16; 64] = comp.coefs[b..b + 64].try_into().expect("64");
                    if smoothing {
                        let col = |d: usize| (bx + d).saturating_sub(2).min(wib - 1);
                        let n = smooth::Neighbours {
                            dc: std::array::from_fn(|r| {
                                std::array::from_fn(|c| dc(col(c), rows[r]))
                            }),
                        };
                        smooth::smooth_block(&mut block, &n, &quant, &comp.coef_bits);
                    }
                    let out = &mut samples[by * size * stride + bx * size..];
                    idct::idct_scaled(&block, &quant, out, stride, size);
                }
            }
            drop(comp.coefs);
            let plane = upsample::Plane {
                data: &samples,
                stride,
                // `downsampled_width/height` after IDCT scaling.
                w: (frame.width * comp.h * size).div_ceil(frame.max_h * 8),
                h: (frame.height * comp.v * size).div_ceil(frame.max_v * 8),
            };
            let mut full = vec![0u8; w * h];
            upsample::upsample(
                &plane,
                frame.max_h / h_in,
                frame.max_v / v_in,
                min > 1,
                &mut full,
                w,
                h,
            );
            planes.push(full);
        }
        let data = match planes.len() {
            1 => planes.pop().expect("one plane"),
            _ if rgb => {
                let mut out = vec![0u8; w * h * 3];
                for (i, px) in out.chunks_exact_mut(3).enumerate() {
                    px.copy_from_slice(&[planes[0][i], planes[1][i], planes[2][i]]);
                }
                out
            }
            _ => {
                let mut out = vec![0u8; w * h * 3];
                color::YccTables::new().convert(&planes[0], &planes[1], &planes[2], &mut out);
                out
            }
        };
        Ok(JpegImage {
            width: w as u32,
            height: h as u32,
            channels: if data.len() == w * h { 1 } else { 3 },
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chroma_idct_sizes_follow_libjpeg_turbo() {
        // 4:2:0 at 1/2: luma 4x4, chroma enlarged to 8x8 (no upsampling left).
        assert_eq!(component_idct_size(2, 2, 2, 2, 4), 4);
        assert_eq!(component_idct_size(2, 2, 1, 1, 4), 8);
        // 4:2:0 at 1/8: luma 1x1, chroma 2x2.
        assert_eq!(component_idct_size(2, 2, 1, 1, 1), 2);
        // 4:2:2 at 1/2: chroma stays 4x4 (its vertical factor equals luma's).
        assert_eq!(component_idct_size(2, 1, 1, 1, 4), 4);
        // 4:4:4 and full size: unchanged.
        assert_eq!(component_idct_size(1, 1, 1, 1, 2), 2);
        assert_eq!(component_idct_size(2, 2, 1, 1, 8), 8);
    }
}
