//! AvgPool2d (`shaders/avg_pool.wgsl`): forward and backward, floor mode, with PyTorch's
//! default `count_include_pad = True` (every window divides by kernel²).

use crate::error::Result;
use crate::ops::Shader;
use crate::ops::{launch, PoolWindow};
use crate::runtime::{Arg, Dispatch, Gpu, Tensor};

/// `torch.nn.AvgPool2d(kernel, stride, padding)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPoolConfig {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl AvgPoolConfig {
    pub fn output_hw(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        self.window().output_hw("avg_pool", h, w)
    }

    fn window(&self) -> PoolWindow {
        PoolWindow {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
        }
    }
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
    let p = cfg.window().params("avg_pool", x, y)?;
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
    let p = cfg.window().params("avg_pool", dx, dy)?;
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
