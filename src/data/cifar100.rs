//! CIFAR-100, binary version: `train.bin` and `test.bin`, records of a coarse label byte, a
//! fine label byte and 3072 pixel bytes (1024 R, 1024 G, 1024 B, row-major 32×32), with the
//! class names in `fine_label_names.txt` and `coarse_label_names.txt`.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::data::dataset::Dataset;
use crate::error::{Error, Result};

const RECORD: usize = 2 + 3 * 32 * 32;

/// Which of CIFAR-100's two labels a sample carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Cifar100Labels {
    /// The 100 classes.
    #[default]
    Fine,
    /// The 20 superclasses.
    Coarse,
}

impl Cifar100Labels {
    fn names_file(self) -> &'static str {
        match self {
            Cifar100Labels::Fine => "fine_label_names.txt",
            Cifar100Labels::Coarse => "coarse_label_names.txt",
        }
    }

    fn count(self) -> usize {
        match self {
            Cifar100Labels::Fine => 100,
            Cifar100Labels::Coarse => 20,
        }
    }

    /// The label's byte within a record.
    fn offset(self) -> usize {
        match self {
            Cifar100Labels::Coarse => 0,
            Cifar100Labels::Fine => 1,
        }
    }
}

/// One split of CIFAR-100, held in memory (150 MB for the training set).
#[derive(Debug, Clone)]
pub struct Cifar100 {
    classes: Vec<String>,
    labels: Cifar100Labels,
    file: String,
    data: Vec<u8>,
}

fn file_err(path: &Path, message: impl Into<String>) -> Error {
    Error::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

impl Cifar100 {
    /// The folder holding CIFAR-100's files: `dir` or `dir/cifar-100-binary`, if either has
    /// `train.bin` or `test.bin`.
    pub fn folder(dir: &Path) -> Option<PathBuf> {
        [dir.to_path_buf(), dir.join("cifar-100-binary")]
            .into_iter()
            .find(|d| d.join("train.bin").is_file() || d.join("test.bin").is_file())
    }

    /// Opens the training (`train.bin`) or test (`test.bin`) split in `dir` (or
    /// `dir/cifar-100-binary`), with `labels` and their names from the meta file.
    ///
    /// # Errors
    /// [`Error::File`] naming the file when a split or names file is missing, a split's
    /// length is not a positive multiple of 3074 bytes, the names file does not list the
    /// 100 (or 20) names, or a label is out of range.
    pub fn open(dir: &Path, train: bool, labels: Cifar100Labels) -> Result<Cifar100> {
        let name = if train { "train.bin" } else { "test.bin" };
        let folder = Self::folder(dir).ok_or_else(|| {
            file_err(
                dir,
                "no CIFAR-100 train.bin or test.bin here or in cifar-100-binary/ (the binary version)",
            )
        })?;
        let path = folder.join(name);
        let data =
            std::fs::read(&path).map_err(|e| file_err(&path, format!("cannot read: {e}")))?;
        if data.is_empty() || data.len() % RECORD != 0 {
            return Err(file_err(
                &path,
                format!(
                    "is {} bytes long; expected a positive multiple of {RECORD} (coarse label, \
                     fine label and 3072 pixel bytes per image; truncated?)",
                    data.len()
                ),
            ));
        }
        let names_path = folder.join(labels.names_file());
        let text = std::fs::read_to_string(&names_path).map_err(|e| {
            file_err(
                &names_path,
                format!("cannot read the class names (CIFAR-100's meta file): {e}"),
            )
        })?;
        let classes: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if classes.len() != labels.count() {
            return Err(file_err(
                &names_path,
                format!(
                    "lists {} class names; expected {} (truncated?)",
                    classes.len(),
                    labels.count()
                ),
            ));
        }
        for (r, record) in data.chunks_exact(RECORD).enumerate() {
            let label = record[labels.offset()];
            if usize::from(label) >= classes.len() {
                return Err(file_err(
                    &path,
                    format!(
                        "record #{r} has label {label}; expected 0..{}",
                        classes.len() - 1
                    ),
                ));
            }
        }
        Ok(Cifar100 {
            classes,
            labels,
            file: name.to_string(),
            data,
        })
    }

    fn record(&self, index: usize) -> &[u8] {
        &self.data[index * RECORD..(index + 1) * RECORD]
    }
}

impl Dataset for Cifar100 {
    fn len(&self) -> usize {
        self.data.len() / RECORD
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn label(&self, index: usize) -> usize {
        usize::from(self.record(index)[self.labels.offset()])
    }
    fn load(&self, index: usize) -> Result<RgbImage> {
        let planes = &self.record(index)[2..];
        let mut rgb = Vec::with_capacity(3072);
        for i in 0..1024 {
            rgb.extend_from_slice(&[planes[i], planes[1024 + i], planes[2048 + i]]);
        }
        Ok(RgbImage::from_raw(32, 32, rgb).expect("32x32x3 bytes"))
    }
    fn describe(&self, index: usize) -> String {
        format!("cifar100 {} #{index}", self.file)
    }
}
