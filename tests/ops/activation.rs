use alexnet_wgpu::ops::activation::{activation_backward, activation_forward, Nonlinearity};

use crate::common::gradcheck::{self, GradCase};
use crate::common::reference::{self as cpu, to_f64};
use crate::common::{assert_close, gpu, Fixture, Rng};

use Nonlinearity::{Elu, LeakyRelu, Sigmoid, Tanh};

fn case(act: Nonlinearity, shape: &[usize], x: Vec<f32>) -> GradCase {
    let gpu = gpu();
    gradcheck::build(gpu, vec![("x", shape.to_vec(), x)], shape, |t, y, dy, g| {
        let f = activation_forward(gpu, act, &t[0], y).unwrap();
        let b = activation_backward(gpu, act, &t[0], y, dy, &g[0]).unwrap();
        (gradcheck::program([f]), gradcheck::program([b]))
    })
}

fn reference(act: Nonlinearity, x: &[f64], dy: &[f64]) -> (Vec<f64>, Vec<f64>) {
    match act {
        LeakyRelu { slope } => (
            cpu::leaky_relu_forward(x, slope.into()),
            cpu::leaky_relu_backward(x, dy, slope.into()),
        ),
        Elu { alpha } => (
            cpu::elu_forward(x, alpha.into()),
            cpu::elu_backward(x, dy, alpha.into()),
        ),
        Sigmoid => (cpu::sigmoid_forward(x), cpu::sigmoid_backward(x, dy)),
        Tanh => (cpu::tanh_forward(x), cpu::tanh_backward(x, dy)),
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
        LeakyRelu { slope: 0.01 },
        LeakyRelu { slope: 0.3 },
        Elu { alpha: 1.0 },
        Elu { alpha: 0.5 },
        Sigmoid,
        Tanh,
    ] {
        let mut x = rng.normals(shape.iter().product(), 3.0);
        // The kink (PyTorch: the negative branch's gradient at 0), and inputs whose exp
        // overflows f32: ELU's select, Sigmoid's and Tanh's saturation must not let that inf
        // or a NaN through.
        x[0] = 0.0;
        x[1] = -0.0;
        x[2] = 100.0;
        x[3] = -100.0;
        let c = case(act, &shape, x.clone());
        let dy = rng.normals(x.len(), 1.0);
        let (y, g) = c.evaluate(gpu(), &[&x], &dy);
        let (y_ref, dx_ref) = reference(act, &to_f64(&x), &to_f64(&dy));
        // LeakyReLU is one multiply (exact to rounding); ELU's and Sigmoid's exp and Tanh
        // are within a few ulp in WGSL (Vulkan requires 3 + 2·|x| ulp for exp): 1e-6
        // normwise.
        let tol = match act {
            LeakyRelu { .. } => 1e-7,
            _ => 1e-6,
        };
        // Normwise error could hide the saturated elements: check them one by one.
        for i in 0..4 {
            let (got, want) = (f64::from(y[i]), y_ref[i]);
            assert!(
                (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{act:?}: y[{i}] = {got} for x = {}, expected {want}",
                x[i]
            );
            let (got, want) = (f64::from(g[0][i]), dx_ref[i]);
            assert!(
                (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{act:?}: dx[{i}] = {got} for x = {}, expected {want}",
                x[i]
            );
        }
        assert_close(&format!("{act:?} y"), &y, &y_ref, tol);
        assert_close(&format!("{act:?} dx"), &g[0], &dx_ref, tol);
    }
}

#[test]
fn activation_backward_matches_finite_differences() {
    let mut rng = Rng::new(12);
    for act in [LeakyRelu { slope: 0.2 }, Elu { alpha: 1.0 }, Sigmoid, Tanh] {
        let x = away_from_zero(&mut rng, 2 * 3 * 4 * 5);
        let c = case(act, &[2, 3, 4, 5], x);
        // ELU's, Sigmoid's and Tanh's curvature adds eps²·f'''/6 to the central difference
        // (|f'''| ≤ 1 for ELU at x < 0, 1/8 for Sigmoid, 2 for Tanh).
        gradcheck::check(gpu(), &format!("{act:?}"), &c, 60, 1e-2, 1e-3);
    }
}

#[test]
fn activations_match_pytorch() {
    for name in ["leaky_relu", "elu", "sigmoid", "tanh"] {
        let f = Fixture::load(name);
        let act = match name {
            "leaky_relu" => LeakyRelu {
                slope: f.meta_f64("slope") as f32,
            },
            "elu" => Elu {
                alpha: f.meta_f64("alpha") as f32,
            },
            "sigmoid" => Sigmoid,
            _ => Tanh,
        };
        let c = case(act, &f.shape("x"), f.f32("x"));
        let (y, g) = c.evaluate(gpu(), &[&f.f32("x")], &f.f32("dy"));
        // LeakyReLU: PyTorch's float32 is correctly rounded (one multiply): a floor of
        // 1e-7. The others: PyTorch's own exp/tanh error ~6e-8; ours may be a few ulp: 20×
        // it, floor 1e-6.
        let (factor, floor) = if name == "leaky_relu" {
            (2.0, 1e-7)
        } else {
            (20.0, 1e-6)
        };
        f.assert_matches("y", &y, factor, floor);
        f.assert_matches("dx", &g[0], factor, floor);
    }
}
