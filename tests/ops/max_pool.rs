use alexnet_wgpu::ops::max_pool::{max_pool_backward, max_pool_forward, MaxPoolConfig};
use alexnet_wgpu::runtime::Tensor;

use crate::common::gradcheck::{self, GradCase};
use crate::common::reference::{self as cpu, to_f64};
use crate::common::{assert_close, gpu, Fixture, Rng};

fn case(shape: [usize; 4], cfg: MaxPoolConfig, x: Vec<f32>) -> (GradCase, Tensor) {
    let gpu = gpu();
    let (oh, ow) = cfg.output_hw(shape[2], shape[3]).unwrap();
    let out = [shape[0], shape[1], oh, ow];
    let argmax = Tensor::zeros_u32(gpu, "argmax", &out).unwrap();
    let c = gradcheck::build(gpu, vec![("x", shape.to_vec(), x)], &out, |t, y, dy, g| {
        let f = max_pool_forward(gpu, &cfg, &t[0], y, &argmax).unwrap();
        let b = max_pool_backward(gpu, &cfg, dy, &argmax, &g[0]).unwrap();
        (gradcheck::program([f]), gradcheck::program([b]))
    });
    (c, argmax)
}

/// Distinct values spaced by 0.1 in shuffled order: no ties, and ±eps never reorders them.
fn distinct(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|i| i as f32 * 0.1 - n as f32 * 0.05).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

const OVERLAPPING: MaxPoolConfig = MaxPoolConfig::ALEXNET;
const TILED: MaxPoolConfig = MaxPoolConfig {
    kernel: 2,
    stride: 2,
};

#[test]
fn max_pool_forward_and_backward_match_cpu_reference_with_ties() {
    let mut rng = Rng::new(7);
    for (shape, cfg) in [
        ([2, 3, 9, 11], OVERLAPPING),
        ([1, 2, 13, 13], OVERLAPPING),
        ([2, 2, 8, 7], TILED),
    ] {
        // Values from {0, 1, 2, 3}: most windows hold ties, which PyTorch breaks by taking
        // the first maximum in scan order; overlapping windows accumulate gradients.
        let x: Vec<f32> = (0..shape.iter().product())
            .map(|_| rng.below(4) as f32)
            .collect();
        let (c, argmax) = case(shape, cfg, x.clone());
        let dy = rng.normals(c.output.numel(), 1.0);
        let (y, g) = c.evaluate(gpu(), &[&x], &dy);
        let (y_ref, _, arg_ref) = cpu::max_pool_forward(&to_f64(&x), shape, cfg.kernel, cfg.stride);
        assert_close(&format!("max_pool {cfg:?} y"), &y, &y_ref, 0.0);
        // The shader stores in-plane indices; the reference indexes the whole tensor.
        let plane = shape[2] * shape[3];
        let out_plane = c.output.numel() / (shape[0] * shape[1]);
        let gpu_arg: Vec<usize> = argmax
            .read_u32(gpu())
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, &a)| (i / out_plane) * plane + a as usize)
            .collect();
        assert_eq!(gpu_arg, arg_ref, "max_pool {cfg:?}: argmax (tie rule)");
        let dx = cpu::max_pool_backward(x.len(), &arg_ref, &to_f64(&dy));
        // Sums of at most four dy values: 1e-6.
        assert_close(&format!("max_pool {cfg:?} dx"), &g[0], &dx, 1e-6);
    }
}

#[test]
fn max_pool_backward_matches_finite_differences() {
    let mut rng = Rng::new(8);
    for (shape, cfg) in [([2, 2, 9, 7], OVERLAPPING), ([1, 2, 6, 8], TILED)] {
        let x = distinct(&mut rng, shape.iter().product());
        let (c, _) = case(shape, cfg, x);
        gradcheck::check(gpu(), &format!("max_pool {cfg:?}"), &c, 60, 1e-2, 1e-3);
    }
}

#[test]
fn max_pool_matches_pytorch() {
    for name in ["max_pool_3x3s2_ties", "max_pool_3x3s2", "max_pool_2x2s2"] {
        let f = Fixture::load(name);
        let cfg = MaxPoolConfig {
            kernel: f.meta_usize("kernel"),
            stride: f.meta_usize("stride"),
        };
        let shape: [usize; 4] = f.shape("x").try_into().unwrap();
        let (c, _) = case(shape, cfg, f.f32("x"));
        let (y, g) = c.evaluate(gpu(), &[&f.f32("x")], &f.f32("dy"));
        // y is a selection (exact); dx sums ≤ 4 values where windows overlap.
        f.assert_matches("y", &y, 1.0, 0.0);
        f.assert_matches("dx", &g[0], 10.0, 1e-7);
    }
}
