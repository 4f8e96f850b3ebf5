//! Chroma upsampling as libjpeg-turbo's `jdsample.c` does it with its default
//! `do_fancy_upsampling = TRUE`: triangle filters for 2:1 horizontal (`h2v1_fancy_upsample`),
//! 2:1 vertical (`h1v2_fancy_upsample`) and 2:1 both ways (`h2v2_fancy_upsample`, with its
//! alternating +8/+7 rounding bias), and plain replication (`int_upsample`) for other
//! integral factors or when a row is too narrow for the fancy filter.
//!
//! libjpeg feeds the filters with context rows across MCU-row boundaries and duplicates the
//! first and last sample rows (and columns) at the image edges; working on a whole decoded
//! plane, that is the same as clamping indices to the plane's real extent.

/// One component's decoded samples: `w`×`h` real samples in rows of `stride` bytes.
pub(super) struct Plane<'a> {
    pub data: &'a [u8],
    pub stride: usize,
    pub w: usize,
    pub h: usize,
}

impl Plane<'_> {
    #[inline(always)]
    fn at(&self, x: usize, y: usize) -> i32 {
        i32::from(self.data[y * self.stride + x])
    }
}

/// Upsamples `p` by integral factors (`fx`, `fy`) into `out`, an `out_w`×`out_h` plane (the
/// image's size, which the upsampled plane covers and may exceed by up to one factor).
/// Without `fancy` (libjpeg turns it off at 1/8 scale) every factor replicates.
pub(super) fn upsample(
    p: &Plane,
    fx: usize,
    fy: usize,
    fancy: bool,
    out: &mut [u8],
    out_w: usize,
    out_h: usize,
) {
    match (fx, fy) {
        _ if !fancy && (fx, fy) != (1, 1) => replicate(p, fx, fy, out, out_w, out_h),
        (1, 1) => {
            for y in 0..out_h {
                out[y * out_w..(y + 1) * out_w]
                    .copy_from_slice(&p.data[y * p.stride..y * p.stride + out_w]);
            }
        }
        (2, 1) if p.w > 2 => h2v1_fancy(p, out, out_w, out_h),
        (1, 2) => h1v2_fancy(p, out, out_w, out_h),
        (2, 2) if p.w > 2 => h2v2_fancy(p, out, out_w, out_h),
        _ => replicate(p, fx, fy, out, out_w, out_h),
    }
}

/// Horizontal 3/4–1/4 filter; the rounding alternates +1 (left output) and +2 (right).
fn h2v1_fancy(p: &Plane, out: &mut [u8], out_w: usize, out_h: usize) {
    let mut row = vec![0u8; 2 * p.w];
    for y in 0..out_h {
        for x in 0..p.w {
            let this = p.at(x, y) * 3;
            let left = p.at(x.saturating_sub(1), y);
            let right = p.at((x + 1).min(p.w - 1), y);
            row[2 * x] = ((this + left + 1) >> 2) as u8;
            row[2 * x + 1] = ((this + right + 2) >> 2) as u8;
        }
        // The edge columns: libjpeg copies the sample itself there.
        row[0] = p.at(0, y) as u8;
        row[2 * p.w - 1] = p.at(p.w - 1, y) as u8;
        out[y * out_w..(y + 1) * out_w].copy_from_slice(&row[..out_w]);
    }
}

/// Vertical 3/4–1/4 filter; bias +1 for the output row nearer the row above, +2 below.
fn h1v2_fancy(p: &Plane, out: &mut [u8], out_w: usize, out_h: usize) {
    for oy in 0..out_h {
        let y = oy / 2;
        let (other, bias) = if oy % 2 == 0 {
            (y.saturating_sub(1), 1)
        } else {
            ((y + 1).min(p.h - 1), 2)
        };
        for x in 0..out_w {
            out[oy * out_w + x] = ((p.at(x, y) * 3 + p.at(x, other) + bias) >> 2) as u8;
        }
    }
}

/// The separable triangle filter: vertical 3:1 column sums, then horizontal 3:1 with
/// rounding +8 for even output columns and +7 for odd ones.
fn h2v2_fancy(p: &Plane, out: &mut [u8], out_w: usize, out_h: usize) {
    let mut sums = vec![0i32; p.w];
    let mut row = vec![0u8; 2 * p.w];
    for oy in 0..out_h {
        let y = oy / 2;
        let other = if oy % 2 == 0 {
            y.saturating_sub(1)
        } else {
            (y + 1).min(p.h - 1)
        };
        for (x, s) in sums.iter_mut().enumerate() {
            *s = p.at(x, y) * 3 + p.at(x, other);
        }
        for x in 0..p.w {
            let this = sums[x];
            let last = sums[x.saturating_sub(1)];
            let next = sums[(x + 1).min(p.w - 1)];
            row[2 * x] = ((this * 3 + last + 8) >> 4) as u8;
            row[2 * x + 1] = ((this * 3 + next + 7) >> 4) as u8;
        }
        out[oy * out_w..(oy + 1) * out_w].copy_from_slice(&row[..out_w]);
    }
}

/// Box replication (`int_upsample`, and `h2v1_upsample`/`h2v2_upsample` for narrow rows).
fn replicate(p: &Plane, fx: usize, fy: usize, out: &mut [u8], out_w: usize, out_h: usize) {
    for oy in 0..out_h {
        let y = oy / fy;
        for ox in 0..out_w {
            out[oy * out_w + ox] = p.data[y * p.stride + ox / fx];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h2v2_fancy_uses_the_alternating_bias() {
        // A 3x1 plane [0, 16, 32] (rows duplicated at the edges): column sums 0, 64, 128.
        let data = [0u8, 16, 32];
        let p = Plane {
            data: &data,
            stride: 3,
            w: 3,
            h: 1,
        };
        let mut out = [0u8; 12];
        upsample(&p, 2, 2, true, &mut out, 6, 2);
        // (3·64 + 0 + 8) >> 4 = 12 and (3·64 + 128 + 7) >> 4 = 20.
        assert_eq!(&out[..6], &[0, 4, 12, 20, 28, 32]);
        assert_eq!(&out[..6], &out[6..]);
    }
}
