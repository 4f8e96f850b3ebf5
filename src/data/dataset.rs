//! Datasets: a folder of class sub-folders (torchvision's `ImageFolder`), CIFAR-10 binaries,
//! the IDX files of the MNIST family, subsets and a stratified train/validation split.
//!
//! Every dataset hands out decoded RGB8 images and cheap labels; anything wrong with a file
//! is an [`Error::File`] naming it and saying what was expected, never a panic.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;

use super::transforms::SampleRng;
use crate::error::{Error, Result};

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

// ---------------------------------------------------------------------------------------------
// Image decoding
// ---------------------------------------------------------------------------------------------

/// The most pixels an image may have: Pillow's `MAX_IMAGE_PIXELS`, above which it warns of a
/// decompression bomb. A 20000×20000 header is refused before any pixel is allocated.
pub const MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// The most bytes the decoder may allocate for one image (a 16-bit RGBA image of
/// [`MAX_IMAGE_PIXELS`] needs 716 MB).
const MAX_DECODE_BYTES: u64 = 1 << 30;

/// Decodes an encoded image (format detected from the content, as PIL does) to RGB8.
///
/// JPEGs go through [`super::jpeg`], whose pixels equal Pillow's (libjpeg-turbo's) exactly;
/// only the JPEG features it does not support (arithmetic coding, 12-bit, lossless, CMYK)
/// fall back to the `image` crate's decoder, which can differ by a few levels.
///
/// Grayscale, grayscale+alpha, RGBA, 16-bit and palette images convert to RGB8; alpha is
/// dropped, as PIL's `convert("RGB")` drops it. EXIF orientation is deliberately NOT applied:
/// torchvision's default loader (`PIL.Image.open(f).convert("RGB")`) ignores it, and matching
/// torchvision's pixels matters more here than upright photos.
///
/// # Errors
/// [`Error::File`] naming `path` for an empty file, an unknown or unsupported format (this
/// build decodes JPEG and PNG), corrupt/truncated data, or more than [`MAX_IMAGE_PIXELS`].
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(file_err(
            path,
            "empty file (0 bytes); expected a JPEG or PNG image",
        ));
    }
    let format = image::guess_format(bytes).map_err(|_| {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        file_err(
            path,
            format!(
                "not a recognised image (starts with bytes {}); expected a JPEG or PNG image",
                head.join(" ")
            ),
        )
    })?;
    if !matches!(format, image::ImageFormat::Jpeg | image::ImageFormat::Png) {
        return Err(file_err(
            path,
            format!(
                "is a {format:?} image, which this build cannot decode (JPEG and PNG only); \
                 convert it to PNG or JPEG"
            ),
        ));
    }
    if format == image::ImageFormat::Jpeg && jpeg_is_truncated(bytes) {
        // The decoder would fill the missing rows with grey; Pillow (so torchvision) refuses.
        return Err(file_err(
            path,
            "truncated Jpeg image (no end-of-image marker after the last scan); expected a \
             complete file",
        ));
    }
    let reader = || image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    // The header alone says how big the image claims to be: refuse a decompression bomb (or a
    // corrupt header) before the decoder allocates for it.
    let (w, h) = reader().into_dimensions().map_err(|e| {
        file_err(
            path,
            format!("corrupt or truncated {format:?} header ({e}); expected a decodable image"),
        )
    })?;
    if u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
        return Err(file_err(
            path,
            format!(
                "image claims {w}x{h} pixels ({} million); expected at most {} million pixels \
                 (Pillow's decompression-bomb limit)",
                u64::from(w) * u64::from(h) / 1_000_000,
                MAX_IMAGE_PIXELS / 1_000_000
            ),
        ));
    }
    if format == image::ImageFormat::Jpeg {
        // Our decoder reproduces libjpeg-turbo's pixels (what torchvision sees); the image
        // crate's differs by a few levels, so it only handles what ours does not support.
        let limits = super::jpeg::Limits {
            max_pixels: MAX_IMAGE_PIXELS,
            max_bytes: MAX_DECODE_BYTES,
        };
        match super::jpeg::decode(bytes, limits) {
            Ok(img) => return Ok(img.into_rgb8()),
            // Features ours lacks, or a size within Pillow's pixel limit whose coefficients
            // exceed our memory cap: the image crate (with its own cap) may still manage.
            Err(
                e @ (super::jpeg::JpegError::Unsupported(_) | super::jpeg::JpegError::TooLarge(_)),
            ) => log::debug!(
                "{}: {e}; decoding it with the image crate instead",
                path.display()
            ),
            Err(e) => {
                return Err(file_err(
                    path,
                    format!("corrupt or truncated Jpeg image ({e}); expected a decodable image"),
                ))
            }
        }
    }
    let mut reader = reader();
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| {
        file_err(
            path,
            format!("corrupt or truncated {format:?} image ({e}); expected a decodable image"),
        )
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(file_err(
            path,
            format!(
                "image is {}x{} pixels; expected a non-empty image",
                img.width(),
                img.height()
            ),
        ));
    }
    Ok(img.into_rgb8())
}

/// True when a JPEG has no end-of-image marker (FF D9) after its last start-of-scan (FF DA).
/// Entropy-coded data stuffs every FF byte with 00, so FF D9 there is always a marker; an
/// EXIF thumbnail's own markers come before the main image's last scan.
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let Some(last_scan) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return false; // no scan at all: the decoder reports that itself
    };
    !bytes[last_scan..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Reads and decodes an image file; see [`decode_image`].
pub fn load_image(path: &Path) -> Result<RgbImage> {
    let bytes =
        std::fs::read(path).map_err(|e| file_err(path, format!("cannot read image file: {e}")))?;
    decode_image(&bytes, path)
}

// ---------------------------------------------------------------------------------------------
// ImageFolder
// ---------------------------------------------------------------------------------------------

/// File extensions `ImageFolder` picks up (case-insensitive): torchvision's `IMG_EXTENSIONS`
/// plus gif. Only JPEG and PNG decode in this build; other formats give a clear error when
/// loaded.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp", "gif",
];

fn has_image_extension(name: &str) -> bool {
    let lower = name.to_lowercase();
    IMAGE_EXTENSIONS
        .iter()
        .any(|ext| lower.ends_with(&format!(".{ext}")))
}

/// torchvision's `ImageFolder`: `root/<class>/**/<image>`.
///
/// Each sub-folder of `root` is a class; labels follow the sorted folder names. Images are
/// found recursively (symbolic links followed) in the order torchvision lists them: folders
/// sorted by path, files sorted by name within each.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    samples: Vec<(PathBuf, usize)>,
}

/// Sorted names of the sub-folders of `root` (torchvision's `find_classes`).
fn class_folders(root: &Path) -> Result<Vec<String>> {
    let meta = std::fs::metadata(root)
        .map_err(|e| file_err(root, format!("cannot open the dataset folder ({e}); expected a folder with one sub-folder per class")))?;
    if !meta.is_dir() {
        return Err(file_err(
            root,
            "is not a folder; expected a folder with one sub-folder per class",
        ));
    }
    let mut classes = Vec::new();
    let entries =
        std::fs::read_dir(root).map_err(|e| file_err(root, format!("cannot list folder: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| file_err(root, format!("cannot list folder: {e}")))?;
        // fs::metadata follows symbolic links, as os.scandir's is_dir() does.
        if std::fs::metadata(entry.path())
            .map(|m| m.is_dir())
            .unwrap_or(false)
        {
            classes.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    classes.sort();
    if classes.is_empty() {
        return Err(file_err(root, "has no class sub-folders; expected a folder with one sub-folder per class (root/<class>/<image>)"));
    }
    Ok(classes)
}

/// All image files under `dir`, in `sorted(os.walk(dir, followlinks=True))` order.
fn images_under(dir: &Path) -> Result<Vec<PathBuf>> {
    // (folder path as bytes for sorting, folder, sorted image file names)
    let mut folders: Vec<(Vec<u8>, PathBuf, Vec<String>)> = Vec::new();
    let mut visited = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        // Guard against symbolic-link cycles.
        if let Ok(canonical) = std::fs::canonicalize(&folder) {
            if !visited.insert(canonical) {
                continue;
            }
        }
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| file_err(&folder, format!("cannot list folder: {e}")))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| file_err(&folder, format!("cannot list folder: {e}")))?;
            let path = entry.path();
            if std::fs::metadata(&path)
                .map(|m| m.is_dir())
                .unwrap_or(false)
            {
                stack.push(path);
            } else {
                let name = entry.file_name().to_string_lossy().into_owned();
                if has_image_extension(&name) {
                    files.push(name);
                }
            }
        }
        files.sort();
        folders.push((
            folder.as_os_str().as_encoded_bytes().to_vec(),
            folder,
            files,
        ));
    }
    folders.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(folders
        .into_iter()
        .flat_map(|(_, folder, files)| files.into_iter().map(move |f| folder.join(f)))
        .collect())
}

impl ImageFolder {
    /// Opens `root/<class>/**/<image>`, classes sorted by folder name.
    ///
    /// # Errors
    /// [`Error::File`] when `root` is missing or not a folder, has no class folders, or a
    /// class folder holds no image file (all such classes are named).
    pub fn open(root: &Path) -> Result<ImageFolder> {
        let classes = class_folders(root)?;
        Self::scan(root, classes)
    }

    /// Opens a folder (e.g. the validation set) that must have exactly the class folders
    /// `classes` (e.g. the training set's); labels are positions in `classes`.
    ///
    /// # Errors
    /// As [`ImageFolder::open`], and [`Error::File`] listing the missing and unexpected
    /// class folders when the names differ.
    pub fn with_classes(root: &Path, classes: &[String]) -> Result<ImageFolder> {
        let found: BTreeSet<String> = class_folders(root)?.into_iter().collect();
        let wanted: BTreeSet<String> = classes.iter().cloned().collect();
        if found != wanted || wanted.len() != classes.len() {
            let missing: Vec<&String> = wanted.difference(&found).collect();
            let extra: Vec<&String> = found.difference(&wanted).collect();
            return Err(file_err(
                root,
                format!(
                    "class folders differ from the expected {} classes: missing {:?}, unexpected {:?}",
                    classes.len(),
                    missing,
                    extra
                ),
            ));
        }
        Self::scan(root, classes.to_vec())
    }

    fn scan(root: &Path, classes: Vec<String>) -> Result<ImageFolder> {
        let mut samples = Vec::new();
        let mut empty = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let files = images_under(&root.join(class))?;
            if files.is_empty() {
                empty.push(class.clone());
            }
            samples.extend(files.into_iter().map(|p| (p, label)));
        }
        if !empty.is_empty() {
            return Err(file_err(
                root,
                format!(
                    "class folder(s) {:?} hold no image files; expected files with extensions {}",
                    empty,
                    IMAGE_EXTENSIONS.join(", ")
                ),
            ));
        }
        Ok(ImageFolder {
            root: root.to_path_buf(),
            classes,
            samples,
        })
    }

    /// The folder this dataset was opened from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `(path, label)` of every sample, in order.
    pub fn samples(&self) -> &[(PathBuf, usize)] {
        &self.samples
    }
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn label(&self, index: usize) -> usize {
        self.samples[index].1
    }
    fn load(&self, index: usize) -> Result<RgbImage> {
        load_image(&self.samples[index].0)
    }
    fn describe(&self, index: usize) -> String {
        self.samples[index].0.display().to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// CIFAR-10
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// IDX (MNIST, Fashion-MNIST, KMNIST, EMNIST)
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Subsets and splits
// ---------------------------------------------------------------------------------------------

/// The samples `indices` of `inner`, in that order.
#[derive(Clone)]
pub struct Subset {
    pub inner: Arc<dyn Dataset>,
    pub indices: Vec<usize>,
}

impl Subset {
    /// # Errors
    /// [`Error::Config`] when an index is out of range.
    pub fn new(inner: Arc<dyn Dataset>, indices: Vec<usize>) -> Result<Subset> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= inner.len()) {
            return Err(Error::Config(format!(
                "subset index {bad} is out of range for a dataset of {} samples",
                inner.len()
            )));
        }
        Ok(Subset { inner, indices })
    }
}

impl std::fmt::Debug for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subset")
            .field("len", &self.indices.len())
            .finish()
    }
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn classes(&self) -> &[String] {
        self.inner.classes()
    }
    fn label(&self, index: usize) -> usize {
        self.inner.label(self.indices[index])
    }
    fn load(&self, index: usize) -> Result<RgbImage> {
        self.inner.load(self.indices[index])
    }
    fn describe(&self, index: usize) -> String {
        self.inner.describe(self.indices[index])
    }
}

/// Splits `ds` into (train, validation), stratified by class: within each class the indices
/// are shuffled with `seed` and `round(count · val_fraction)` of them go to validation. Both
/// subsets list their indices in ascending order. Deterministic in `(ds labels, val_fraction,
/// seed)`.
///
/// # Errors
/// [`Error::Config`] when `val_fraction` is not in `[0, 1]`.
pub fn split(ds: Arc<dyn Dataset>, val_fraction: f64, seed: u64) -> Result<(Subset, Subset)> {
    if !(0.0..=1.0).contains(&val_fraction) {
        return Err(Error::Config(format!(
            "validation fraction must be in [0, 1], got {val_fraction}"
        )));
    }
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..ds.len() {
        by_class.entry(ds.label(i)).or_default().push(i);
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (label, mut idx) in by_class {
        // A stream per class, separate from the loader's (seed, epoch, position) streams.
        let mut rng = SampleRng::new(seed, 0x5311_7000_0000_0000, label as u64);
        rng.shuffle(&mut idx);
        let n_val = ((idx.len() as f64) * val_fraction).round() as usize;
        val.extend_from_slice(&idx[..n_val]);
        train.extend_from_slice(&idx[n_val..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    Ok((
        Subset {
            inner: ds.clone(),
            indices: train,
        },
        Subset {
            inner: ds,
            indices: val,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmpdir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("alexnet-data-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

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

    #[test]
    fn decode_errors_name_the_file() {
        let p = Path::new("x/y.jpg");
        let e = decode_image(b"", p).unwrap_err().to_string();
        assert!(e.starts_with("x/y.jpg") && e.contains("empty"), "{e}");
        let e = decode_image(b"hello world", p).unwrap_err().to_string();
        assert!(e.contains("not a recognised image"), "{e}");
        let e = decode_image(b"BM\0\0\0\0\0\0\0\0\0\0\0\0\0\0", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Bmp") && e.contains("JPEG and PNG only"), "{e}");
        let e = decode_image(
            &[0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 0],
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("corrupt or truncated"), "{e}");
    }

    struct Labels(Vec<usize>, Vec<String>);
    impl Dataset for Labels {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn classes(&self) -> &[String] {
            &self.1
        }
        fn label(&self, i: usize) -> usize {
            self.0[i]
        }
        fn load(&self, _: usize) -> Result<RgbImage> {
            Ok(RgbImage::new(1, 1))
        }
        fn describe(&self, i: usize) -> String {
            format!("#{i}")
        }
    }

    #[test]
    fn split_is_stratified_and_deterministic() {
        let labels: Vec<usize> = (0..100)
            .map(|i| {
                if i < 60 {
                    0
                } else if i < 90 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let ds: Arc<dyn Dataset> =
            Arc::new(Labels(labels, vec!["a".into(), "b".into(), "c".into()]));
        let (tr, va) = split(ds.clone(), 0.2, 9).unwrap();
        let count = |s: &Subset, c| (0..s.len()).filter(|&i| s.label(i) == c).count();
        assert_eq!((count(&va, 0), count(&va, 1), count(&va, 2)), (12, 6, 2));
        assert_eq!(tr.len() + va.len(), 100);
        let mut all: Vec<usize> = tr.indices.iter().chain(&va.indices).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let (_, va2) = split(ds.clone(), 0.2, 9).unwrap();
        assert_eq!(va.indices, va2.indices);
        let (_, va3) = split(ds.clone(), 0.2, 10).unwrap();
        assert_ne!(va.indices, va3.indices);
        assert!(split(ds.clone(), 1.5, 0).is_err());
        assert!(split(ds.clone(), f64::NAN, 0).is_err());
        assert!(Subset::new(ds, vec![100]).is_err());
    }
}
