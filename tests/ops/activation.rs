use alexnet_wgpu::ops::activation::{
    elu_backward, elu_forward, leaky_relu_backward, leaky_relu_forward,
};

use crate::common::gradcheck::{self, GradCase};
use crate::common::reference::{self as cpu, to_f64};
use crate::common::{assert_close, gpu, Fixture, Rng};

#[derive(Clone, Copy, Debug)]
enum Act {
    Leaky(f32),
    Elu(f32),
}

fn case(act: Act, shape: &[usize], x: Vec<f32>) -> GradCase {
    let gpu = gpu();
    gradcheck::build(gpu, vec![("x", shape.to_vec(), x)], shape, |t, y, dy, g| {
        let (f, b) = match act {
            Act::Leaky(s) => (
                leaky_relu_forward(gpu, s, &t[0], y).unwrap(),
                leaky_relu_backward(gpu, s, &t[0], dy, &g[0]).unwrap(),
            ),
            Act::Elu(a) => (
                elu_forward(gpu, a, &t[0], y).unwrap(),
                elu_backward(gpu, a, &t[0], y, dy, &g[0]).unwrap(),
            ),
        };
        (gradcheck::program([f]), gradcheck::program([b]))
    })
}

fn reference(act: Act, x: &[f64], dy: &[f64]) -> (Vec<f64>, Vec<f64>) {
    match act {
        Act::Leaky(s) => (
            cpu::leaky_relu_forward(x, s.into()),
            cpu::leaky_relu_backward(x, dy, s.into()),
        ),
        Act::Elu(a) => (
            cpu::elu_forward(x, a.into()),
            cpu::elu_backward(x, dy, a.into()),
        ),
    }
}

/// Values at least 0.05 away from the kink, so ±eps never crosses it.
fn away_from_zero(rng: &mut Rng, n: usize) -> Vec<f32> {
    rng.normals(n, 2.0)
        .into_iter()
        .map(|v| {
            if v.abs() < 0.05 {
                v + v.signum() * 0.05
            } else {
                v
            }
        })
        .collect()
}

#[test]
fn activations_match_cpu_reference_including_zero_and_large_inputs() {
    let mut rng = Rng::new(11);
    // An odd size that does not fill the last workgroup.
    let shape = [3, 5, 7, 9];
    for act in [
        Act::Leaky(0.01),
        Act::Leaky(0.3),
        Act::Elu(1.0),
        Act::Elu(0.5),
    ] {
        let mut x = rng.normals(shape.iter().product(), 3.0);
        // The kink (PyTorch: the negative branch's gradient at 0), and an input whose
        // exp overflows f32: ELU's select must not let that inf or NaN through.
        x[0] = 0.0;
        x[1] = -0.0;
        x[2] = 100.0;
        x[3] = -100.0;
        let c = case(act, &shape, x.clone());
        let dy = rng.normals(x.len(), 1.0);
        let (y, g) = c.evaluate(gpu(), &[&x], &dy);
        let (y_ref, dx_ref) = reference(act, &to_f64(&x), &to_f64(&dy));
        // LeakyReLU is one multiply (exact to rounding); ELU's exp is within a few ulp in
        // WGSL (Vulkan requires 3 + 2·|x| ulp): 1e-6 normwise.
        let tol = match act {
            Act::Leaky(_) => 1e-7,
            Act::Elu(_) => 1e-6,
        };
        assert_close(&format!("{act:?} y"), &y, &y_ref, tol);
        assert_close(&format!("{act:?} dx"), &g[0], &dx_ref, tol);
    }
}

#[test]
fn activation_backward_matches_finite_differences() {
    let mut rng = Rng::new(12);
    for act in [Act::Leaky(0.2), Act::Elu(1.0)] {
        let x = away_from_zero(&mut rng, 2 * 3 * 4 * 5);
        let c = case(act, &[2, 3, 4, 5], x);
        // ELU's curvature adds eps²·f''' error ≈ 1e-4·e^x/6 to the central difference.
        gradcheck::check(gpu(), &format!("{act:?}"), &c, 60, 1e-2, 1e-3);
    }
}

#[test]
fn activations_match_pytorch() {
    for (name, make) in [
        ("leaky_relu", Act::Leaky as fn(f32) -> Act),
        ("elu", Act::Elu as fn(f32) -> Act),
    ] {
        let f = Fixture::load(name);
        let coefficient = if name == "elu" { "alpha" } else { "slope" };
        let act = make(f.meta_f64(coefficient) as f32);
        let c = case(act, &f.shape("x"), f.f32("x"));
        let (y, g) = c.evaluate(gpu(), &[&f.f32("x")], &f.f32("dy"));
        // LeakyReLU: PyTorch's float32 is correctly rounded (one multiply): a floor of
        // 1e-7. ELU: PyTorch's own exp error ~6e-8; ours may be a few ulp: 20× it, floor 1e-6.
        let (factor, floor) = if name == "elu" {
            (20.0, 1e-6)
        } else {
            (2.0, 1e-7)
        };
        f.assert_matches("y", &y, factor, floor);
        f.assert_matches("dx", &g[0], factor, floor);
    }
}
