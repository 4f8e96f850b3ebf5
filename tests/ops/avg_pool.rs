use alexnet_wgpu::ops::avg_pool::{avg_pool_backward, avg_pool_forward, AvgPoolConfig};

use crate::common::gradcheck::{self, GradCase};
use crate::common::reference::{self as cpu, to_f64};
use crate::common::{assert_close, gpu, Fixture, Rng};

fn case(shape: [usize; 4], cfg: AvgPoolConfig, x: Vec<f32>) -> GradCase {
    let gpu = gpu();
    let (oh, ow) = cfg.output_hw(shape[2], shape[3]).unwrap();
    let out = [shape[0], shape[1], oh, ow];
    gradcheck::build(gpu, vec![("x", shape.to_vec(), x)], &out, |t, y, dy, g| {
        let f = avg_pool_forward(gpu, &cfg, &t[0], y).unwrap();
        let b = avg_pool_backward(gpu, &cfg, dy, &g[0]).unwrap();
        (gradcheck::program([f]), gradcheck::program([b]))
    })
}

const fn pool(kernel: usize, stride: usize, padding: usize) -> AvgPoolConfig {
    AvgPoolConfig {
        kernel,
        stride,
        padding,
    }
}

#[test]
fn avg_pool_matches_cpu_reference_on_edge_shapes() {
    let mut rng = Rng::new(21);
    for (shape, cfg) in [
        // Overlapping; odd sizes where floor mode leaves the last row and column unread.
        ([2, 3, 9, 12], pool(3, 2, 0)),
        ([1, 2, 13, 13], pool(3, 2, 0)),
        // Non-overlapping with an odd width (last column unread).
        ([2, 2, 8, 7], pool(2, 2, 0)),
        // Padding: border windows divide by K² although part of them is padding.
        ([1, 3, 7, 6], pool(3, 2, 1)),
        ([2, 1, 5, 5], pool(3, 1, 1)),
    ] {
        let x = rng.normals(shape.iter().product(), 1.0);
        let c = case(shape, cfg, x.clone());
        let dy = rng.normals(c.output.numel(), 1.0);
        let (y, g) = c.evaluate(gpu(), &[&x], &dy);
        let (k, s, p) = (cfg.kernel, cfg.stride, cfg.padding);
        // Sums of at most 9 values then one division: 1e-6 normwise.
        assert_close(
            &format!("avg_pool {cfg:?} y"),
            &y,
            &cpu::avg_pool_forward(&to_f64(&x), shape, k, s, p),
            1e-6,
        );
        assert_close(
            &format!("avg_pool {cfg:?} dx"),
            &g[0],
            &cpu::avg_pool_backward(&to_f64(&dy), shape, k, s, p),
            1e-6,
        );
    }
}

#[test]
fn avg_pool_rejects_windows_that_do_not_fit() {
    assert!(pool(3, 2, 0).output_hw(2, 5).is_err());
    // PyTorch: padding at most half the kernel.
    assert!(pool(2, 2, 2).output_hw(8, 8).is_err());
    assert_eq!(pool(3, 2, 1).output_hw(7, 6).unwrap(), (4, 3));
}

#[test]
fn avg_pool_backward_matches_finite_differences() {
    let mut rng = Rng::new(22);
    for (shape, cfg) in [([2, 2, 9, 7], pool(3, 2, 0)), ([1, 2, 7, 6], pool(3, 2, 1))] {
        let x = rng.normals(shape.iter().product(), 1.0);
        let c = case(shape, cfg, x);
        // Linear: the central difference is exact up to f32 rounding of the loss.
        gradcheck::check(gpu(), &format!("avg_pool {cfg:?}"), &c, 60, 1e-2, 1e-3);
    }
}

#[test]
fn avg_pool_matches_pytorch() {
    for name in ["avg_pool_3x3s2", "avg_pool_2x2s2", "avg_pool_3x3s2_pad1"] {
        let f = Fixture::load(name);
        let cfg = pool(
            f.meta_usize("kernel"),
            f.meta_usize("stride"),
            f.meta_usize("padding"),
        );
        let shape: [usize; 4] = f.shape("x").try_into().unwrap();
        let c = case(shape, cfg, f.f32("x"));
        let (y, g) = c.evaluate(gpu(), &[&f.f32("x")], &f.f32("dy"));
        // Same sums in a possibly different order: 10× PyTorch's float32 error, floor 1e-7.
        f.assert_matches("y", &y, 10.0, 1e-7);
        f.assert_matches("dx", &g[0], 10.0, 1e-7);
    }
}
