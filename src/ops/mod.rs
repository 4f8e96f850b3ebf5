//! The ops: one module per shader file, forward and backward side by side. Each function
//! checks shapes, then returns prepared dispatches for a `Program` to record; callers never
//! see which kernel runs, so a faster kernel can replace a plain one behind the same call.
//!
//! Conventions (llm.c's): outputs after inputs in every signature; activations and input
//! gradients are assigned (`=`), parameter gradients are added (`+=`), so the caller zeroes
//! parameter gradients before a backward pass and may accumulate micro-batches.

pub mod activation;
pub mod adam;
pub mod adaptive_avg_pool;
pub mod avg_pool;
pub mod batch_norm;
pub mod conv2d;
pub mod cross_entropy;
pub mod dropout;
pub mod finite;
pub mod gemm;
pub mod linear;
pub mod lrn;
pub mod max_pool;
pub mod preprocess;
pub mod relu;
pub mod sgd;

use crate::error::{Error, Result};
use crate::runtime::{Arg, Dispatch, Gpu, KernelCall, Shader, Tensor};

/// Fails with the op's and tensor's names unless `tensor` has exactly `expected` shape.
pub(crate) fn expect_shape(op: &'static str, tensor: &Tensor, expected: &[usize]) -> Result<()> {
    if tensor.shape() != expected {
        return Err(Error::Shape {
            op,
            what: format!(
                "tensor '{}' has shape {:?}, expected {:?}",
                tensor.name(),
                tensor.shape(),
                expected
            ),
        });
    }
    Ok(())
}

/// The shape of an NCHW tensor, or an error naming it.
pub(crate) fn nchw(op: &'static str, tensor: &Tensor) -> Result<[usize; 4]> {
    <[usize; 4]>::try_from(tensor.shape()).map_err(|_| Error::Shape {
        op,
        what: format!(
            "tensor '{}' has shape {:?}, expected 4 dimensions (N, C, H, W)",
            tensor.name(),
            tensor.shape()
        ),
    })
}

/// Converts a size to the u32 the shaders index with, refusing what would overflow.
pub(crate) fn to_u32(op: &'static str, what: &str, value: usize) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::Shape {
        op,
        what: format!("{what} = {value} exceeds the 32-bit indexing of the shaders"),
    })
}

/// Prepares one kernel of `shader` with a plain-old-data parameter struct.
pub(crate) fn launch<P: bytemuck::Pod>(
    gpu: &Gpu,
    shader: Shader,
    entry: &'static str,
    params: &P,
    args: &[Arg<'_>],
    threads: usize,
) -> Result<Dispatch> {
    gpu.prepare(KernelCall {
        shader,
        entry,
        params: bytemuck::bytes_of(params),
        args,
        threads: threads as u64,
    })
}
