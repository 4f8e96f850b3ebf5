//! Which dataset a folder holds, and its training / validation / evaluation splits: the
//! detection `alexnet train --data` and `alexnet eval --data` rely on, in the library so that
//! experiments and host programs open data exactly as the tool does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data::cifar100::{Cifar100, Cifar100Labels};
use crate::data::dataset::{self, Cifar10, Dataset, Idx, ImageFolder};
use crate::error::{Error, Result};

/// The dataset formats a `--data` folder may hold, in the order they are tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// CIFAR-10's binary batches (`data_batch_N.bin`, `test_batch.bin`).
    Cifar10,
    /// CIFAR-100's binary files (`train.bin`, `test.bin` and the label-name files).
    Cifar100,
    /// MNIST-style IDX files (`train-images-idx3-ubyte[.gz]` …).
    Idx,
    /// torchvision's layout: one sub-folder per class (or `train/` and `val/` of them).
    ImageFolder,
}

impl Format {
    /// What `root` holds. Errors when `root` is not a folder.
    pub fn detect(root: &Path) -> Result<Format> {
        if !root.is_dir() {
            return Err(Error::Config(format!(
                "--data {}: not a folder",
                root.display()
            )));
        }
        let cifar10 = ["", "cifar-10-batches-bin"].iter().any(|sub| {
            root.join(sub).join("data_batch_1.bin").is_file()
                || root.join(sub).join("test_batch.bin").is_file()
        });
        let idx = ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
            .iter()
            .any(|f| root.join(f).is_file());
        Ok(if cifar10 {
            Format::Cifar10
        } else if Cifar100::folder(root).is_some() {
            Format::Cifar100
        } else if idx {
            Format::Idx
        } else {
            Format::ImageFolder
        })
    }
}

/// A training set, its validation set and a line describing both.
pub struct Splits {
    pub train: Arc<dyn Dataset>,
    pub val: Arc<dyn Dataset>,
    pub description: String,
}

/// The training and validation sets of `root`: a binary set's own train/test files, an image
/// folder's `train/` and `val/` (or `val` when given), else a stratified split holding out
/// `val_split` of the images (drawn with `seed`). `labels` chooses CIFAR-100's labels.
///
/// # Errors
/// [`Error::Config`] when `root` is not a folder; the sources' own [`Error::File`] errors.
pub fn open_splits(
    root: &Path,
    val: Option<&Path>,
    val_split: f64,
    seed: u64,
    labels: Cifar100Labels,
) -> Result<Splits> {
    match Format::detect(root)? {
        Format::Cifar100 => {
            return Ok(Splits {
                train: Arc::new(Cifar100::open(root, true, labels)?),
                val: Arc::new(Cifar100::open(root, false, labels)?),
                description: format!("CIFAR-100 ({labels:?} labels) from {}", root.display()),
            })
        }
        Format::Cifar10 => {
            return Ok(Splits {
                train: Arc::new(Cifar10::open(root, true)?),
                val: Arc::new(Cifar10::open(root, false)?),
                description: format!("CIFAR-10 from {}", root.display()),
            })
        }
        Format::Idx => {
            return Ok(Splits {
                train: Arc::new(Idx::open_dir(root, true)?),
                val: Arc::new(Idx::open_dir(root, false)?),
                description: format!("IDX (MNIST family) from {}", root.display()),
            })
        }
        Format::ImageFolder => {}
    }
    let nested = root.join("train").is_dir() && root.join("val").is_dir();
    let (train_root, val_root): (PathBuf, Option<PathBuf>) = match (val, nested) {
        (Some(val), _) => (root.to_path_buf(), Some(val.to_path_buf())),
        (None, true) => (root.join("train"), Some(root.join("val"))),
        (None, false) => (root.to_path_buf(), None),
    };
    let train = Arc::new(ImageFolder::open(&train_root)?);
    let Some(val_root) = val_root else {
        let (t, v) = dataset::split(train, val_split, seed)?;
        return Ok(Splits {
            train: Arc::new(t),
            val: Arc::new(v),
            description: format!(
                "image folder {} ({:.0}% held out)",
                train_root.display(),
                100.0 * val_split
            ),
        });
    };
    let val = ImageFolder::with_classes(&val_root, train.classes())?;
    Ok(Splits {
        description: format!(
            "image folders {} and {}",
            train_root.display(),
            val_root.display()
        ),
        train,
        val: Arc::new(val),
    })
}

/// The evaluation split of a labelled set: CIFAR-10's test batch, CIFAR-100's `test.bin`
/// (fine labels), IDX's t10k files, an image folder's `val/` (or the folder itself).
pub fn open_eval(root: &Path) -> Result<Arc<dyn Dataset>> {
    Ok(match Format::detect(root)? {
        Format::Cifar100 => Arc::new(Cifar100::open(root, false, Cifar100Labels::Fine)?),
        Format::Cifar10 => Arc::new(Cifar10::open(root, false)?),
        Format::Idx => Arc::new(Idx::open_dir(root, false)?),
        Format::ImageFolder if root.join("val").is_dir() => {
            Arc::new(ImageFolder::open(&root.join("val"))?)
        }
        Format::ImageFolder => Arc::new(ImageFolder::open(root)?),
    })
}
