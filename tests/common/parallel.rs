//! What the multi-device tests (tests/parallel.rs, tests/mpi.rs) compare against: a small
//! model and one device's training step on the whole batch.

use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Plan};
use alexnet_wgpu::ops::cross_entropy::totals;
use alexnet_wgpu::runtime::Gpu;
use alexnet_wgpu::train::{train_step, Optimizer, OptimizerConfig};

/// The original model at 1/16 width without dropout (its masks are drawn per device), and
/// SGD at lr 0.05.
pub fn small_model_and_sgd() -> (AlexNetConfig, OptimizerConfig) {
    let config = AlexNetConfig {
        dropout: 0.0,
        ..AlexNetConfig::original(10).scaled(0.0625)
    };
    let sgd = OptimizerConfig {
        lr: 0.05,
        ..OptimizerConfig::sgd()
    };
    (config, sgd)
}

/// One training step of `plan` on `images` and `labels` on one device; returns its
/// batch-mean loss.
pub fn one_device_step(
    gpu: &Gpu,
    plan: &Plan,
    optimizer: &mut Optimizer,
    images: &[f32],
    labels: &[u32],
) -> f64 {
    plan.input.write_f32(gpu, images).unwrap();
    plan.labels.write_u32(gpu, labels).unwrap();
    plan.totals.write_f32(gpu, &[0.0; totals::LEN]).unwrap();
    train_step(gpu, plan, optimizer, 0).unwrap();
    let t = plan.totals.read_f32(gpu).unwrap();
    f64::from(t[totals::LOSS_SUM]) / f64::from(t[totals::SAMPLES])
}

/// A step's loss on several devices within 1e-5 (relative) of one device's.
pub fn assert_same_loss(step: usize, got: f64, want: f64) {
    eprintln!("step {step}: loss {got:.6} on several devices, {want:.6} on one");
    assert!(
        (got - want).abs() <= 1e-5 * want.abs(),
        "step {step}: {got} vs {want}"
    );
}

/// Every parameter of `got` (on `got_gpu`) within 1e-5 of `want`'s (on `want_gpu`).
pub fn assert_same_parameters(
    what: &str,
    got_gpu: &Gpu,
    got: &AlexNet,
    want_gpu: &Gpu,
    want: &AlexNet,
) {
    for (p, q) in got.params.iter().zip(&want.params) {
        let reference: Vec<f64> = q
            .value
            .read_f32(want_gpu)
            .unwrap()
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let values = p.value.read_f32(got_gpu).unwrap();
        super::assert_close(&format!("{what}{}", p.name), &values, &reference, 1e-5);
    }
}
