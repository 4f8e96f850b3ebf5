//! MaxPool2d (`shaders/max_pool.wgsl`): forward (which stores the argmax) and backward.

use crate::error::{Error, Result};
use crate::ops::Shader;
use crate::ops::{expect_shape, launch, PoolParams, PoolWindow};
use crate::runtime::{Arg, DType, Dispatch, Gpu, Tensor};

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
        self.window().output_hw("max_pool", h, w)
    }

    fn window(&self) -> PoolWindow {
        PoolWindow {
            kernel: self.kernel,
            stride: self.stride,
            padding: 0,
        }
    }
}

/// Checks the tensors of a max pool (argmax: u32, y's shape); returns the shader parameters.
fn check(cfg: &MaxPoolConfig, x: &Tensor, y: &Tensor, argmax: &Tensor) -> Result<PoolParams> {
    let p = cfg.window().params("max_pool", x, y)?;
    expect_shape("max_pool", argmax, y.shape())?;
    if argmax.dtype() != DType::U32 {
        return Err(Error::Shape {
            op: "max_pool",
            what: format!("tensor '{}' must be u32 (argmax indices)", argmax.name()),
        });
    }
    Ok(p)
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
