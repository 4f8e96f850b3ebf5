//! The cooperative-matrix GEMM (`ops::gemm_coop`) run, where the adapter offers a
//! configuration: every entry point (convolution forward, input and weight gradient; linear
//! layers, with split-K at small batches) against the CPU reference on the operands as the
//! configuration multiplies them (rounded to f16 for the f16 ones), and against the SIMT kernel
//! at the same precision. Where the adapter lacks a configuration (bookworm's lavapipe and
//! llvmpipe have none) its test says it was skipped, having run nothing for it. Mesa 26's
//! lavapipe runs the 8 × 8 f16 one, as CI does in `tools/lavapipe_coop.sh`'s root;
//! tools/device_bench.sh runs the rest on the GPU machines.

use std::sync::OnceLock;

use alexnet_wgpu::ops::{GemmCoop, KernelPolicy, Matrix, Precision};
use alexnet_wgpu::runtime::{Gpu, GpuOptions};

use crate::common::reference::{self as cpu, round_f16_all, to_f64};
use crate::common::{assert_close, Rng};

/// Sums of exact products (f16 × f16, or f32 × f32 to within f32 rounding) in f32, one matrix
/// accumulator per block in the hardware's order: the tolerance of the f32 convolution path.
const TOLERANCE: f64 = 1e-5;

/// Two devices for `coop`, one running it (`Matrix::On`) and one the SIMT kernel at the same
/// precision, or `None` (said on stderr) where the adapter cannot run it.
fn devices(coop: GemmCoop) -> Option<[&'static Gpu; 2]> {
    static DEVICES: OnceLock<[Option<[Gpu; 2]>; GemmCoop::ALL.len()]> = OnceLock::new();
    let all = DEVICES.get_or_init(|| GemmCoop::ALL.map(open));
    let at = GemmCoop::ALL.iter().position(|&c| c == coop).unwrap();
    match &all[at] {
        Some([on, off]) => Some([on, off]),
        None => {
            eprintln!("SKIPPED: the adapter cannot run the cooperative-matrix GEMM {coop}");
            None
        }
    }
}

fn open(coop: GemmCoop) -> Option<[Gpu; 2]> {
    let open = || Gpu::new(&GpuOptions::default()).expect("a wgpu adapter");
    let probe = open();
    if !coop.runs_on(&probe) {
        eprintln!(
            "'{}' lists cooperative matrices {:?}; the GEMM needs {coop} (see `alexnet devices`)",
            probe.adapter_name(),
            probe.cooperative_matrices()
        );
        return None;
    }
    // Where the adapter also runs an earlier configuration of the same precision, the GEMM
    // takes that one; this configuration never runs there.
    let first = GemmCoop::ALL
        .into_iter()
        .find(|c| c.precision() == coop.precision() && c.runs_on(&probe));
    if first != Some(coop) {
        eprintln!(
            "'{}' runs {first:?} for this precision, not {coop}",
            probe.adapter_name()
        );
        return None;
    }
    Some([Matrix::On, Matrix::Off].map(|matrix| {
        let gpu = open();
        let policy = KernelPolicy {
            precision: coop.precision(),
            matrix,
            ..KernelPolicy::default()
        };
        policy.apply(&gpu).unwrap();
        let chosen = GemmCoop::for_device(&gpu, &policy);
        assert_eq!(chosen, (matrix == Matrix::On).then_some(coop), "{matrix:?}");
        gpu
    }))
}

/// The operands as `coop` multiplies them.
fn operands(coop: GemmCoop, v: &[f32]) -> Vec<f64> {
    match coop.precision() {
        Precision::Mixed => to_f64(&round_f16_all(v)),
        Precision::F32 => to_f64(v),
    }
}

#[test]
fn coop_conv2d_equals_the_reference_and_the_simt_kernel() {
    for coop in GemmCoop::ALL {
        let Some([on, off]) = devices(coop) else {
            continue;
        };
        let mut rng = Rng::new(41);
        for (xs, cfg) in crate::conv2d::cases() {
            let (c, [x, w, b]) = crate::conv2d::random_case(on, &mut rng, xs, cfg);
            let (c_simt, _) = crate::conv2d::random_case(off, &mut rng, xs, cfg);
            let dy = rng.normals(c.output.numel(), 1.0);
            let (y, grads) = c.evaluate(on, &[&x, &w, &b], &dy);
            let (y_simt, grads_simt) = c_simt.evaluate(off, &[&x, &w, &b], &dy);
            let p = cpu::Conv2dParams {
                stride: cfg.stride,
                padding: cfg.padding,
                groups: cfg.groups,
            };
            let ws = cfg.weight_shape();
            let (xr, wr, dyr) = (operands(coop, &x), operands(coop, &w), operands(coop, &dy));
            let (y_ref, _) = cpu::conv2d_forward(&xr, xs, &wr, ws, &to_f64(&b), &p);
            let (dx, dw, _) = cpu::conv2d_backward(&xr, xs, &wr, ws, &dyr, &p);
            let what = format!("conv2d ({coop}) {xs:?} {cfg:?}");
            assert_close(&format!("{what} y"), &y, &y_ref, TOLERANCE);
            assert_close(&format!("{what} dx"), &grads[0], &dx, TOLERANCE);
            assert_close(&format!("{what} dweight"), &grads[1], &dw, TOLERANCE);
            for (name, got, simt) in [
                ("y", &y, &y_simt),
                ("dx", &grads[0], &grads_simt[0]),
                ("dweight", &grads[1], &grads_simt[1]),
            ] {
                assert_close(
                    &format!("{what} {name} vs SIMT"),
                    got,
                    &to_f64(simt),
                    TOLERANCE,
                );
            }
        }
    }
}

#[test]
fn coop_linear_equals_the_reference_at_every_batch() {
    // Batch 1 and 3 split the forward reduction on GPUs (split-K) where the layer runs the
    // GEMM (always under mixed precision; under f32 small batches may take the row GEMV); 700
    // inputs span many tiles of k; 130 outputs and 70 rows leave partial tiles.
    let shapes = [(1, 37, 5), (3, 700, 130), (70, 50, 33), (64, 300, 65)];
    for coop in GemmCoop::ALL {
        let Some([on, _]) = devices(coop) else {
            continue;
        };
        let mut rng = Rng::new(42);
        for (n, in_f, out_f) in shapes {
            let (c, [x, w, b]) = crate::linear::random(on, &mut rng, n, in_f, out_f);
            let dy = rng.normals(n * out_f, 1.0);
            let (y, g) = c.evaluate(on, &[&x, &w, &b], &dy);
            let (xr, wr) = (operands(coop, &x), operands(coop, &w));
            let y_ref = cpu::linear_forward(&xr, n, in_f, &wr, out_f, &to_f64(&b));
            let (dx, dw, _) = cpu::linear_backward(&xr, n, in_f, &wr, out_f, &operands(coop, &dy));
            let what = format!("linear ({coop}) {n}x{in_f}->{out_f}");
            assert_close(&format!("{what} y"), &y, &y_ref, TOLERANCE);
            assert_close(&format!("{what} dx"), &g[0], &dx, TOLERANCE);
            assert_close(&format!("{what} dweight"), &g[1], &dw, TOLERANCE);
        }
    }
}
