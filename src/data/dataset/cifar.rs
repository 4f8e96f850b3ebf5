//! CIFAR-10's binary batches.

use std::path::Path;

use image::RgbImage;

use super::{file_err, Dataset};
use crate::error::Result;

/// CIFAR-10 class names, index = label.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const CIFAR_RECORD: usize = 1 + 3 * 32 * 32;

/// The CIFAR-10 binary version: records of 1 label byte + 1024 R + 1024 G + 1024 B bytes
/// (row-major 32×32), in `data_batch_1.bin` … `data_batch_5.bin` (train) or
/// `test_batch.bin` (test). Held in memory (150 MB for the training set).
#[derive(Debug, Clone)]
pub struct Cifar10 {
    classes: Vec<String>,
    /// (file name, number of records), in order.
    files: Vec<(String, usize)>,
    /// All records, concatenated.
    data: Vec<u8>,
}

impl Cifar10 {
    /// Opens the training (`train == true`: whichever of `data_batch_1..5.bin` exist, at least
    /// one) or test (`test_batch.bin`) split in `dir`, or in `dir/cifar-10-batches-bin`.
    ///
    /// # Errors
    /// [`Error::File`] when no batch file is found, a file's length is not a positive
    /// multiple of 3073 bytes, or a label is ≥ 10.
    pub fn open(dir: &Path, train: bool) -> Result<Cifar10> {
        let names: Vec<String> = if train {
            (1..=5).map(|i| format!("data_batch_{i}.bin")).collect()
        } else {
            vec!["test_batch.bin".to_string()]
        };
        let candidates = [dir.to_path_buf(), dir.join("cifar-10-batches-bin")];
        let folder = candidates
            .iter()
            .find(|d| names.iter().any(|n| d.join(n).is_file()))
            .ok_or_else(|| {
                file_err(
                    dir,
                    format!(
                        "no CIFAR-10 {} file found here or in cifar-10-batches-bin/; expected {} (the binary version)",
                        if train { "training" } else { "test" },
                        if train { "data_batch_1.bin .. data_batch_5.bin" } else { "test_batch.bin" }
                    ),
                )
            })?;
        let mut files = Vec::new();
        let mut data = Vec::new();
        for name in &names {
            let path = folder.join(name);
            if !path.is_file() {
                continue;
            }
            let bytes =
                std::fs::read(&path).map_err(|e| file_err(&path, format!("cannot read: {e}")))?;
            if bytes.is_empty() || bytes.len() % CIFAR_RECORD != 0 {
                return Err(file_err(
                    &path,
                    format!(
                        "is {} bytes long; expected a positive multiple of {CIFAR_RECORD} \
                         (1 label byte + 3072 pixel bytes per image; 30730000 for a full batch)",
                        bytes.len()
                    ),
                ));
            }
            let count = bytes.len() / CIFAR_RECORD;
            for r in 0..count {
                let label = bytes[r * CIFAR_RECORD];
                if label >= 10 {
                    return Err(file_err(
                        &path,
                        format!(
                            "record #{r} has label {label}; expected 0..9 (is this CIFAR-100?)"
                        ),
                    ));
                }
            }
            data.extend_from_slice(&bytes);
            files.push((name.clone(), count));
        }
        Ok(Cifar10 {
            classes: CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
            files,
            data,
        })
    }

    fn record(&self, index: usize) -> &[u8] {
        &self.data[index * CIFAR_RECORD..(index + 1) * CIFAR_RECORD]
    }
}

impl Dataset for Cifar10 {
    fn len(&self) -> usize {
        self.data.len() / CIFAR_RECORD
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn label(&self, index: usize) -> usize {
        self.record(index)[0] as usize
    }
    fn load(&self, index: usize) -> Result<RgbImage> {
        let planes = &self.record(index)[1..];
        let mut rgb = Vec::with_capacity(3072);
        for i in 0..1024 {
            rgb.extend_from_slice(&[planes[i], planes[1024 + i], planes[2048 + i]]);
        }
        Ok(RgbImage::from_raw(32, 32, rgb).expect("32x32x3 bytes"))
    }
    fn describe(&self, index: usize) -> String {
        let mut i = index;
        for (name, count) in &self.files {
            if i < *count {
                return format!("cifar10 {name} #{i}");
            }
            i -= count;
        }
        format!("cifar10 #{index}")
    }
}
#[cfg(test)]
mod tests {
    use super::super::tmpdir;
    use super::*;

    fn cifar_record(label: u8, seed: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend((0..3072).map(|i| (i as u8).wrapping_mul(seed)));
        r
    }

    #[test]
    fn cifar_reads_records_planes_and_names() {
        let d = tmpdir("cifar");
        let sub = d.join("cifar-10-batches-bin");
        std::fs::create_dir_all(&sub).unwrap();
        let mut b1 = cifar_record(3, 1);
        b1.extend(cifar_record(9, 2));
        std::fs::write(sub.join("data_batch_1.bin"), &b1).unwrap();
        std::fs::write(sub.join("data_batch_3.bin"), cifar_record(0, 3)).unwrap();
        let mut t = cifar_record(7, 5);
        // Pixel (x=1, y=0): R = byte 1, G = byte 1025, B = byte 2049.
        t[1 + 1] = 11;
        t[1 + 1024 + 1] = 22;
        t[1 + 2048 + 1] = 33;
        std::fs::write(sub.join("test_batch.bin"), &t).unwrap();

        let train = Cifar10::open(&d, true).unwrap(); // parent folder accepted
        assert_eq!(train.len(), 3);
        assert_eq!((train.label(0), train.label(1), train.label(2)), (3, 9, 0));
        assert_eq!(train.classes()[9], "truck");
        assert_eq!(train.describe(2), "cifar10 data_batch_3.bin #0");
        assert_eq!(train.describe(1), "cifar10 data_batch_1.bin #1");
        let test = Cifar10::open(&sub, false).unwrap();
        let img = test.load(0).unwrap();
        assert_eq!((img.width(), img.height()), (32, 32));
        assert_eq!(img.get_pixel(1, 0).0, [11, 22, 33]);
        assert_eq!(test.label(0), 7);
    }

    #[test]
    fn cifar_errors_name_the_file() {
        let d = tmpdir("cifar-bad");
        let err = Cifar10::open(&d, true).unwrap_err().to_string();
        assert!(err.contains("data_batch_1.bin"), "{err}");
        std::fs::write(d.join("data_batch_1.bin"), vec![0u8; 3073 + 5]).unwrap();
        let err = Cifar10::open(&d, true).unwrap_err().to_string();
        assert!(
            err.contains("data_batch_1.bin") && err.contains("3078") && err.contains("3073"),
            "{err}"
        );
        std::fs::write(d.join("data_batch_1.bin"), cifar_record(10, 1)).unwrap();
        let err = Cifar10::open(&d, true).unwrap_err().to_string();
        assert!(err.contains("label 10"), "{err}");
        std::fs::write(d.join("data_batch_1.bin"), b"").unwrap();
        assert!(Cifar10::open(&d, true).is_err());
    }
}
