//! The IDX files of MNIST, Fashion-MNIST, KMNIST and EMNIST.

use std::io::Read;
use std::path::{Path, PathBuf};

use image::RgbImage;

use super::{file_err, Dataset};
use crate::error::Result;

/// The most bytes a gzipped IDX file may decompress to: 4x the largest real IDX set (EMNIST
/// ByClass, ~550 MB), so a small file that inflates without end (a decompression bomb) is
/// refused instead of filling memory.
const MAX_IDX_BYTES: u64 = 2 << 30;

/// Reads a file, gunzipping it when it starts with the gzip magic (1f 8b).
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    read_maybe_gz_capped(path, MAX_IDX_BYTES)
}

fn read_maybe_gz_capped(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .take(max_bytes + 1)
            .read_to_end(&mut out)
            .map_err(|e| file_err(path, format!("corrupt or truncated gzip data: {e}")))?;
        if out.len() as u64 > max_bytes {
            return Err(file_err(
                path,
                format!(
                    "gzip data decompresses to more than {max_bytes} bytes, the most an IDX \
                     file may hold"
                ),
            ));
        }
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// Parses an unsigned-byte IDX header with `dims` dimensions; returns the sizes and the data.
fn parse_idx<'a>(
    bytes: &'a [u8],
    path: &Path,
    dims: u8,
    what: &str,
) -> Result<(Vec<usize>, &'a [u8])> {
    let magic = 0x0000_0800u32 | dims as u32;
    let header = 4 + 4 * dims as usize;
    if bytes.len() < 4 {
        return Err(file_err(
            path,
            format!(
                "is {} bytes long; expected an IDX {what} file (magic 0x{magic:08x})",
                bytes.len()
            ),
        ));
    }
    let got = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if got != magic {
        return Err(file_err(
            path,
            format!(
                "bad magic number 0x{got:08x}; expected 0x{magic:08x} (IDX unsigned-byte {what})"
            ),
        ));
    }
    if bytes.len() < header {
        return Err(file_err(
            path,
            format!("truncated header: {} bytes, expected {header}", bytes.len()),
        ));
    }
    let sizes: Vec<usize> = (0..dims as usize)
        .map(|d| u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().unwrap()) as usize)
        .collect();
    let expected = sizes.iter().try_fold(1usize, |a, &s| a.checked_mul(s));
    let data = &bytes[header..];
    match expected {
        Some(n) if n == data.len() => Ok((sizes, data)),
        _ => Err(file_err(
            path,
            format!(
                "header says {what} of shape {sizes:?} ({} bytes after the {header}-byte header) but the \
                 file has {} data bytes ({})",
                expected.map(|n| n.to_string()).unwrap_or_else(|| "overflowing".into()),
                data.len(),
                if expected.is_some_and(|n| n > data.len()) { "truncated" } else { "size mismatch" }
            ),
        )),
    }
}

/// The IDX format of MNIST and its relatives: `u8` images `[n, rows, cols]` (magic
/// 0x00000803) and `u8` labels `[n]` (magic 0x00000801), gzipped or not. Grayscale is
/// replicated to RGB. Classes are "0".."9", or "0".."max" when a label exceeds 9.
#[derive(Debug, Clone)]
pub struct Idx {
    classes: Vec<String>,
    name: String,
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl Idx {
    /// Opens an images file and its labels file.
    ///
    /// # Errors
    /// [`Error::File`] for a bad magic number, a truncated or over-long file, image and
    /// label counts that differ, or an empty set.
    pub fn open(images: &Path, labels: &Path) -> Result<Idx> {
        let image_bytes = read_maybe_gz(images)?;
        let (shape, pixels) = parse_idx(&image_bytes, images, 3, "images [n, rows, cols]")?;
        let label_bytes = read_maybe_gz(labels)?;
        let (lshape, label_data) = parse_idx(&label_bytes, labels, 1, "labels [n]")?;
        if shape[0] != lshape[0] {
            return Err(file_err(
                labels,
                format!(
                    "has {} labels but {} has {} images; expected the same count",
                    lshape[0],
                    images.display(),
                    shape[0]
                ),
            ));
        }
        if shape[0] == 0 || shape[1] == 0 || shape[2] == 0 {
            return Err(file_err(
                images,
                format!("holds images of shape {shape:?}; expected at least one non-empty image"),
            ));
        }
        let max = *label_data.iter().max().unwrap_or(&0) as usize;
        let n_classes = if max <= 9 { 10 } else { max + 1 };
        Ok(Idx {
            classes: (0..n_classes).map(|c| c.to_string()).collect(),
            name: images
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            rows: shape[1],
            cols: shape[2],
            pixels: pixels.to_vec(),
            labels: label_data.to_vec(),
        })
    }

    /// Finds `train-images-idx3-ubyte[.gz]` + `train-labels-idx1-ubyte[.gz]` (or `t10k-*` when
    /// `train == false`; the `train-images.idx3-ubyte` spelling too) in `dir` or `dir/raw`.
    ///
    /// # Errors
    /// [`Error::File`] naming `dir` and the names looked for when they are not there; then as
    /// [`Idx::open`].
    pub fn open_dir(dir: &Path, train: bool) -> Result<Idx> {
        let prefix = if train { "train" } else { "t10k" };
        let find = |kind: &str, dims: u8| -> Option<PathBuf> {
            for folder in [dir.to_path_buf(), dir.join("raw")] {
                for sep in ['-', '.'] {
                    for gz in ["", ".gz"] {
                        let p = folder.join(format!("{prefix}-{kind}{sep}idx{dims}-ubyte{gz}"));
                        if p.is_file() {
                            return Some(p);
                        }
                    }
                }
            }
            None
        };
        let missing = |kind: &str, dims: u8| {
            file_err(
                dir,
                format!("no {prefix}-{kind}-idx{dims}-ubyte[.gz] here or in raw/; expected MNIST-style IDX files"),
            )
        };
        let images = find("images", 3).ok_or_else(|| missing("images", 3))?;
        let labels = find("labels", 1).ok_or_else(|| missing("labels", 1))?;
        Idx::open(&images, &labels)
    }

    /// `(rows, cols)` of every image.
    pub fn image_size(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

impl Dataset for Idx {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn label(&self, index: usize) -> usize {
        self.labels[index] as usize
    }
    fn load(&self, index: usize) -> Result<RgbImage> {
        let n = self.rows * self.cols;
        let gray = &self.pixels[index * n..(index + 1) * n];
        let rgb: Vec<u8> = gray.iter().flat_map(|&v| [v, v, v]).collect();
        Ok(RgbImage::from_raw(self.cols as u32, self.rows as u32, rgb).expect("rows*cols*3 bytes"))
    }
    fn describe(&self, index: usize) -> String {
        format!("{} #{index}", self.name)
    }
}
#[cfg(test)]
mod tests {
    use super::super::tmpdir;
    use super::*;
    use std::io::Write;

    fn idx_bytes(magic: u32, sizes: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for s in sizes {
            v.extend(s.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_that_inflates_past_the_cap_is_refused_naming_the_file() {
        let d = tmpdir("idx-bomb");
        let path = d.join("bomb-images-idx3-ubyte.gz");
        std::fs::write(&path, gzip(&vec![0u8; 1 << 16])).unwrap();
        let err = read_maybe_gz_capped(&path, 1 << 12)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bomb-images-idx3-ubyte.gz"), "{err}");
        assert!(err.contains("more than 4096 bytes"), "{err}");
        assert_eq!(read_maybe_gz_capped(&path, 1 << 16).unwrap().len(), 1 << 16);
    }

    #[test]
    fn idx_plain_and_gzipped() {
        let d = tmpdir("idx");
        let pixels: Vec<u8> = (0..2 * 2 * 3).map(|v| v * 10).collect();
        // Gzipped images under a name without .gz: detection is by content.
        std::fs::write(
            d.join("train-images-idx3-ubyte"),
            gzip(&idx_bytes(0x803, &[2, 2, 3], &pixels)),
        )
        .unwrap();
        std::fs::write(
            d.join("train-labels-idx1-ubyte.gz"),
            gzip(&idx_bytes(0x801, &[2], &[4, 1])),
        )
        .unwrap();
        let ds = Idx::open_dir(&d, true).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.classes().len(), 10);
        assert_eq!((ds.label(0), ds.label(1)), (4, 1));
        let img = ds.load(1).unwrap();
        assert_eq!((img.width(), img.height()), (3, 2));
        assert_eq!(img.get_pixel(2, 1).0, [110, 110, 110]);
        assert!(ds.describe(1).ends_with("#1"));

        // Plain files, labels above 9 → more classes.
        let raw = d.join("raw");
        std::fs::create_dir_all(&raw).unwrap();
        std::fs::write(
            raw.join("t10k-images-idx3-ubyte"),
            idx_bytes(0x803, &[1, 1, 1], &[7]),
        )
        .unwrap();
        std::fs::write(
            raw.join("t10k-labels-idx1-ubyte"),
            idx_bytes(0x801, &[1], &[25]),
        )
        .unwrap();
        let ds = Idx::open_dir(&d, false).unwrap();
        assert_eq!(ds.classes().len(), 26);
        assert_eq!(ds.classes()[25], "25");
    }

    #[test]
    fn idx_errors() {
        let d = tmpdir("idx-bad");
        let (im, lb) = (d.join("im"), d.join("lb"));
        std::fs::write(&im, idx_bytes(0x803, &[2, 2, 2], &[0; 8])).unwrap();
        std::fs::write(&lb, idx_bytes(0x801, &[3], &[0; 3])).unwrap();
        let e = Idx::open(&im, &lb).unwrap_err().to_string();
        assert!(e.contains("3 labels") && e.contains("2 images"), "{e}");
        std::fs::write(&lb, idx_bytes(0x803, &[2], &[0; 2])).unwrap();
        let e = Idx::open(&im, &lb).unwrap_err().to_string();
        assert!(e.contains("bad magic") && e.contains("0x00000801"), "{e}");
        std::fs::write(&im, idx_bytes(0x803, &[2, 2, 2], &[0; 7])).unwrap();
        std::fs::write(&lb, idx_bytes(0x801, &[2], &[0; 2])).unwrap();
        let e = Idx::open(&im, &lb).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        std::fs::write(&im, [0x1f, 0x8b, 1, 2, 3]).unwrap();
        let e = Idx::open(&im, &lb).unwrap_err().to_string();
        assert!(e.contains("gzip"), "{e}");
        std::fs::write(&im, [0, 0]).unwrap();
        assert!(Idx::open(&im, &lb).is_err());
        let e = Idx::open_dir(&d, true).unwrap_err().to_string();
        assert!(e.contains("train-images"), "{e}");
    }
}
