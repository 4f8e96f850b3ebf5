//! AvgPool2d (`shaders/avg_pool.wgsl`): forward and backward, floor mode, with PyTorch's
//! default `count_include_pad = True` (every window divides by kernel²).

use crate::error::{Error, Result};
use crate::ops::{expect_shape, launch, nchw, to_u32};
use crate::runtime::{Arg, Dispatch, Gpu, Shader, Tensor};

/// `torch.nn.AvgPool2d(kernel, stride, padding)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPoolConfig {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl AvgPoolConfig {
    pub fn output_hw(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        // PyTorch: padding at most half the kernel, so no window lies wholly in the padding.
        if k == 0 || s == 0 || p > k / 2 || h + 2 * p < k || w + 2 * p < k {
            return Err(Error::Shape {
                op: "avg_pool",
                what: format!(
                    "input {h}x{w} does not fit a {k}x{k} window (stride {s}, padding {p}; padding must be at most half the window)"
                ),
            });
        }
        Ok(((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1))
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AvgPoolParams {
    batch: u32,
    channels: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
}

fn check(cfg: &AvgPoolConfig, x: &Tensor, y: &Tensor) -> Result<AvgPoolParams> {
    let [n, c, h, w] = nchw("avg_pool", x)?;
    let (oh, ow) = cfg.output_hw(h, w)?;
    expect_shape("avg_pool", y, &[n, c, oh, ow])?;
    to_u32("avg_pool", "elements", x.numel())?;
    Ok(AvgPoolParams {
        batch: n as u32,
        channels: c as u32,
        in_h: h as u32,
        in_w: w as u32,
        out_h: oh as u32,
        out_w: ow as u32,
        kernel: cfg.kernel as u32,
        stride: cfg.stride as u32,
        padding: cfg.padding as u32,
    })
}

/// `y` = the mean of each window, padding counted as zeros.
///
/// # Shapes
/// x `[N, C, H, W]`; y `[N, C, OH, OW]`, `OH = (H + 2P − K) / S + 1`.
pub fn avg_pool_forward(
    gpu: &Gpu,
    cfg: &AvgPoolConfig,
    x: &Tensor,
    y: &Tensor,
) -> Result<Dispatch> {
    let p = check(cfg, x, y)?;
    let args = [Arg::Read(x.all()), Arg::Write(y.all())];
    launch(
        gpu,
        Shader::AvgPool,
        "avg_pool_forward",
        &p,
        &args,
        y.numel(),
    )
}

/// `dx` = the sum of dy / K² over the windows covering each input.
///
/// # Shapes
/// dy `[N, C, OH, OW]`; dx `[N, C, H, W]`.
pub fn avg_pool_backward(
    gpu: &Gpu,
    cfg: &AvgPoolConfig,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Dispatch> {
    let p = check(cfg, dx, dy)?;
    let args = [Arg::Read(dy.all()), Arg::Write(dx.all())];
    launch(
        gpu,
        Shader::AvgPool,
        "avg_pool_backward",
        &p,
        &args,
        dx.numel(),
    )
}
