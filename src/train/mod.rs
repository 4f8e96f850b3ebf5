//! Training: optimizers, learning-rate schedules, the loop, metrics, plots and checkpoints.

pub mod checkpoint;
pub mod claim;
pub mod experiment;
pub mod feed;
pub mod guard;
pub mod loss_scale;
mod memory;
pub mod metrics;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod observer;
pub mod optim;
pub mod options;
pub mod parallel;
pub mod plot;
pub mod replicas;
pub mod report;
pub mod schedule;
pub mod split;
pub mod throughput;
pub mod trainer;

pub use guard::{NonFiniteGuard, OnNonFinite};
pub use optim::{Optimizer, OptimizerConfig, OptimizerKind};
pub use options::TrainOptions;
pub use replicas::{Devices, Shares};
pub use schedule::{LrScheduler, Schedule};

use crate::error::Result;
use crate::model::Plan;
use crate::runtime::Gpu;

/// One training step: forward, loss, backward and the optimizer's update, recorded into one
/// command encoder. Nothing is read back.
pub fn train_step(gpu: &Gpu, plan: &Plan, optimizer: &mut Optimizer, seed: u32) -> Result<()> {
    train_step_checked(gpu, plan, optimizer, seed, None)
}

/// [`train_step`], plus `guard`'s NaN/Inf checks of the loss and every gradient recorded
/// between the backward pass and the update (still no readback: the guard is read with the
/// periodic metrics). Fails first with any error the device reported since the last call.
pub fn train_step_checked(
    gpu: &Gpu,
    plan: &Plan,
    optimizer: &mut Optimizer,
    seed: u32,
    guard: Option<&NonFiniteGuard>,
) -> Result<()> {
    begin_step(gpu, plan, optimizer, seed, guard)?;
    let empty = crate::runtime::Program::new();
    let checks = guard.map_or(&empty, |g| g.program());
    gpu.submit("a training step", |encoder| {
        for program in [
            &plan.forward,
            &plan.loss,
            &plan.backward,
            checks,
            optimizer.program(),
        ] {
            program.record(encoder);
        }
    })
}

/// What every training step sets before it is recorded: the device's health checked, the
/// dropout seed, the optimizer's step (and hyper-parameters) and the guard's step number.
pub(crate) fn begin_step(
    gpu: &Gpu,
    plan: &Plan,
    optimizer: &mut Optimizer,
    seed: u32,
    guard: Option<&NonFiniteGuard>,
) -> Result<()> {
    gpu.check()?;
    plan.seed
        .write(gpu, &crate::ops::dropout::StepSeed { seed });
    optimizer.begin_step(gpu);
    if let Some(g) = guard {
        g.begin_step(gpu, optimizer.step);
    }
    Ok(())
}
