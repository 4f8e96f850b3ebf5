//! YCbCr → RGB as libjpeg's `jdcolor.c` (`ycc_rgb_convert`) computes it: 16-bit fixed-point
//! tables built once, rounding folded into the tables, then a clamp to 0..=255.

const SCALEBITS: u32 = 16;
const ONE_HALF: i32 = 1 << (SCALEBITS - 1);

/// `FIX(x)`: `x` scaled by 2^16 and rounded, as libjpeg's macro.
const fn fix(x: f64) -> i32 {
    (x * (1u32 << SCALEBITS) as f64 + 0.5) as i32
}

/// The four per-sample lookup tables of `build_ycc_rgb_table`.
pub(super) struct YccTables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

impl YccTables {
    pub(super) fn new() -> Self {
        let mut t = YccTables {
            cr_r: [0; 256],
            cb_b: [0; 256],
            cr_g: [0; 256],
            cb_g: [0; 256],
        };
        for i in 0..256 {
            let x = i as i32 - 128;
            // Cr=>R and Cb=>B: nearest integer to 1.402·x and 1.772·x.
            t.cr_r[i] = (fix(1.40200) * x + ONE_HALF) >> SCALEBITS;
            t.cb_b[i] = (fix(1.77200) * x + ONE_HALF) >> SCALEBITS;
            // Cr=>G and Cb=>G stay scaled; ONE_HALF is added once here, not per pixel.
            t.cr_g[i] = -fix(0.71414) * x;
            t.cb_g[i] = -fix(0.34414) * x + ONE_HALF;
        }
        t
    }

    /// Converts full-resolution planes to interleaved RGB (`out` holds 3 bytes per sample).
    pub(super) fn convert(&self, y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
        for (((px, &y), &cb), &cr) in out.chunks_exact_mut(3).zip(y).zip(cb).zip(cr) {
            let (y, cb, cr) = (i32::from(y), usize::from(cb), usize::from(cr));
            px[0] = clamp(y + self.cr_r[cr]);
            px[1] = clamp(y + ((self.cb_g[cb] + self.cr_g[cr]) >> SCALEBITS));
            px[2] = clamp(y + self.cb_b[cb]);
        }
    }
}

/// libjpeg's `sample_range_limit` (its table covers every value this can be given).
#[inline(always)]
fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutral_chroma_is_grey_and_constants_are_libjpegs() {
        assert_eq!(fix(1.40200), 91881);
        assert_eq!(fix(0.34414), 22554);
        let t = YccTables::new();
        let mut out = [0u8; 6];
        t.convert(&[0, 200], &[128, 128], &[128, 128], &mut out);
        assert_eq!(out, [0, 0, 0, 200, 200, 200]);
    }
}
