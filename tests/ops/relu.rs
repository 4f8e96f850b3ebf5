use alexnet_wgpu::ops::activation::{relu_backward, relu_forward};

use crate::common::gradcheck::{self, GradCase};
use crate::common::reference::{self as cpu, to_f64};
use crate::common::{assert_close, gpu, Fixture, Rng};

fn case(shape: &[usize], x: Vec<f32>) -> GradCase {
    let gpu = gpu();
    gradcheck::build(gpu, vec![("x", shape.to_vec(), x)], shape, |t, y, dy, g| {
        let f = relu_forward(gpu, &t[0], y).unwrap();
        let b = relu_backward(gpu, y, dy, &g[0]).unwrap();
        (gradcheck::program([f]), gradcheck::program([b]))
    })
}

/// Values at least 0.05 away from the kink, so ±eps never crosses it.
fn away_from_zero(rng: &mut Rng, n: usize) -> Vec<f32> {
    rng.normals(n, 1.0)
        .into_iter()
        .map(|v| {
            if v.abs() < 0.05 {
                v.signum() * 0.05 + v
            } else {
                v
            }
        })
        .collect()
}

#[test]
fn relu_forward_and_backward_match_cpu_reference() {
    let mut rng = Rng::new(3);
    let shape = [3, 5, 7, 9];
    let mut x = rng.normals(shape.iter().product(), 1.0);
    x[0] = 0.0; // PyTorch's gradient at exactly 0 is 0
    x[1] = -0.0;
    let c = case(&shape, x.clone());
    let dy = rng.normals(x.len(), 1.0);
    let (y, g) = c.evaluate(gpu(), &[&x], &dy);
    // Exact: a select, no arithmetic.
    assert_close("relu y", &y, &cpu::relu_forward(&to_f64(&x)), 0.0);
    assert_close(
        "relu dx",
        &g[0],
        &cpu::relu_backward(&to_f64(&x), &to_f64(&dy)),
        0.0,
    );
}

#[test]
fn relu_backward_matches_finite_differences() {
    let mut rng = Rng::new(4);
    let x = away_from_zero(&mut rng, 2 * 3 * 4 * 5);
    let c = case(&[2, 3, 4, 5], x);
    gradcheck::check(gpu(), "relu", &c, 40, 1e-2, 1e-3);
}

#[test]
fn relu_matches_pytorch() {
    let f = Fixture::load("relu");
    let c = case(&f.shape("x"), f.f32("x"));
    let (y, g) = c.evaluate(gpu(), &[&f.f32("x")], &f.f32("dy"));
    // PyTorch's float32 is exact here (0 error), and so must we be.
    f.assert_matches("y", &y, 1.0, 0.0);
    f.assert_matches("dx", &g[0], 1.0, 0.0);
}
