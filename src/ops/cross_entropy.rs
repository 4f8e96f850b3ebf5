//! Softmax cross-entropy (`shaders/cross_entropy.wgsl`): per-sample loss and the gradient of
//! the batch-mean loss in one pass, then a reduction into running totals on the GPU.

use crate::error::{Error, Result};
use crate::ops::shader_params;
use crate::ops::Shader;
use crate::ops::{expect_shape, launch, to_u32};
use crate::runtime::{Arg, DType, Dispatch, Gpu, Tensor};

/// Index of each value in the `totals` tensor that `cross_entropy` writes. Everything but
/// `LOSS` accumulates until the host clears the tensor, so metrics are read every N steps.
pub mod totals {
    /// This step's mean loss over its valid samples.
    pub const LOSS: usize = 0;
    /// Sum of per-sample losses.
    pub const LOSS_SUM: usize = 1;
    /// Samples whose label has the highest logit.
    pub const TOP1: usize = 2;
    /// Samples whose label is among the five highest logits.
    pub const TOP5: usize = 3;
    /// Valid (non-padding) samples.
    pub const SAMPLES: usize = 4;
    pub const STEPS: usize = 5;
    pub const LEN: usize = 8;
}

/// The label that marks a padding sample in a partial batch (PyTorch's `ignore_index`).
pub const IGNORE_LABEL: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct CrossEntropyParams {
    batch: u32,
    classes: u32,
}

shader_params!(CrossEntropyParams { batch, classes });

/// Mean cross-entropy of `logits` against `labels`, its gradient into `dlogits`, per-sample
/// (loss, top-1 hit, top-5 hit) into `stats`, and the sums into `totals` (see [`totals`]).
///
/// # Shapes
/// logits, dlogits `[N, K]`; labels `[N]` (u32, [`IGNORE_LABEL`] for padding); stats
/// `[N, 3]`; totals `[8]`.
pub fn cross_entropy(
    gpu: &Gpu,
    logits: &Tensor,
    labels: &Tensor,
    stats: &Tensor,
    dlogits: &Tensor,
    totals: &Tensor,
) -> Result<Vec<Dispatch>> {
    let [n, k] = <[usize; 2]>::try_from(logits.shape()).map_err(|_| Error::Shape {
        op: "cross_entropy",
        what: format!(
            "logits '{}' have shape {:?}, expected [N, K]",
            logits.name(),
            logits.shape()
        ),
    })?;
    expect_shape("cross_entropy", labels, &[n])?;
    expect_shape("cross_entropy", stats, &[n, 3])?;
    expect_shape("cross_entropy", dlogits, &[n, k])?;
    expect_shape("cross_entropy", totals, &[totals::LEN])?;
    if labels.dtype() != DType::U32 || n == 0 || k == 0 {
        return Err(Error::Shape {
            op: "cross_entropy",
            what: format!(
                "labels '{}' must be u32 and the batch non-empty",
                labels.name()
            ),
        });
    }
    let p = CrossEntropyParams {
        batch: to_u32("cross_entropy", "batch", n)?,
        classes: to_u32("cross_entropy", "elements", n * k)? / n as u32,
    };
    let args = [
        Arg::Read(logits.all()),
        Arg::Read(labels.all()),
        Arg::Write(stats.all()),
        Arg::Write(dlogits.all()),
    ];
    let forward = launch(
        gpu,
        Shader::CrossEntropy,
        "cross_entropy_forward",
        &p,
        &args,
        n,
    )?;
    let args = [
        Arg::Read(stats.all()),
        Arg::Read(labels.all()),
        Arg::Write(totals.all()),
    ];
    let reduce = launch(
        gpu,
        Shader::CrossEntropy,
        "cross_entropy_reduce",
        &p,
        &args,
        1,
    )?;
    Ok(vec![forward, reduce])
}
