//! What the pooling ops share (`shaders/pool.wgsl`, a snippet of `max_pool`, `avg_pool` and
//! `adaptive_avg_pool`): the window, its checks, and the parameters the shaders read.

use crate::error::{Error, Result};
use crate::ops::{expect_shape, nchw, shader_params, to_u32};
use crate::runtime::Tensor;

/// A square pooling window: `kernel`×`kernel`, `stride`, zero `padding` (floor mode).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolWindow {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// The parameters of every pooling shader (`PoolParams` in `shaders/pool.wgsl`).
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

shader_params!(PoolParams {
    batch,
    channels,
    in_h,
    in_w,
    out_h,
    out_w,
    kernel,
    stride,
    padding
});

impl PoolParams {
    /// x `[n, c, h, w]` pooled to `oh` × `ow` by windows of `[kernel, stride, padding]`
    /// (adaptive pooling's are 0: its windows follow from the sizes). The caller has checked
    /// that every size fits the shaders' u32.
    pub(crate) fn new(
        [n, c, h, w]: [usize; 4],
        (oh, ow): (usize, usize),
        [kernel, stride, padding]: [usize; 3],
    ) -> Self {
        let u = |v: usize| v as u32;
        PoolParams {
            batch: u(n),
            channels: u(c),
            in_h: u(h),
            in_w: u(w),
            out_h: u(oh),
            out_w: u(ow),
            kernel: u(kernel),
            stride: u(stride),
            padding: u(padding),
        }
    }
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
        let window = [self.kernel, self.stride, self.padding];
        for (what, value) in ["kernel", "stride", "padding"].into_iter().zip(window) {
            to_u32(op, what, value)?;
        }
        Ok(PoolParams::new([n, c, h, w], (oh, ow), window))
    }
}
