use alexnet_wgpu::ops::adaptive_avg_pool::{adaptive_avg_pool_backward, adaptive_avg_pool_forward};

use crate::common::gradcheck::{self, GradCase};
use crate::common::reference::{self as cpu, to_f64};
use crate::common::{assert_close, gpu, Fixture, Rng};

fn case(shape: [usize; 4], out: (usize, usize), x: Vec<f32>) -> GradCase {
    let gpu = gpu();
    let out_shape = [shape[0], shape[1], out.0, out.1];
    gradcheck::build(
        gpu,
        vec![("x", shape.to_vec(), x)],
        &out_shape,
        |t, y, dy, g| {
            let f = adaptive_avg_pool_forward(gpu, &t[0], y).unwrap();
            let b = adaptive_avg_pool_backward(gpu, dy, &g[0]).unwrap();
            (gradcheck::program([f]), gradcheck::program([b]))
        },
    )
}

/// AlexNet at 224 (13 → pool → 6 is the identity-like case), sizes 6 does not divide, and
/// inputs smaller than the output, where windows repeat.
fn cases() -> Vec<([usize; 4], (usize, usize))> {
    vec![
        ([2, 3, 13, 13], (6, 6)),
        ([2, 2, 9, 7], (6, 6)),
        ([1, 3, 4, 5], (6, 6)),
        ([1, 2, 6, 6], (6, 6)),
        ([2, 1, 3, 2], (6, 6)),
        ([1, 2, 7, 10], (3, 4)),
    ]
}

#[test]
fn adaptive_avg_pool_forward_and_backward_match_cpu_reference() {
    let mut rng = Rng::new(9);
    for (shape, out) in cases() {
        let x = rng.normals(shape.iter().product(), 1.0);
        let c = case(shape, out, x.clone());
        let dy = rng.normals(c.output.numel(), 1.0);
        let (y, g) = c.evaluate(gpu(), &[&x], &dy);
        let y_ref = cpu::adaptive_avg_pool_forward(&to_f64(&x), shape, out.0, out.1);
        let dx = cpu::adaptive_avg_pool_backward(shape, out.0, out.1, &to_f64(&dy));
        // Means of a few values: PyTorch's float32 reaches ~5e-8.
        assert_close(
            &format!("adaptive_avg_pool {shape:?}->{out:?} y"),
            &y,
            &y_ref,
            1e-6,
        );
        assert_close(
            &format!("adaptive_avg_pool {shape:?}->{out:?} dx"),
            &g[0],
            &dx,
            1e-6,
        );
    }
}

#[test]
fn adaptive_avg_pool_backward_matches_finite_differences() {
    let mut rng = Rng::new(10);
    for (shape, out) in cases().into_iter().skip(1).take(3) {
        let c = case(shape, out, rng.normals(shape.iter().product(), 1.0));
        gradcheck::check(
            gpu(),
            &format!("adaptive_avg_pool {shape:?}"),
            &c,
            40,
            1e-2,
            1e-3,
        );
    }
}

#[test]
fn adaptive_avg_pool_matches_pytorch() {
    for name in [
        "adaptive_avg_pool_13",
        "adaptive_avg_pool_9x7",
        "adaptive_avg_pool_4x5",
        "adaptive_avg_pool_6",
    ] {
        let f = Fixture::load(name);
        let shape: [usize; 4] = f.shape("x").try_into().unwrap();
        let out = (f.meta_usize("out_h"), f.meta_usize("out_w"));
        let c = case(shape, out, f.f32("x"));
        let (y, g) = c.evaluate(gpu(), &[&f.f32("x")], &f.f32("dy"));
        f.assert_matches("y", &y, 10.0, 5e-7);
        f.assert_matches("dx", &g[0], 10.0, 5e-7);
    }
}
