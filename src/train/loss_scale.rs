//! Dynamic loss scaling for `--precision mixed` (torch.amp's GradScaler, with its defaults):
//! the backward's GEMMs round their operands to f16, whose smallest subnormal is 6e-8, so the
//! loss gradient is multiplied by a large scale before the backward and every trained gradient
//! divided by it after. A step whose scaled gradients overflowed f16 (an infinity or a NaN
//! after unscaling) is skipped and the scale halved; after `growth_interval` good steps it
//! doubles. All of it runs on the GPU inside the step's submission (`ops::loss_scale`): the
//! optimizer's dispatches read their workgroup counts from a buffer the gate zeroes.
//!
//! One difference from PyTorch: Adam's step count (its bias corrections) is kept by the host,
//! which does not know which steps were skipped, so a skipped step still advances it. After
//! the few skips at the start of a run (the scale calibrating down from 65536) this changes
//! the bias corrections by a few percent for the next hundred or so steps, and then not at all.

use crate::error::Result;
use crate::model::{AlexNet, Plan};
use crate::ops::loss_scale::{self, state, ScaleUpdate};
use crate::ops::{KernelPolicy, Precision};
use crate::runtime::{Gpu, Program, Tensor};
use crate::train::Optimizer;

/// The scaler's settings: torch.amp.GradScaler's arguments and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScaleConfig {
    pub init_scale: f32,
    pub update: ScaleUpdate,
}

impl Default for LossScaleConfig {
    fn default() -> Self {
        Self {
            init_scale: 65536.0,
            update: ScaleUpdate {
                growth_factor: 2.0,
                backoff_factor: 0.5,
                growth_interval: 2000,
            },
        }
    }
}

/// Where the scaler stands, read back with the metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleStatus {
    pub scale: f32,
    /// Steps skipped since the scaler was made.
    pub skipped: u32,
}

/// The trained gradients as few views as possible: each run of consecutive trained
/// parameters whose gradients share an arena buffer is one span (the gaps between them are
/// the arena's zero padding), so unscaling and checking takes a dispatch or two per buffer
/// rather than one per tensor. A frozen parameter ends a run: its gradient is never applied,
/// so it must not make a step overflow.
fn trained_gradient_spans(model: &AlexNet) -> Result<Vec<Tensor>> {
    let mut spans = Vec::new();
    let mut run: Option<(&Tensor, &Tensor)> = None;
    for p in &model.params {
        run = match (run, p.frozen) {
            (Some((first, _)), false) if p.grad.offset_after(first).is_some() => {
                Some((first, &p.grad))
            }
            (done, frozen) => {
                if let Some((first, last)) = done {
                    spans.push(first.span_to(last)?);
                }
                (!frozen).then_some((&p.grad, &p.grad))
            }
        };
    }
    if let Some((first, last)) = run {
        spans.push(first.span_to(last)?);
    }
    Ok(spans)
}

/// One training plan's loss scaler: its state on the GPU.
pub struct LossScaler {
    state: Tensor,
    config: LossScaleConfig,
}

impl LossScaler {
    /// Scales `plan`'s loss gradient and gates `optimizer`'s update on `model`'s trained
    /// gradients: after this, recording the plan's programs and the optimizer's as usual
    /// trains with loss scaling.
    pub fn attach(
        gpu: &Gpu,
        config: LossScaleConfig,
        model: &AlexNet,
        plan: &mut Plan,
        optimizer: &mut Optimizer,
    ) -> Result<Self> {
        let scaler = Self {
            state: Tensor::zeros_u32(gpu, "loss scale state", &[state::LEN])?,
            config,
        };
        scaler.reset(gpu)?;
        plan.loss.extend(loss_scale::scale_gradient(
            gpu,
            &scaler.state,
            &plan.logits_grad,
        )?);
        let grads = trained_gradient_spans(model)?;
        optimizer.wrap_program(|update| scaler.gated(gpu, &grads, update))?;
        Ok(scaler)
    }

    /// What mixed-precision training needs on `gpu`: with its policy's `Precision::Mixed`,
    /// a scaler with torch's defaults attached to `plan` and `optimizer` (as torch.amp
    /// trains); in f32, none.
    pub fn for_device(
        gpu: &Gpu,
        model: &AlexNet,
        plan: &mut Plan,
        optimizer: &mut Optimizer,
    ) -> Result<Option<Self>> {
        if KernelPolicy::of(gpu).precision != Precision::Mixed {
            return Ok(None);
        }
        let config = LossScaleConfig::default();
        Self::attach(gpu, config, model, plan, optimizer).map(Some)
    }

    /// Unscale and check every gradient, then `update` only if they are all finite, then the
    /// scale's update.
    fn gated(&self, gpu: &Gpu, grads: &[Tensor], update: Program) -> Result<Program> {
        let mut program = Program::new();
        for grad in grads {
            program.extend(loss_scale::unscale_check(gpu, &self.state, grad)?);
        }
        let grids: Vec<u32> = update.dispatches().flat_map(|d| d.workgroups()).collect();
        if !grids.is_empty() {
            let shape = [grids.len()];
            let grids_tensor = Tensor::from_u32(gpu, "optimizer workgroup counts", &shape, &grids)?;
            let args = Tensor::zeros_u32(gpu, "gated workgroup counts", &shape)?;
            program.push(loss_scale::gate(gpu, &self.state, &grids_tensor, &args)?);
            program.append(update.map_dispatches(|i, d| d.indirect(&args, i)));
        }
        program.push(loss_scale::update_scale(
            gpu,
            &self.state,
            &self.config.update,
        )?);
        Ok(program)
    }

    /// Back to the initial scale with no step counted or skipped (a fresh run, a rollback).
    pub fn reset(&self, gpu: &Gpu) -> Result<()> {
        let mut initial = [0u32; state::LEN];
        initial[state::SCALE] = self.config.init_scale.to_bits();
        self.state.write_u32(gpu, &initial)
    }

    /// The current scale and the steps skipped so far (one small readback).
    pub fn read(&self, gpu: &Gpu) -> Result<ScaleStatus> {
        let s = self.state.read_u32(gpu)?;
        Ok(ScaleStatus {
            scale: f32::from_bits(s[state::SCALE]),
            skipped: s[state::SKIPPED],
        })
    }
}
