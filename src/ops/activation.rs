//! LeakyReLU and ELU (`shaders/activation.wgsl`): forward and backward, elementwise over any
//! shape. Plain ReLU is `ops::relu`.

use crate::error::{Error, Result};
use crate::ops::{expect_shape, launch, to_u32};
use crate::runtime::{Arg, Dispatch, Gpu, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ActivationParams {
    len: u32,
    coefficient: f32,
}

fn params(op: &'static str, x: &Tensor, coefficient: f32) -> Result<ActivationParams> {
    if !coefficient.is_finite() {
        return Err(Error::Config(format!(
            "{op}: coefficient {coefficient} must be finite"
        )));
    }
    Ok(ActivationParams {
        len: to_u32(op, "elements", x.numel())?,
        coefficient,
    })
}

/// `y = x if x > 0 else slope · x` (`torch.nn.LeakyReLU(slope)`).
///
/// # Shapes
/// x and y the same, any shape.
pub fn leaky_relu_forward(gpu: &Gpu, slope: f32, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    expect_shape("leaky_relu", y, x.shape())?;
    let p = params("leaky_relu", x, slope)?;
    let args = [Arg::Read(x.all()), Arg::Write(y.all())];
    launch(
        gpu,
        Shader::Activation,
        "leaky_relu_forward",
        &p,
        &args,
        x.numel(),
    )
}

/// `dx = dy if x > 0 else slope · dy`, from the forward's input x.
///
/// # Shapes
/// x, dy and dx the same.
pub fn leaky_relu_backward(
    gpu: &Gpu,
    slope: f32,
    x: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Dispatch> {
    expect_shape("leaky_relu", dy, x.shape())?;
    expect_shape("leaky_relu", dx, x.shape())?;
    let p = params("leaky_relu", x, slope)?;
    let args = [
        Arg::Read(x.all()),
        Arg::Read(dy.all()),
        Arg::Write(dx.all()),
    ];
    launch(
        gpu,
        Shader::Activation,
        "leaky_relu_backward",
        &p,
        &args,
        x.numel(),
    )
}

/// `y = x if x > 0 else alpha · (exp(x) − 1)` (`torch.nn.ELU(alpha)`).
///
/// # Shapes
/// x and y the same, any shape.
pub fn elu_forward(gpu: &Gpu, alpha: f32, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    expect_shape("elu", y, x.shape())?;
    let p = params("elu", x, alpha)?;
    let args = [Arg::Read(x.all()), Arg::Write(y.all())];
    launch(gpu, Shader::Activation, "elu_forward", &p, &args, x.numel())
}

/// `dx = dy if x > 0 else dy · (y + alpha)`, from the forward's input x and output y.
///
/// # Shapes
/// x, y, dy and dx the same.
pub fn elu_backward(
    gpu: &Gpu,
    alpha: f32,
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Dispatch> {
    for t in [y, dy, dx] {
        expect_shape("elu", t, x.shape())?;
    }
    let p = params("elu", x, alpha)?;
    let args = [
        Arg::Read(x.all()),
        Arg::Read(y.all()),
        Arg::Read(dy.all()),
        Arg::Write(dx.all()),
    ];
    launch(
        gpu,
        Shader::Activation,
        "elu_backward",
        &p,
        &args,
        x.numel(),
    )
}
