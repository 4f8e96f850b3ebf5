//! The non-finite guard: every training step checks the loss and each parameter gradient for
//! NaN or infinity on the GPU (`ops::finite`), and the trainer reads the verdict with the
//! periodic loss totals, so detection costs no readback stall. What happens next (stop, or
//! roll back and lower the learning rate) is the trainer's [`OnNonFinite`] choice.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{AlexNet, Plan};
use crate::ops::finite::{check_finite, FiniteStep, NEVER};
use crate::runtime::{Gpu, Program, Tensor, Uniform};

/// What training does when the loss or a gradient turns NaN or infinite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnNonFinite {
    /// Stop with [`crate::Error::NonFinite`]; the last checkpoint (never written with the bad
    /// weights) is kept.
    #[default]
    Stop,
    /// Reload the last checkpoint, multiply the learning rate by 0.1 and continue (at most
    /// [`MAX_ROLLBACKS`] times in a run).
    Rollback,
}

/// How many times one run may roll back before it gives up and stops.
pub const MAX_ROLLBACKS: usize = 3;

impl std::fmt::Display for OnNonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Stop => "stop",
            Self::Rollback => "rollback",
        })
    }
}

impl std::str::FromStr for OnNonFinite {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "stop" => Ok(Self::Stop),
            "rollback" => Ok(Self::Rollback),
            _ => Err(crate::Error::Config(format!(
                "--on-nan '{s}': expected 'stop' or 'rollback'"
            ))),
        }
    }
}

impl OnNonFinite {
    /// After non-finite values, with `rollbacks` done so far in the run: `None` to roll back
    /// (again), or the rest of the [`crate::Error::NonFinite`] message when the run stops.
    /// `last_good` is the checkpoint on disk the run may fall back to, and its step.
    pub(crate) fn stop_reason(
        self,
        rollbacks: usize,
        checkpoint: &Path,
        last_good: Option<&(PathBuf, u64)>,
    ) -> Option<String> {
        match self {
            Self::Rollback if rollbacks < MAX_ROLLBACKS => None,
            Self::Rollback => Some(format!(
                "gave up after {MAX_ROLLBACKS} rollbacks; the checkpoint {} is the last good state",
                checkpoint.display()
            )),
            Self::Stop => Some(stop_action(last_good)),
        }
    }
}

/// The rest of a [`Error::NonFinite`] message when the run stops.
fn stop_action(last_good: Option<&(PathBuf, u64)>) -> String {
    let kept = match last_good {
        Some((path, step)) => format!(
            "the last good checkpoint {} (step {step}) is kept",
            path.display()
        ),
        None => "no checkpoint had been written yet".to_string(),
    };
    format!(
        "training stopped and {kept}. Lower --lr, or pass --on-nan rollback to reload the last \
         checkpoint with a 10x lower learning rate"
    )
}

/// The first step at which checked tensors went non-finite, and which ones did.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFiniteReport {
    pub step: u64,
    /// `loss` and/or `<parameter>.grad`, in slot order (the loss, then the parameters).
    pub tensors: Vec<String>,
}

/// The flags, the step uniform and the prepared checks for one training plan.
pub struct NonFiniteGuard {
    flags: Tensor,
    step: Uniform<FiniteStep>,
    /// Name of each flag slot.
    names: Vec<String>,
    program: Program,
}

impl NonFiniteGuard {
    /// Prepares a check of `plan`'s loss totals and of every trained gradient of `model`.
    pub fn new(gpu: &Gpu, model: &AlexNet, plan: &Plan) -> Result<Self> {
        let mut checked = vec![("loss".to_string(), &plan.totals)];
        checked.extend(
            model
                .params
                .iter()
                .filter(|p| !p.frozen)
                .map(|p| (format!("{}.grad", p.name), &p.grad)),
        );
        Self::checking(gpu, checked)
    }

    /// Prepares a check of `plan`'s loss totals only: with loss scaling, gradients that
    /// overflow are the scaler's to handle (it skips the step and lowers the scale), and a
    /// real divergence still shows in the loss.
    pub fn loss_only(gpu: &Gpu, plan: &Plan) -> Result<Self> {
        Self::checking(gpu, vec![("loss".to_string(), &plan.totals)])
    }

    fn checking(gpu: &Gpu, checked: Vec<(String, &Tensor)>) -> Result<Self> {
        let flags = Tensor::zeros_u32(gpu, "non-finite flags", &[checked.len()])?;
        let step = Uniform::new(gpu, "non-finite step", &FiniteStep::default());
        let mut program = Program::new();
        for (slot, (_, tensor)) in checked.iter().enumerate() {
            program.extend(check_finite(gpu, &step, tensor, &flags, slot)?);
        }
        let guard = Self {
            names: checked.into_iter().map(|(n, _)| n).collect(),
            flags,
            step,
            program,
        };
        guard.reset(gpu)?;
        Ok(guard)
    }

    /// Sets the step number the checks recorded next will write; call before recording.
    pub fn begin_step(&self, gpu: &Gpu, step: u64) {
        let step = u32::try_from(step).unwrap_or(NEVER - 1);
        self.step.write(gpu, &FiniteStep { step });
    }

    /// The checks, to record after the backward pass.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Marks every tensor finite again (after a rollback).
    pub fn reset(&self, gpu: &Gpu) -> Result<()> {
        let never = vec![NEVER; self.names.len()];
        self.flags.write_u32(gpu, &never)
    }

    /// Reads the flags (one small readback): `None` while everything stayed finite.
    pub fn read(&self, gpu: &Gpu) -> Result<Option<NonFiniteReport>> {
        let flags = self.flags.read_u32(gpu)?;
        let Some(&first) = flags.iter().filter(|&&f| f != NEVER).min() else {
            return Ok(None);
        };
        let tensors = flags
            .iter()
            .zip(&self.names)
            .filter(|(&f, _)| f == first)
            .map(|(_, n)| n.clone())
            .collect();
        Ok(Some(NonFiniteReport {
            step: u64::from(first),
            tensors,
        }))
    }
}
