//! SGD with momentum and weight decay (`shaders/sgd.wgsl`), PyTorch semantics, on the GPU.
//! Parameters larger than one binding (FC6's weight) are updated slice by slice.

use crate::error::Result;
use crate::ops::shader_params;
use crate::ops::update_dispatches;
use crate::ops::Shader;
use crate::runtime::{Dispatch, Gpu, Tensor, Uniform};

/// The hyper-parameters the update reads; a uniform so schedules can change `lr` in place.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SgdHyper {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

shader_params!(SgdHyper {
    lr,
    momentum,
    weight_decay
});

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

/// `param -= lr · (momentum_buf = momentum · momentum_buf + grad + wd · param)`.
/// param, grad and momentum_buf have the same shape; momentum_buf starts at zero.
pub fn sgd_step(
    gpu: &Gpu,
    hyper: &Uniform<SgdHyper>,
    grad: &Tensor,
    param: &Tensor,
    momentum_buf: &Tensor,
) -> Result<Vec<Dispatch>> {
    let entry = (Shader::Sgd, "sgd_step");
    update_dispatches(
        gpu,
        "sgd",
        entry,
        hyper.buffer(),
        grad,
        param,
        &[momentum_buf],
    )
}
