//! Fine-tuning: frozen features, a backbone learning rate, and frozen layers across a resume.

use std::sync::Arc;

use alexnet_wgpu::data::{Dataset, Synthetic};
use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Init, Plan, PlanOptions};
use alexnet_wgpu::ops::cross_entropy::totals;
use alexnet_wgpu::train::trainer::TrainConfig;
use alexnet_wgpu::train::{train_step, Optimizer, OptimizerConfig};

use crate::common::{gpu, Fixture};
use crate::{fixture_path, run_train, scratch_dir};

/// torchvision-layout weights written by PyTorch (10 classes), fine-tuned for 7 classes: the
/// head re-initialised (then set to the fixture's values), the features frozen, the rest of
/// the classifier at a lower learning rate than the head, two SGD steps with momentum and
/// weight decay. Losses and every parameter match PyTorch with `alexnet_small`'s tolerances;
/// frozen tensors stay bit-identical to the file, and the backward pass plans no kernel for
/// a layer below the lowest one that trains.
#[test]
fn fine_tuning_with_frozen_features_and_a_backbone_lr_matches_pytorch() {
    use alexnet_wgpu::model::weights;
    let gpu = gpu();
    let f = Fixture::load("finetune_small");
    let file = fixture_path("finetune_pretrained.safetensors");
    let (pretrained, _) = weights::parse(&file, &std::fs::read(&file).unwrap()).unwrap();
    let config = AlexNetConfig {
        classes: 7,
        dropout: 0.0,
        ..AlexNetConfig::from_weights(&file, &pretrained).unwrap()
    };
    assert_eq!(config.channels, [16, 32, 48, 32, 32]);
    let mut model = AlexNet::new(gpu, config).unwrap();
    model.initialize(gpu, Init::PyTorch, 0).unwrap();
    let reinitialized: Vec<String> = model
        .load_pretrained(gpu, &file)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(reinitialized, ["classifier.6.weight", "classifier.6.bias"]);
    for which in ["weight", "bias"] {
        let key = format!("head.{which}");
        let name = format!("classifier.6.{which}");
        model
            .set_parameter(gpu, &name, &f.shape(&key), &f.f32(&key))
            .unwrap();
    }
    model.freeze(&["features".to_string()]).unwrap();

    let [n, _, h, w]: [usize; 4] = f.shape("input").try_into().unwrap();
    let options = PlanOptions {
        batch: n,
        image_h: h,
        image_w: w,
        training: true,
        input_grad: false,
    };
    let plan = Plan::new(gpu, &model, options).unwrap();
    let planned: Vec<&str> = plan
        .backward_spans
        .iter()
        .map(|(l, _)| l.as_str())
        .collect();
    assert_eq!(
        planned,
        [
            "classifier.6",
            "classifier.5",
            "classifier.4",
            "classifier.3",
            "classifier.2",
            "classifier.1"
        ],
        "the backward pass should stop at the lowest layer that trains"
    );
    plan.input.write_f32(gpu, &f.f32("input")).unwrap();
    let labels: Vec<u32> = f.i64("labels").iter().map(|&l| l as u32).collect();
    gpu.queue
        .write_buffer(plan.labels.buffer(), 0, bytemuck::cast_slice(&labels));
    let sgd = OptimizerConfig {
        lr: 0.01,
        lr_backbone: Some(0.002),
        momentum: 0.9,
        weight_decay: 5e-4,
        ..OptimizerConfig::sgd()
    };
    let mut optimizer = Optimizer::new(gpu, &model, sgd).unwrap();
    assert!(optimizer
        .state
        .iter()
        .all(|s| !s.param.starts_with("features")));
    for step in 1..=2 {
        train_step(gpu, &plan, &mut optimizer, step).unwrap();
        let loss = plan.totals.read_f32(gpu).unwrap()[totals::LOSS];
        f.assert_matches(&format!("loss{step}"), &[loss], 10.0, 1e-6);
    }
    for p in &model.params {
        let got = p.value.read_f32(gpu).unwrap();
        let key = format!("step2.{}", p.name);
        if p.name.starts_with("features.") {
            let before = &pretrained[&p.name].1;
            assert!(
                got.iter()
                    .zip(before)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "frozen {} changed",
                p.name
            );
            assert_eq!(got, f.f32(&key), "frozen {} differs from PyTorch's", p.name);
        } else {
            f.assert_matches(&key, &got, 10.0, 2e-7);
        }
    }
}

/// `--weights` + `--freeze` through the options type as `alexnet train` uses it: the head is
/// re-initialised for 4 classes, the checkpoint records what is frozen and holds no optimizer
/// state for it, a resume keeps it frozen (whatever the resuming options say), and the frozen
/// tensors end bit-identical to the file.
#[test]
fn a_fine_tuning_run_keeps_its_frozen_layers_across_a_resume() {
    use alexnet_wgpu::model::weights;
    use alexnet_wgpu::train::{checkpoint, TrainOptions};
    let gpu = gpu();
    let file = fixture_path("finetune_pretrained.safetensors");
    let out = scratch_dir("finetune-resume");
    let shapes = [6, 7, 8, 9];
    let train_set: Arc<dyn Dataset> =
        Arc::new(Synthetic::with_shapes(48, 64, 5, 0, &shapes).unwrap());
    let val_set: Arc<dyn Dataset> =
        Arc::new(Synthetic::with_shapes(16, 64, 5, 1, &shapes).unwrap());
    let options = TrainOptions {
        weights: Some(file.clone()),
        freeze: vec!["features".into()],
        epochs: Some(2),
        batch_size: Some(8),
        workers: Some(1),
        log_every: 1,
        out: out.clone(),
        ..Default::default()
    };
    let config = TrainConfig {
        show_progress: false,
        ..options.config(4).unwrap()
    };
    assert_eq!(config.model.channels, [16, 32, 48, 32, 32]);
    let stopped = TrainConfig {
        max_steps: Some(3),
        ..config.clone()
    };
    let first = run_train(gpu, &stopped, &train_set, &val_set, None);
    assert!(first.interrupted);
    let saved = checkpoint::read_config(&first.checkpoint).unwrap();
    assert_eq!(saved.freeze, ["features"]);
    let bytes = std::fs::read(&first.checkpoint).unwrap();
    let (tensors, _) = weights::parse(&first.checkpoint, &bytes).unwrap();
    assert!(tensors.keys().all(|k| !k.starts_with("optimizer.features")));
    assert!(tensors.contains_key("optimizer.classifier.6.weight.exp_avg"));

    let requested = TrainConfig {
        show_progress: false,
        ..TrainOptions {
            freeze: Vec::new(),
            ..options
        }
        .config(4)
        .unwrap()
    };
    let resumed = checkpoint::resumed_config(&first.checkpoint, requested).unwrap();
    assert_eq!(resumed.freeze, ["features"]);
    let rest = run_train(gpu, &resumed, &train_set, &val_set, Some(&first.checkpoint));
    assert!(!rest.interrupted && rest.epochs.len() == 2);

    let bytes = std::fs::read(&rest.checkpoint).unwrap();
    let (after, _) = weights::parse(&rest.checkpoint, &bytes).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let (before, _) = weights::parse(&file, &bytes).unwrap();
    for (name, (_, values)) in &before {
        let same = after[name]
            .1
            .iter()
            .zip(values)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        if name.starts_with("features.") {
            assert!(same, "frozen {name} changed");
        } else if name.starts_with("classifier.1.") || name.starts_with("classifier.4.") {
            assert!(!same, "{name} did not train");
        }
    }
    assert_eq!(after["classifier.6.weight"].0, [4, 64]);
}
