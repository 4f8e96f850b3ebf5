//! The reductions that finish the tiled GEMM's results (`shaders/gemm_reduce.wgsl`): the
//! split-K sums of `ops::gemm`'s forward and weight gradient, in a fixed order, and the bias
//! gradient of Conv2d and Linear on the tiled path.

use crate::error::Result;
use crate::ops::gemm::{Geometry, Rows};
use crate::ops::shader_params;
use crate::ops::{launch, to_u32, Shader};
use crate::runtime::{Arg, Dispatch, Gpu, KernelCall, Tensor, TensorSlice};

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ReduceParams {
    count: u32,
    splits: u32,
    channels: u32,
    plane: u32,
    row_begin: u32,
    row_end: u32,
    relu: u32,
}

shader_params!(ReduceParams {
    count,
    splits,
    channels,
    plane,
    row_begin,
    row_end,
    relu
});

/// `dw += Σ_s partial[s]`, with `partial` [splits, dw's length].
pub(crate) fn splits(gpu: &Gpu, partial: &Tensor, dw: TensorSlice<'_>) -> Result<Dispatch> {
    let [splits, count] = <[usize; 2]>::try_from(partial.shape()).expect("partial is 2-D");
    let p = ReduceParams {
        count: to_u32("gemm", "weights", count)?,
        splits: splits as u32,
        ..ReduceParams::default()
    };
    let args = [Arg::Read(partial.all()), Arg::Write(dw)];
    launch(
        gpu,
        Shader::GemmReduce,
        "gemm_reduce_splits",
        &p,
        &args,
        count,
    )
}

/// `y = Σ_s partial[s] + b` (ReLU'd when `relu`) for the output channels `rows` covers, with
/// `partial` [splits, y's length].
pub(crate) fn splits_bias(
    gpu: &Gpu,
    g: &Geometry,
    partial: &Tensor,
    b: &Tensor,
    y: &Tensor,
    rows: Rows,
    relu: bool,
) -> Result<Dispatch> {
    let p = ReduceParams {
        count: to_u32("gemm", "output elements", y.numel())?,
        splits: partial.shape()[0] as u32,
        channels: g.out_channels as u32,
        plane: (g.out_h * g.out_w) as u32,
        row_begin: rows.offset as u32,
        row_end: (rows.offset + g.groups * rows.per_group) as u32,
        relu: u32::from(relu),
    };
    let args = [
        Arg::Read(partial.all()),
        Arg::Read(b.all()),
        Arg::Write(y.all()),
    ];
    let entry = "gemm_reduce_splits_bias";
    launch(gpu, Shader::GemmReduce, entry, &p, &args, y.numel())
}

/// Channels with at most this many elements of `dy` (a linear layer's batch) have their bias
/// gradient summed by one invocation each: the workgroup tree costs a workgroup and nine
/// barriers per channel, and on lavapipe, where a barrier switches coroutines, FC layers' bias
/// gradients took about 7 ms each at batch 8 (1,024 channels of 8 elements).
const SERIAL_BIAS_UP_TO: usize = 64;

/// `db += Σ_{b, pixel} dy`: one workgroup per output channel summing by a tree, or one
/// invocation per channel summing in order where channels have few elements.
pub fn backward_bias(gpu: &Gpu, g: &Geometry, dy: &Tensor, db: &Tensor) -> Result<Dispatch> {
    let p = ReduceParams {
        count: to_u32("gemm", "output elements", dy.numel())?,
        channels: g.out_channels as u32,
        plane: (g.out_h * g.out_w) as u32,
        ..ReduceParams::default()
    };
    let args = [Arg::Read(dy.all()), Arg::Write(db.all())];
    if dy.numel() / g.out_channels.max(1) <= SERIAL_BIAS_UP_TO {
        let entry = "gemm_reduce_bias_serial";
        return launch(gpu, Shader::GemmReduce, entry, &p, &args, g.out_channels);
    }
    gpu.prepare_grid(
        KernelCall {
            shader: Shader::GemmReduce.into(),
            entry: "gemm_reduce_bias",
            params: bytemuck::bytes_of(&p),
            args: &args,
            threads: 0,
        },
        [g.out_channels, 1, 1],
    )
}
