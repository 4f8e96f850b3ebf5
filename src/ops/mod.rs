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
pub mod augment;
pub mod avg_pool;
pub mod batch_norm;
pub mod conv2d;
pub mod cross_entropy;
pub mod dropout;
pub mod finite;
pub mod gemm;
pub mod gemm_reduce;
pub mod linear;
pub mod lrn;
pub mod max_pool;
pub mod policy;
pub mod preprocess;
pub mod sgd;
pub mod shaders;

pub use gemm::GemmTiles;
pub use policy::{KernelPolicy, Kernels};
pub use shaders::Shader;

use crate::error::{Error, Result};
use crate::runtime::{Arg, Dispatch, Gpu, KernelCall, Tensor};

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

/// A square pooling window: `kernel`×`kernel`, `stride`, zero `padding` (floor mode).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolWindow {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// The parameters both pooling shaders start with (max_pool.wgsl stops before `padding`).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct PoolParams {
    batch: u32,
    channels: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    kernel: u32,
    stride: u32,
    padding: u32,
}

impl PoolWindow {
    /// The output size, as PyTorch's MaxPool2d/AvgPool2d compute it; the padding is at most
    /// half the window, so no window lies wholly in the padding.
    pub(crate) fn output_hw(&self, op: &'static str, h: usize, w: usize) -> Result<(usize, usize)> {
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        if k == 0 || s == 0 || p > k / 2 || h + 2 * p < k || w + 2 * p < k {
            let padding = if p == 0 {
                String::new()
            } else {
                format!(", padding {p}; padding must be at most half the window")
            };
            return Err(Error::Shape {
                op,
                what: format!("input {h}x{w} does not fit a {k}x{k} window (stride {s}{padding})"),
            });
        }
        Ok(((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1))
    }

    /// Checks x (NCHW) and y against the window; returns the shaders' parameters.
    pub(crate) fn params(&self, op: &'static str, x: &Tensor, y: &Tensor) -> Result<PoolParams> {
        let [n, c, h, w] = nchw(op, x)?;
        let (oh, ow) = self.output_hw(op, h, w)?;
        expect_shape(op, y, &[n, c, oh, ow])?;
        to_u32(op, "elements", x.numel())?;
        let u = |v: usize| v as u32;
        Ok(PoolParams {
            batch: u(n),
            channels: u(c),
            in_h: u(h),
            in_w: u(w),
            out_h: u(oh),
            out_w: u(ow),
            kernel: to_u32(op, "kernel", self.kernel)?,
            stride: to_u32(op, "stride", self.stride)?,
            padding: to_u32(op, "padding", self.padding)?,
        })
    }
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
        shader: shader.into(),
        entry,
        params: bytemuck::bytes_of(params),
        args,
        threads: threads as u64,
    })
}
