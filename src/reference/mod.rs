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

pub use conv::*;
pub use elementwise::*;
pub use loss::*;
pub use norm::*;
pub use pool::*;

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
