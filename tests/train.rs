//! Training end to end: weights crossing to and from PyTorch, initialisation, the loop on the
//! embedded data, the full-width model, and resuming from a checkpoint.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use alexnet_wgpu::data::{Augment, Dataset, OnBadSample, Synthetic};
use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Init, Plan, PlanOptions};
use alexnet_wgpu::ops::cross_entropy::totals;
use alexnet_wgpu::runtime::Gpu;
use alexnet_wgpu::train::trainer::{train, TrainConfig};
use alexnet_wgpu::train::{train_step, OnNonFinite, Optimizer, OptimizerConfig, Schedule};
use common::{assert_close, gpu, Fixture, Rng};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alexnet-wgpu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The model of `tests/fixtures/pytorch_state_dict*.safetensors`.
fn state_dict_config() -> AlexNetConfig {
    AlexNetConfig {
        channels: [8, 16, 24, 24, 16],
        fc_width: 64,
        ..AlexNetConfig::original(10)
    }
}

fn eval_logits(gpu: &Gpu, model: &AlexNet, input: &[f32], batch: usize, size: usize) -> Vec<f32> {
    let options = PlanOptions {
        batch,
        image_h: size,
        image_w: size,
        training: false,
        input_grad: false,
    };
    let plan = Plan::new(gpu, model, options).unwrap();
    plan.input.write_f32(gpu, input).unwrap();
    plan.forward.run(gpu).unwrap();
    plan.logits.read_f32(gpu).unwrap()
}

#[test]
fn weights_written_by_pytorch_load_and_give_pytorchs_logits() {
    let gpu = gpu();
    let model = AlexNet::new(gpu, state_dict_config()).unwrap();
    model
        .load_weights(gpu, &fixture_path("pytorch_state_dict.safetensors"))
        .unwrap();
    let io = Fixture::load("pytorch_state_dict_logits");
    let logits = eval_logits(gpu, &model, &io.f32("input"), 2, 67);
    io.assert_matches("logits", &logits, 10.0, 1e-6);
}

#[test]
fn weights_written_here_load_in_pytorch() {
    let gpu = gpu();
    let model = AlexNet::new(gpu, state_dict_config()).unwrap();
    model.initialize(gpu, Init::PyTorch, 7).unwrap();
    let dir = scratch_dir("export");
    let weights = dir.join("weights.safetensors");
    model.save_weights(gpu, &weights).unwrap();

    // Reloading our own file gives the same parameters, bit for bit.
    let again = AlexNet::new(gpu, state_dict_config()).unwrap();
    again.load_weights(gpu, &weights).unwrap();
    for (a, b) in model.params.iter().zip(&again.params) {
        assert_eq!(
            a.value.read_f32(gpu).unwrap(),
            b.value.read_f32(gpu).unwrap(),
            "{}",
            a.name
        );
    }

    // PyTorch loads it with strict=True and computes the same logits (when PyTorch is
    // installed; CI has no PyTorch, so there this half reports itself skipped).
    let input = Rng::new(5).normals(2 * 3 * 67 * 67, 1.0);
    let logits = eval_logits(gpu, &model, &input, 2, 67);
    let io = dir.join("io.safetensors");
    write_io(&io, &input, &logits);
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools");
    let has_torch = std::process::Command::new("python3")
        .args(["-c", "import torch, safetensors"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_torch {
        eprintln!("skipped the PyTorch half: python3 with torch and safetensors is not installed");
        return;
    }
    let out = std::process::Command::new("python3")
        .arg(tools.join("check_weights.py"))
        .args([&weights, &io])
        .current_dir(&tools)
        .output()
        .unwrap();
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "PyTorch rejected or disagreed with our weights file"
    );
}

fn write_io(path: &Path, input: &[f32], logits: &[f32]) {
    use safetensors::tensor::{Dtype, TensorView};
    let cfg = state_dict_config();
    let config = format!(
        r#"{{"channels": {:?}, "fc": {}, "classes": {}}}"#,
        cfg.channels, cfg.fc_width, cfg.classes
    );
    let input_bytes: Vec<u8> = bytemuck::cast_slice(input).to_vec();
    let logit_bytes: Vec<u8> = bytemuck::cast_slice(logits).to_vec();
    let views = vec![
        (
            "input",
            TensorView::new(Dtype::F32, vec![2, 3, 67, 67], &input_bytes).unwrap(),
        ),
        (
            "logits",
            TensorView::new(Dtype::F32, vec![2, 10], &logit_bytes).unwrap(),
        ),
    ];
    let meta = std::collections::HashMap::from([("config".to_string(), config)]);
    safetensors::serialize_to_file(views, Some(meta), path).unwrap();
}

#[test]
fn weight_file_errors_name_the_tensor_and_both_shapes() {
    let gpu = gpu();
    let dir = scratch_dir("bad-weights");
    let small = AlexNet::new(gpu, state_dict_config()).unwrap();
    let path = dir.join("w.safetensors");
    small.save_weights(gpu, &path).unwrap();

    let wider = AlexNet::new(
        gpu,
        AlexNetConfig {
            fc_width: 32,
            ..state_dict_config()
        },
    )
    .unwrap();
    let text = wider.load_weights(gpu, &path).err().unwrap().to_string();
    assert!(
        text.contains("classifier.1.weight")
            && text.contains("[64, 576]")
            && text.contains("[32, 576]"),
        "{text}"
    );

    let tv = AlexNet::new(
        gpu,
        AlexNetConfig {
            channels: [8, 16, 24, 24, 16],
            fc_width: 64,
            ..AlexNetConfig::torchvision(10)
        },
    )
    .unwrap();
    let text = tv.load_weights(gpu, &path).err().unwrap().to_string();
    assert!(
        text.contains("features.") && text.contains("not parameters of this model"),
        "{text}"
    );

    let text = small.load_weights(gpu, &dir).err().unwrap().to_string();
    assert!(text.contains("is a folder"), "{text}");

    let bytes = std::fs::read(&path).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let text = small
        .load_weights(gpu, &truncated)
        .err()
        .unwrap()
        .to_string();
    assert!(
        text.contains("truncated.safetensors") && text.contains("not a valid safetensors"),
        "{text}"
    );

    let text = small
        .load_weights(gpu, &dir.join("missing.safetensors"))
        .err()
        .unwrap()
        .to_string();
    assert!(text.contains("missing.safetensors"), "{text}");
}

#[test]
fn initialisation_follows_pytorch_and_the_paper_and_is_reproducible() {
    let gpu = gpu();
    let model = AlexNet::new(gpu, state_dict_config()).unwrap();
    model.initialize(gpu, Init::Paper, 3).unwrap();
    let ones = [
        "features.4.bias",
        "features.10.bias",
        "features.12.bias",
        "classifier.1.bias",
        "classifier.4.bias",
    ];
    for p in &model.params {
        let v = p.value.read_f32(gpu).unwrap();
        if p.name.ends_with("bias") {
            let want = if ones.contains(&p.name.as_str()) {
                1.0
            } else {
                0.0
            };
            assert!(
                v.iter().all(|&b| b == want),
                "{}: paper bias should be {want}",
                p.name
            );
        } else {
            let std =
                (v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            assert!(
                (std - 0.01).abs() < 0.002,
                "{}: paper weight std {std}",
                p.name
            );
        }
    }
    model.initialize(gpu, Init::PyTorch, 3).unwrap();
    let w = model
        .param("classifier.1.weight")
        .unwrap()
        .value
        .read_f32(gpu)
        .unwrap();
    let bound = 1.0 / (576f32).sqrt();
    assert!(w.iter().all(|v| v.abs() <= bound) && w.iter().any(|v| v.abs() > 0.9 * bound));
    let again = AlexNet::new(gpu, state_dict_config()).unwrap();
    again.initialize(gpu, Init::PyTorch, 3).unwrap();
    assert_eq!(
        w,
        again
            .param("classifier.1.weight")
            .unwrap()
            .value
            .read_f32(gpu)
            .unwrap()
    );
}

/// A small but complete run: the seed's topology at a quarter of its width on 64×64 images.
fn demo_config(out_dir: PathBuf, epochs: usize) -> TrainConfig {
    TrainConfig {
        model: AlexNetConfig::original(10).scaled(0.25),
        init: Init::Kaiming,
        image_size: 64,
        epochs,
        batch_size: 32,
        optimizer: OptimizerConfig::adam(),
        schedule: Schedule::Cosine {
            epochs,
            min_lr: 0.0,
        },
        augment: Augment::imagenet(64),
        seed: 1,
        workers: 2,
        on_bad_sample: OnBadSample::Stop,
        augment_on: Default::default(),
        decode: Default::default(),
        on_nan: OnNonFinite::Stop,
        log_every: 10,
        out_dir,
        max_steps: None,
        show_progress: false,
        weights: None,
        freeze: Vec::new(),
    }
}

/// The short check every `cargo test` runs that the loop learns: the demo's model at half its
/// width, without dropout, flips or lighting, on 96 of the embedded images, evaluated on the
/// same 96 (centre crops), for 12 epochs of 6 steps (about 50 s on lavapipe, 2 shared cores).
/// Measured top-1 on the set after 12 epochs: 71.9% (loss 1.03) with data and init seed 1,
/// 31.2% (loss 1.80) with seed 3; seed 2 had 46.9% after 10. Chance is 10% (about 3 points of
/// noise on 96 images) and a loss of 2.30. Held-out accuracy needs the full demo (below): 2 epochs of 800 images left
/// validation top-1 within noise of chance (9.5-14%) with every setting tried.
#[test]
fn training_on_a_small_embedded_set_fits_it_well_above_chance() {
    let gpu = gpu();
    let out = scratch_dir("demo-short");
    let epochs = 12;
    let seed = 1;
    let config = TrainConfig {
        model: AlexNetConfig {
            dropout: 0.0,
            ..AlexNetConfig::original(10).scaled(0.125)
        },
        batch_size: 16,
        schedule: Schedule::Constant,
        augment: Augment {
            flip: false,
            lighting_std: 0.0,
            ..Augment::imagenet(64)
        },
        seed,
        ..demo_config(out, epochs)
    };
    let started = std::time::Instant::now();
    let train_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(96, 64, seed, 0));
    let val_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(96, 64, seed, 0));
    let outcome = train(
        gpu,
        &config,
        train_set,
        val_set,
        None,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    for m in &outcome.epochs {
        eprintln!(
            "epoch {}: train loss {:.3}, loss on the set {:.3}, top-1 {:.1}%, top-5 {:.1}%",
            m.epoch,
            m.train_loss,
            m.val_loss,
            100.0 * m.val_top1,
            100.0 * m.val_top5,
        );
    }
    eprintln!("{epochs} epochs in {:.1?}", started.elapsed());
    let (first, last) = (&outcome.epochs[0], outcome.epochs.last().unwrap());
    // Ten classes: chance is 10% top-1 and a loss of ln 10 = 2.303.
    assert!(
        last.val_top1 >= 0.25,
        "top-1 {:.1}% on the training images is not well above the 10% of chance",
        100.0 * last.val_top1
    );
    assert!(last.val_loss < 2.0, "loss {:.3}", last.val_loss);
    assert!(last.train_loss < first.train_loss);
}

/// The README's figure for `alexnet train` with no arguments (6 epochs of 2000 images, about
/// 4.5 minutes on lavapipe), so not part of every `cargo test`: CI runs it with
/// `cargo test --release --test train -- --ignored`.
#[test]
#[ignore = "4.5 minutes on a software driver; CI runs it with -- --ignored"]
fn training_on_the_embedded_data_rises_well_above_chance() {
    let gpu = gpu();
    let out = scratch_dir("demo");
    let config = demo_config(out.clone(), 6);
    let train_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(2000, 64, 1, 0));
    let val_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(500, 64, 1, 1));
    let outcome = train(
        gpu,
        &config,
        train_set,
        val_set,
        None,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    for m in &outcome.epochs {
        eprintln!(
            "epoch {}: train loss {:.3}, val loss {:.3}, top-1 {:.1}%, top-5 {:.1}%, {:.1} img/s",
            m.epoch,
            m.train_loss,
            m.val_loss,
            100.0 * m.val_top1,
            100.0 * m.val_top5,
            m.images_per_sec
        );
    }
    let last = outcome.epochs.last().unwrap();
    // Ten balanced classes: chance is 10% top-1.
    assert!(
        last.val_top1 >= 0.2,
        "validation top-1 {:.1}% is not well above the 10% of chance",
        100.0 * last.val_top1
    );
    assert!(last.train_loss < outcome.epochs[0].train_loss);
    for file in [
        "checkpoint.safetensors",
        "metrics.jsonl",
        "metrics.csv",
        "loss.png",
        "top1.png",
        "top5.png",
        "lr.png",
    ] {
        assert!(out.join(file).is_file(), "{file} was not written");
    }
}

#[test]
fn the_full_width_model_lowers_its_loss_over_a_few_steps() {
    let gpu = gpu();
    let mut config = AlexNetConfig::original(10);
    config.dropout = 0.0;
    let model = AlexNet::new(gpu, config).unwrap();
    model.initialize(gpu, Init::PyTorch, 11).unwrap();
    let (batch, size) = (4, 64);
    let options = PlanOptions {
        batch,
        image_h: size,
        image_w: size,
        training: true,
        input_grad: false,
    };
    let plan = Plan::new(gpu, &model, options).unwrap();
    let data = Synthetic::new(batch, size, 2, 0);
    let augment = Augment::imagenet(size).eval();
    let mut images = Vec::new();
    for i in 0..batch {
        let mut rng = alexnet_wgpu::data::transforms::SampleRng::new(0, 0, i as u64);
        images.extend(augment.apply(&data.load(i).unwrap(), &mut rng));
    }
    let labels: Vec<u32> = (0..batch).map(|i| data.label(i) as u32).collect();
    plan.input.write_f32(gpu, &images).unwrap();
    plan.labels.write_u32(gpu, &labels).unwrap();
    let mut sgd = Optimizer::new(gpu, &model, OptimizerConfig::sgd()).unwrap();
    let mut losses = Vec::new();
    for step in 0..5 {
        train_step(gpu, &plan, &mut sgd, step).unwrap();
        losses.push(plan.totals.read_f32(gpu).unwrap()[totals::LOSS]);
    }
    eprintln!("full width, batch {batch}, {size}x{size}: losses {losses:?}");
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(losses[4] < losses[0], "loss did not fall: {losses:?}");
}

#[test]
fn a_stopped_and_resumed_run_reproduces_the_uninterrupted_loss_sequence() {
    let gpu = gpu();
    let train_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(96, 64, 3, 0));
    let val_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(32, 64, 3, 1));
    let small = |out: PathBuf| TrainConfig {
        model: AlexNetConfig::original(10).scaled(0.125),
        batch_size: 16,
        log_every: 1,
        ..demo_config(out, 2)
    };
    let never = || Arc::new(AtomicBool::new(false));

    let whole = small(scratch_dir("whole"));
    let reference = train(
        gpu,
        &whole,
        train_set.clone(),
        val_set.clone(),
        None,
        never(),
    )
    .unwrap();
    assert_eq!(reference.step_losses.len(), 12);

    // Stop mid-way through the second epoch (6 batches per epoch), as Ctrl-C would...
    let out = scratch_dir("resumed");
    let stopped = TrainConfig {
        max_steps: Some(8),
        ..small(out.clone())
    };
    let first = train(
        gpu,
        &stopped,
        train_set.clone(),
        val_set.clone(),
        None,
        never(),
    )
    .unwrap();
    assert!(first.interrupted);
    // ...and resume from the checkpoint it wrote.
    let resumed = small(out.clone());
    let rest = train(
        gpu,
        &resumed,
        train_set,
        val_set,
        Some(&out.join("checkpoint.safetensors")),
        never(),
    )
    .unwrap();
    let joined: Vec<(u64, f32)> = first
        .step_losses
        .iter()
        .chain(&rest.step_losses)
        .copied()
        .collect();
    eprintln!(
        "uninterrupted: {:?}\nresumed:       {joined:?}",
        reference.step_losses
    );
    assert_eq!(joined, reference.step_losses, "the resumed run diverged");
    let a = reference.epochs.last().unwrap();
    let b = rest.epochs.last().unwrap();
    assert_close(
        "final validation loss",
        &[b.val_loss as f32],
        &[a.val_loss],
        0.0,
    );
}

// =============================================================================================
// Fine-tuning
// =============================================================================================

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
    let never = || Arc::new(AtomicBool::new(false));
    let stopped = TrainConfig {
        max_steps: Some(3),
        ..config.clone()
    };
    let first = train(
        gpu,
        &stopped,
        train_set.clone(),
        val_set.clone(),
        None,
        never(),
    )
    .unwrap();
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
    let rest = train(
        gpu,
        &resumed,
        train_set,
        val_set,
        Some(&first.checkpoint),
        never(),
    )
    .unwrap();
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

/// The experiment runner: every variant at every seed, a killed experiment continued where it
/// stopped (finished runs read back, not retrained; the interrupted one resumed from its
/// checkpoint to the numbers of an uninterrupted run; the unstarted one trained), the runs
/// spread over two devices (two instances of the adapter), and the report aggregated over
/// seeds.
#[test]
fn an_experiment_resumes_where_it_stopped_and_spreads_runs_over_devices() {
    use alexnet_wgpu::runtime::GpuOptions;
    use alexnet_wgpu::train::experiment::{self, Experiment, Job};

    let out = scratch_dir("experiment");
    let toml = format!(
        "seeds = [3, 4]\n[data]\nout = {:?}\n[[variant]]\nname = \"relu\"\n\
         [[variant]]\nname = \"tanh\"\nactivation = \"tanh\"\n\
         [[claim]]\ntext = \"ReLU trains faster\"\nmetric = \"final_train_loss\"\n\
         better = \"relu\"\nworse = \"tanh\"\n",
        out.display().to_string()
    );
    let exp = Experiment::parse(&toml).unwrap();
    assert_eq!(exp.seeds(), vec![3, 4]);
    let train_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(32, 64, 3, 0));
    let val_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(16, 64, 3, 1));
    let config = |name: &str, seed: u64, dir: PathBuf| {
        let mut model = AlexNetConfig::original(10).scaled(0.0625);
        if name == "tanh" {
            model.activation = alexnet_wgpu::model::Activation::Tanh;
        }
        TrainConfig {
            model,
            batch_size: 8,
            seed,
            log_every: 1,
            ..demo_config(dir, 2)
        }
    };
    let jobs = |max_steps_of_third: Option<u64>| -> Vec<Job> {
        let mut jobs = Vec::new();
        for v in exp.variant_options() {
            let name = v.name.clone().unwrap();
            for seed in exp.seeds() {
                let dir = out.join(&name).join(format!("seed-{seed}"));
                jobs.push(Job {
                    name: name.clone(),
                    summary: format!("{name} at seed {seed}"),
                    seed,
                    config: config(&name, seed, dir),
                });
            }
        }
        jobs[2].config.max_steps = max_steps_of_third;
        jobs
    };
    let never = || Arc::new(AtomicBool::new(false));

    // "Killed" during the third run (tanh, seed 3), 6 of its 8 steps done: the fourth never
    // starts.
    let first = experiment::run(
        std::slice::from_ref(gpu()),
        &exp,
        &jobs(Some(6)),
        train_set.clone(),
        val_set.clone(),
        never(),
    )
    .unwrap();
    assert_eq!(first.len(), 3);
    assert!(experiment::finished(&jobs(None)[2]).is_none());
    assert!(!out.join("tanh/seed-4").exists());

    // Continued on two devices.
    let second_gpu = Gpu::new(&GpuOptions::default()).unwrap();
    let gpus = [Gpu::new(&GpuOptions::default()).unwrap(), second_gpu];
    let second = experiment::run(
        &gpus,
        &exp,
        &jobs(None),
        train_set.clone(),
        val_set.clone(),
        never(),
    )
    .unwrap();
    assert_eq!(second.len(), 4);
    for (a, b) in first[..2].iter().zip(&second[..2]) {
        // Read back, not retrained: even the measured times are the same.
        assert_eq!(b.device, None, "'{}' seed {} was retrained", b.name, b.seed);
        assert_eq!(a.epochs, b.epochs);
    }
    let trained: Vec<usize> = second[2..].iter().map(|r| r.device.unwrap()).collect();
    assert!(
        trained.contains(&0) && trained.contains(&1),
        "the two remaining runs were not spread over both devices: {trained:?}"
    );
    for r in &second {
        assert_eq!(r.epochs.len(), 2, "'{}' seed {}", r.name, r.seed);
    }

    // The resumed run ends where an uninterrupted one does.
    let whole = train(
        gpu(),
        &config("tanh", 3, scratch_dir("experiment-whole")),
        train_set,
        val_set,
        None,
        never(),
    )
    .unwrap();
    let (a, b) = (
        whole.epochs.last().unwrap(),
        second[2].epochs.last().unwrap(),
    );
    assert_eq!(
        (a.train_loss, a.val_loss, a.val_top1),
        (b.train_loss, b.val_loss, b.val_top1)
    );

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| relu | 2 |"), "{report}");
    assert!(report.contains("| tanh | 2 |"), "{report}");
    assert!(
        report.contains("**ReLU trains faster** — final train loss"),
        "{report}"
    );
}
