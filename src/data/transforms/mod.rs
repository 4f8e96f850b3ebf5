//! Image transforms: torchvision's classic AlexNet pipeline on RGB8 images.
//!
//! - [`resize_shorter`] = `torchvision.transforms.Resize(size)` on a PIL image, bit-exact with
//!   Pillow's bilinear `ImagingResample` (8-bit fixed point, horizontal pass then vertical).
//! - [`center_crop`] = `CenterCrop`, [`crop`], [`hflip`].
//! - [`to_tensor`] / [`normalize`] / [`to_tensor_normalized`] = `ToTensor()` + `Normalize`.
//! - [`pca_lighting`]: the AlexNet paper's PCA colour augmentation (fb.resnet.torch `Lighting`).
//! - [`ColorJitter`]: brightness, contrast and saturation as torchvision defines them.
//! - [`Augment`]: the whole train / eval pipeline, driven by a [`SampleRng`] that is a pure
//!   function of `(seed, epoch, position)`, so a resumed run reproduces an uninterrupted one.
//!
//! Files: [`rng`] (the per-sample random stream), [`resize`] (Pillow's bilinear), [`tensor`]
//! (crops, flips, to-tensor, normalisation, colour), [`augment`] (the whole pipeline).

mod augment;
mod resize;
mod rng;
mod tensor;

pub use augment::{Augment, ColorDraws, Placement};
pub use resize::{resize_bilinear, resize_shorter, shorter_side_size};
pub use rng::SampleRng;
pub use tensor::{
    adjust_brightness, adjust_contrast, adjust_saturation, center_crop, center_offset,
    center_window, crop, hflip, lighting_shift, normalize, pca_lighting, to_tensor,
    to_tensor_normalized, ColorJitter, IMAGENET_EIGVAL, IMAGENET_EIGVEC, IMAGENET_MEAN,
    IMAGENET_STD,
};

/// Small images the unit tests build by hand.
#[cfg(test)]
mod test_images {
    use image::RgbImage;

    pub fn img(w: u32, h: u32, data: &[u8]) -> RgbImage {
        RgbImage::from_raw(w, h, data.to_vec()).unwrap()
    }

    pub fn gray_img(w: u32, h: u32, data: &[u8]) -> RgbImage {
        let rgb: Vec<u8> = data.iter().flat_map(|&v| [v, v, v]).collect();
        img(w, h, &rgb)
    }

    pub fn channel0(i: &RgbImage) -> Vec<u8> {
        i.as_raw().chunks(3).map(|p| p[0]).collect()
    }
}
