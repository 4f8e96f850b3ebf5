//! Image decoding: encoded bytes (format detected from the content) to RGB8.

use std::path::Path;

use image::RgbImage;

use super::file_err;
use crate::error::Result;

/// The most pixels an image may have: Pillow's `MAX_IMAGE_PIXELS`, above which it warns of a
/// decompression bomb. A 20000×20000 header is refused before any pixel is allocated.
pub const MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// The most bytes the decoder may allocate for one image (a 16-bit RGBA image of
/// [`MAX_IMAGE_PIXELS`] needs 716 MB).
const MAX_DECODE_BYTES: u64 = 1 << 30;

/// Decodes an encoded image (format detected from the content, as PIL does) to RGB8.
///
/// JPEGs go through [`crate::data::jpeg`], whose pixels equal Pillow's (libjpeg-turbo's) exactly;
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
    decode_image_draft(bytes, path, None)
}

/// How JPEGs are decoded for training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecodeMode {
    /// Full size, pixels equal to Pillow's: what torchvision sees.
    #[default]
    Exact,
    /// A JPEG at least twice the resize target decodes at 1/2, 1/4 or 1/8 scale
    /// (libjpeg's reduced-size IDCTs, as Pillow's `Image.draft()`), then resizes from there:
    /// several times faster on large photos, but NOT Pillow-exact (`Image.open` + resize).
    Fast,
}

impl std::fmt::Display for DecodeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecodeMode::Exact => "exact",
            DecodeMode::Fast => "fast",
        })
    }
}

impl std::str::FromStr for DecodeMode {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> Result<DecodeMode> {
        match s.to_ascii_lowercase().as_str() {
            "exact" => Ok(DecodeMode::Exact),
            "fast" => Ok(DecodeMode::Fast),
            _ => Err(crate::error::Error::Config(format!(
                "--decode '{s}': expected 'exact' or 'fast'"
            ))),
        }
    }
}

/// Pillow's `draft()` scale: the largest of 8, 4, 2, 1 that is at most
/// `min(width / target_w, height / target_h)` (integer division), so the reduced image is
/// still at least the target size.
pub fn draft_denom(width: usize, height: usize, target_w: usize, target_h: usize) -> usize {
    let fits = (width / target_w.max(1)).min(height / target_h.max(1));
    [8, 4, 2, 1].into_iter().find(|&d| d <= fits).unwrap_or(1)
}

/// [`decode_image`], except that with `draft = Some(resize)` a JPEG whose `Resize(resize)`
/// target it exceeds at least twice over decodes at 1/2, 1/4 or 1/8 scale
/// ([`DecodeMode::Fast`], [`draft_denom`]); other images decode as [`decode_image`] does.
///
/// # Errors
/// As [`decode_image`].
pub fn decode_image_draft(bytes: &[u8], path: &Path, draft: Option<usize>) -> Result<RgbImage> {
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
        let limits = crate::data::jpeg::Limits {
            max_pixels: MAX_IMAGE_PIXELS,
            max_bytes: MAX_DECODE_BYTES,
        };
        let denom = draft.map_or(1, |resize| {
            let (w, h) = (w as usize, h as usize);
            let (tw, th) = crate::data::transforms::shorter_side_size(w, h, resize);
            draft_denom(w, h, tw, th)
        });
        match crate::data::jpeg::decode_scaled(bytes, limits, denom) {
            Ok(img) => return Ok(img.into_rgb8()),
            // Features ours lacks, or a size within Pillow's pixel limit whose coefficients
            // exceed our memory cap: the image crate (with its own cap) may still manage.
            Err(
                e @ (crate::data::jpeg::JpegError::Unsupported(_)
                | crate::data::jpeg::JpegError::TooLarge(_)),
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
    load_image_draft(path, None)
}

/// Reads and decodes an image file; see [`decode_image_draft`].
pub fn load_image_draft(path: &Path, draft: Option<usize>) -> Result<RgbImage> {
    let bytes =
        std::fs::read(path).map_err(|e| file_err(path, format!("cannot read image file: {e}")))?;
    decode_image_draft(&bytes, path, draft)
}
#[cfg(test)]
mod tests {
    use super::*;

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
}
