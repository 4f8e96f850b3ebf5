//! Non-finite detection (`shaders/finite.wgsl`): marks, per checked tensor, the first step at
//! which it held a NaN or an infinity, without reading anything back per step.

use crate::error::{Error, Result};
use crate::ops::shader_params;
use crate::ops::Shader;
use crate::ops::{launch, to_u32};
use crate::runtime::{binding_chunks, Arg, DType, Dispatch, Gpu, Tensor, Uniform};

/// The value of a flag whose tensor has stayed finite.
pub const NEVER: u32 = u32::MAX;

/// The step number the check writes into a flag; the host rewrites it every step.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FiniteStep {
    pub step: u32,
}

shader_params!(FiniteStep { step });

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct FiniteParams {
    len: u32,
    slot: u32,
}

shader_params!(FiniteParams { len, slot });

/// `flags[slot] = min(flags[slot], step)` if any element of `x` is NaN or ±Inf. Tensors larger
/// than one binding are checked slice by slice.
///
/// # Shapes
/// x any shape (f32); flags `[S]` (u32) with `slot < S`, filled with [`NEVER`] by the host.
///
/// # Errors
/// [`Error::Shape`] when `flags` is not u32 or `slot` is outside it.
pub fn check_finite(
    gpu: &Gpu,
    step: &Uniform<FiniteStep>,
    x: &Tensor,
    flags: &Tensor,
    slot: usize,
) -> Result<Vec<Dispatch>> {
    if flags.dtype() != DType::U32 || slot >= flags.numel() || x.dtype() != DType::F32 {
        return Err(Error::Shape {
            op: "check_finite",
            what: format!(
                "flags '{}' must be u32 with more than {slot} elements and '{}' f32",
                flags.name(),
                x.name()
            ),
        });
    }
    let slot = to_u32("check_finite", "slot", slot)?;
    to_u32("check_finite", "elements", x.numel())?;
    binding_chunks(gpu, x.numel(), 1)
        .into_iter()
        .map(|(first, len)| {
            let args = [
                Arg::Uniform(step.buffer()),
                Arg::Read(x.slice(first, len)),
                Arg::Write(flags.all()),
            ];
            let p = FiniteParams {
                len: len as u32,
                slot,
            };
            launch(gpu, Shader::Finite, "check_finite", &p, &args, len)
        })
        .collect()
}
