//! Dropout (`shaders/dropout.wgsl`): inverted dropout whose mask is a counter-based hash of
//! (step seed, layer salt, element index), so the backward regenerates the same mask.

use crate::error::{Error, Result};
use crate::ops::shader_params;
use crate::ops::Shader;
use crate::ops::{expect_shape, launch, to_u32};
use crate::runtime::{Arg, Dispatch, Gpu, Tensor, Uniform};

/// The per-step seed every dropout layer reads; the trainer rewrites it each step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct StepSeed {
    pub seed: u32,
}

shader_params!(StepSeed { seed });

/// `torch.nn.Dropout(p)` in training mode; `salt` distinguishes layers within one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutConfig {
    pub p: f32,
    pub salt: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct DropoutParams {
    len: u32,
    salt: u32,
    threshold: u32,
    scale: f32,
}

shader_params!(DropoutParams {
    len,
    salt,
    threshold,
    scale
});

fn params(cfg: &DropoutConfig, x: &Tensor) -> Result<DropoutParams> {
    if !(0.0..=1.0).contains(&cfg.p) {
        return Err(Error::Config(format!(
            "dropout probability {} is outside [0, 1]",
            cfg.p
        )));
    }
    // Keep when hash ≥ ⌊p·2³²⌋; p = 1 drops everything through a zero scale.
    let threshold = (f64::from(cfg.p) * 4_294_967_296.0).min(4_294_967_295.0) as u32;
    let scale = if cfg.p < 1.0 {
        1.0 / (1.0 - cfg.p)
    } else {
        0.0
    };
    Ok(DropoutParams {
        len: to_u32("dropout", "elements", x.numel())?,
        salt: cfg.salt,
        threshold,
        scale,
    })
}

/// `y = mask · x / (1 − p)`. x and y have the same shape.
pub fn dropout_forward(
    gpu: &Gpu,
    cfg: &DropoutConfig,
    seed: &Uniform<StepSeed>,
    x: &Tensor,
    y: &Tensor,
) -> Result<Dispatch> {
    expect_shape("dropout", y, x.shape())?;
    let args = [
        Arg::Uniform(seed.buffer()),
        Arg::Read(x.all()),
        Arg::Write(y.all()),
    ];
    launch(
        gpu,
        Shader::Dropout,
        "dropout_forward",
        &params(cfg, x)?,
        &args,
        x.numel(),
    )
}

/// `dx = mask · dy / (1 − p)` with the forward's mask (same seed uniform, same config).
pub fn dropout_backward(
    gpu: &Gpu,
    cfg: &DropoutConfig,
    seed: &Uniform<StepSeed>,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Dispatch> {
    expect_shape("dropout", dx, dy.shape())?;
    let args = [
        Arg::Uniform(seed.buffer()),
        Arg::Read(dy.all()),
        Arg::Write(dx.all()),
    ];
    launch(
        gpu,
        Shader::Dropout,
        "dropout_backward",
        &params(cfg, dy)?,
        &args,
        dy.numel(),
    )
}
