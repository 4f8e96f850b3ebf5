//! Convolution and linear layers.

use super::{idx4, numel};

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
