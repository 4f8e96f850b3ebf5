//! Bad images: truncated, corrupt, empty or mislabelled files name the file and what was
//! expected; the colour types torchvision accepts convert to RGB; decompression bombs are
//! refused from the header; a panicking decoder never kills a loader worker.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alexnet_wgpu::data::dataset::{decode_image, load_image};
use alexnet_wgpu::data::{Augment, Dataset, ImageFolder, Loader, LoaderConfig, OnBadSample};
use image::{ImageBuffer, Luma, LumaA, Rgb, RgbImage, Rgba};

use crate::common::Rng;
use crate::support::{assert_mentions, err_text, jpeg_bytes, noise, tmpdir};

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend(crc.sum().to_be_bytes());
}

/// A PNG by hand: `color_type` 3 is a palette image; `rows` are the raw scanlines.
fn png_bytes(w: u32, h: u32, depth: u8, color_type: u8, palette: &[u8], rows: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([depth, color_type, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    if !palette.is_empty() {
        png_chunk(&mut out, b"PLTE", palette);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(rows).unwrap();
    png_chunk(&mut out, b"IDAT", &z.finish().unwrap());
    png_chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn truncated_jpeg_names_the_file_and_says_corrupt_or_truncated() {
    let bytes = jpeg_bytes(&noise(64, 64));
    let path = Path::new("photos/cat/truncated.jpg");
    for cut in [bytes.len() / 3, bytes.len() - 2] {
        let text = err_text(decode_image(&bytes[..cut], path));
        assert_mentions(
            &text,
            &[
                "photos/cat/truncated.jpg",
                "truncated Jpeg",
                "expected a complete file",
            ],
        );
    }
}

#[test]
fn truncated_png_names_the_file() {
    let mut bytes = Vec::new();
    noise(32, 32)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    let path = Path::new("d/truncated.png");
    let text = err_text(decode_image(&bytes[..bytes.len() - 40], path));
    assert_mentions(&text, &["d/truncated.png", "corrupt or truncated Png"]);
}

#[test]
fn corrupt_jpeg_header_names_the_file() {
    // A JPEG start-of-image marker followed by garbage.
    let mut bytes = vec![0xFF, 0xD8, 0xFF];
    let mut rng = Rng::new(5);
    bytes.extend((0..500).map(|_| rng.next_u64() as u8));
    let text = err_text(decode_image(&bytes, Path::new("d/corrupt.jpg")));
    assert_mentions(
        &text,
        &[
            "d/corrupt.jpg",
            "corrupt or truncated",
            "expected a decodable image",
        ],
    );
}

#[test]
fn zero_byte_file_names_the_file() {
    let dir = tmpdir("zero");
    let path = dir.join("empty.png");
    std::fs::write(&path, b"").unwrap();
    let text = err_text(load_image(&path));
    assert_mentions(
        &text,
        &[
            "empty.png",
            "empty file (0 bytes)",
            "expected a JPEG or PNG",
        ],
    );
}

#[test]
fn non_image_with_an_image_extension_names_the_file_and_its_first_bytes() {
    let text = err_text(decode_image(
        b"%PDF-1.7 not a photo",
        Path::new("d/scan.jpg"),
    ));
    assert_mentions(
        &text,
        &[
            "d/scan.jpg",
            "not a recognised image",
            "25 50 44 46",
            "expected a JPEG or PNG",
        ],
    );
    // A real image format this build does not decode says so.
    let text = err_text(decode_image(
        b"GIF89a\x01\x00\x01\x00",
        Path::new("d/anim.png"),
    ));
    assert_mentions(&text, &["d/anim.png", "Gif", "JPEG and PNG only"]);
}

#[test]
fn grayscale_rgba_and_16_bit_pngs_convert_to_rgb() {
    let dir = tmpdir("convert");
    ImageBuffer::<Luma<u8>, _>::from_pixel(3, 2, Luma([77]))
        .save(dir.join("gray.png"))
        .unwrap();
    ImageBuffer::<LumaA<u8>, _>::from_pixel(3, 2, LumaA([90, 10]))
        .save(dir.join("gray_alpha.png"))
        .unwrap();
    ImageBuffer::<Rgba<u8>, _>::from_pixel(3, 2, Rgba([1, 2, 3, 0]))
        .save(dir.join("rgba.png"))
        .unwrap();
    ImageBuffer::<Rgb<u16>, _>::from_pixel(3, 2, Rgb([65535, 0, 257 * 100]))
        .save(dir.join("deep.png"))
        .unwrap();
    ImageBuffer::<Luma<u16>, _>::from_pixel(3, 2, Luma([257 * 200]))
        .save(dir.join("deep_gray.png"))
        .unwrap();
    for (file, want) in [
        ("gray.png", [77, 77, 77]),
        ("gray_alpha.png", [90, 90, 90]),
        ("rgba.png", [1, 2, 3]), // alpha dropped, as PIL's convert("RGB")
        ("deep.png", [255, 0, 100]),
        ("deep_gray.png", [200, 200, 200]),
    ] {
        let img = load_image(&dir.join(file)).unwrap();
        assert_eq!(img.dimensions(), (3, 2), "{file}");
        assert_eq!(img.get_pixel(2, 1).0, want, "{file}");
    }
}

#[test]
fn palette_png_converts_to_rgb_and_a_bad_index_is_an_error() {
    // 2x1, 8-bit indices into a two-colour palette (red, teal).
    let palette = [255, 0, 0, 0, 128, 128];
    let bytes = png_bytes(2, 1, 8, 3, &palette, &[0, 0, 1]); // filter byte, then indices
    let img = decode_image(&bytes, Path::new("p.png")).unwrap();
    assert_eq!(img.get_pixel(0, 0).0, [255, 0, 0]);
    assert_eq!(img.get_pixel(1, 0).0, [0, 128, 128]);
    // A palette image without its palette is corrupt.
    let bytes = png_bytes(2, 1, 8, 3, &[], &[0, 0, 1]);
    let text = err_text(decode_image(&bytes, Path::new("d/no_palette.png")));
    assert_mentions(&text, &["d/no_palette.png", "corrupt or truncated Png"]);
}

/// `cmyk.jpg` is 8x8 pure cyan, written by Pillow 13:
/// `Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save("cmyk.jpg", quality=95)`;
/// Pillow's `convert("RGB")` of it gives (0, 255, 255).
#[test]
fn cmyk_jpeg_converts_to_rgb() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reliability/cmyk.jpg");
    let img = load_image(&path).unwrap();
    assert_eq!(img.dimensions(), (8, 8));
    let [r, g, b] = img.get_pixel(3, 3).0;
    eprintln!("cmyk cyan decodes to ({r}, {g}, {b}); Pillow gives (0, 255, 255)");
    assert!(r < 40 && g > 215 && b > 215, "({r}, {g}, {b})");
}

/// Inserts an EXIF APP1 segment with `Orientation = orientation` after the SOI marker.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0".to_vec(); // little-endian TIFF, IFD at offset 8
    tiff.extend(1u16.to_le_bytes()); // one entry
    tiff.extend(0x0112u16.to_le_bytes()); // Orientation
    tiff.extend(3u16.to_le_bytes()); // SHORT
    tiff.extend(1u32.to_le_bytes()); // count
    tiff.extend(orientation.to_le_bytes());
    tiff.extend([0, 0]); // value padding
    tiff.extend(0u32.to_le_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

/// torchvision's loader (`Image.open(f).convert("RGB")`) ignores EXIF orientation, and so do
/// we, on purpose: the pixels match what a PyTorch user trains on.
#[test]
fn exif_rotated_jpeg_decodes_as_stored_like_torchvision() {
    let plain = jpeg_bytes(&noise(40, 16));
    let rotated = with_exif_orientation(&plain, 6); // "rotate 90° clockwise to view"
    let a = decode_image(&plain, Path::new("a.jpg")).unwrap();
    let b = decode_image(&rotated, Path::new("b.jpg")).unwrap();
    assert_eq!(b.dimensions(), (40, 16), "orientation must not be applied");
    assert_eq!(a, b);
}

#[test]
fn one_pixel_image_trains_and_an_extreme_strip_is_refused_with_its_size() {
    let dir = tmpdir("tiny");
    for (class, name, w, h) in [("a", "dot.png", 1, 1), ("b", "strip.png", 1, 20000)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        noise(w, h).save(dir.join(class).join(name)).unwrap();
    }
    let ds: Arc<dyn Dataset> = Arc::new(ImageFolder::open(&dir).unwrap());
    let config = LoaderConfig {
        shuffle: false,
        workers: 1,
        ..LoaderConfig::new(1, Augment::imagenet(64))
    };
    let mut loader = Loader::new(ds, config, 0, 0).unwrap();
    let dot = loader.next_batch().unwrap().unwrap();
    assert_eq!(dot.images.len(), 3 * 64 * 64);
    let text = err_text(loader.next_batch().unwrap());
    assert_mentions(
        &text,
        &["strip.png", "1x20000", "73x1460000", "aspect ratio"],
    );
}

#[test]
fn huge_image_header_is_refused_before_allocating() {
    // A valid PNG header claiming 20000x20000 RGB (1.2 GB decoded) with one row of data.
    let bytes = png_bytes(20000, 20000, 8, 2, &[], &[0; 64]);
    let started = Instant::now();
    let text = err_text(decode_image(&bytes, Path::new("d/bomb.png")));
    assert_mentions(
        &text,
        &[
            "d/bomb.png",
            "20000x20000",
            "400 million",
            "at most 89 million",
        ],
    );
    // Refused from the header: no time spent allocating or inflating.
    assert!(started.elapsed() < Duration::from_secs(1));
    // The same for a JPEG whose frame header claims 20000x20000.
    let mut jpeg = jpeg_bytes(&noise(8, 8));
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0x4E, 0x20, 0x4E, 0x20]);
    let text = err_text(decode_image(&jpeg, Path::new("d/bomb.jpg")));
    assert_mentions(&text, &["d/bomb.jpg", "20000x20000"]);
}

/// A dataset whose decoder panics on one sample, as a buggy codec might.
struct Panicky;

impl Dataset for Panicky {
    fn len(&self) -> usize {
        4
    }
    fn classes(&self) -> &[String] {
        static C: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        C.get_or_init(|| vec!["a".into(), "b".into()])
    }
    fn label(&self, i: usize) -> usize {
        if i == 3 {
            7 // out of range
        } else {
            i % 2
        }
    }
    fn load(&self, i: usize) -> alexnet_wgpu::Result<RgbImage> {
        if i == 1 {
            panic!("decoder exploded");
        }
        Ok(noise(8, 8))
    }
    fn describe(&self, i: usize) -> String {
        format!("panicky #{i}")
    }
}

#[test]
fn a_panicking_decoder_or_a_bad_label_never_kills_a_worker_and_names_the_sample() {
    let augment = Augment {
        resize: 8,
        ..Augment::imagenet(8)
    };
    let config = |on_bad_sample| LoaderConfig {
        shuffle: false,
        workers: 2,
        on_bad_sample,
        ..LoaderConfig::new(4, augment.clone())
    };
    let mut skip = Loader::new(Arc::new(Panicky), config(OnBadSample::Skip), 0, 0).unwrap();
    let batch = skip.next_batch().unwrap().unwrap();
    assert_eq!(batch.len, 2);
    let skipped = skip.skipped().join("\n");
    assert_mentions(
        &skipped,
        &[
            "panicky #1",
            "panicked: decoder exploded",
            "panicky #3",
            "label 7 is out of range; expected < 2 classes",
        ],
    );
    let mut stop = Loader::new(Arc::new(Panicky), config(OnBadSample::Stop), 0, 0).unwrap();
    let text = err_text(stop.next_batch().unwrap());
    assert_mentions(&text, &["panicky #1", "decoder exploded"]);
}
