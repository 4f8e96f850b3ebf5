//! SGD with momentum and weight decay (`shaders/sgd.wgsl`), PyTorch semantics, on the GPU.
//! Parameters larger than one binding (FC6's weight) are updated slice by slice.

use crate::error::Result;
use crate::ops::Shader;
use crate::ops::{expect_shape, launch, to_u32};
use crate::runtime::{binding_chunks, Arg, Dispatch, Gpu, Tensor, Uniform};

/// The hyper-parameters the update reads; a uniform so schedules can change `lr` in place.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SgdHyper {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

impl SgdHyper {
    pub(crate) fn layout() -> Vec<crate::ops::FieldLayout> {
        crate::ops::field_layout!(SgdHyper {
            lr,
            momentum,
            weight_decay
        })
    }
}

impl Default for SgdHyper {
    /// The paper's: lr 0.01, momentum 0.9, weight decay 5e-4.
    fn default() -> Self {
        Self {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct SgdParams {
    len: u32,
}

impl SgdParams {
    pub(crate) fn layout() -> Vec<crate::ops::FieldLayout> {
        crate::ops::field_layout!(SgdParams { len })
    }
}

/// `param -= lr · (momentum_buf = momentum · momentum_buf + grad + wd · param)`.
/// param, grad and momentum_buf have the same shape; momentum_buf starts at zero.
pub fn sgd_step(
    gpu: &Gpu,
    hyper: &Uniform<SgdHyper>,
    grad: &Tensor,
    param: &Tensor,
    momentum_buf: &Tensor,
) -> Result<Vec<Dispatch>> {
    expect_shape("sgd", grad, param.shape())?;
    expect_shape("sgd", momentum_buf, param.shape())?;
    to_u32("sgd", "elements", param.numel())?;
    binding_chunks(gpu, param.numel(), 1)
        .into_iter()
        .map(|(first, len)| {
            let args = [
                Arg::Uniform(hyper.buffer()),
                Arg::Read(grad.slice(first, len)),
                Arg::Write(param.slice(first, len)),
                Arg::Write(momentum_buf.slice(first, len)),
            ];
            let p = SgdParams { len: len as u32 };
            launch(gpu, Shader::Sgd, "sgd_step", &p, &args, len)
        })
        .collect()
}
