//! Plain CPU reference of every AlexNet op, forward and backward, in f64 with
//! PyTorch semantics. The GPU shaders are tested against these functions, so
//! they favour being obviously correct over being fast: every op is a direct
//! transcription of its defining sum, with no tiling or reordering tricks.
//!
//! Layout: NCHW, contiguous, row-major; shapes are `[n, c, h, w]`.
#![allow(dead_code)]

/// Flat index of element `(n, c, h, w)` in a contiguous NCHW tensor of shape `s`.
fn idx4(s: [usize; 4], n: usize, c: usize, h: usize, w: usize) -> usize {
    ((n * s[1] + c) * s[2] + h) * s[3] + w
}

fn numel(s: [usize; 4]) -> usize {
    s[0] * s[1] * s[2] * s[3]
}

// ---------------------------------------------------------------------------
// Conv2d
// ---------------------------------------------------------------------------

/// Conv2d hyper-parameters (dilation is always 1 in AlexNet).
pub struct Conv2dParams {
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
}

/// Output shape of a conv: `OH = (H + 2*pad - KH) / stride + 1` (floor), same for W.
/// Panics on inconsistent shapes, so a test with a typo fails loudly instead of
/// comparing against garbage.
fn conv2d_out_shape(xs: [usize; 4], ws: [usize; 4], p: &Conv2dParams) -> [usize; 4] {
    let [n, cin, h, w] = xs;
    let [cout, cin_g, kh, kw] = ws;
    assert!(p.stride >= 1, "stride must be >= 1");
    assert!(p.groups >= 1, "groups must be >= 1");
    assert_eq!(cin % p.groups, 0, "in_channels must be divisible by groups");
    assert_eq!(
        cout % p.groups,
        0,
        "out_channels must be divisible by groups"
    );
    assert_eq!(
        cin_g,
        cin / p.groups,
        "weight dim 1 must be in_channels / groups"
    );
    assert!(
        h + 2 * p.padding >= kh && w + 2 * p.padding >= kw,
        "kernel larger than padded input"
    );
    let oh = (h + 2 * p.padding - kh) / p.stride + 1;
    let ow = (w + 2 * p.padding - kw) / p.stride + 1;
    [n, cout, oh, ow]
}

/// Input coordinate hit by output position `o` and kernel tap `k`:
/// `o*stride + k - pad`, or `None` when it falls in the zero padding.
fn conv_src(o: usize, k: usize, stride: usize, pad: usize, len: usize) -> Option<usize> {
    let v = (o * stride + k) as isize - pad as isize;
    if v >= 0 && (v as usize) < len {
        Some(v as usize)
    } else {
        None
    }
}

/// y[n,o,i,j] = b[o] + sum_{c in group(o), p, q} x[n, c, i*s+p-pad, j*s+q-pad] * w[o, c - g*cin_g, p, q]; zero padding.
/// weight shape [out, in/groups, kh, kw]. Returns y and its shape.
///
/// Group `g = o / cout_g` owns input channels `g*cin_g .. (g+1)*cin_g`.
pub fn conv2d_forward(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    b: &[f64],
    p: &Conv2dParams,
) -> (Vec<f64>, [usize; 4]) {
    let ys = conv2d_out_shape(xs, ws, p);
    assert_eq!(x.len(), numel(xs));
    assert_eq!(w.len(), numel(ws));
    assert_eq!(b.len(), ws[0]);
    let [n, cout, oh, ow] = ys;
    let [_, cin_g, kh, kw] = ws;
    let cout_g = cout / p.groups;
    let mut y = vec![0.0; numel(ys)];
    for ni in 0..n {
        for o in 0..cout {
            let g = o / cout_g;
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = b[o];
                    for cl in 0..cin_g {
                        let c = g * cin_g + cl;
                        for pi in 0..kh {
                            let Some(ih) = conv_src(i, pi, p.stride, p.padding, xs[2]) else {
                                continue;
                            };
                            for qi in 0..kw {
                                let Some(iw) = conv_src(j, qi, p.stride, p.padding, xs[3]) else {
                                    continue;
                                };
                                acc += x[idx4(xs, ni, c, ih, iw)] * w[idx4(ws, o, cl, pi, qi)];
                            }
                        }
                    }
                    y[idx4(ys, ni, o, i, j)] = acc;
                }
            }
        }
    }
    (y, ys)
}

/// Returns (dx, dw, db) for upstream gradient dy (shape of y).
///
/// Each term `x[..] * w[..]` of the forward sum contributes
/// `dy * w` to dx, `dy * x` to dw, and each `b[o]` contributes `dy` to db, so
/// this walks exactly the forward loop nest and scatters those products.
pub fn conv2d_backward(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    dy: &[f64],
    p: &Conv2dParams,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let ys = conv2d_out_shape(xs, ws, p);
    assert_eq!(x.len(), numel(xs));
    assert_eq!(w.len(), numel(ws));
    assert_eq!(dy.len(), numel(ys));
    let [n, cout, oh, ow] = ys;
    let [_, cin_g, kh, kw] = ws;
    let cout_g = cout / p.groups;
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    let mut db = vec![0.0; cout];
    for ni in 0..n {
        for o in 0..cout {
            let g = o / cout_g;
            for i in 0..oh {
                for j in 0..ow {
                    let d = dy[idx4(ys, ni, o, i, j)];
                    db[o] += d;
                    for cl in 0..cin_g {
                        let c = g * cin_g + cl;
                        for pi in 0..kh {
                            let Some(ih) = conv_src(i, pi, p.stride, p.padding, xs[2]) else {
                                continue;
                            };
                            for qi in 0..kw {
                                let Some(iw) = conv_src(j, qi, p.stride, p.padding, xs[3]) else {
                                    continue;
                                };
                                let xi = idx4(xs, ni, c, ih, iw);
                                let wi = idx4(ws, o, cl, pi, qi);
                                dx[xi] += d * w[wi];
                                dw[wi] += d * x[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw, db)
}

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
// Max pooling
// ---------------------------------------------------------------------------

/// MaxPool2d, no padding, floor mode. Returns (y, y shape, argmax) where argmax[i] is the flat index into x
/// (over the whole tensor) of the FIRST maximum in row-major window scan order (PyTorch's tie rule: a later
/// value replaces the max only if strictly greater; NaN propagates: a NaN is taken as the max).
///
/// Exactly PyTorch's scan: start from the window's first element, replace when
/// `v > max || v.is_nan()`. A consequence (as in PyTorch) is that with several
/// NaNs in one window the LAST NaN's index is recorded.
pub fn max_pool_forward(
    x: &[f64],
    xs: [usize; 4],
    kernel: usize,
    stride: usize,
) -> (Vec<f64>, [usize; 4], Vec<usize>) {
    assert_eq!(x.len(), numel(xs));
    assert!(kernel >= 1 && stride >= 1);
    assert!(
        xs[2] >= kernel && xs[3] >= kernel,
        "pool kernel larger than input"
    );
    let ys = [
        xs[0],
        xs[1],
        (xs[2] - kernel) / stride + 1,
        (xs[3] - kernel) / stride + 1,
    ];
    let mut y = vec![0.0; numel(ys)];
    let mut arg = vec![0usize; numel(ys)];
    for n in 0..ys[0] {
        for c in 0..ys[1] {
            for i in 0..ys[2] {
                for j in 0..ys[3] {
                    let mut best_i = idx4(xs, n, c, i * stride, j * stride);
                    let mut best = x[best_i];
                    for p in 0..kernel {
                        for q in 0..kernel {
                            let k = idx4(xs, n, c, i * stride + p, j * stride + q);
                            if x[k] > best || x[k].is_nan() {
                                best = x[k];
                                best_i = k;
                            }
                        }
                    }
                    let o = idx4(ys, n, c, i, j);
                    y[o] = best;
                    arg[o] = best_i;
                }
            }
        }
    }
    (y, ys, arg)
}

/// dx[argmax[i]] += dy[i]  (overlapping windows accumulate)
pub fn max_pool_backward(x_len: usize, argmax: &[usize], dy: &[f64]) -> Vec<f64> {
    assert_eq!(argmax.len(), dy.len());
    let mut dx = vec![0.0; x_len];
    for (&a, &d) in argmax.iter().zip(dy) {
        dx[a] += d;
    }
    dx
}

// ---------------------------------------------------------------------------
// LeakyReLU, ELU, Sigmoid and Tanh
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

/// Sigmoid: y = 1 / (1 + exp(−x)).
pub fn sigmoid_forward(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect()
}

/// dx = dy·σ(x)·(1 − σ(x)), computed from x (the shader uses its saved output).
pub fn sigmoid_backward(x: &[f64], dy: &[f64]) -> Vec<f64> {
    sigmoid_forward(x)
        .iter()
        .zip(dy)
        .map(|(&s, &d)| d * s * (1.0 - s))
        .collect()
}

/// Tanh: y = tanh(x).
pub fn tanh_forward(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| v.tanh()).collect()
}

/// dx = dy·(1 − tanh²(x)) = dy / cosh²(x), computed from x.
pub fn tanh_backward(x: &[f64], dy: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(dy)
        .map(|(&v, &d)| d / (v.cosh() * v.cosh()))
        .collect()
}

// ---------------------------------------------------------------------------
// Average pooling (count_include_pad = True, floor mode)
// ---------------------------------------------------------------------------

/// Output shape of AvgPool2d(kernel, stride, padding).
pub fn avg_pool_shape(xs: [usize; 4], kernel: usize, stride: usize, pad: usize) -> [usize; 4] {
    [
        xs[0],
        xs[1],
        (xs[2] + 2 * pad - kernel) / stride + 1,
        (xs[3] + 2 * pad - kernel) / stride + 1,
    ]
}

/// The input rows (or columns) inside window `i`, padding excluded.
fn avg_window(
    i: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    len: usize,
) -> std::ops::Range<usize> {
    let start = (i * stride).saturating_sub(pad);
    let end = (i * stride + kernel).saturating_sub(pad).min(len);
    start..end
}

/// y[n,c,i,j] = (1/K²) Σ x over the window inside the input (padding counts as zeros).
pub fn avg_pool_forward(
    x: &[f64],
    xs: [usize; 4],
    kernel: usize,
    stride: usize,
    pad: usize,
) -> Vec<f64> {
    assert_eq!(x.len(), numel(xs));
    let ys = avg_pool_shape(xs, kernel, stride, pad);
    let area = (kernel * kernel) as f64;
    let mut y = vec![0.0; numel(ys)];
    for n in 0..ys[0] {
        for c in 0..ys[1] {
            for i in 0..ys[2] {
                for j in 0..ys[3] {
                    let mut sum = 0.0;
                    for h in avg_window(i, kernel, stride, pad, xs[2]) {
                        for w in avg_window(j, kernel, stride, pad, xs[3]) {
                            sum += x[idx4(xs, n, c, h, w)];
                        }
                    }
                    y[idx4(ys, n, c, i, j)] = sum / area;
                }
            }
        }
    }
    y
}

/// The adjoint of `avg_pool_forward`: each window scatters dy/K² to its inputs.
pub fn avg_pool_backward(
    dy: &[f64],
    xs: [usize; 4],
    kernel: usize,
    stride: usize,
    pad: usize,
) -> Vec<f64> {
    let ys = avg_pool_shape(xs, kernel, stride, pad);
    assert_eq!(dy.len(), numel(ys));
    let area = (kernel * kernel) as f64;
    let mut dx = vec![0.0; numel(xs)];
    for n in 0..ys[0] {
        for c in 0..ys[1] {
            for i in 0..ys[2] {
                for j in 0..ys[3] {
                    let g = dy[idx4(ys, n, c, i, j)] / area;
                    for h in avg_window(i, kernel, stride, pad, xs[2]) {
                        for w in avg_window(j, kernel, stride, pad, xs[3]) {
                            dx[idx4(xs, n, c, h, w)] += g;
                        }
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

// ---------------------------------------------------------------------------
// Adaptive average pooling
// ---------------------------------------------------------------------------

/// Window `[floor(i*len/out), ceil((i+1)*len/out))` of output index `i`.
fn adaptive_window(i: usize, len: usize, out: usize) -> (usize, usize) {
    let start = i * len / out;
    let end = ((i + 1) * len).div_ceil(out);
    (start, end)
}

/// AdaptiveAvgPool2d: for output row i, rows start = floor(i*H/OH), end = ceil((i+1)*H/OH) (same for columns);
/// works for H < OH too (windows overlap / repeat).
///
/// y[n,c,i,j] = mean of x[n,c,h,w] over h in rows(i), w in cols(j).
pub fn adaptive_avg_pool_forward(
    x: &[f64],
    xs: [usize; 4],
    out_h: usize,
    out_w: usize,
) -> Vec<f64> {
    assert_eq!(x.len(), numel(xs));
    assert!(out_h >= 1 && out_w >= 1);
    let ys = [xs[0], xs[1], out_h, out_w];
    let mut y = vec![0.0; numel(ys)];
    for n in 0..xs[0] {
        for c in 0..xs[1] {
            for i in 0..out_h {
                let (h0, h1) = adaptive_window(i, xs[2], out_h);
                for j in 0..out_w {
                    let (w0, w1) = adaptive_window(j, xs[3], out_w);
                    let mut acc = 0.0;
                    for h in h0..h1 {
                        for w in w0..w1 {
                            acc += x[idx4(xs, n, c, h, w)];
                        }
                    }
                    y[idx4(ys, n, c, i, j)] = acc / ((h1 - h0) * (w1 - w0)) as f64;
                }
            }
        }
    }
    y
}

/// dx[n,c,h,w] = sum over outputs (i,j) whose window holds (h,w) of dy[n,c,i,j] / window_area(i,j).
pub fn adaptive_avg_pool_backward(
    xs: [usize; 4],
    out_h: usize,
    out_w: usize,
    dy: &[f64],
) -> Vec<f64> {
    let ys = [xs[0], xs[1], out_h, out_w];
    assert_eq!(dy.len(), numel(ys));
    let mut dx = vec![0.0; numel(xs)];
    for n in 0..xs[0] {
        for c in 0..xs[1] {
            for i in 0..out_h {
                let (h0, h1) = adaptive_window(i, xs[2], out_h);
                for j in 0..out_w {
                    let (w0, w1) = adaptive_window(j, xs[3], out_w);
                    let g = dy[idx4(ys, n, c, i, j)] / ((h1 - h0) * (w1 - w0)) as f64;
                    for h in h0..h1 {
                        for w in w0..w1 {
                            dx[idx4(xs, n, c, h, w)] += g;
                        }
                    }
                }
            }
        }
    }
    dx
}

// ---------------------------------------------------------------------------
// Linear
// ---------------------------------------------------------------------------

/// y[n,o] = b[o] + sum_i x[n,i] * w[o,i]   (x [n, inf], w [outf, inf])
pub fn linear_forward(
    x: &[f64],
    n: usize,
    in_features: usize,
    w: &[f64],
    out_features: usize,
    b: &[f64],
) -> Vec<f64> {
    assert_eq!(x.len(), n * in_features);
    assert_eq!(w.len(), out_features * in_features);
    assert_eq!(b.len(), out_features);
    let mut y = vec![0.0; n * out_features];
    for r in 0..n {
        for o in 0..out_features {
            let mut acc = b[o];
            for i in 0..in_features {
                acc += x[r * in_features + i] * w[o * in_features + i];
            }
            y[r * out_features + o] = acc;
        }
    }
    y
}

/// Returns (dx, dw, db):
/// dx[n,i] = sum_o dy[n,o] w[o,i];  dw[o,i] = sum_n dy[n,o] x[n,i];  db[o] = sum_n dy[n,o].
pub fn linear_backward(
    x: &[f64],
    n: usize,
    in_features: usize,
    w: &[f64],
    out_features: usize,
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    assert_eq!(x.len(), n * in_features);
    assert_eq!(w.len(), out_features * in_features);
    assert_eq!(dy.len(), n * out_features);
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    let mut db = vec![0.0; out_features];
    for r in 0..n {
        for o in 0..out_features {
            let d = dy[r * out_features + o];
            db[o] += d;
            for i in 0..in_features {
                dx[r * in_features + i] += d * w[o * in_features + i];
                dw[o * in_features + i] += d * x[r * in_features + i];
            }
        }
    }
    (dx, dw, db)
}

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
