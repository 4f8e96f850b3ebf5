//! Training augmentation on the GPU (`shaders/augment.wgsl`): Pillow's exact resize, the crop
//! window, flip, ColorJitter, PCA lighting and normalisation, from the loader's decoded u8
//! images into the network input. Input preparation only, so there is no backward.
//!
//! The upload is the decoded bytes packed four to a `u32` (for a 224 crop of a 256-resized
//! ImageNet photo, about the size of the f32 crop's quarter to half); the CPU keeps decoding
//! and every random draw ([`GpuSample`]), so both paths give the same batch.

use crate::data::{Augment, GpuSample};
use crate::error::{Error, Result};
use crate::ops::shader_params;
use crate::ops::Shader;
use crate::ops::{expect_shape, to_u32};
use crate::runtime::{Arg, Gpu, KernelCall, Program, Tensor};

/// Each image's slot is a multiple of this many `u32`s (256 bytes, WebGPU's largest
/// storage-offset alignment) so a chunk of images can bind at any image.
const SLOT_ALIGN_WORDS: usize = 64;

/// Invocations per workgroup: the shader's `WG` constant (one workgroup per image).
const WORKGROUP: u32 = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct AugmentParams {
    size: u32,
    first: u32,
    slot_words: u32,
    mean: [f32; 3],
    std: [f32; 3],
}

shader_params!(AugmentParams {
    size,
    first,
    slot_words,
    mean,
    std
});

/// One image's colour parameters, as the shader's `ImageParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ImageParams {
    valid: u32,
    flip: u32,
    brightness: f32,
    contrast: f32,
    saturation: f32,
    shift: [f32; 3],
    in_w: u32,
    in_h: u32,
    resized_w: u32,
    resized_h: u32,
    left: i32,
    top: i32,
    pad: [u32; 2],
}

shader_params!(ImageParams {
    valid,
    flip,
    brightness,
    contrast,
    saturation,
    shift,
    in_w,
    in_h,
    resized_w,
    resized_h,
    left,
    top,
    pad
});

/// The GPU half of augmentation for one batch size: the image and parameter buffers,
/// allocated once, and the dispatches that write the network input `x` `[N, 3, S, S]`.
pub struct GpuAugment {
    pixels: Tensor,
    images: Tensor,
    program: Program,
    batch: usize,
    slot_words: usize,
    /// Reused for an image whose byte count is not a multiple of 4 (`write_buffer` copies
    /// whole words).
    tail: Vec<u8>,
}

/// Images per dispatch, `(first, count)`: as many as fit one binding of both `x` (rows of
/// `row` floats, whose chunks must start aligned) and the image slots (aligned by
/// construction), as `runtime::binding_chunks` does for one tensor.
fn chunks(gpu: &Gpu, batch: usize, row: usize, slot_words: usize) -> Vec<(usize, usize)> {
    let align = gpu.binding_offset_alignment() as usize;
    let step = align / gcd(row * 4, align).max(1);
    let max = gpu.max_binding_bytes() as usize;
    let fit = (max / (row * 4).max(1)).min(max / (slot_words * 4).max(1));
    let per = ((fit / step) * step).max(step).min(batch.max(1));
    (0..batch)
        .step_by(per)
        .map(|f| (f, per.min(batch - f)))
        .collect()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl GpuAugment {
    /// Prepares augmentation into `x` `[N, 3, S, S]` with `augment`'s mean and std (S =
    /// `augment.image_size`). `x` may exceed one binding: the dispatches split it by image.
    ///
    /// # Errors
    /// An `x` of another shape, or sizes beyond the shaders' 32-bit indexing.
    pub fn new(gpu: &Gpu, augment: &Augment, x: &Tensor) -> Result<Self> {
        let op = "augment";
        let s = augment.image_size;
        let batch = x.shape().first().copied().unwrap_or(0);
        expect_shape(op, x, &[batch, 3, s, s])?;
        to_u32(op, "input elements", x.numel())?;
        let slot_bytes = augment.gpu_upload_cap().max(3 * s * s);
        let slot_words = slot_bytes.div_ceil(4).div_ceil(SLOT_ALIGN_WORDS) * SLOT_ALIGN_WORDS;
        to_u32(op, "image words", batch * slot_words)?;
        let pixels = Tensor::zeros_u32(gpu, "augment images", &[batch, slot_words])?;
        let images = Tensor::zeros_u32(gpu, "augment image parameters", &[batch, 16])?;
        let mut program = Program::new();
        let row = 3 * s * s;
        for (first, count) in chunks(gpu, batch, row, slot_words) {
            let params = AugmentParams {
                size: s as u32,
                first: first as u32,
                slot_words: slot_words as u32,
                mean: augment.mean,
                std: augment.std,
            };
            let args = [
                Arg::Read(pixels.slice(first * slot_words, count * slot_words)),
                Arg::Read(images.all()),
                Arg::Write(x.slice(first * row, count * row)),
            ];
            let call = KernelCall {
                shader: Shader::Augment.into(),
                entry: "augment_batch",
                params: bytemuck::bytes_of(&params),
                args: &args,
                threads: (count as u64) * u64::from(WORKGROUP),
            };
            program.push(gpu.prepare_grid(call, [count, 1, 1])?);
        }
        Ok(Self {
            pixels,
            images,
            program,
            batch,
            slot_words,
            tail: Vec::new(),
        })
    }

    /// Uploads one batch of samples (at most the batch size; images after the last are
    /// written as zeros, a short batch's padding). Record [`GpuAugment::program`] afterwards
    /// to fill `x`.
    ///
    /// # Errors
    /// More samples than the batch, or a sample whose pixels do not match its size or do
    /// not fit a slot (more than `Augment::gpu_upload_cap` bytes).
    pub fn upload(&mut self, gpu: &Gpu, samples: &[GpuSample]) -> Result<()> {
        let slot_bytes = self.slot_words * 4;
        let bad = |what: String| Error::Shape {
            op: "augment",
            what,
        };
        if samples.len() > self.batch {
            return Err(bad(format!(
                "{} images for a batch of at most {}",
                samples.len(),
                self.batch
            )));
        }
        let mut params = vec![ImageParams::zeroed_padding(); self.batch];
        for (i, (g, p)) in samples.iter().zip(&mut params).enumerate() {
            let bytes = 3 * g.width * g.height;
            if g.pixels.len() != bytes || bytes > slot_bytes {
                return Err(bad(format!(
                    "image {i} has {} bytes for {}x{} pixels; expected {bytes}, at most {slot_bytes}",
                    g.pixels.len(),
                    g.width,
                    g.height
                )));
            }
            // Only the bytes each image has travel, into its own slot.
            let offset = (i * slot_bytes) as u64;
            if bytes % 4 == 0 {
                self.pixels.write_bytes_at(gpu, offset, &g.pixels)?;
            } else {
                self.tail.clear();
                self.tail.extend_from_slice(&g.pixels);
                self.tail.resize(bytes.div_ceil(4) * 4, 0);
                self.pixels.write_bytes_at(gpu, offset, &self.tail)?;
            }
            let d = &g.draws;
            *p = ImageParams {
                valid: 1,
                flip: u32::from(d.flip),
                brightness: d.jitter[0],
                contrast: d.jitter[1],
                saturation: d.jitter[2],
                shift: d.lighting_shift,
                in_w: g.width as u32,
                in_h: g.height as u32,
                resized_w: g.placement.resized.0 as u32,
                resized_h: g.placement.resized.1 as u32,
                left: g.placement.left as i32,
                top: g.placement.top as i32,
                pad: [0; 2],
            };
        }
        self.images
            .write_bytes_at(gpu, 0, bytemuck::cast_slice(&params))
    }

    /// The dispatches that turn the uploaded batch into `x`.
    pub fn program(&self) -> &Program {
        &self.program
    }
}

impl ImageParams {
    /// A padding image: written as zeros.
    fn zeroed_padding() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}
