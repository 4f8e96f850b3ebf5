//! NaN and Inf: a poisoned weight or input is caught on the GPU with its step and tensors,
//! the checkpoint on disk is kept, and `--on-nan rollback` recovers a diverging run.

use alexnet_wgpu::model::{AlexNet, Init, Plan, PlanOptions};
use alexnet_wgpu::train::trainer::TrainConfig;
use alexnet_wgpu::train::{
    train_step_checked, NonFiniteGuard, OnNonFinite, Optimizer, OptimizerConfig,
};
use alexnet_wgpu::Error;

use crate::common::{gpu, Rng};
use crate::support::{
    assert_mentions, rewrite_safetensors, run_training, tiny_config, tiny_model, tmpdir,
};

#[test]
fn a_nan_injected_into_a_weight_stops_training_with_step_and_layer_and_keeps_the_checkpoint() {
    let dir = tmpdir("nan-stop");
    // Two good steps, checkpointed as an interrupt would...
    let config = TrainConfig {
        max_steps: Some(2),
        ..tiny_config(dir.clone())
    };
    assert!(run_training(&config, None).unwrap().interrupted);
    let good = dir.join("checkpoint.safetensors");
    // ...then a NaN injected into one bias of the last layer.
    let poisoned = dir.join("poisoned.safetensors");
    rewrite_safetensors(&good, &poisoned, |t| {
        let b = t.iter_mut().find(|x| x.0 == "classifier.6.bias").unwrap();
        b.3[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let before = std::fs::read(&good).unwrap();
    let config = tiny_config(dir.clone());
    let e = run_training(&config, Some(&poisoned)).err().unwrap();
    let text = e.to_string();
    assert_mentions(
        &text,
        &[
            "non-finite value (NaN or Inf) at step 3",
            "loss",
            "classifier.6.bias.grad",
            "features.0.weight.grad",
            "training stopped",
            "--on-nan rollback",
        ],
    );
    match e {
        Error::NonFinite { step, tensors, .. } => {
            assert_eq!(step, 3);
            assert_eq!(tensors[0], "loss");
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }
    // The checkpoint on disk was not overwritten with NaN weights.
    assert_eq!(std::fs::read(&good).unwrap(), before);
}

#[test]
fn a_nan_in_the_input_is_flagged_on_the_gpu_and_read_only_with_the_metrics() {
    let gpu = gpu();
    let model = AlexNet::new(gpu, tiny_model()).unwrap();
    model.initialize(gpu, Init::Kaiming, 1).unwrap();
    let options = PlanOptions::training(2, 64);
    let plan = Plan::new(gpu, &model, options).unwrap();
    let guard = NonFiniteGuard::new(gpu, &model, &plan).unwrap();
    let mut optimizer = Optimizer::new(gpu, &model, OptimizerConfig::sgd()).unwrap();
    let mut rng = Rng::new(2);
    let mut input = rng.normals(plan.input.numel(), 1.0);
    plan.input.write_f32(gpu, &input).unwrap();
    for _ in 0..3 {
        train_step_checked(gpu, &plan, &mut optimizer, 1, Some(&guard)).unwrap();
    }
    assert_eq!(guard.read(gpu).unwrap(), None);
    // One NaN pixel at step 4; steps 5 and 6 do not move the flag.
    input[1234] = f32::NAN;
    plan.input.write_f32(gpu, &input).unwrap();
    for _ in 0..3 {
        train_step_checked(gpu, &plan, &mut optimizer, 1, Some(&guard)).unwrap();
    }
    let report = guard.read(gpu).unwrap().unwrap();
    eprintln!("NaN input: {report:?}");
    assert_eq!(report.step, 4);
    assert_eq!(report.tensors[0], "loss");
    assert!(report
        .tensors
        .contains(&"features.0.weight.grad".to_string()));
    guard.reset(gpu).unwrap();
    assert_eq!(guard.read(gpu).unwrap(), None);
}

#[test]
fn a_diverging_run_rolls_back_and_lowers_the_learning_rate() {
    let dir = tmpdir("nan-rollback");
    // SGD at lr 10 overflows to Inf/NaN within three steps, at lr 1 within four; lr 0.1 gets
    // through the epoch (four steps).
    let config = TrainConfig {
        optimizer: OptimizerConfig {
            lr: 10.0,
            ..OptimizerConfig::sgd()
        },
        on_nan: OnNonFinite::Rollback,
        ..tiny_config(dir.clone())
    };
    let outcome = run_training(&config, None).unwrap();
    for r in &outcome.rollbacks {
        eprintln!("rollback: {r:?}");
    }
    assert!(!outcome.rollbacks.is_empty(), "lr 10 did not diverge");
    assert!(outcome.rollbacks.len() <= 3);
    let last = outcome.rollbacks.last().unwrap();
    assert_eq!(last.to_step, 0, "rolled back to the initial checkpoint");
    assert!((last.lr_scale - 0.1f64.powi(outcome.rollbacks.len() as i32)).abs() < 1e-12);
    assert_eq!(outcome.rollbacks.len(), 2);
    assert_eq!(outcome.epochs.len(), 1);
    assert!(outcome.epochs.iter().all(|e| e.train_loss.is_finite()));
    assert!(outcome.epochs[0].lr < 10.0);
    // The checkpoint written after the rollback loads and is finite.
    let model = AlexNet::new(gpu(), tiny_model()).unwrap();
    model.load_weights(gpu(), &outcome.checkpoint).unwrap();
    for p in &model.params {
        assert!(
            p.value
                .read_f32(gpu())
                .unwrap()
                .iter()
                .all(|v| v.is_finite()),
            "{}",
            p.name
        );
    }
}
