//! Activations and dropout.

// ---------------------------------------------------------------------------
// ReLU
// ---------------------------------------------------------------------------

/// y = max(x, 0). NaN propagates (PyTorch's relu keeps NaN).
pub fn relu_forward(x: &[f64]) -> Vec<f64> {
    x.iter()
        .map(|&v| if v > 0.0 || v.is_nan() { v } else { 0.0 })
        .collect()
}

/// dx = dy where x > 0, else 0 (PyTorch: gradient 0 at x == 0).
pub fn relu_backward(x: &[f64], dy: &[f64]) -> Vec<f64> {
    assert_eq!(x.len(), dy.len());
    x.iter()
        .zip(dy)
        .map(|(&v, &d)| if v > 0.0 { d } else { 0.0 })
        .collect()
}

// ---------------------------------------------------------------------------
// LeakyReLU and ELU
// ---------------------------------------------------------------------------

/// LeakyReLU: y = x if x > 0 else slope·x.
pub fn leaky_relu_forward(x: &[f64], slope: f64) -> Vec<f64> {
    x.iter()
        .map(|&v| if v > 0.0 { v } else { slope * v })
        .collect()
}

/// dx = dy if x > 0 else slope·dy (PyTorch: slope at exactly 0).
pub fn leaky_relu_backward(x: &[f64], dy: &[f64], slope: f64) -> Vec<f64> {
    x.iter()
        .zip(dy)
        .map(|(&v, &d)| if v > 0.0 { d } else { slope * d })
        .collect()
}

/// ELU: y = x if x > 0 else alpha·(exp(x) − 1).
pub fn elu_forward(x: &[f64], alpha: f64) -> Vec<f64> {
    x.iter()
        .map(|&v| if v > 0.0 { v } else { alpha * v.exp_m1() })
        .collect()
}

/// dx = dy if x > 0 else dy·alpha·exp(x).
pub fn elu_backward(x: &[f64], dy: &[f64], alpha: f64) -> Vec<f64> {
    x.iter()
        .zip(dy)
        .map(|(&v, &d)| if v > 0.0 { d } else { d * alpha * v.exp() })
        .collect()
}

// ---------------------------------------------------------------------------
// Dropout
// ---------------------------------------------------------------------------

/// PCG-style integer hash, bit-for-bit the WGSL `pcg_hash` (u32 wrapping arithmetic).
pub fn pcg_hash(v: u32) -> u32 {
    let state = v.wrapping_mul(747796405).wrapping_add(2891336453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277803737);
    (word >> 22) ^ word
}

/// Drop threshold: an element is kept when its hash is `>= floor(p * 2^32)`, so
/// it is dropped with probability p. Saturates at u32::MAX (only reached as p -> 1).
fn dropout_threshold(p: f32) -> u32 {
    (p as f64 * 4294967296.0).floor().min(4294967295.0) as u32
}

/// Dropout's keep mask, computed exactly as the GPU shader does (see below). true = keep.
///
/// keep = pcg_hash(index ^ pcg_hash(seed)) >= threshold(p). p = 0 keeps all.
/// p >= 1 keeps nothing: the saturated threshold alone would still keep the
/// one-in-2^32 hash equal to u32::MAX, and 1/(1-p) is infinite, so p = 1 is
/// defined as "drop everything" (output exactly 0), matching PyTorch.
pub fn dropout_keep(seed: u32, index: u32, p: f32) -> bool {
    assert!(
        (0.0..=1.0).contains(&p),
        "dropout p must be in [0, 1], got {p}"
    );
    if p >= 1.0 {
        return false;
    }
    pcg_hash(index ^ pcg_hash(seed)) >= dropout_threshold(p)
}

/// Inverted-dropout scale 1/(1-p) for kept elements; 0 when p = 1 (nothing is kept).
/// Computed in f64 from the f32 p, so it differs from an f32 shader's scale
/// only by f32 rounding (~1e-7 relative).
fn dropout_scale(p: f32) -> f64 {
    if p >= 1.0 {
        0.0
    } else {
        1.0 / (1.0 - p as f64)
    }
}

/// y = keep ? x / (1-p) : 0, with element i using mask index i.
pub fn dropout_forward(x: &[f64], seed: u32, p: f32) -> Vec<f64> {
    let scale = dropout_scale(p);
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            if dropout_keep(seed, i as u32, p) {
                v * scale
            } else {
                0.0
            }
        })
        .collect()
}

/// dx = keep ? dy / (1-p) : 0 — the forward is linear in x, so its gradient
/// is the same mask and scale.
pub fn dropout_backward(dy: &[f64], seed: u32, p: f32) -> Vec<f64> {
    dropout_forward(dy, seed, p)
}
