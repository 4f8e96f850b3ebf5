//! Datasets: a folder of class sub-folders (torchvision's `ImageFolder`), CIFAR-10 binaries,
//! the IDX files of the MNIST family, subsets and a stratified train/validation split.
//!
//! Every dataset hands out decoded RGB8 images and cheap labels; anything wrong with a file
//! is an [`Error::File`] naming it and saying what was expected, never a panic.
//!
//! - [`decode`]: bytes to RGB8 (JPEG through [`super::jpeg`], PNG and the rest through `image`).
//! - [`image_folder`]: [`ImageFolder`], torchvision's one-sub-folder-per-class layout.
//! - [`cifar`]: [`Cifar10`], the binary batches.
//! - [`idx`]: [`Idx`], MNIST and its relatives.
//! - [`subset`]: [`Subset`] and the stratified [`split`].

mod cifar;
mod decode;
mod idx;
mod image_folder;
mod subset;

use std::path::Path;

use image::RgbImage;

use crate::error::{Error, Result};

pub use cifar::{Cifar10, CIFAR10_CLASSES};
pub use decode::{
    decode_image, decode_image_draft, draft_denom, load_image, load_image_draft, DecodeMode,
    MAX_IMAGE_PIXELS,
};
pub use idx::Idx;
pub use image_folder::{ImageFolder, IMAGE_EXTENSIONS};
pub use subset::{split, Subset};

/// A source of labelled images.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// `len() == 0`.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Class names; the label of a sample is an index into this list.
    fn classes(&self) -> &[String];
    /// The label of sample `index` without decoding it. `index` must be `< len()`.
    fn label(&self, index: usize) -> usize;
    /// Decodes sample `index` to RGB8.
    ///
    /// # Errors
    /// [`Error::File`] naming the file when it cannot be read or decoded.
    fn load(&self, index: usize) -> Result<RgbImage>;
    /// [`Dataset::load`] for an image that will be resized so its shorter side is `resize`:
    /// a source may decode a large JPEG at reduced scale ([`DecodeMode::Fast`]). Default:
    /// `load`.
    ///
    /// # Errors
    /// As [`Dataset::load`].
    fn load_draft(&self, index: usize, resize: usize) -> Result<RgbImage> {
        let _ = resize;
        self.load(index)
    }
    /// Where sample `index` comes from, for messages: a file path, or e.g.
    /// `"cifar10 data_batch_2.bin #417"`.
    fn describe(&self, index: usize) -> String;
}

fn file_err(path: &Path, message: impl Into<String>) -> Error {
    Error::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// A fresh, empty scratch folder for a unit test.
#[cfg(test)]
fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("alexnet-data-unit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
