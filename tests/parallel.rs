//! Data parallelism over two devices (two instances of the adapter stand in for two GPUs):
//! a step at shares `[3, 1]` is a step of one device on the whole batch of 4.

mod common;

use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Init, Plan, PlanOptions};
use alexnet_wgpu::ops::cross_entropy::totals;
use alexnet_wgpu::runtime::{Gpu, GpuOptions};
use alexnet_wgpu::train::parallel::DataParallel;
use alexnet_wgpu::train::{train_step, Optimizer, OptimizerConfig};
use common::{assert_close, Rng};

#[test]
fn data_parallel_on_two_devices_equals_one_device_on_the_whole_batch() {
    let open = || Gpu::new(&GpuOptions::default()).expect("a wgpu adapter");
    let gpus = [open(), open()];
    let single = open();
    // No dropout: its masks are drawn per replica (see train::parallel).
    let config = AlexNetConfig {
        dropout: 0.0,
        ..AlexNetConfig::original(10).scaled(0.0625)
    };
    let (image, shares, seed) = (64, [3, 1], 7);
    let sgd = OptimizerConfig {
        lr: 0.05,
        ..OptimizerConfig::sgd()
    };
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
    let options = PlanOptions {
        batch: 4,
        image_h: image,
        image_w: image,
        training: true,
        input_grad: false,
    };
    let plan = Plan::new(&single, &model, options).unwrap();
    let mut optimizer = Optimizer::new(&single, &model, sgd).unwrap();

    let mut rng = Rng::new(1);
    for step in 0..3 {
        let images = rng.normals(4 * 3 * image * image, 1.0);
        let labels: Vec<u32> = (0..4).map(|_| rng.below(10) as u32).collect();
        parallel.write_batch(&images, &labels).unwrap();
        parallel.step(0).unwrap();

        plan.input.write_f32(&single, &images).unwrap();
        plan.labels.write_u32(&single, &labels).unwrap();
        plan.totals.write_f32(&single, &[0.0; totals::LEN]).unwrap();
        train_step(&single, &plan, &mut optimizer, 0).unwrap();
        let t = plan.totals.read_f32(&single).unwrap();
        let want = f64::from(t[totals::LOSS_SUM]) / f64::from(t[totals::SAMPLES]);
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
