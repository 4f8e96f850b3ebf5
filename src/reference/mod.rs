//! Plain CPU reference of every AlexNet op, forward and backward, in f64 with PyTorch
//! semantics. The GPU shaders are tested against these functions (`tests/`), and
//! `alexnet selftest` checks a user's adapter against them, so they favour being obviously
//! correct over being fast: every op is a direct transcription of its defining sum, with no
//! tiling or reordering tricks. They panic on inconsistent shapes, so a caller's typo fails
//! loudly instead of comparing against garbage.
//!
//! Layout: NCHW, contiguous, row-major; shapes are `[n, c, h, w]`.

mod conv;
mod elementwise;
mod loss;
mod norm;
mod pool;
mod precision;

pub use conv::*;
pub use elementwise::*;
pub use loss::*;
pub use norm::*;
pub use pool::*;
pub use precision::*;

/// Flat index of element `(n, c, h, w)` in a contiguous NCHW tensor of shape `s`.
pub(crate) fn idx4(s: [usize; 4], n: usize, c: usize, h: usize, w: usize) -> usize {
    ((n * s[1] + c) * s[2] + h) * s[3] + w
}

pub(crate) fn numel(s: [usize; 4]) -> usize {
    s[0] * s[1] * s[2] * s[3]
}

// ---------------------------------------------------------------------------
// Comparison helpers
// ---------------------------------------------------------------------------

// Helpers used by many tests.

/// Widens GPU f32 output for comparison with the f64 reference.
pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Normwise relative error ||a - b||_2 / max(||b||_2, tiny), a computed (f32 from the GPU), b reference.
///
/// A NaN or infinity in `a` makes the result NaN/inf, so `rel_err(..) < tol` fails as it should.
pub fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "rel_err: length mismatch");
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|&y| y * y).sum::<f64>().sqrt();
    diff / norm.max(f64::MIN_POSITIVE)
}

/// Largest absolute difference.
///
/// Returns NaN if any difference is NaN: `f64::max` would silently skip it and
/// let a NaN-producing kernel pass.
pub fn max_abs_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "max_abs_diff: length mismatch");
    let mut m: f64 = 0.0;
    for (&x, &y) in a.iter().zip(b) {
        let d = (x as f64 - y).abs();
        if d.is_nan() {
            return f64::NAN;
        }
        m = m.max(d);
    }
    m
}

/// How many times the normwise tolerance one element may be off, relative to the tensor's
/// RMS plus its own magnitude: rounding spreads error over every element, so the largest of
/// tens of thousands sits a few times above the norm's average, while one wrong element
/// (a missed tile edge, a bad index) sits far above it and would vanish in the norm.
pub const ELEMENT_FACTOR: f64 = 10.0;

/// Elements of `got` outside `ELEMENT_FACTOR · tol · (rms(want) + |want[i]|)` (NaN always
/// is), as `(index, got, want)`, in index order (llm.c's `validate_result` bound).
pub fn element_mismatches(got: &[f32], want: &[f64], tol: f64) -> Vec<(usize, f32, f64)> {
    assert_eq!(got.len(), want.len(), "element_mismatches: length mismatch");
    let rms = (want.iter().map(|w| w * w).sum::<f64>() / want.len().max(1) as f64).sqrt();
    got.iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (&g, &w))| {
            let bound = ELEMENT_FACTOR * tol * (rms + w.abs());
            let diff = (f64::from(g) - w).abs();
            diff.is_nan() || diff > bound
        })
        .map(|(i, (&g, &w))| (i, g, w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_element_off_fails_per_element_though_the_norm_passes() {
        let want: Vec<f64> = (0..35_000)
            .map(|i| ((i * 37 % 101) as f64 - 50.0) / 50.0)
            .collect();
        let mut got: Vec<f32> = want.iter().map(|&w| w as f32).collect();
        got[1234] += 2e-3;
        assert!(rel_err(&got, &want) < 1e-4, "the norm alone hides it");
        let bad = element_mismatches(&got, &want, 1e-4);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [1234]);
        got[1234] = f32::NAN;
        assert_eq!(element_mismatches(&got, &want, 1e-4).len(), 1);
    }
}
