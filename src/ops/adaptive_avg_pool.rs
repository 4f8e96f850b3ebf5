//! AdaptiveAvgPool2d (`shaders/adaptive_avg_pool.wgsl`): forward and backward.

use crate::error::{Error, Result};
use crate::ops::Shader;
use crate::ops::{expect_shape, launch, nchw, to_u32};
use crate::runtime::{Arg, Dispatch, Gpu, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct AdaptivePoolParams {
    batch: u32,
    channels: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
}

impl AdaptivePoolParams {
    pub(crate) fn layout() -> Vec<crate::ops::FieldLayout> {
        crate::ops::field_layout!(AdaptivePoolParams {
            batch,
            channels,
            in_h,
            in_w,
            out_h,
            out_w
        })
    }
}

fn check(x: &Tensor, y: &Tensor) -> Result<AdaptivePoolParams> {
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
    Ok(AdaptivePoolParams {
        batch: n as u32,
        channels: c as u32,
        in_h: h as u32,
        in_w: w as u32,
        out_h: oh as u32,
        out_w: ow as u32,
    })
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
    expect_shape(
        "adaptive_avg_pool",
        dy,
        &[
            dx.shape()[0],
            dx.shape()[1],
            p.out_h as usize,
            p.out_w as usize,
        ],
    )?;
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
