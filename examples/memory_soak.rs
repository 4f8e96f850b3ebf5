//! Memory soak: many training steps at a tiny size, printing the process RSS and what the GPU
//! allocator reports every K steps, so a leak per step (a staging buffer, a bind group, a
//! loader thread) shows as a slope. The loop is the trainer's: the prefetching loader over
//! the synthetic set (a new loader every epoch), upload, a checked training step, and the
//! loss totals and NaN flags read every `log_every` steps.
//!
//! ```sh
//! cargo run --release --example memory_soak -- [STEPS] [EVERY] [MAX_SECONDS]
//! # defaults: 10000 steps, a line every 500, stop after 900 s
//! ```
//!
//! Each line is JSON: `{"step", "secs", "rss_mib", "gpu_allocated_mib"}` (the last is null on
//! backends without an allocator report, lavapipe's Vulkan among them). The summary line gives
//! the growth after the warm-up (the first reported interval).

use std::sync::Arc;
use std::time::Instant;

use alexnet_wgpu::data::{Augment, Dataset, Loader, LoaderConfig, Synthetic};
use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Init, Plan, PlanOptions};
use alexnet_wgpu::train::{train_step_checked, NonFiniteGuard, Optimizer, OptimizerConfig};
use alexnet_wgpu::{Gpu, GpuOptions};

/// Resident set size in MiB, from /proc/self/statm (Linux; 0 elsewhere).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * 4096.0 / 1048576.0)
}

fn gpu_allocated_mib(gpu: &Gpu) -> Option<f64> {
    let report = gpu.device.generate_allocator_report()?;
    Some(report.total_allocated_bytes as f64 / 1048576.0)
}

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let (steps, every, max_secs) = (arg(1, 10_000), arg(2, 500).max(1), arg(3, 900));
    let gpu = Gpu::new(&GpuOptions::default())?;
    let (batch, size, log_every) = (2, 64, 10);
    let model = AlexNet::new(&gpu, AlexNetConfig::original(10).scaled(0.125))?;
    model.initialize(&gpu, Init::Kaiming, 0)?;
    let options = PlanOptions::training(batch, size);
    let plan = Plan::new(&gpu, &model, options)?;
    let guard = NonFiniteGuard::new(&gpu, &model, &plan)?;
    let mut optimizer = Optimizer::new(&gpu, &model, OptimizerConfig::sgd())?;
    let data: Arc<dyn Dataset> = Arc::new(Synthetic::new(200, size, 0, 0));
    let config = LoaderConfig {
        workers: 2,
        ..LoaderConfig::new(batch, Augment::imagenet(size))
    };
    let started = Instant::now();
    let mut baseline = None;
    let mut last = (0, 0.0);
    let (mut step, mut epoch) = (0u64, 0);
    'run: loop {
        let mut loader = Loader::new(data.clone(), config.clone(), epoch, 0)?;
        while let Some(b) = loader.next_batch() {
            let b = b?;
            plan.input.write_f32(&gpu, &b.images)?;
            gpu.queue
                .write_buffer(plan.labels.buffer(), 0, bytemuck::cast_slice(&b.labels));
            train_step_checked(&gpu, &plan, &mut optimizer, step as u32, Some(&guard))?;
            step += 1;
            if step % log_every == 0 {
                plan.totals.read_f32(&gpu)?;
                if let Some(bad) = guard.read(&gpu)? {
                    anyhow::bail!("non-finite at step {}: {:?}", bad.step, bad.tensors);
                }
            }
            if step % every == 0 {
                gpu.wait()?;
                let (secs, rss) = (started.elapsed().as_secs_f64(), rss_mib());
                let alloc = gpu_allocated_mib(&gpu).map_or("null".into(), |m| format!("{m:.1}"));
                println!(
                    "{{\"step\": {step}, \"secs\": {secs:.1}, \"rss_mib\": {rss:.1}, \"gpu_allocated_mib\": {alloc}}}"
                );
                baseline.get_or_insert(rss);
                last = (step, rss);
            }
            if step >= steps || started.elapsed().as_secs() >= max_secs {
                break 'run;
            }
        }
        epoch += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "summary: {step} steps in {secs:.0} s ({:.1} ms/step); RSS {:.1} MiB after the first {every} steps, {:.1} MiB at step {}: growth {:+.1} MiB",
        1000.0 * secs / step as f64,
        baseline.unwrap_or(0.0),
        last.1,
        last.0,
        last.1 - baseline.unwrap_or(0.0)
    );
    Ok(())
}
