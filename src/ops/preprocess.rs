//! Texture preprocessing (`shaders/preprocess.wgsl`): torchvision's Resize + CenterCrop +
//! ToTensor + Normalize from a `wgpu::Texture`, on the GPU, into one image of a batch.
//! Inference only, so there is no backward.

use crate::data::transforms::{center_offset, shorter_side_size};
use crate::error::{Error, Result};
use crate::ops::shader_params;
use crate::ops::Shader;
use crate::ops::{expect_shape, launch};
use crate::runtime::{Arg, Dispatch, Gpu, Tensor};

/// The evaluation pipeline: shorter side → `resize`, centre crop `size`, then normalise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PreprocessConfig {
    pub resize: usize,
    pub size: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl PreprocessConfig {
    /// torchvision's ImageNet evaluation transform for a `size` input (Resize(256),
    /// CenterCrop(224) at 224).
    pub fn imagenet(size: usize) -> Self {
        Self {
            resize: ((size as f64) * 256.0 / 224.0).round() as usize,
            size,
            mean: crate::data::transforms::IMAGENET_MEAN,
            std: crate::data::transforms::IMAGENET_STD,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct PreprocessParams {
    in_w: u32,
    in_h: u32,
    resized_w: u32,
    resized_h: u32,
    left: u32,
    top: u32,
    size: u32,
    batch_index: u32,
    srgb_encode: u32,
    mean: [f32; 3],
    std: [f32; 3],
}

shader_params!(PreprocessParams {
    in_w,
    in_h,
    resized_w,
    resized_h,
    left,
    top,
    size,
    batch_index,
    srgb_encode,
    mean,
    std
});

/// Writes the preprocessed `texture` into image `batch_index` of `x` `[N, 3, S, S]`.
///
/// # Errors
/// A texture format that is not a sampleable float colour format, a resized image smaller
/// than the crop, a side whose 2 × input × resized length reaches 2^31 (a 16384-wide strip
/// resized to 65536), or an `x` of the wrong shape.
pub fn preprocess_texture(
    gpu: &Gpu,
    texture: &wgpu::Texture,
    view: &wgpu::TextureView,
    cfg: &PreprocessConfig,
    x: &Tensor,
    batch_index: usize,
) -> Result<Dispatch> {
    let format = texture.format();
    let float_color = matches!(
        format.sample_type(None, None),
        Some(wgpu::TextureSampleType::Float { .. })
    );
    if !float_color || texture.dimension() != wgpu::TextureDimension::D2 {
        return Err(Error::Config(format!(
            "cannot classify a {:?} texture of format {format:?}: expected a 2-D colour texture such as Rgba8Unorm",
            texture.dimension()
        )));
    }
    let (w, h) = (texture.width() as usize, texture.height() as usize);
    let (rw, rh) = shorter_side_size(w, h, cfg.resize);
    if rw < cfg.size || rh < cfg.size {
        return Err(Error::Shape {
            op: "preprocess",
            what: format!(
                "a {w}x{h} texture resized to {rw}x{rh} is smaller than the {0}x{0} crop",
                cfg.size
            ),
        });
    }
    // The shader computes PIL's filter taps exactly in i32: 2·in·out must stay below 2^31.
    let fits = |n_in: usize, n_out: usize| 2 * n_in * n_out + n_in + n_out < 1 << 31;
    if !fits(w, rw) || !fits(h, rh) {
        return Err(Error::Shape {
            op: "preprocess",
            what: format!(
                "a {w}x{h} texture resized to {rw}x{rh}: too large for the exact integer \
                 resize (2 x input x output side must stay below 2^31)"
            ),
        });
    }
    let batch = x.shape().first().copied().unwrap_or(0);
    expect_shape("preprocess", x, &[batch, 3, cfg.size, cfg.size])?;
    if batch_index >= batch {
        return Err(Error::Shape {
            op: "preprocess",
            what: format!("image {batch_index} of a batch of {batch}"),
        });
    }
    let p = PreprocessParams {
        in_w: w as u32,
        in_h: h as u32,
        resized_w: rw as u32,
        resized_h: rh as u32,
        left: center_offset(rw, cfg.size) as u32,
        top: center_offset(rh, cfg.size) as u32,
        size: cfg.size as u32,
        batch_index: batch_index as u32,
        srgb_encode: u32::from(format.is_srgb()),
        mean: cfg.mean,
        std: cfg.std,
    };
    let args = [Arg::Texture(view), Arg::Write(x.all())];
    launch(
        gpu,
        Shader::Preprocess,
        "preprocess_texture",
        &p,
        &args,
        cfg.size * cfg.size,
    )
}
