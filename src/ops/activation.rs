//! ReLU, LeakyReLU, ELU, Sigmoid and Tanh (`shaders/activation.wgsl`): forward and backward,
//! elementwise over any shape, one kernel body each way with the function chosen by a
//! parameter. Plain ReLU, the network's own, has its own functions ([`relu_forward`],
//! [`relu_backward`]): its backward needs only the output.

use crate::error::{Error, Result};
use crate::ops::shader_params;
use crate::ops::Shader;
use crate::ops::{expect_shape, launch, to_u32};
use crate::runtime::{Arg, Dispatch, Gpu, Tensor};

/// A non-linearity of this family, with its coefficient where it has one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// `torch.nn.LeakyReLU(slope)`.
    LeakyRelu { slope: f32 },
    /// `torch.nn.ELU(alpha)`.
    Elu { alpha: f32 },
    /// `torch.nn.Sigmoid`.
    Sigmoid,
    /// `torch.nn.Tanh`.
    Tanh,
}

impl Nonlinearity {
    /// PyTorch's module name.
    pub fn torch_name(self) -> &'static str {
        match self {
            Nonlinearity::LeakyRelu { .. } => "LeakyReLU",
            Nonlinearity::Elu { .. } => "ELU",
            Nonlinearity::Sigmoid => "Sigmoid",
            Nonlinearity::Tanh => "Tanh",
        }
    }

    /// The shader's `op` and `coefficient` (the numbering of `activation.wgsl`'s header).
    fn code(self) -> (u32, f32) {
        match self {
            Nonlinearity::LeakyRelu { slope } => (0, slope),
            Nonlinearity::Elu { alpha } => (1, alpha),
            Nonlinearity::Sigmoid => (2, 0.0),
            Nonlinearity::Tanh => (3, 0.0),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ActivationParams {
    len: u32,
    coefficient: f32,
    op: u32,
}

shader_params!(ActivationParams {
    len,
    coefficient,
    op
});

/// `activation.wgsl`'s op number of ReLU (not a [`Nonlinearity`]: it has its own functions).
const RELU: u32 = 4;

fn params(f: Nonlinearity, x: &Tensor) -> Result<ActivationParams> {
    let (op, coefficient) = f.code();
    if !coefficient.is_finite() {
        return Err(Error::Config(format!(
            "{}: coefficient {coefficient} must be finite",
            f.torch_name()
        )));
    }
    Ok(ActivationParams {
        len: to_u32("activation", "elements", x.numel())?,
        coefficient,
        op,
    })
}

fn relu_params(x: &Tensor) -> Result<ActivationParams> {
    Ok(ActivationParams {
        len: to_u32("relu", "elements", x.numel())?,
        coefficient: 0.0,
        op: RELU,
    })
}

/// `y = max(x, 0)` (torch.nn.ReLU). x and y have the same shape.
pub fn relu_forward(gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    expect_shape("relu", y, x.shape())?;
    let args = [Arg::Read(x.all()), Arg::Write(y.all())];
    let p = relu_params(x)?;
    let entry = "activation_forward";
    launch(gpu, Shader::Activation, entry, &p, &args, x.numel())
}

/// `dx = dy · [y > 0]`, from the forward's output y. All three have the same shape.
pub fn relu_backward(gpu: &Gpu, y: &Tensor, dy: &Tensor, dx: &Tensor) -> Result<Dispatch> {
    expect_shape("relu", dy, y.shape())?;
    expect_shape("relu", dx, y.shape())?;
    // The shader's x binding is unread by ReLU; y fills it.
    let args = [
        Arg::Read(y.all()),
        Arg::Read(y.all()),
        Arg::Read(dy.all()),
        Arg::Write(dx.all()),
    ];
    let p = relu_params(y)?;
    let entry = "activation_backward";
    launch(gpu, Shader::Activation, entry, &p, &args, y.numel())
}

/// `y = f(x)`.
///
/// # Shapes
/// x and y the same, any shape.
///
/// # Errors
/// A shape mismatch, or a non-finite coefficient.
pub fn activation_forward(gpu: &Gpu, f: Nonlinearity, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    expect_shape("activation", y, x.shape())?;
    let p = params(f, x)?;
    let args = [Arg::Read(x.all()), Arg::Write(y.all())];
    launch(
        gpu,
        Shader::Activation,
        "activation_forward",
        &p,
        &args,
        x.numel(),
    )
}

/// `dx = dy · f'(x)`, from the forward's input x and output y (see the shader's header for
/// which of the two each function reads).
///
/// # Shapes
/// x, y, dy and dx the same.
///
/// # Errors
/// A shape mismatch, or a non-finite coefficient.
pub fn activation_backward(
    gpu: &Gpu,
    f: Nonlinearity,
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Dispatch> {
    for t in [y, dy, dx] {
        expect_shape("activation", t, x.shape())?;
    }
    let p = params(f, x)?;
    let args = [
        Arg::Read(x.all()),
        Arg::Read(y.all()),
        Arg::Read(dy.all()),
        Arg::Write(dx.all()),
    ];
    launch(
        gpu,
        Shader::Activation,
        "activation_backward",
        &p,
        &args,
        x.numel(),
    )
}
