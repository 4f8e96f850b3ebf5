//! Local response normalisation and batch normalisation.

use super::{idx4, numel};

// ---------------------------------------------------------------------------
// Local response normalisation
// ---------------------------------------------------------------------------

/// LRN hyper-parameters (AlexNet: size 5, alpha 1e-4, beta 0.75, k 2).
pub struct LrnParams {
    pub size: usize,
    pub alpha: f64,
    pub beta: f64,
    pub k: f64,
}

/// Channel window `[lo, hi]` (inclusive, clipped) that normalises channel `c`.
///
/// PyTorch pads the squared input with `size/2` channels in front and
/// `(size-1)/2` behind, then averages `size` consecutive channels, so for an
/// even size the window is lopsided: size 4 covers c-2 ..= c+1.
fn lrn_window(c: usize, size: usize, channels: usize) -> (usize, usize) {
    let lo = c.saturating_sub(size / 2);
    let hi = (c + (size - 1) / 2).min(channels - 1);
    (lo, hi)
}

/// s[c] = k + alpha/size * sum_{c' in window(c)} x[c']^2.
/// The divisor is always `size`, even where the window is clipped at the edge,
/// because PyTorch's avg_pool counts the zero padding.
fn lrn_scale(
    x: &[f64],
    xs: [usize; 4],
    p: &LrnParams,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
) -> f64 {
    let (lo, hi) = lrn_window(c, p.size, xs[1]);
    let sq: f64 = (lo..=hi).map(|cc| x[idx4(xs, n, cc, h, w)].powi(2)).sum();
    p.k + p.alpha / p.size as f64 * sq
}

/// PyTorch LocalResponseNorm: s[c] = k + alpha/size * sum_{c' = c - size/2 ..= c + (size-1)/2, clipped to [0,C)} x[c']^2 ; y = x * s^-beta
pub fn lrn_forward(x: &[f64], xs: [usize; 4], p: &LrnParams) -> Vec<f64> {
    assert_eq!(x.len(), numel(xs));
    assert!(p.size >= 1);
    let mut y = vec![0.0; x.len()];
    for n in 0..xs[0] {
        for c in 0..xs[1] {
            for h in 0..xs[2] {
                for w in 0..xs[3] {
                    let i = idx4(xs, n, c, h, w);
                    y[i] = x[i] * lrn_scale(x, xs, p, n, c, h, w).powf(-p.beta);
                }
            }
        }
    }
    y
}

/// dx[j] = dy[j] * s[j]^-beta
///       - 2*beta*alpha/size * x[j] * sum_{c : j in window(c)} dy[c] * x[c] * s[c]^(-beta-1)
///
/// (y[c] = x[c] s[c]^-beta depends on x[j] directly when c == j, and through
/// s[c] whenever j is inside c's window, with ds[c]/dx[j] = 2 alpha/size x[j].)
/// Computed by scattering from each c over its own window, which keeps the
/// window definition in one place (`lrn_window`).
pub fn lrn_backward(x: &[f64], xs: [usize; 4], dy: &[f64], p: &LrnParams) -> Vec<f64> {
    assert_eq!(x.len(), numel(xs));
    assert_eq!(dy.len(), x.len());
    let mut dx = vec![0.0; x.len()];
    for n in 0..xs[0] {
        for h in 0..xs[2] {
            for w in 0..xs[3] {
                for c in 0..xs[1] {
                    let i = idx4(xs, n, c, h, w);
                    let s = lrn_scale(x, xs, p, n, c, h, w);
                    dx[i] += dy[i] * s.powf(-p.beta);
                    let coef = -2.0 * p.beta * p.alpha / p.size as f64
                        * dy[i]
                        * x[i]
                        * s.powf(-p.beta - 1.0);
                    let (lo, hi) = lrn_window(c, p.size, xs[1]);
                    for cc in lo..=hi {
                        let j = idx4(xs, n, cc, h, w);
                        dx[j] += coef * x[j];
                    }
                }
            }
        }
    }
    dx
}

// ---------------------------------------------------------------------------
// BatchNorm2d
// ---------------------------------------------------------------------------

/// Per-channel batch mean and biased variance over (N, H, W).
pub fn batch_stats(x: &[f64], xs: [usize; 4]) -> (Vec<f64>, Vec<f64>) {
    let m = (xs[0] * xs[2] * xs[3]) as f64;
    let mut mean = vec![0.0; xs[1]];
    let mut var = vec![0.0; xs[1]];
    for c in 0..xs[1] {
        let values = || {
            (0..xs[0]).flat_map(move |n| {
                (0..xs[2]).flat_map(move |h| (0..xs[3]).map(move |w| x[idx4(xs, n, c, h, w)]))
            })
        };
        mean[c] = values().sum::<f64>() / m;
        var[c] = values().map(|v| (v - mean[c]).powi(2)).sum::<f64>() / m;
    }
    (mean, var)
}

/// y = (x − mean[c]) / √(var[c] + eps) · weight[c] + bias[c].
pub fn batch_norm_apply(
    x: &[f64],
    xs: [usize; 4],
    mean: &[f64],
    var: &[f64],
    weight: &[f64],
    bias: &[f64],
    eps: f64,
) -> Vec<f64> {
    let plane = xs[2] * xs[3];
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = (i / plane) % xs[1];
            (v - mean[c]) / (var[c] + eps).sqrt() * weight[c] + bias[c]
        })
        .collect()
}

/// Training-mode running statistics after one batch: PyTorch's momentum update with the
/// unbiased variance.
pub fn batch_norm_running(
    x: &[f64],
    xs: [usize; 4],
    running_mean: &[f64],
    running_var: &[f64],
    momentum: f64,
) -> (Vec<f64>, Vec<f64>) {
    let (mean, var) = batch_stats(x, xs);
    let m = (xs[0] * xs[2] * xs[3]) as f64;
    let rm = (0..xs[1])
        .map(|c| (1.0 - momentum) * running_mean[c] + momentum * mean[c])
        .collect();
    let rv = (0..xs[1])
        .map(|c| (1.0 - momentum) * running_var[c] + momentum * var[c] * m / (m - 1.0))
        .collect();
    (rm, rv)
}

/// Training-mode backward: (dx, dweight, dbias).
pub fn batch_norm_backward(
    x: &[f64],
    xs: [usize; 4],
    weight: &[f64],
    dy: &[f64],
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mean, var) = batch_stats(x, xs);
    let plane = xs[2] * xs[3];
    let m = (xs[0] * plane) as f64;
    let channel = |i: usize| (i / plane) % xs[1];
    let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let xhat = |i: usize| (x[i] - mean[channel(i)]) * inv_std[channel(i)];
    let mut dbias = vec![0.0; xs[1]];
    let mut dweight = vec![0.0; xs[1]];
    for i in 0..x.len() {
        dbias[channel(i)] += dy[i];
        dweight[channel(i)] += dy[i] * xhat(i);
    }
    let dx = (0..x.len())
        .map(|i| {
            let c = channel(i);
            weight[c] * inv_std[c] / m * (m * dy[i] - dbias[c] - xhat(i) * dweight[c])
        })
        .collect();
    (dx, dweight, dbias)
}
