//! Max, average and adaptive average pooling.

use super::{idx4, numel};

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
