//! LocalResponseNorm (`shaders/lrn.wgsl`): forward (which keeps the scale s for the
//! backward) and backward, with PyTorch's window and `alpha / size`. The tiled kernels hold
//! each workgroup's channel windows in workgroup memory (each input read once, not `size`
//! times; GPUs only by default, see `KernelPolicy::workgroup_lrn`); the plain ones, the
//! oracle and the path for windows past [`TILED_MAX_SIZE`], read them from global memory.
//! Both sum in the same order.

use crate::error::{Error, Result};
use crate::ops::shader_params;
use crate::ops::{expect_shape, launch, nchw, to_u32};
use crate::ops::{KernelPolicy, Shader};
use crate::runtime::{Arg, Dispatch, Gpu, KernelCall, Tensor};

/// A tiled workgroup's pixels and channels, and the largest window it holds
/// (`shaders/lrn.wgsl`'s `LRN_PIXELS`, `LRN_CHANNELS`, `LRN_MAX_SIZE`).
const TILE_PIXELS: usize = 32;
const TILE_CHANNELS: usize = 8;
pub const TILED_MAX_SIZE: usize = 16;

/// `torch.nn.LocalResponseNorm(size, alpha, beta, k)`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LrnConfig {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

impl Default for LrnConfig {
    /// AlexNet's: size 5, alpha 1e-4, beta 0.75, k 2.
    fn default() -> Self {
        Self {
            size: 5,
            alpha: 1e-4,
            beta: 0.75,
            k: 2.0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct LrnParams {
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    size: u32,
    alpha: f32,
    beta: f32,
    k: f32,
}

shader_params!(LrnParams {
    batch,
    channels,
    height,
    width,
    size,
    alpha,
    beta,
    k
});

fn params(cfg: &LrnConfig, x: &Tensor) -> Result<LrnParams> {
    if cfg.size == 0 || cfg.k <= 0.0 {
        return Err(Error::Config(format!(
            "lrn {cfg:?}: size must be at least 1 and k positive"
        )));
    }
    let [n, c, h, w] = nchw("lrn", x)?;
    to_u32("lrn", "elements", x.numel())?;
    Ok(LrnParams {
        batch: n as u32,
        channels: c as u32,
        height: h as u32,
        width: w as u32,
        size: to_u32("lrn", "size", cfg.size)?,
        alpha: cfg.alpha,
        beta: cfg.beta,
        k: cfg.k,
    })
}

/// `y = x · s^(−beta)`, writing s to `scale`. All tensors `[N, C, H, W]`.
pub fn lrn_forward(
    gpu: &Gpu,
    cfg: &LrnConfig,
    x: &Tensor,
    y: &Tensor,
    scale: &Tensor,
) -> Result<Dispatch> {
    let p = params(cfg, x)?;
    expect_shape("lrn", y, x.shape())?;
    expect_shape("lrn", scale, x.shape())?;
    let args = [
        Arg::Read(x.all()),
        Arg::Write(y.all()),
        Arg::Write(scale.all()),
    ];
    dispatch(gpu, cfg, x, ["lrn_forward", "lrn_forward_tiled"], &p, &args)
}

/// `dx = ∂L/∂x` from the forward's x, y and scale. All tensors `[N, C, H, W]`.
#[allow(clippy::too_many_arguments)]
pub fn lrn_backward(
    gpu: &Gpu,
    cfg: &LrnConfig,
    x: &Tensor,
    y: &Tensor,
    scale: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Dispatch> {
    let p = params(cfg, x)?;
    for t in [y, scale, dy, dx] {
        expect_shape("lrn", t, x.shape())?;
    }
    let args = [
        Arg::Read(x.all()),
        Arg::Read(y.all()),
        Arg::Read(scale.all()),
        Arg::Read(dy.all()),
        Arg::Write(dx.all()),
    ];
    dispatch(
        gpu,
        cfg,
        x,
        ["lrn_backward", "lrn_backward_tiled"],
        &p,
        &args,
    )
}

/// The plain kernel `entries[0]`, one invocation per element, or where the device's policy
/// has LRN in workgroup memory and the window fits, the tiled `entries[1]`.
fn dispatch(
    gpu: &Gpu,
    cfg: &LrnConfig,
    x: &Tensor,
    entries: [&'static str; 2],
    p: &LrnParams,
    args: &[Arg<'_>],
) -> Result<Dispatch> {
    if !KernelPolicy::of(gpu).workgroup_lrn(gpu) || cfg.size > TILED_MAX_SIZE {
        return launch(gpu, Shader::Lrn, entries[0], p, args, x.numel());
    }
    let [n, c, h, w] = nchw("lrn", x)?;
    let call = KernelCall {
        shader: Shader::Lrn.into(),
        entry: entries[1],
        params: bytemuck::bytes_of(p),
        args,
        threads: 0,
    };
    gpu.prepare_grid(
        call,
        [(h * w).div_ceil(TILE_PIXELS), c.div_ceil(TILE_CHANNELS), n],
    )
}
