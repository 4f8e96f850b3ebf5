//! Device errors: uncaptured errors, device loss and out of memory become typed errors, never
//! panics.

use alexnet_wgpu::model::{AlexNet, Plan, PlanOptions};
use alexnet_wgpu::runtime::{Gpu, GpuOptions};
use alexnet_wgpu::train::trainer::TrainConfig;
use alexnet_wgpu::train::{train_step_checked, Optimizer, OptimizerConfig};
use alexnet_wgpu::Error;

use crate::common::gpu;
use crate::support::{assert_mentions, err_text, run_training, tiny_config, tiny_model, tmpdir};

#[test]
fn an_uncaptured_gpu_error_becomes_a_typed_error_not_a_panic() {
    // A device of its own: the error must not reach other tests' calls.
    let gpu = Gpu::new(&GpuOptions::default()).unwrap();
    // MAP_READ with STORAGE is invalid in WebGPU; by default wgpu panics on this.
    let _bad = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("invalid"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let text = err_text(gpu.check());
    assert_mentions(&text, &["GPU error", "invalid"]);
    gpu.check().unwrap(); // reported once
}

#[test]
fn a_lost_device_is_a_typed_error_on_the_next_call() {
    let gpu = Gpu::new(&GpuOptions::default()).unwrap();
    let model = AlexNet::new(&gpu, tiny_model()).unwrap();
    let options = PlanOptions::training(1, 64);
    let plan = Plan::new(&gpu, &model, options).unwrap();
    let mut optimizer = Optimizer::new(&gpu, &model, OptimizerConfig::sgd()).unwrap();
    // What a driver reset or an unplugged eGPU does, on demand.
    gpu.device.destroy();
    let e = plan.totals.read_f32(&gpu).err().unwrap();
    assert!(matches!(e, Error::DeviceLost { .. }), "{e:?}");
    assert_mentions(
        &e.to_string(),
        &[
            "device was lost",
            "Destroyed",
            "resume from the last checkpoint",
        ],
    );
    // Every later call says the same, and none panics.
    let e = train_step_checked(&gpu, &plan, &mut optimizer, 0, None)
        .err()
        .unwrap();
    assert!(matches!(e, Error::DeviceLost { .. }), "{e:?}");
    assert!(matches!(
        Plan::new(&gpu, &model, options),
        Err(Error::DeviceLost { .. })
    ));
    assert!(matches!(
        Optimizer::new(&gpu, &model, OptimizerConfig::sgd()),
        Err(Error::DeviceLost { .. })
    ));
}

#[test]
fn a_batch_too_large_for_the_device_is_a_typed_error_with_a_batch_that_fits() {
    let dir = tmpdir("oom");
    let config = TrainConfig {
        batch_size: 100_000,
        ..tiny_config(dir)
    };
    let e = run_training(&config, None).err().unwrap();
    let text = e.to_string();
    assert_mentions(
        &text,
        &[
            "batch size 100000 does not fit",
            "tensor 'input'",
            "or less: larger batches need one buffer over the limit",
        ],
    );
    let Error::OutOfMemory { batch, hint, .. } = e else {
        panic!("expected OutOfMemory");
    };
    assert_eq!(batch, 100_000);
    // The suggested batch keeps the largest buffer (the 3x64x64 input) under the limit.
    let fits: usize = hint
        .split("--batch-size ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap()
        .parse()
        .unwrap();
    let per_sample = 3 * 64 * 64 * 4;
    assert!(fits > 0 && (fits * per_sample) as u64 <= gpu().limits().max_buffer_size);
    assert!(((fits + 1) * per_sample) as u64 > gpu().limits().max_buffer_size);
}
