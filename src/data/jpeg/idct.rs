//! libjpeg's "islow" integer inverse DCT (`jidctint.c`, `JDCT_ISLOW`, the default
//! `dct_method`), reproduced operation for operation so the samples equal libjpeg-turbo's.
//!
//! The Loeffler–Ligtenberg–Moschytz algorithm with 12 multiplies, 13-bit constants
//! (`CONST_BITS`), two extra bits kept between the column and row passes (`PASS1_BITS`), and
//! libjpeg's range-limit table for the final clamp (which wraps values outside ±512 the way
//! the table's `& RANGE_MASK` index does).

const CONST_BITS: u32 = 13;
const PASS1_BITS: u32 = 2;

const FIX_0_298631336: i64 = 2446;
const FIX_0_390180644: i64 = 3196;
const FIX_0_541196100: i64 = 4433;
const FIX_0_765366865: i64 = 6270;
const FIX_0_899976223: i64 = 7373;
const FIX_1_175875602: i64 = 9633;
const FIX_1_501321110: i64 = 12299;
const FIX_1_847759065: i64 = 15137;
const FIX_1_961570560: i64 = 16069;
const FIX_2_053119869: i64 = 16819;
const FIX_2_562915447: i64 = 20995;
const FIX_3_072711026: i64 = 25172;

/// `DESCALE(x, n)`: divide by 2^n with rounding (arithmetic shift, as libjpeg's macro).
#[inline(always)]
fn descale(x: i64, n: u32) -> i64 {
    (x + (1 << (n - 1))) >> n
}

/// The post-IDCT range limit: `range_limit[x & RANGE_MASK]` with `range_limit` pointing at
/// `sample_range_limit + CENTERJSAMPLE`, i.e. the 10-bit wrapped value plus 128, clamped.
#[inline(always)]
fn range_limit(x: i64) -> u8 {
    let m = (x & 1023) as i32;
    let s = if m >= 512 { m - 1024 } else { m };
    (s + 128).clamp(0, 255) as u8
}

/// The odd and even halves shared by both passes; returns the eight outputs before descaling,
/// in order 0..8. `c` holds the eight inputs of one column or row (already dequantized).
#[inline(always)]
fn butterfly(c: [i64; 8]) -> [i64; 8] {
    // Even part: rotation of inputs 2 and 6, then inputs 0 and 4.
    let (z2, z3) = (c[2], c[6]);
    let z1 = (z2 + z3) * FIX_0_541196100;
    let tmp2 = z1 + z3 * -FIX_1_847759065;
    let tmp3 = z1 + z2 * FIX_0_765366865;
    let tmp0 = (c[0] + c[4]) << CONST_BITS;
    let tmp1 = (c[0] - c[4]) << CONST_BITS;
    let tmp10 = tmp0 + tmp3;
    let tmp13 = tmp0 - tmp3;
    let tmp11 = tmp1 + tmp2;
    let tmp12 = tmp1 - tmp2;

    // Odd part (Figure 8 of the paper, with common factors folded).
    let (mut t0, mut t1, mut t2, mut t3) = (c[7], c[5], c[3], c[1]);
    let mut z1 = t0 + t3;
    let mut z2 = t1 + t2;
    let mut z3 = t0 + t2;
    let mut z4 = t1 + t3;
    let z5 = (z3 + z4) * FIX_1_175875602;
    t0 *= FIX_0_298631336;
    t1 *= FIX_2_053119869;
    t2 *= FIX_3_072711026;
    t3 *= FIX_1_501321110;
    z1 *= -FIX_0_899976223;
    z2 *= -FIX_2_562915447;
    z3 *= -FIX_1_961570560;
    z4 *= -FIX_0_390180644;
    z3 += z5;
    z4 += z5;
    t0 += z1 + z3;
    t1 += z2 + z4;
    t2 += z2 + z3;
    t3 += z1 + z4;

    [
        tmp10 + t3,
        tmp11 + t2,
        tmp12 + t1,
        tmp13 + t0,
        tmp13 - t0,
        tmp12 - t1,
        tmp11 - t2,
        tmp10 - t3,
    ]
}

/// Dequantizes and inverse-transforms one 8×8 block (`coefs` and `quant` in natural order),
/// writing 8 rows of 8 samples at `out[r * stride..]`.
pub(super) fn idct_islow(coefs: &[i16; 64], quant: &[u16; 64], out: &mut [u8], stride: usize) {
    // libjpeg keeps pass 1's results in an `int` workspace.
    let mut ws = [0i32; 64];
    for col in 0..8 {
        let deq = |row: usize| i64::from(coefs[row * 8 + col]) * i64::from(quant[row * 8 + col]);
        // Columns with no AC terms have a flat output (the same value the full path gives).
        if (1..8).all(|row| coefs[row * 8 + col] == 0) {
            let dc = (deq(0) << PASS1_BITS) as i32;
            for row in 0..8 {
                ws[row * 8 + col] = dc;
            }
            continue;
        }
        let o = butterfly(std::array::from_fn(deq));
        for row in 0..8 {
            ws[row * 8 + col] = descale(o[row], CONST_BITS - PASS1_BITS) as i32;
        }
    }
    for row in 0..8 {
        let w = &ws[row * 8..row * 8 + 8];
        let dst = &mut out[row * stride..row * stride + 8];
        if w[1..].iter().all(|&v| v == 0) {
            dst.fill(range_limit(descale(i64::from(w[0]), PASS1_BITS + 3)));
            continue;
        }
        let o = butterfly(std::array::from_fn(|i| i64::from(w[i])));
        for (d, v) in dst.iter_mut().zip(o) {
            *d = range_limit(descale(v, CONST_BITS + PASS1_BITS + 3));
        }
    }
}

// The reduced-size IDCTs of libjpeg's `jidctred.c` (`jpeg_idct_4x4`, `_2x2`, `_1x1`), which
// libjpeg-turbo runs when asked to decode at 1/2, 1/4 or 1/8 scale (`scale_denom`, Pillow's
// `draft()`): each 8-point step is replaced by one that yields the averages of 2 (or 4)
// adjacent outputs. Their zero-AC shortcuts give the same values as the full formulas, so
// only the formulas are written here.
const FIX_0_211164243: i64 = 1730;
const FIX_0_509795579: i64 = 4176;
const FIX_0_601344887: i64 = 4926;
const FIX_0_720959822: i64 = 5906;
const FIX_0_850430095: i64 = 6967;
const FIX_1_061594337: i64 = 8697;
const FIX_1_272758580: i64 = 10426;
const FIX_1_451774981: i64 = 11893;
const FIX_2_172734803: i64 = 17799;
const FIX_3_624509785: i64 = 29692;

/// `jpeg_idct_4x4`'s 8-to-4 step on inputs `c` (column 4 unused); outputs before descaling.
#[inline(always)]
fn step4(c: [i64; 8]) -> [i64; 4] {
    let tmp0 = c[0] << (CONST_BITS + 1);
    let tmp2 = c[2] * FIX_1_847759065 + c[6] * -FIX_0_765366865;
    let (tmp10, tmp12) = (tmp0 + tmp2, tmp0 - tmp2);
    let (z1, z2, z3, z4) = (c[7], c[5], c[3], c[1]);
    let odd0 =
        z1 * -FIX_0_211164243 + z2 * FIX_1_451774981 + z3 * -FIX_2_172734803 + z4 * FIX_1_061594337;
    let odd2 =
        z1 * -FIX_0_509795579 + z2 * -FIX_0_601344887 + z3 * FIX_0_899976223 + z4 * FIX_2_562915447;
    [tmp10 + odd2, tmp12 + odd0, tmp12 - odd0, tmp10 - odd2]
}

/// `jpeg_idct_2x2`'s 8-to-2 step on inputs `c` (even terms but the DC unused).
#[inline(always)]
fn step2(c: [i64; 8]) -> [i64; 2] {
    let tmp10 = c[0] << (CONST_BITS + 2);
    let tmp0 = c[7] * -FIX_0_720959822
        + c[5] * FIX_0_850430095
        + c[3] * -FIX_1_272758580
        + c[1] * FIX_3_624509785;
    [tmp10 + tmp0, tmp10 - tmp0]
}

/// Dequantizes and inverse-transforms one 8×8 block to `size`×`size` samples (8, 4, 2 or 1:
/// libjpeg's full, 1/2, 1/4 and 1/8 scales), writing `size` rows at `out[r * stride..]`.
pub(super) fn idct_scaled(
    coefs: &[i16; 64],
    quant: &[u16; 64],
    out: &mut [u8],
    stride: usize,
    size: usize,
) {
    let deq = |i: usize| i64::from(coefs[i]) * i64::from(quant[i]);
    match size {
        8 => idct_islow(coefs, quant, out, stride),
        4 => {
            let mut ws = [0i64; 32];
            for col in 0..8 {
                let o = step4(std::array::from_fn(|row| deq(row * 8 + col)));
                for (row, v) in o.into_iter().enumerate() {
                    ws[row * 8 + col] = descale(v, CONST_BITS - PASS1_BITS + 1) as i32 as i64;
                }
            }
            for row in 0..4 {
                let o = step4(std::array::from_fn(|i| ws[row * 8 + i]));
                for (x, v) in o.into_iter().enumerate() {
                    out[row * stride + x] = range_limit(descale(v, CONST_BITS + PASS1_BITS + 4));
                }
            }
        }
        2 => {
            let mut ws = [0i64; 16];
            for col in 0..8 {
                let o = step2(std::array::from_fn(|row| deq(row * 8 + col)));
                for (row, v) in o.into_iter().enumerate() {
                    ws[row * 8 + col] = descale(v, CONST_BITS - PASS1_BITS + 2) as i32 as i64;
                }
            }
            for row in 0..2 {
                let o = step2(std::array::from_fn(|i| ws[row * 8 + i]));
                for (x, v) in o.into_iter().enumerate() {
                    out[row * stride + x] = range_limit(descale(v, CONST_BITS + PASS1_BITS + 5));
                }
            }
        }
        _ => out[0] = range_limit(descale(deq(0), 3)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dc_only_block_is_flat_and_level_shifted() {
        let mut coefs = [0i16; 64];
        coefs[0] = 16; // 16 * quant 8 / 8 = 16 above mid-grey
        let mut out = [0u8; 64];
        idct_islow(&coefs, &[8; 64], &mut out, 8);
        assert!(out.iter().all(|&v| v == 144));
    }

    #[test]
    fn range_limit_clamps_and_wraps_like_the_table() {
        assert_eq!(range_limit(0), 128);
        assert_eq!(range_limit(127), 255);
        assert_eq!(range_limit(300), 255);
        assert_eq!(range_limit(-128), 0);
        assert_eq!(range_limit(-400), 0);
        assert_eq!(range_limit(1024), 128); // wraps as `x & RANGE_MASK` does
    }

    #[test]
    fn scaled_idcts_of_a_dc_block_are_flat_and_average_the_full_one() {
        let mut coefs = [0i16; 64];
        coefs[0] = 16;
        for size in [4, 2, 1] {
            let mut out = [0u8; 64];
            idct_scaled(&coefs, &[8; 64], &mut out, 8, size);
            assert!((0..size).all(|r| out[r * 8..r * 8 + size].iter().all(|&v| v == 144)));
        }
        // A horizontal ramp: the 4-wide output is close to the mean of pairs of the 8-wide one.
        coefs[1] = -40;
        let (mut full, mut half) = ([0u8; 64], [0u8; 64]);
        idct_islow(&coefs, &[4; 64], &mut full, 8);
        idct_scaled(&coefs, &[4; 64], &mut half, 8, 4);
        for x in 0..4 {
            let pair = (i32::from(full[2 * x]) + i32::from(full[2 * x + 1])) / 2;
            assert!(
                (pair - i32::from(half[x])).abs() <= 1,
                "{x}: {pair} vs {}",
                half[x]
            );
        }
    }
}
