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
pub mod gemm_coop;
pub mod gemm_reduce;
pub mod linear;
pub mod loss_scale;
pub mod lrn;
pub mod max_pool;
pub mod policy;
pub(crate) mod pool;
pub mod preprocess;
pub mod sgd;
pub mod shaders;
pub mod tune;

pub use gemm::{GemmChoice, GemmTiles};
pub use gemm_coop::GemmCoop;
pub use policy::{KernelPolicy, Kernels, Matrix, Precision};
pub(crate) use pool::{PoolParams, PoolWindow};
pub use shaders::{Shader, SHADER_DIR_ENV};
pub use tune::Autotune;

use crate::error::{Error, Result};
use crate::runtime::{binding_chunks, Arg, Dispatch, Gpu, KernelCall, Tensor};

/// One field of a `#[repr(C)]` parameter struct as the Rust compiler lays it out.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldLayout {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
    /// `u32`, `f32`, `i32`, or an array of one of them (`[f32; 3]`).
    pub ty: &'static str,
}

/// A parameter struct the shaders read, beside the WGSL struct it must match.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct UniformLayout {
    pub shader: Shader,
    /// The WGSL struct's name.
    pub wgsl: &'static str,
    pub size: usize,
    pub fields: Vec<FieldLayout>,
}

/// A parameter struct a shader reads (a uniform), named as its WGSL struct.
#[doc(hidden)]
pub trait ShaderParams: bytemuck::Pod {
    /// Its fields as the Rust compiler lays them out.
    fn fields() -> Vec<FieldLayout>;
}

/// Implements [`ShaderParams`] for a parameter struct, for the test that compares its layout
/// with the WGSL struct naga reads. The destructuring lists every field without `..`, so a
/// field added to the struct but not here does not compile.
macro_rules! shader_params {
    ($ty:ident { $($field:ident),+ $(,)? }) => {
        impl $crate::ops::ShaderParams for $ty {
            fn fields() -> Vec<$crate::ops::FieldLayout> {
                let value: $ty = bytemuck::Zeroable::zeroed();
                let $ty { $($field),+ } = &value;
                vec![$($crate::ops::FieldLayout {
                    name: stringify!($field),
                    offset: std::mem::offset_of!($ty, $field),
                    size: std::mem::size_of_val($field),
                    ty: std::any::type_name_of_val($field),
                }),+]
            }
        }
    };
}
pub(crate) use shader_params;

/// Every parameter struct a shader reads, with its layout.
#[doc(hidden)]
pub fn uniform_layouts() -> Vec<UniformLayout> {
    fn entry<T: ShaderParams>(shader: Shader) -> UniformLayout {
        let path = std::any::type_name::<T>();
        UniformLayout {
            shader,
            wgsl: path.rsplit("::").next().unwrap_or(path),
            size: std::mem::size_of::<T>(),
            fields: T::fields(),
        }
    }
    vec![
        entry::<activation::ActivationParams>(Shader::Activation),
        entry::<UpdateParams>(Shader::Adam),
        entry::<adam::AdamHyper>(Shader::Adam),
        entry::<PoolParams>(Shader::AdaptiveAvgPool),
        entry::<augment::AugmentParams>(Shader::Augment),
        entry::<augment::ImageParams>(Shader::Augment),
        entry::<PoolParams>(Shader::AvgPool),
        entry::<PoolParams>(Shader::MaxPool),
        entry::<batch_norm::BatchNormParams>(Shader::BatchNorm),
        entry::<conv2d::Conv2dParams>(Shader::Conv2d),
        entry::<cross_entropy::CrossEntropyParams>(Shader::CrossEntropy),
        entry::<dropout::DropoutParams>(Shader::Dropout),
        entry::<dropout::StepSeed>(Shader::Dropout),
        entry::<finite::FiniteParams>(Shader::Finite),
        entry::<finite::FiniteStep>(Shader::Finite),
        entry::<gemm::GemmParams>(Shader::Gemm),
        entry::<gemm::GemmParams>(Shader::GemmDirect),
        entry::<linear::LinearParams>(Shader::LinearBroadcast),
        entry::<gemm::GemmParams>(Shader::GemmDirectSubgroup),
        entry::<loss_scale::LossScaleParams>(Shader::LossScale),
        entry::<gemm::GemmParams>(Shader::GemmCoopF16),
        entry::<gemm::GemmParams>(Shader::GemmCoopF32),
        entry::<gemm::GemmParams>(Shader::GemmCoopF16x8),
        entry::<gemm_reduce::ReduceParams>(Shader::GemmReduce),
        entry::<linear::LinearParams>(Shader::Linear),
        entry::<lrn::LrnParams>(Shader::Lrn),
        entry::<preprocess::PreprocessParams>(Shader::Preprocess),
        entry::<UpdateParams>(Shader::Sgd),
        entry::<sgd::SgdHyper>(Shader::Sgd),
    ]
}

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
    launch_with(gpu, shader, entry, params, args, threads, &[])
}

/// As [`launch`], with values for the shader's `override` constants.
pub(crate) fn launch_with<P: bytemuck::Pod>(
    gpu: &Gpu,
    shader: Shader,
    entry: &'static str,
    params: &P,
    args: &[Arg<'_>],
    threads: usize,
    constants: &[(&'static str, f64)],
) -> Result<Dispatch> {
    gpu.prepare_overriding(
        KernelCall {
            shader: shader.into(),
            entry,
            params: bytemuck::bytes_of(params),
            args,
            threads: threads as u64,
        },
        constants,
    )
}

/// The one parameter of an element-wise optimizer update (`sgd.wgsl`, `adam.wgsl`):
/// how many elements this dispatch updates.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct UpdateParams {
    len: u32,
}

shader_params!(UpdateParams { len });

/// The dispatches of an element-wise optimizer update (`shader`'s `entry`): bindings
/// `hyper`, `grad` (read), `param` and then each of `state` (written), all of `param`'s shape.
/// A parameter larger than one binding (FC6's weight) is updated slice by slice.
pub(crate) fn update_dispatches(
    gpu: &Gpu,
    op: &'static str,
    (shader, entry): (Shader, &'static str),
    hyper: &wgpu::Buffer,
    grad: &Tensor,
    param: &Tensor,
    state: &[&Tensor],
) -> Result<Vec<Dispatch>> {
    for t in std::iter::once(grad).chain(state.iter().copied()) {
        expect_shape(op, t, param.shape())?;
    }
    to_u32(op, "elements", param.numel())?;
    binding_chunks(gpu, param.numel(), 1)
        .into_iter()
        .map(|(first, len)| {
            let mut args = vec![
                Arg::Uniform(hyper),
                Arg::Read(grad.slice(first, len)),
                Arg::Write(param.slice(first, len)),
            ];
            args.extend(state.iter().map(|t| Arg::Write(t.slice(first, len))));
            let p = UpdateParams { len: len as u32 };
            launch(gpu, shader, entry, &p, &args, len)
        })
        .collect()
}
