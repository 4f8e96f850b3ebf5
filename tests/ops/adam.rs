use alexnet_wgpu::ops::adam::{adam_step, AdamHyper};
use alexnet_wgpu::runtime::{Program, Tensor, Uniform};

use crate::common::reference::{self as cpu, to_f64};
use crate::common::{assert_close, gpu, Fixture, Rng};

struct Run {
    after: Vec<Vec<f32>>,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
}

/// Runs one Adam step per gradient, rewriting the hyper-parameters (bias corrections) each step.
fn steps(param: &[f32], grads: &[Vec<f32>], lr: f64, wd: f64, decoupled: bool) -> Run {
    let gpu = gpu();
    let n = param.len();
    let t = |name: &str| Tensor::zeros(gpu, name, &[n]).unwrap();
    let (p, g, m, v) = (t("param"), t("grad"), t("exp_avg"), t("exp_avg_sq"));
    p.write_f32(gpu, param).unwrap();
    let hyper_at = |step| AdamHyper::at_step(lr, 0.9, 0.999, 1e-8, wd, decoupled, step);
    let hyper = Uniform::new(gpu, "adam", &hyper_at(1));
    let mut program = Program::new();
    program.extend(adam_step(gpu, &hyper, &g, &p, &m, &v).unwrap());
    let mut after = Vec::new();
    for (k, grad) in grads.iter().enumerate() {
        hyper.write(gpu, &hyper_at(k as u64 + 1));
        g.write_f32(gpu, grad).unwrap();
        program.run(gpu).unwrap();
        after.push(p.read_f32(gpu).unwrap());
    }
    Run {
        after,
        exp_avg: m.read_f32(gpu).unwrap(),
        exp_avg_sq: v.read_f32(gpu).unwrap(),
    }
}

#[test]
fn adam_and_adamw_match_cpu_reference() {
    let mut rng = Rng::new(19);
    let n = 999;
    let param = rng.normals(n, 1.0);
    let grads: Vec<Vec<f32>> = (0..4).map(|_| rng.normals(n, 1.0)).collect();
    for (decoupled, wd) in [(false, 5e-4), (true, 1e-2)] {
        let run = steps(&param, &grads, 1e-2, wd, decoupled);
        let a = cpu::AdamParams {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: wd,
            decoupled,
        };
        let (mut p, mut m, mut v) = (to_f64(&param), vec![0.0; n], vec![0.0; n]);
        for (k, g) in grads.iter().enumerate() {
            cpu::adam_step(&mut p, &mut m, &mut v, &to_f64(g), &a, k as i32 + 1);
            // A handful of f32 operations per element, including a sqrt and a division.
            assert_close(
                &format!("adam decoupled={decoupled} step {}", k + 1),
                &run.after[k],
                &p,
                1e-6,
            );
        }
        assert_close("adam exp_avg", &run.exp_avg, &m, 1e-6);
        assert_close("adam exp_avg_sq", &run.exp_avg_sq, &v, 1e-6);
    }
}

#[test]
fn adam_and_adamw_match_pytorch() {
    for (name, decoupled) in [("adam", false), ("adamw", true)] {
        let f = Fixture::load(name);
        let steps_n = f.meta_usize("steps");
        let grads: Vec<Vec<f32>> = (1..=steps_n).map(|i| f.f32(&format!("grad{i}"))).collect();
        let lr = f.meta_f64("lr");
        let wd = f.meta_f64("weight_decay");
        let run = steps(&f.f32("param"), &grads, lr, wd, decoupled);
        // PyTorch's float32 lies 1e-8..1e-7 from float64 on these.
        for (i, after) in run.after.iter().enumerate() {
            f.assert_matches(&format!("param_step{}", i + 1), after, 10.0, 2e-7);
        }
        f.assert_matches(&format!("exp_avg_step{steps_n}"), &run.exp_avg, 10.0, 2e-7);
        f.assert_matches(
            &format!("exp_avg_sq_step{steps_n}"),
            &run.exp_avg_sq,
            10.0,
            2e-7,
        );
    }
}
