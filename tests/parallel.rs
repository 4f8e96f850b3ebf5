//! Data parallelism over two devices (two instances of the adapter stand in for two GPUs):
//! a step at shares `[3, 1]` is a step of one device on the whole batch of 4, and a training
//! run on both follows a run on one and writes the same checkpoints.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use alexnet_wgpu::data::{Augment, AugmentOn, Dataset, Synthetic};
use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Init, Plan, PlanOptions};
use alexnet_wgpu::runtime::{Gpu, GpuOptions};
use alexnet_wgpu::train::checkpoint;
use alexnet_wgpu::train::observer::Observers;
use alexnet_wgpu::train::parallel::{Alone, DataParallel};
use alexnet_wgpu::train::split::GroupSplit;
use alexnet_wgpu::train::trainer::{train, train_observed, TrainConfig, TrainOutcome};
use alexnet_wgpu::train::{Devices, Optimizer, OptimizerConfig, Schedule, Shares, TrainOptions};
use common::parallel::{
    assert_same_loss, assert_same_parameters, one_device_step, small_model_and_sgd,
};
use common::{assert_close, Rng};

#[test]
fn data_parallel_on_two_devices_equals_one_device_on_the_whole_batch() {
    let open = || Gpu::new(&GpuOptions::default()).expect("a wgpu adapter");
    let gpus = [open(), open()];
    let single = open();
    let (config, sgd) = small_model_and_sgd();
    let (image, shares, seed) = (64, [3, 1], 7);
    let mut parallel = DataParallel::new(
        &gpus,
        &config,
        Init::PyTorch,
        seed,
        &shares,
        image,
        sgd.clone(),
    )
    .unwrap();
    assert_eq!(parallel.batch(), 4);

    let model = AlexNet::new(&single, config.clone()).unwrap();
    model.initialize(&single, Init::PyTorch, seed).unwrap();
    let options = PlanOptions::training(4, image);
    let plan = Plan::new(&single, &model, options).unwrap();
    let mut optimizer = Optimizer::new(&single, &model, sgd).unwrap();

    let mut rng = Rng::new(1);
    for step in 0..3 {
        let images = rng.normals(4 * 3 * image * image, 1.0);
        let labels: Vec<u32> = (0..4).map(|_| rng.below(10) as u32).collect();
        parallel.write_batch(&images, &labels).unwrap();
        parallel.step(0).unwrap();

        let want = one_device_step(&single, &plan, &mut optimizer, &images, &labels);
        let got = parallel.loss().unwrap();
        eprintln!("step {step}: loss {got:.6} on two devices, {want:.6} on one");
        assert!(
            (got - want).abs() <= 1e-5 * want.abs(),
            "step {step}: {got} vs {want}"
        );
    }
    for (i, (gpu, replica)) in gpus.iter().zip(&parallel.replicas).enumerate() {
        for (p, q) in replica.model.params.iter().zip(&model.params) {
            let want: Vec<f64> = q
                .value
                .read_f32(&single)
                .unwrap()
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let got = p.value.read_f32(gpu).unwrap();
            assert_close(&format!("device {i}: {}", p.name), &got, &want, 1e-5);
        }
    }
}

#[test]
fn data_parallel_needs_one_positive_share_per_device() {
    let gpus = [Gpu::new(&GpuOptions::default()).unwrap()];
    let config = AlexNetConfig::original(10).scaled(0.0625);
    for shares in [&[][..], &[0][..], &[2, 2][..]] {
        let err = DataParallel::new(
            &gpus,
            &config,
            Init::PyTorch,
            0,
            shares,
            64,
            OptimizerConfig::sgd(),
        )
        .err()
        .expect("bad shares");
        assert!(
            err.to_string().contains("one positive share per device"),
            "{err}"
        );
    }
}

/// A small run: 14 synthetic images in batches of 4 (the last one short), training
/// augmentation, SGD, no dropout (its masks are drawn per device).
fn small_run(out: std::path::PathBuf, epochs: usize) -> TrainConfig {
    let mut config = TrainOptions::default().config(10).unwrap();
    config.model = AlexNetConfig {
        dropout: 0.0,
        ..AlexNetConfig::original(10).scaled(0.0625)
    };
    config.image_size = 64;
    config.augment = Augment::imagenet(64);
    config.batch_size = 4;
    config.epochs = epochs;
    config.optimizer = OptimizerConfig {
        lr: 0.05,
        ..OptimizerConfig::sgd()
    };
    config.schedule = Schedule::Constant;
    config.workers = 1;
    config.log_every = 1;
    config.show_progress = false;
    config.out_dir = out;
    config
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("alexnet-wgpu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The parameters a checkpoint holds, loaded on `gpu`.
fn checkpoint_params(gpu: &Gpu, config: &TrainConfig) -> Vec<(String, Vec<f32>)> {
    let model = AlexNet::new(gpu, config.model.clone()).unwrap();
    let mut optimizer = Optimizer::new(gpu, &model, config.optimizer.clone()).unwrap();
    checkpoint::load(gpu, &config.checkpoint_path(), &model, &mut optimizer).unwrap();
    model
        .params
        .iter()
        .map(|p| (p.name.clone(), p.value.read_f32(gpu).unwrap()))
        .collect()
}

/// Trains `config` on 14 synthetic images (validating on 6) over `gpus` at `shares`.
fn run_on(gpus: &[Gpu], shares: Shares, config: &TrainConfig) -> TrainOutcome {
    let train_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(14, 64, 5, 0));
    let val_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(6, 64, 5, 1));
    let devices = Devices {
        gpus,
        shares,
        collective: &Alone,
    };
    let never = Arc::new(AtomicBool::new(false));
    let mut quiet = Observers(Vec::new());
    train_observed(
        &devices, config, train_set, val_set, None, never, &mut quiet,
    )
    .unwrap()
}

/// Every step's loss and the validation metrics of two runs, within 1e-5.
fn assert_runs_agree(parallel: &TrainOutcome, reference: &TrainOutcome) {
    assert_eq!(parallel.step_losses.len(), reference.step_losses.len());
    for (&(step, got), &(_, want)) in parallel.step_losses.iter().zip(&reference.step_losses) {
        eprintln!("step {step}: loss {got:.6} on two devices, {want:.6} on one");
        assert!(
            (got - want).abs() <= 1e-5 * want.abs(),
            "step {step}: {got} vs {want}"
        );
    }
    let (got, want) = (&parallel.epochs[0], &reference.epochs[0]);
    assert!(
        (got.val_loss - want.val_loss).abs() <= 1e-5 * want.val_loss,
        "{got:?} vs {want:?}"
    );
    assert_eq!(got.val_top1, want.val_top1);
}

#[test]
fn training_on_two_devices_follows_one_device_and_writes_the_same_checkpoints() {
    let open = || Gpu::new(&GpuOptions::default()).expect("a wgpu adapter");
    let gpus = [open(), open()];
    let single = open();
    let one = small_run(scratch("dp-one"), 1);
    let reference = run_on(std::slice::from_ref(&single), Shares::Measured, &one);
    let two = small_run(scratch("dp-two"), 1);
    let parallel = run_on(&gpus, Shares::Fixed(vec![3, 1]), &two);

    // Four steps, the last on 2 images (both on device 0: device 1 sits that one out).
    assert_eq!(parallel.step_losses.len(), 4);
    assert_runs_agree(&parallel, &reference);
    for ((name, got), (_, want)) in checkpoint_params(&single, &two)
        .iter()
        .zip(checkpoint_params(&single, &one))
    {
        let want: Vec<f64> = want.iter().map(|&v| f64::from(v)).collect();
        assert_close(&format!("checkpoint {name}"), got, &want, 1e-5);
    }

    // The two-device checkpoint is an ordinary one: one device resumes it for a second epoch.
    let resumed = small_run(two.out_dir.clone(), 2);
    let data: Arc<dyn Dataset> = Arc::new(Synthetic::new(14, 64, 5, 0));
    let never = Arc::new(AtomicBool::new(false));
    let more = train(
        &single,
        &resumed,
        data.clone(),
        data,
        Some(&two.checkpoint_path()),
        never,
    )
    .unwrap();
    assert_eq!(more.epochs.len(), 1);
    assert_eq!(more.epochs[0].step, 8);
}

/// With augmentation on the GPU each device augments its own part of the batch: the run still
/// follows one device's (which augments the whole batch on the GPU).
#[test]
fn two_devices_augmenting_on_the_gpu_follow_one_device() {
    let open = || Gpu::new(&GpuOptions::default()).expect("a wgpu adapter");
    let gpus = [open(), open()];
    let single = open();
    let gpu_augment = |name| TrainConfig {
        augment_on: AugmentOn::Gpu,
        ..small_run(scratch(name), 1)
    };
    let reference = run_on(
        std::slice::from_ref(&single),
        Shares::Measured,
        &gpu_augment("dp-gpu-one"),
    );
    let parallel = run_on(&gpus, Shares::Fixed(vec![1, 3]), &gpu_augment("dp-gpu-two"));
    assert_runs_agree(&parallel, &reference);
}

#[test]
fn shares_that_do_not_fit_the_devices_or_the_batch_are_refused() {
    let gpus = [
        Gpu::new(&GpuOptions::default()).unwrap(),
        Gpu::new(&GpuOptions::default()).unwrap(),
    ];
    let data: Arc<dyn Dataset> = Arc::new(Synthetic::new(8, 64, 5, 0));
    for shares in [vec![4], vec![3, 0, 1], vec![2, 1], vec![0, 4]] {
        let devices = Devices {
            gpus: &gpus,
            shares: Shares::Fixed(shares.clone()),
            collective: &Alone,
        };
        let err = train_observed(
            &devices,
            &small_run(scratch("dp-bad"), 1),
            data.clone(),
            data.clone(),
            None,
            Arc::new(AtomicBool::new(false)),
            &mut Observers(Vec::new()),
        )
        .err()
        .expect("bad shares");
        assert!(
            err.to_string().contains("--shares") && err.to_string().contains("--batch-size 4"),
            "{shares:?}: {err}"
        );
    }
}

/// The paper's split: each device half of every layer, meeting at conv3, the LRNs and the
/// fully connected layers; three SGD steps equal one device's on the whole model.
#[test]
fn the_group_split_over_two_devices_equals_the_one_device_model() {
    let open = || Gpu::new(&GpuOptions::default()).expect("a wgpu adapter");
    let (a, b, single) = (open(), open(), open());
    let (config, sgd) = small_model_and_sgd();
    let (image, batch) = (64, 3);
    let model = AlexNet::new(&single, config.clone()).unwrap();
    model.initialize(&single, Init::PyTorch, 5).unwrap();
    let options = PlanOptions::training(batch, image);
    let plan = Plan::new(&single, &model, options).unwrap();
    let mut optimizer = Optimizer::new(&single, &model, sgd.clone()).unwrap();
    let mut split = GroupSplit::new([&a, &b], &config, batch, image, sgd).unwrap();
    split.scatter(&model, &single).unwrap();
    // Each device holds half of every convolution's kernels.
    let conv2 = split.models[0].param("features.4.weight").unwrap();
    assert_eq!(
        conv2.value.shape()[0] * 2,
        model.param("features.4.weight").unwrap().value.shape()[0]
    );

    let mut rng = Rng::new(3);
    for step in 0..3 {
        let images = rng.normals(batch * 3 * image * image, 1.0);
        let labels: Vec<u32> = (0..batch).map(|_| rng.below(10) as u32).collect();
        split.write_batch(&images, &labels).unwrap();
        let times = split.step(0).unwrap();

        let want = one_device_step(&single, &plan, &mut optimizer, &images, &labels);
        eprintln!(
            "step {step}: exchange {:?} of {:?}",
            times.exchange,
            times.compute + times.exchange + times.update
        );
        assert_same_loss(step, split.loss().unwrap(), want);
    }
    let gathered = AlexNet::new(&single, config).unwrap();
    split.gather(&gathered, &single).unwrap();
    assert_same_parameters("", &single, &gathered, &single, &model);
}
