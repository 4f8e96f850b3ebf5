//! Softmax cross-entropy and the optimizers' updates.

// ---------------------------------------------------------------------------
// Softmax cross-entropy
// ---------------------------------------------------------------------------

/// Mean softmax cross-entropy over the batch, stable log-sum-exp. Returns (loss, dlogits) where dlogits is the
/// gradient of the mean loss: (softmax - onehot) / n.
///
/// loss = 1/n sum_r (lse(z_r) - z_r[label_r]), lse(z) = m + ln sum_k exp(z_k - m), m = max_k z_k
/// (subtracting m keeps exp from overflowing without changing the value).
pub fn cross_entropy(
    logits: &[f64],
    n: usize,
    classes: usize,
    labels: &[usize],
) -> (f64, Vec<f64>) {
    assert_eq!(logits.len(), n * classes);
    assert_eq!(labels.len(), n);
    assert!(n >= 1 && classes >= 1);
    let mut loss = 0.0;
    let mut d = vec![0.0; logits.len()];
    for r in 0..n {
        let z = &logits[r * classes..(r + 1) * classes];
        let label = labels[r];
        assert!(
            label < classes,
            "label {label} out of range for {classes} classes"
        );
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum_exp: f64 = z.iter().map(|&v| (v - m).exp()).sum();
        let lse = m + sum_exp.ln();
        loss += lse - z[label];
        for k in 0..classes {
            let softmax = (z[k] - m).exp() / sum_exp;
            let onehot = if k == label { 1.0 } else { 0.0 };
            d[r * classes + k] = (softmax - onehot) / n as f64;
        }
    }
    (loss / n as f64, d)
}

// ---------------------------------------------------------------------------
// SGD
// ---------------------------------------------------------------------------

/// SGD hyper-parameters (dampening 0, no Nesterov, as AlexNet trains).
pub struct SgdParams {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

/// PyTorch SGD: g = grad + wd*p; buf = momentum*buf + g (buf starts at zero, which equals PyTorch's buf = g on the first step when dampening is 0); p -= lr*buf.
///
/// With momentum 0, PyTorch keeps no buffer and steps by lr*g; here buf = g,
/// so the step is the same.
pub fn sgd_step(p: &mut [f64], momentum_buf: &mut [f64], grad: &[f64], s: &SgdParams) {
    assert_eq!(p.len(), grad.len());
    assert_eq!(p.len(), momentum_buf.len());
    for i in 0..p.len() {
        let g = grad[i] + s.weight_decay * p[i];
        momentum_buf[i] = s.momentum * momentum_buf[i] + g;
        p[i] -= s.lr * momentum_buf[i];
    }
}

/// Adam/AdamW hyper-parameters (PyTorch's `torch.optim.Adam` / `AdamW`, amsgrad off).
pub struct AdamParams {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW: decay the weights directly instead of adding wd·p to the gradient.
    pub decoupled: bool,
}

/// One Adam step `t` (1-based), written as PyTorch's `_single_tensor_adam`:
/// p -= lr / (1 - β1ᵗ) · m / (√v / √(1 - β2ᵗ) + eps).
pub fn adam_step(
    p: &mut [f64],
    m: &mut [f64],
    v: &mut [f64],
    grad: &[f64],
    a: &AdamParams,
    t: i32,
) {
    let bc1 = 1.0 - a.beta1.powi(t);
    let bc2_sqrt = (1.0 - a.beta2.powi(t)).sqrt();
    for i in 0..p.len() {
        let mut g = grad[i];
        if a.decoupled {
            p[i] *= 1.0 - a.lr * a.weight_decay;
        } else {
            g += a.weight_decay * p[i];
        }
        m[i] = a.beta1 * m[i] + (1.0 - a.beta1) * g;
        v[i] = a.beta2 * v[i] + (1.0 - a.beta2) * g * g;
        p[i] -= a.lr / bc1 * m[i] / (v[i].sqrt() / bc2_sqrt + a.eps);
    }
}
