//! Dynamic loss scaling for mixed-precision training (`shaders/loss_scale.wgsl`), torch.amp's
//! GradScaler on the GPU: the loss gradient is multiplied by a scale so that small gradients
//! survive the f16 operands of the backward GEMMs, each trained gradient is divided by it again
//! and checked, the optimizer's dispatches are skipped (made zero-sized through their
//! indirect workgroup counts) on a step whose gradients overflowed, and the scale halves on
//! such a step and doubles after a run of good ones. Nothing is read back per step.

use crate::error::{Error, Result};
use crate::ops::shader_params;
use crate::ops::{launch, to_u32, Shader};
use crate::runtime::{binding_chunks, Arg, DType, Dispatch, Gpu, KernelCall, Tensor};

/// Slots of the state tensor (u32).
pub mod state {
    /// The scale, as f32 bits.
    pub const SCALE: usize = 0;
    /// Good steps since the scale last changed.
    pub const GOOD_STEPS: usize = 1;
    /// Whether this step's gradients held a NaN or an infinity (cleared by `update_scale`).
    pub const FOUND_INF: usize = 2;
    /// Steps skipped in all.
    pub const SKIPPED: usize = 3;
    pub const LEN: usize = 4;
}

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct LossScaleParams {
    len: u32,
    growth_interval: u32,
    growth_factor: f32,
    backoff_factor: f32,
}

shader_params!(LossScaleParams {
    len,
    growth_interval,
    growth_factor,
    backoff_factor
});

/// How the scale moves (torch.amp.GradScaler's arguments).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleUpdate {
    pub growth_factor: f32,
    pub backoff_factor: f32,
    pub growth_interval: u32,
}

fn check_state(op: &'static str, state: &Tensor) -> Result<()> {
    if state.dtype() != DType::U32 || state.numel() != state::LEN {
        return Err(Error::Shape {
            op,
            what: format!(
                "state '{}' must be u32 [{}] (scale bits, good steps, found_inf, skipped)",
                state.name(),
                state::LEN
            ),
        });
    }
    Ok(())
}

/// One dispatch of `entry` per binding-sized slice of the f32 tensor `x`, with `state` bound
/// before it (written when `writes_state`).
fn per_slice(
    gpu: &Gpu,
    entry: &'static str,
    state: &Tensor,
    writes_state: bool,
    x: &Tensor,
) -> Result<Vec<Dispatch>> {
    check_state(entry, state)?;
    to_u32(entry, "elements", x.numel())?;
    binding_chunks(gpu, x.numel(), 1)
        .into_iter()
        .map(|(first, len)| {
            let p = LossScaleParams {
                len: len as u32,
                ..Default::default()
            };
            let state = if writes_state {
                Arg::Write(state.all())
            } else {
                Arg::Read(state.all())
            };
            let args = [state, Arg::Write(x.slice(first, len))];
            launch(gpu, Shader::LossScale, entry, &p, &args, len)
        })
        .collect()
}

/// `x *= scale` (the loss gradient, so the backward runs on scaled gradients).
pub fn scale_gradient(gpu: &Gpu, state: &Tensor, x: &Tensor) -> Result<Vec<Dispatch>> {
    per_slice(gpu, "scale_gradient", state, false, x)
}

/// `grad *= 1 / scale`, and `found_inf` set when any result is NaN or infinite.
pub fn unscale_check(gpu: &Gpu, state: &Tensor, grad: &Tensor) -> Result<Vec<Dispatch>> {
    per_slice(gpu, "unscale_check", state, true, grad)
}

/// `args = found_inf ? 0 : grids`: the workgroup counts (3 u32 per dispatch) that gated
/// dispatches read (`Dispatch::indirect`).
pub fn gate(gpu: &Gpu, state: &Tensor, grids: &Tensor, args: &Tensor) -> Result<Dispatch> {
    check_state("gate", state)?;
    if grids.dtype() != DType::U32 || args.dtype() != DType::U32 || grids.numel() != args.numel() {
        return Err(Error::Shape {
            op: "gate",
            what: format!(
                "grids '{}' and args '{}' must be u32 of one length",
                grids.name(),
                args.name()
            ),
        });
    }
    let p = LossScaleParams {
        len: to_u32("gate", "counts", grids.numel())?,
        ..Default::default()
    };
    let args = [
        Arg::Read(state.all()),
        Arg::Read(grids.all()),
        Arg::Write(args.all()),
    ];
    launch(gpu, Shader::LossScale, "gate", &p, &args, grids.numel())
}

/// The end of a step: the scale backs off after an overflow, grows after a run of good
/// steps, and `found_inf` is cleared for the next step.
pub fn update_scale(gpu: &Gpu, state: &Tensor, update: &ScaleUpdate) -> Result<Dispatch> {
    check_state("update_scale", state)?;
    let p = LossScaleParams {
        len: 1,
        growth_interval: update.growth_interval.max(1),
        growth_factor: update.growth_factor,
        backoff_factor: update.backoff_factor,
    };
    let args = [Arg::Write(state.all())];
    gpu.prepare_grid(
        KernelCall {
            shader: Shader::LossScale.into(),
            entry: "update_scale",
            params: bytemuck::bytes_of(&p),
            args: &args,
            threads: 0,
        },
        [1, 1, 1],
    )
}
