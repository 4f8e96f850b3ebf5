//! Training: optimizers, learning-rate schedules, the loop, metrics, plots and checkpoints.

pub mod checkpoint;
pub mod experiment;
pub mod metrics;
pub mod optim;
pub mod plot;
pub mod schedule;
pub mod trainer;

pub use optim::{Optimizer, OptimizerConfig, OptimizerKind};
pub use schedule::{LrScheduler, Schedule};

use crate::error::Result;
use crate::model::Plan;
use crate::runtime::Gpu;

/// One training step: forward, loss, backward and the optimizer's update, recorded into one
/// command encoder. Nothing is read back.
pub fn train_step(gpu: &Gpu, plan: &Plan, optimizer: &mut Optimizer, seed: u32) -> Result<()> {
    plan.seed
        .write(gpu, &crate::ops::dropout::StepSeed { seed });
    optimizer.begin_step(gpu);
    gpu.submit("a training step", |encoder| {
        for program in [
            &plan.forward,
            &plan.loss,
            &plan.backward,
            optimizer.program(),
        ] {
            program.record(encoder);
        }
    })
}
