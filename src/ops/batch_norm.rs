//! BatchNorm2d (`shaders/batch_norm.wgsl`): the training forward (batch statistics, which it
//! keeps for the backward, and the running statistics it updates), the evaluation forward
//! (running statistics), and the training backward. PyTorch's semantics: biased variance to
//! normalise, unbiased variance in `running_var`, `momentum` weighting the new batch.

use crate::error::{Error, Result};
use crate::ops::shader_params;
use crate::ops::Shader;
use crate::ops::{expect_shape, launch, nchw, to_u32};
use crate::runtime::{Arg, Dispatch, Gpu, KernelCall, Tensor};

/// `torch.nn.BatchNorm2d(C, eps, momentum)` with its defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    pub eps: f32,
    pub momentum: f32,
}

impl Default for BatchNormConfig {
    /// PyTorch's: eps 1e-5, momentum 0.1.
    fn default() -> Self {
        Self {
            eps: 1e-5,
            momentum: 0.1,
        }
    }
}

/// The per-channel tensors of one BatchNorm layer.
///
/// # Shapes
/// weight, bias, running_mean, running_var `[C]`; num_batches `[1]`; saved `[2, C]`.
pub struct BatchNormState<'a> {
    pub weight: &'a Tensor,
    pub bias: &'a Tensor,
    pub running_mean: &'a Tensor,
    pub running_var: &'a Tensor,
    pub num_batches: &'a Tensor,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct BatchNormParams {
    batch: u32,
    channels: u32,
    plane: u32,
    momentum: f32,
    eps: f32,
}

shader_params!(BatchNormParams {
    batch,
    channels,
    plane,
    momentum,
    eps
});

fn check(cfg: &BatchNormConfig, x: &Tensor, per_channel: &[&Tensor]) -> Result<BatchNormParams> {
    let [n, c, h, w] = nchw("batch_norm", x)?;
    for t in per_channel {
        expect_shape("batch_norm", t, &[c])?;
    }
    if !(cfg.eps > 0.0 && (0.0..=1.0).contains(&cfg.momentum)) {
        return Err(Error::Config(format!(
            "batch_norm: eps {} must be positive and momentum {} within [0, 1]",
            cfg.eps, cfg.momentum
        )));
    }
    to_u32("batch_norm", "elements", x.numel())?;
    Ok(BatchNormParams {
        batch: n as u32,
        channels: c as u32,
        plane: (h * w) as u32,
        momentum: cfg.momentum,
        eps: cfg.eps,
    })
}

fn per_channel(
    gpu: &Gpu,
    entry: &'static str,
    p: &BatchNormParams,
    args: &[Arg<'_>],
) -> Result<Dispatch> {
    let call = KernelCall {
        shader: Shader::BatchNorm.into(),
        entry,
        params: bytemuck::bytes_of(p),
        args,
        threads: 0,
    };
    gpu.prepare_grid(call, [p.channels as usize, 1, 1])
}

/// Training forward: normalises each channel by its batch mean and biased variance, keeps
/// (mean, 1/√(var + eps)) in `saved` for the backward, and updates the running statistics.
///
/// # Shapes
/// x, y `[N, C, H, W]` (N·H·W ≥ 2, as PyTorch requires); saved `[2, C]`; state as
/// [`BatchNormState`].
pub fn batch_norm_train_forward(
    gpu: &Gpu,
    cfg: &BatchNormConfig,
    x: &Tensor,
    state: &BatchNormState<'_>,
    y: &Tensor,
    saved: &Tensor,
) -> Result<Dispatch> {
    let p = check(
        cfg,
        x,
        &[
            state.weight,
            state.bias,
            state.running_mean,
            state.running_var,
        ],
    )?;
    if p.batch * p.plane < 2 {
        return Err(Error::Shape {
            op: "batch_norm",
            what: format!(
                "training needs more than one value per channel, got input {:?}",
                x.shape()
            ),
        });
    }
    expect_shape("batch_norm", y, x.shape())?;
    expect_shape("batch_norm", saved, &[2, p.channels as usize])?;
    expect_shape("batch_norm", state.num_batches, &[1])?;
    let args = [
        Arg::Read(x.all()),
        Arg::Read(state.weight.all()),
        Arg::Read(state.bias.all()),
        Arg::Write(y.all()),
        Arg::Write(saved.all()),
        Arg::Write(state.running_mean.all()),
        Arg::Write(state.running_var.all()),
        Arg::Write(state.num_batches.all()),
    ];
    per_channel(gpu, "batch_norm_train_forward", &p, &args)
}

/// Evaluation forward: normalises with the running statistics; changes nothing.
///
/// # Shapes
/// x, y `[N, C, H, W]`; state as [`BatchNormState`] (num_batches unused).
pub fn batch_norm_eval_forward(
    gpu: &Gpu,
    cfg: &BatchNormConfig,
    x: &Tensor,
    state: &BatchNormState<'_>,
    y: &Tensor,
) -> Result<Dispatch> {
    let p = check(
        cfg,
        x,
        &[
            state.weight,
            state.bias,
            state.running_mean,
            state.running_var,
        ],
    )?;
    expect_shape("batch_norm", y, x.shape())?;
    let args = [
        Arg::Read(x.all()),
        Arg::Read(state.weight.all()),
        Arg::Read(state.bias.all()),
        Arg::Read(state.running_mean.all()),
        Arg::Read(state.running_var.all()),
        Arg::Write(y.all()),
    ];
    launch(
        gpu,
        Shader::BatchNorm,
        "batch_norm_eval_forward",
        &p,
        &args,
        x.numel(),
    )
}

/// Training backward from the batch statistics the training forward saved: assigns dx and
/// adds into dweight and dbias.
///
/// # Shapes
/// x, dy, dx `[N, C, H, W]`; weight, dweight, dbias `[C]`; saved `[2, C]`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    gpu: &Gpu,
    cfg: &BatchNormConfig,
    x: &Tensor,
    weight: &Tensor,
    saved: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    dweight: &Tensor,
    dbias: &Tensor,
) -> Result<Dispatch> {
    let p = check(cfg, x, &[weight, dweight, dbias])?;
    expect_shape("batch_norm", saved, &[2, p.channels as usize])?;
    expect_shape("batch_norm", dy, x.shape())?;
    expect_shape("batch_norm", dx, x.shape())?;
    let args = [
        Arg::Read(x.all()),
        Arg::Read(weight.all()),
        Arg::Read(saved.all()),
        Arg::Read(dy.all()),
        Arg::Write(dx.all()),
        Arg::Write(dweight.all()),
        Arg::Write(dbias.all()),
    ];
    per_channel(gpu, "batch_norm_backward", &p, &args)
}
