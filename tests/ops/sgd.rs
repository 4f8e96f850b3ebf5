use alexnet_wgpu::ops::sgd::{sgd_step, SgdHyper};
use alexnet_wgpu::runtime::{Program, Tensor, Uniform};

use crate::common::reference::{self as cpu, to_f64};
use crate::common::{assert_close, gpu, Fixture, Rng};

/// Runs `grads.len()` SGD steps from `param`; returns the parameters after each step and the
/// final momentum buffer.
fn steps(param: &[f32], grads: &[Vec<f32>], hyper: SgdHyper) -> (Vec<Vec<f32>>, Vec<f32>) {
    let gpu = gpu();
    let n = param.len();
    let p = Tensor::from_f32(gpu, "param", &[n], param).unwrap();
    let g = Tensor::zeros(gpu, "grad", &[n]).unwrap();
    let m = Tensor::zeros(gpu, "momentum", &[n]).unwrap();
    let hyper = Uniform::new(gpu, "hyper", &hyper);
    let mut program = Program::new();
    program.extend(sgd_step(gpu, &hyper, &g, &p, &m).unwrap());
    let mut after = Vec::new();
    for grad in grads {
        g.write_f32(gpu, grad).unwrap();
        program.run(gpu).unwrap();
        after.push(p.read_f32(gpu).unwrap());
    }
    (after, m.read_f32(gpu).unwrap())
}

#[test]
fn sgd_matches_cpu_reference() {
    let mut rng = Rng::new(17);
    let n = 1001;
    let param = rng.normals(n, 1.0);
    let grads: Vec<Vec<f32>> = (0..3).map(|_| rng.normals(n, 1.0)).collect();
    let hyper = SgdHyper {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.01,
    };
    let (after, momentum) = steps(&param, &grads, hyper);
    let s = cpu::SgdParams {
        lr: 0.1f32.into(),
        momentum: 0.9f32.into(),
        weight_decay: 0.01f32.into(),
    };
    let (mut p, mut buf) = (to_f64(&param), vec![0.0; n]);
    for (k, g) in grads.iter().enumerate() {
        cpu::sgd_step(&mut p, &mut buf, &to_f64(g), &s);
        // A few f32 multiply-adds per element: 1e-6.
        assert_close(&format!("sgd step {}", k + 1), &after[k], &p, 1e-6);
    }
    assert_close("sgd momentum buffer", &momentum, &buf, 1e-6);
}

#[test]
fn sgd_matches_pytorch() {
    let f = Fixture::load("sgd");
    let hyper = SgdHyper {
        lr: f.meta_f64("lr") as f32,
        momentum: f.meta_f64("momentum") as f32,
        weight_decay: f.meta_f64("weight_decay") as f32,
    };
    let (after, momentum) = steps(&f.f32("param"), &[f.f32("grad1"), f.f32("grad2")], hyper);
    // PyTorch's float32 lies ~3e-8 from float64 here.
    f.assert_matches("param_step1", &after[0], 10.0, 2e-7);
    f.assert_matches("param_step2", &after[1], 10.0, 2e-7);
    f.assert_matches("momentum_buffer_step2", &momentum, 10.0, 2e-7);
}
