//! Adam and AdamW (`shaders/adam.wgsl`), PyTorch semantics, on the GPU. Parameters larger
//! than one binding (FC6's weight) are updated slice by slice.

use crate::error::Result;
use crate::ops::shader_params;
use crate::ops::update_dispatches;
use crate::ops::Shader;
use crate::runtime::{Dispatch, Gpu, Tensor, Uniform};

/// What the update reads; the host rewrites it every step (the bias corrections change).
/// Every scalar is formed in f64 and rounded once, as PyTorch does with Python floats.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AdamHyper {
    /// `lr / (1 − β1ᵗ)`.
    pub step_size: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub one_minus_beta1: f32,
    pub one_minus_beta2: f32,
    pub eps: f32,
    /// Adam's L2 coefficient added to the gradient (0 for AdamW).
    pub l2: f32,
    /// AdamW's `1 − lr · weight_decay` applied to the weights (1 for Adam).
    pub decay: f32,
    /// `√(1 − β2ᵗ)`.
    pub bias_correction2_sqrt: f32,
}

shader_params!(AdamHyper {
    step_size,
    beta1,
    beta2,
    one_minus_beta1,
    one_minus_beta2,
    eps,
    l2,
    decay,
    bias_correction2_sqrt
});

impl AdamHyper {
    /// The hyper-parameters for step `t` (1-based). `decoupled` selects AdamW.
    #[allow(clippy::too_many_arguments)]
    pub fn at_step(
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        decoupled: bool,
        t: u64,
    ) -> Self {
        let t = t.max(1) as i32;
        Self {
            step_size: (lr / (1.0 - beta1.powi(t))) as f32,
            beta1: beta1 as f32,
            beta2: beta2 as f32,
            one_minus_beta1: (1.0 - beta1) as f32,
            one_minus_beta2: (1.0 - beta2) as f32,
            eps: eps as f32,
            l2: if decoupled { 0.0 } else { weight_decay as f32 },
            decay: if decoupled {
                (1.0 - lr * weight_decay) as f32
            } else {
                1.0
            },
            bias_correction2_sqrt: (1.0 - beta2.powi(t)).sqrt() as f32,
        }
    }
}

/// One Adam/AdamW step. param, grad, exp_avg and exp_avg_sq have the same shape; the two
/// moments start at zero.
pub fn adam_step(
    gpu: &Gpu,
    hyper: &Uniform<AdamHyper>,
    grad: &Tensor,
    param: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
) -> Result<Vec<Dispatch>> {
    let entry = (Shader::Adam, "adam_step");
    let state = [exp_avg, exp_avg_sq];
    update_dispatches(gpu, "adam", entry, hyper.buffer(), grad, param, &state)
}
