//! MaxPool2d (`shaders/max_pool.wgsl`): forward (which stores the argmax) and backward.

use crate::error::{Error, Result};
use crate::ops::{expect_shape, launch, nchw, to_u32};
use crate::runtime::{Arg, DType, Dispatch, Gpu, Shader, Tensor};

/// `torch.nn.MaxPool2d(kernel, stride)`: no padding, floor mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPoolConfig {
    pub kernel: usize,
    pub stride: usize,
}

impl MaxPoolConfig {
    /// AlexNet's overlapping pool: 3×3, stride 2.
    pub const ALEXNET: Self = Self {
        kernel: 3,
        stride: 2,
    };

    pub fn output_hw(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        if self.kernel == 0 || self.stride == 0 || h < self.kernel || w < self.kernel {
            return Err(Error::Shape {
                op: "max_pool",
                what: format!(
                    "input {h}x{w} is smaller than the {0}x{0} window (stride {1})",
                    self.kernel, self.stride
                ),
            });
        }
        Ok((
            (h - self.kernel) / self.stride + 1,
            (w - self.kernel) / self.stride + 1,
        ))
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PoolParams {
    batch: u32,
    channels: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    kernel: u32,
    stride: u32,
}

fn check(cfg: &MaxPoolConfig, x: &Tensor, y: &Tensor, argmax: &Tensor) -> Result<PoolParams> {
    let [n, c, h, w] = nchw("max_pool", x)?;
    let (oh, ow) = cfg.output_hw(h, w)?;
    expect_shape("max_pool", y, &[n, c, oh, ow])?;
    expect_shape("max_pool", argmax, &[n, c, oh, ow])?;
    if argmax.dtype() != DType::U32 {
        return Err(Error::Shape {
            op: "max_pool",
            what: format!("tensor '{}' must be u32 (argmax indices)", argmax.name()),
        });
    }
    to_u32("max_pool", "elements", x.numel())?;
    Ok(PoolParams {
        batch: n as u32,
        channels: c as u32,
        in_h: h as u32,
        in_w: w as u32,
        out_h: oh as u32,
        out_w: ow as u32,
        kernel: cfg.kernel as u32,
        stride: cfg.stride as u32,
    })
}

/// `y = max over each window`, `argmax` = its in-plane index (first maximum on ties).
///
/// # Shapes
/// x `[N, C, H, W]`; y and argmax (u32) `[N, C, OH, OW]`.
pub fn max_pool_forward(
    gpu: &Gpu,
    cfg: &MaxPoolConfig,
    x: &Tensor,
    y: &Tensor,
    argmax: &Tensor,
) -> Result<Dispatch> {
    let p = check(cfg, x, y, argmax)?;
    let args = [
        Arg::Read(x.all()),
        Arg::Write(y.all()),
        Arg::Write(argmax.all()),
    ];
    launch(
        gpu,
        Shader::MaxPool,
        "max_pool_forward",
        &p,
        &args,
        y.numel(),
    )
}

/// `dx` = the sum of dy over the windows whose maximum each input was.
///
/// # Shapes
/// dy and argmax `[N, C, OH, OW]`; dx `[N, C, H, W]`.
pub fn max_pool_backward(
    gpu: &Gpu,
    cfg: &MaxPoolConfig,
    dy: &Tensor,
    argmax: &Tensor,
    dx: &Tensor,
) -> Result<Dispatch> {
    let p = check(cfg, dx, dy, argmax)?;
    let args = [
        Arg::Read(dy.all()),
        Arg::Read(argmax.all()),
        Arg::Write(dx.all()),
    ];
    launch(
        gpu,
        Shader::MaxPool,
        "max_pool_backward",
        &p,
        &args,
        dx.numel(),
    )
}
