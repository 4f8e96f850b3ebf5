//! Long runs: memory stays flat over hundreds of training steps and two runs with the same
//! seed give bit-identical losses.

use alexnet_wgpu::model::{AlexNet, Init, Plan, PlanOptions};
use alexnet_wgpu::train::trainer::TrainConfig;
use alexnet_wgpu::train::{train_step_checked, NonFiniteGuard, Optimizer, OptimizerConfig};

use crate::common::{gpu, Rng};
use crate::support::{run_training, tiny_config, tiny_model, tmpdir};

/// Resident set size of this process in bytes (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn memory_stays_flat_over_hundreds_of_training_steps() {
    let gpu = gpu();
    let model = AlexNet::new(gpu, tiny_model()).unwrap();
    model.initialize(gpu, Init::Kaiming, 1).unwrap();
    let options = PlanOptions::training(2, 64);
    let plan = Plan::new(gpu, &model, options).unwrap();
    let guard = NonFiniteGuard::new(gpu, &model, &plan).unwrap();
    let mut optimizer = Optimizer::new(
        gpu,
        &model,
        OptimizerConfig {
            lr: 1e-3,
            ..OptimizerConfig::sgd()
        },
    )
    .unwrap();
    let mut rng = Rng::new(8);
    let input = rng.normals(plan.input.numel(), 1.0);
    let (warmup, steps) = (50, 300);
    let mut after_warmup = 0;
    for step in 0..steps {
        plan.input.write_f32(gpu, &input).unwrap();
        train_step_checked(gpu, &plan, &mut optimizer, step, Some(&guard)).unwrap();
        if step % 10 == 9 {
            plan.totals.read_f32(gpu).unwrap();
            guard.read(gpu).unwrap();
        }
        if step + 1 == warmup {
            gpu.wait().unwrap();
            after_warmup = rss_bytes().unwrap_or(0);
        }
    }
    gpu.wait().unwrap();
    let end = rss_bytes().unwrap_or(0);
    let growth = end as i64 - after_warmup as i64;
    eprintln!(
        "RSS after {warmup} steps {:.1} MiB, after {steps} {:.1} MiB: growth {:.2} MiB",
        after_warmup as f64 / 1048576.0,
        end as f64 / 1048576.0,
        growth as f64 / 1048576.0
    );
    // Other tests in this binary run in parallel and allocate too; a leak of even one
    // staging buffer per step (64 bytes x 250) would not show, but one per dispatch would.
    assert!(growth < 32 << 20, "RSS grew {growth} bytes after warm-up");
}

#[test]
fn two_runs_with_the_same_seed_give_bit_identical_losses() {
    let runs: Vec<Vec<(u64, f32)>> = (0..2)
        .map(|i| {
            let config = TrainConfig {
                epochs: 2,
                workers: 2,
                ..tiny_config(tmpdir(&format!("determinism-{i}")))
            };
            run_training(&config, None).unwrap().step_losses
        })
        .collect();
    eprintln!("losses: {:?}", runs[0]);
    assert_eq!(runs[0].len(), 8);
    // Compare bits, so that even a NaN would have to repeat exactly.
    let bits = |r: &[(u64, f32)]| r.iter().map(|(s, l)| (*s, l.to_bits())).collect::<Vec<_>>();
    assert_eq!(bits(&runs[0]), bits(&runs[1]));
}
