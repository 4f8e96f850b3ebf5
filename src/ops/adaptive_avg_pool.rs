//! AdaptiveAvgPool2d (`shaders/adaptive_avg_pool.wgsl`): forward and backward.

use crate::error::{Error, Result};
use crate::ops::pool::PoolParams;
use crate::ops::Shader;
use crate::ops::{launch, nchw, to_u32};
use crate::runtime::{Arg, Dispatch, Gpu, Tensor};

fn check(x: &Tensor, y: &Tensor) -> Result<PoolParams> {
    let [n, c, h, w] = nchw("adaptive_avg_pool", x)?;
    let [yn, yc, oh, ow] = nchw("adaptive_avg_pool", y)?;
    if (yn, yc) != (n, c) || oh == 0 || ow == 0 || h == 0 || w == 0 {
        return Err(Error::Shape {
            op: "adaptive_avg_pool",
            what: format!(
                "tensor '{}' {:?} cannot pool to '{}' {:?}",
                x.name(),
                x.shape(),
                y.name(),
                y.shape()
            ),
        });
    }
    to_u32("adaptive_avg_pool", "elements", x.numel().max(y.numel()))?;
    Ok(PoolParams::new([n, c, h, w], (oh, ow), [0; 3]))
}

/// Averages x over PyTorch's adaptive windows into y's spatial size.
///
/// # Shapes
/// x `[N, C, H, W]`, y `[N, C, OH, OW]` (any H, W ≥ 1, also smaller than OH, OW).
pub fn adaptive_avg_pool_forward(gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    let p = check(x, y)?;
    let args = [Arg::Read(x.all()), Arg::Write(y.all())];
    launch(
        gpu,
        Shader::AdaptiveAvgPool,
        "adaptive_avg_pool_forward",
        &p,
        &args,
        y.numel(),
    )
}

/// `dx` from `dy`. dy `[N, C, OH, OW]`, dx `[N, C, H, W]`.
pub fn adaptive_avg_pool_backward(gpu: &Gpu, dy: &Tensor, dx: &Tensor) -> Result<Dispatch> {
    let p = check(dx, dy)?;
    let args = [Arg::Read(dy.all()), Arg::Write(dx.all())];
    launch(
        gpu,
        Shader::AdaptiveAvgPool,
        "adaptive_avg_pool_backward",
        &p,
        &args,
        dx.numel(),
    )
}
