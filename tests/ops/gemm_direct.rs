//! The direct GEMM (`shaders/gemm_direct.wgsl`, the tiled GEMM CPU drivers run) multiplies the
//! same operands and sums the products in the same order as the SIMT kernel (`gemm.wgsl`):
//! k ascending, folded every 64 terms from the start of each split. So on the same adapter
//! their results must be equal bit for bit — outputs, input, weight and bias gradients — for
//! every convolution case and every linear shape the GEMM takes, with and without split
//! reductions, in both precisions. (Both are also checked against the references in the other
//! modules: `gpus()` runs each.)

use alexnet_wgpu::ops::{GemmTiles, KernelPolicy, Precision};
use alexnet_wgpu::runtime::{Gpu, GpuOptions};

use crate::common::Rng;

/// An adapter whose tiled GEMM is the direct kernel or the SIMT one, with the given tiles,
/// small-batch paths (split-K forward) and precision.
fn gemm_gpu(direct: bool, tiles: GemmTiles, parallel: bool, precision: Precision) -> &'static Gpu {
    let gpu = Gpu::new(&GpuOptions::default()).expect("a wgpu adapter");
    KernelPolicy {
        gemm_tiles: Some(tiles),
        parallel_small_batches: Some(parallel),
        direct_gemm: Some(direct),
        precision,
        ..KernelPolicy::default()
    }
    .apply(&gpu)
    .unwrap();
    Box::leak(Box::new(gpu))
}

fn assert_same_bits(what: &str, direct: &[f32], simt: &[f32]) {
    assert_eq!(direct.len(), simt.len(), "{what}: length");
    let differing = direct
        .iter()
        .zip(simt)
        .filter(|(d, s)| d.to_bits() != s.to_bits())
        .count();
    let first = direct
        .iter()
        .zip(simt)
        .position(|(d, s)| d.to_bits() != s.to_bits());
    eprintln!("{what}: {differing} of {} elements differ", direct.len());
    assert!(
        differing == 0,
        "{what}: {differing} elements differ, the first at {first:?}: direct {:?}, SIMT {:?}",
        first.map(|i| direct[i]),
        first.map(|i| simt[i])
    );
}

/// Runs one case on both adapters and compares the output and the three gradients.
fn assert_kernels_agree(
    what: &str,
    [direct, simt]: [&'static Gpu; 2],
    run: impl Fn(&'static Gpu) -> (Vec<f32>, Vec<Vec<f32>>),
) {
    let ((y_d, g_d), (y_s, g_s)) = (run(direct), run(simt));
    assert_same_bits(&format!("{what} y"), &y_d, &y_s);
    for (name, (d, s)) in ["dx", "dweight", "dbias"].iter().zip(g_d.iter().zip(&g_s)) {
        assert_same_bits(&format!("{what} {name}"), d, s);
    }
}

#[test]
fn the_direct_gemm_gives_the_simt_kernels_bits() {
    let settings = [
        (GemmTiles::SMALL, false, Precision::F32),
        (GemmTiles::LARGE, true, Precision::F32),
        (GemmTiles::NARROW, true, Precision::Mixed),
    ];
    for (tiles, parallel, precision) in settings {
        let gpus = [true, false].map(|d| gemm_gpu(d, tiles, parallel, precision));
        let setting = format!("{tiles}, small-batch paths {parallel}, {precision}");
        for (seed, (xs, cfg)) in crate::conv2d::cases().into_iter().enumerate() {
            let what = format!("conv2d ({setting}) {xs:?} {cfg:?}");
            assert_kernels_agree(&what, gpus, |gpu| {
                let mut rng = Rng::new(40 + seed as u64);
                let (c, [x, w, b]) = crate::conv2d::random_case(gpu, &mut rng, xs, cfg);
                let dy = rng.normals(c.output.numel(), 1.0);
                c.evaluate(gpu, &[&x, &w, &b], &dy)
            });
        }
        // Batches of 64 and more: linear layers through the GEMM. Batches under 8: on CPU
        // drivers with subgroups the direct adapter's forward is `linear_forward_broadcast`,
        // which must fold its sums every 64 terms as `linear_forward` does (over 64 inputs,
        // or the fold is never tested); the parallel small-batch paths sum in a tree, in
        // another order, so those only without them.
        let mut shapes = vec![(64, 130, 65), (70, 50, 33), (96, 300, 10)];
        if !parallel {
            shapes.extend([(1, 200, 9), (5, 300, 17)]);
        }
        for (seed, (n, in_f, out_f)) in shapes.into_iter().enumerate() {
            let what = format!("linear ({setting}) {n}x{in_f} -> {out_f}");
            assert_kernels_agree(&what, gpus, |gpu| {
                let mut rng = Rng::new(60 + seed as u64);
                let (c, [x, w, b]) = crate::linear::random(gpu, &mut rng, n, in_f, out_f);
                let dy = rng.normals(c.output.numel(), 1.0);
                c.evaluate(gpu, &[&x, &w, &b], &dy)
            });
        }
    }
}
