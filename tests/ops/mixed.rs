//! Mixed precision (`Precision::Mixed`): the convolution and linear kernels must give exactly
//! the f32 reference's answer for operands rounded to f16 (products of two f16 values are
//! exact in f32, so only the f32 sums differ: the f32 path's tolerance), and stay within the
//! stated tolerance of the unrounded problem.

use alexnet_wgpu::ops::linear::linear_forward;

use crate::common::reference::{self as cpu, round_f16, round_f16_all, to_f64};
use crate::common::{assert_close, mixed_gpus, run, upload, Rng};

/// Mixed precision's stated tolerance against the f32 path, normwise: each operand carries a
/// relative rounding error of at most 2⁻¹¹ ≈ 4.9e-4, so a product at most twice that; sums
/// of many such errors of both signs stay below it in the norm.
pub const MIXED_TOLERANCE: f64 = 1e-3;

/// Each operand rounded to f16, as the mixed kernels load them.
fn rounded(v: &[f32]) -> Vec<f64> {
    to_f64(&round_f16_all(v))
}

#[test]
fn mixed_conv2d_computes_the_f16_rounded_problem_in_f32() {
    let mut rng = Rng::new(31);
    for (name, gpu) in mixed_gpus() {
        for (xs, cfg) in crate::conv2d::cases() {
            let (c, [x, w, b]) = crate::conv2d::random_case(gpu, &mut rng, xs, cfg);
            let dy = rng.normals(c.output.numel(), 1.0);
            let (y, grads) = c.evaluate(gpu, &[&x, &w, &b], &dy);
            let p = cpu::Conv2dParams {
                stride: cfg.stride,
                padding: cfg.padding,
                groups: cfg.groups,
            };
            let ws = cfg.weight_shape();
            let what = format!("conv2d ({name}) {xs:?} {cfg:?}");
            // The bias is added in f32, unrounded.
            let (xr, wr, dyr, b64) = (rounded(&x), rounded(&w), rounded(&dy), to_f64(&b));
            let (y_ref, _) = cpu::conv2d_forward(&xr, xs, &wr, ws, &b64, &p);
            let (dx, dw, _) = cpu::conv2d_backward(&xr, xs, &wr, ws, &dyr, &p);
            assert_close(&format!("{what} y (f16 operands)"), &y, &y_ref, 1e-5);
            assert_close(&format!("{what} dx (f16 operands)"), &grads[0], &dx, 1e-5);
            assert_close(
                &format!("{what} dweight (f16 operands)"),
                &grads[1],
                &dw,
                1e-5,
            );
            // The bias gradient is an f32 sum of dy: no GEMM, no rounding.
            let (x64, w64) = (to_f64(&x), to_f64(&w));
            let (y_f32, _) = cpu::conv2d_forward(&x64, xs, &w64, ws, &b64, &p);
            let (dx, dw, db) = cpu::conv2d_backward(&x64, xs, &w64, ws, &to_f64(&dy), &p);
            assert_close(&format!("{what} dbias"), &grads[2], &db, 1e-5);
            assert_close(&format!("{what} y (vs f32)"), &y, &y_f32, MIXED_TOLERANCE);
            assert_close(
                &format!("{what} dx (vs f32)"),
                &grads[0],
                &dx,
                MIXED_TOLERANCE,
            );
            assert_close(
                &format!("{what} dweight (vs f32)"),
                &grads[1],
                &dw,
                MIXED_TOLERANCE,
            );
        }
    }
}

#[test]
fn mixed_linear_computes_the_f16_rounded_problem_in_f32_at_every_batch() {
    let mut rng = Rng::new(32);
    // Small batches too: mixed precision runs them as GEMMs (no GEMV path rounds).
    let shapes = [(3, 10, 7), (1, 37, 5), (70, 50, 33), (64, 300, 65)];
    for (name, gpu) in mixed_gpus() {
        for (n, in_f, out_f) in shapes {
            let (c, [x, w, b]) = crate::linear::random(gpu, &mut rng, n, in_f, out_f);
            let dy = rng.normals(n * out_f, 1.0);
            let (y, g) = c.evaluate(gpu, &[&x, &w, &b], &dy);
            let what = format!("linear ({name}) {n}x{in_f}->{out_f}");
            let (xr, wr, b64) = (rounded(&x), rounded(&w), to_f64(&b));
            let y_ref = cpu::linear_forward(&xr, n, in_f, &wr, out_f, &b64);
            let (dx, dw, _) = cpu::linear_backward(&xr, n, in_f, &wr, out_f, &rounded(&dy));
            assert_close(&format!("{what} y (f16 operands)"), &y, &y_ref, 1e-6);
            assert_close(&format!("{what} dx (f16 operands)"), &g[0], &dx, 1e-6);
            assert_close(&format!("{what} dweight (f16 operands)"), &g[1], &dw, 1e-6);
            let (x64, w64) = (to_f64(&x), to_f64(&w));
            let y_f32 = cpu::linear_forward(&x64, n, in_f, &w64, out_f, &b64);
            let (dx, dw, db) = cpu::linear_backward(&x64, n, in_f, &w64, out_f, &to_f64(&dy));
            assert_close(&format!("{what} dbias"), &g[2], &db, 1e-6);
            assert_close(&format!("{what} y (vs f32)"), &y, &y_f32, MIXED_TOLERANCE);
            assert_close(&format!("{what} dx (vs f32)"), &g[0], &dx, MIXED_TOLERANCE);
            assert_close(
                &format!("{what} dweight (vs f32)"),
                &g[1],
                &dw,
                MIXED_TOLERANCE,
            );
        }
    }
}

/// A 1 → 1 linear layer with weight 1 and bias 0 returns its input as the kernel rounds it:
/// the shader's rounding must equal the reference's bit for bit — ties, subnormals, the
/// overflow threshold, infinities and NaN.
#[test]
fn the_shaders_f16_rounding_equals_the_references_bit_for_bit() {
    let mut rng = Rng::new(33);
    let mut x: Vec<f32> = vec![
        0.0,
        -0.0,
        1.0 + 1.0 / 2048.0, // a tie: to 1.0
        1.0 + 3.0 / 2048.0, // a tie: to 1 + 2/1024
        65504.0,
        65519.99,
        65520.0,
        -70000.0,
        5.96e-8,
        2.9e-8, // below half the smallest subnormal: 0
        8.94e-8,
        6.1e-5,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    x.extend(rng.normals(500, 1.0));
    x.extend(rng.normals(200, 1e-5)); // subnormal in f16
    x.extend(rng.normals(200, 3e4));
    for (name, gpu) in mixed_gpus() {
        let n = x.len();
        let xt = upload(gpu, "x", &[n, 1], &x);
        let w = upload(gpu, "w", &[1, 1], &[1.0]);
        let b = upload(gpu, "b", &[1], &[0.0]);
        let y = upload(gpu, "y", &[n, 1], &vec![0.0; n]);
        run(gpu, linear_forward(gpu, &xt, &w, &b, &y, false).unwrap());
        let got = y.read_f32(gpu).unwrap();
        for (i, (&v, &g)) in x.iter().zip(&got).enumerate() {
            let want = round_f16(v);
            assert!(
                g.to_bits() == want.to_bits() || (g == 0.0 && want == 0.0),
                "{name}: x[{i}] = {v:e}: the shader gave {g:e}, the reference {want:e}"
            );
        }
    }
}
