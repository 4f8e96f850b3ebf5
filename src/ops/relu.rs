//! ReLU (`shaders/relu.wgsl`): forward and backward, elementwise over any shape.

use crate::error::Result;
use crate::ops::Shader;
use crate::ops::{expect_shape, launch, to_u32};
use crate::runtime::{Arg, Dispatch, Gpu, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ReluParams {
    len: u32,
}

fn params(x: &Tensor) -> Result<ReluParams> {
    Ok(ReluParams {
        len: to_u32("relu", "elements", x.numel())?,
    })
}

/// `y = max(x, 0)`. x and y have the same shape.
pub fn relu_forward(gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    expect_shape("relu", y, x.shape())?;
    let args = [Arg::Read(x.all()), Arg::Write(y.all())];
    launch(
        gpu,
        Shader::Relu,
        "relu_forward",
        &params(x)?,
        &args,
        x.numel(),
    )
}

/// `dx = dy · [y > 0]`, from the forward's output y. All three have the same shape.
pub fn relu_backward(gpu: &Gpu, y: &Tensor, dy: &Tensor, dx: &Tensor) -> Result<Dispatch> {
    expect_shape("relu", dy, y.shape())?;
    expect_shape("relu", dx, y.shape())?;
    let args = [
        Arg::Read(y.all()),
        Arg::Read(dy.all()),
        Arg::Write(dx.all()),
    ];
    launch(
        gpu,
        Shader::Relu,
        "relu_backward",
        &params(y)?,
        &args,
        y.numel(),
    )
}
