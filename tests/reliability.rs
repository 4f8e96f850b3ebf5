//! Issue 7, "Nothing lost, nothing silent": every bad input gets an error naming the file,
//! tensor or flag and what was expected; NaN/Inf, device loss, out-of-memory and kills during
//! a checkpoint write are survived; memory stays flat and runs are reproducible; the loaders
//! never panic on garbage. Inputs are generated into temporary folders by the tests.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alexnet_wgpu::atomic_file::write as write_atomic;
use alexnet_wgpu::data::dataset::{decode_image, load_image};
use alexnet_wgpu::data::{
    Augment, Cifar10, Cifar100, Cifar100Labels, Dataset, Idx, ImageFolder, Loader, LoaderConfig,
    OnBadSample, Synthetic,
};
use alexnet_wgpu::model::weights;
use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Init, Plan, PlanOptions};
use alexnet_wgpu::ops::GemmTiles;
use alexnet_wgpu::runtime::{parse_backend, Gpu, GpuOptions, ShaderChecks};
use alexnet_wgpu::train::trainer::{train, TrainConfig, TrainOutcome};
use alexnet_wgpu::train::{
    checkpoint, train_step_checked, NonFiniteGuard, OnNonFinite, Optimizer, OptimizerConfig,
    Schedule, TrainOptions,
};
use alexnet_wgpu::Error;
use common::{gpu, Rng};
use image::{ImageBuffer, Luma, LumaA, Rgb, RgbImage, Rgba};

/// A fresh, empty temporary folder for one test.
fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("alexnet-rel-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts that `text` contains every one of `parts`, printing the text either way so the
/// test log shows each error message.
fn assert_mentions(text: &str, parts: &[&str]) {
    eprintln!("error text: {text}");
    for p in parts {
        assert!(text.contains(p), "expected {p:?} in: {text}");
    }
}

fn err_text<T>(r: alexnet_wgpu::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn noise(w: u32, h: u32) -> RgbImage {
    let mut rng = Rng::new(u64::from(w * 31 + h));
    RgbImage::from_fn(w, h, |_, _| {
        let v = rng.next_u64();
        Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    })
}

fn jpeg_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut out),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    out
}

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

// =============================================================================================
// Bad images
// =============================================================================================

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

// =============================================================================================
// Bad datasets
// =============================================================================================

#[test]
fn empty_dataset_folder_says_what_layout_is_expected() {
    let dir = tmpdir("empty-ds");
    let text = err_text(ImageFolder::open(&dir));
    assert_mentions(
        &text,
        &[
            "alexnet-rel-",
            "no class sub-folders",
            "root/<class>/<image>",
        ],
    );
}

#[test]
fn class_folder_without_images_is_named() {
    let dir = tmpdir("empty-class");
    for c in ["cat", "dog", "eel"] {
        std::fs::create_dir_all(dir.join(c)).unwrap();
    }
    noise(4, 4).save(dir.join("cat/a.png")).unwrap();
    noise(4, 4).save(dir.join("eel/a.png")).unwrap();
    std::fs::write(dir.join("dog/notes.txt"), "x").unwrap();
    let text = err_text(ImageFolder::open(&dir));
    assert_mentions(&text, &["[\"dog\"]", "hold no image files", "jpg"]);
}

#[test]
fn train_and_validation_classes_that_differ_are_listed() {
    let (train_dir, val_dir) = (tmpdir("cls-train"), tmpdir("cls-val"));
    for (root, classes) in [(&train_dir, ["ant", "bee"]), (&val_dir, ["ant", "wasp"])] {
        for c in classes {
            std::fs::create_dir_all(root.join(c)).unwrap();
            noise(4, 4).save(root.join(c).join("x.png")).unwrap();
        }
    }
    let train_set = ImageFolder::open(&train_dir).unwrap();
    let text = err_text(ImageFolder::with_classes(&val_dir, train_set.classes()));
    assert_mentions(
        &text,
        &["cls-val", "missing [\"bee\"]", "unexpected [\"wasp\"]"],
    );
}

#[test]
fn cifar_file_of_the_wrong_length_names_the_file_and_the_record_size() {
    let dir = tmpdir("cifar-len");
    std::fs::write(dir.join("data_batch_1.bin"), vec![0u8; 3073 * 2 + 100]).unwrap();
    let text = err_text(Cifar10::open(&dir, true));
    assert_mentions(&text, &["data_batch_1.bin", "6246", "3073"]);
}

#[test]
fn cifar_label_out_of_range_names_the_file_and_record() {
    let dir = tmpdir("cifar-label");
    let mut bytes = vec![0u8; 3073 * 3];
    bytes[3073 * 2] = 12;
    std::fs::write(dir.join("test_batch.bin"), bytes).unwrap();
    let text = err_text(Cifar10::open(&dir, false));
    assert_mentions(&text, &["test_batch.bin", "label 12"]);
}

/// A CIFAR-100 folder: `records` of (coarse, fine) labels, and the two names files.
fn cifar100_dir(name: &str, labels: &[(u8, u8)], fine_names: usize) -> PathBuf {
    let dir = tmpdir(name);
    let mut bytes = Vec::new();
    for &(coarse, fine) in labels {
        bytes.extend([coarse, fine]);
        bytes.extend(vec![7u8; 3072]);
    }
    std::fs::write(dir.join("train.bin"), &bytes).unwrap();
    std::fs::write(dir.join("test.bin"), &bytes).unwrap();
    let names = |n: usize| (0..n).map(|i| format!("class{i}\n")).collect::<String>();
    std::fs::write(dir.join("fine_label_names.txt"), names(fine_names)).unwrap();
    std::fs::write(dir.join("coarse_label_names.txt"), names(20)).unwrap();
    dir
}

#[test]
fn cifar100_truncated_files_and_bad_labels_name_the_file() {
    let labels = Cifar100Labels::Fine;
    let dir = cifar100_dir("c100-trunc", &[(1, 2), (3, 4)], 100);
    let full = std::fs::read(dir.join("train.bin")).unwrap();
    std::fs::write(dir.join("train.bin"), &full[..full.len() - 10]).unwrap();
    let text = err_text(Cifar100::open(&dir, true, labels));
    assert_mentions(&text, &["train.bin", "6138", "3074", "truncated"]);

    let dir = cifar100_dir("c100-names", &[(1, 2)], 99);
    let text = err_text(Cifar100::open(&dir, false, labels));
    assert_mentions(
        &text,
        &[
            "fine_label_names.txt",
            "lists 99 class names",
            "expected 100",
        ],
    );
    std::fs::remove_file(dir.join("coarse_label_names.txt")).unwrap();
    let text = err_text(Cifar100::open(&dir, false, Cifar100Labels::Coarse));
    assert_mentions(&text, &["coarse_label_names.txt", "cannot read"]);

    let dir = cifar100_dir("c100-label", &[(1, 2), (25, 3)], 100);
    let text = err_text(Cifar100::open(&dir, true, Cifar100Labels::Coarse));
    assert_mentions(&text, &["train.bin", "record #1", "label 25", "0..19"]);
}

#[test]
fn idx_label_count_mismatch_names_both_files() {
    let dir = tmpdir("idx");
    let mut images = 0x803u32.to_be_bytes().to_vec();
    for s in [2u32, 2, 2] {
        images.extend(s.to_be_bytes());
    }
    images.extend([0u8; 8]);
    let mut labels = 0x801u32.to_be_bytes().to_vec();
    labels.extend(3u32.to_be_bytes());
    labels.extend([0u8; 3]);
    std::fs::write(dir.join("im"), images).unwrap();
    std::fs::write(dir.join("lb"), labels).unwrap();
    let text = err_text(Idx::open(&dir.join("im"), &dir.join("lb")));
    assert_mentions(
        &text,
        &["lb", "3 labels", "2 images", "expected the same count"],
    );
}

// =============================================================================================
// Bad weights and checkpoints
// =============================================================================================

fn tiny_model() -> AlexNetConfig {
    AlexNetConfig::original(10).scaled(0.125)
}

/// Rewrites a safetensors file through `edit`, keeping its metadata.
fn rewrite_safetensors(
    path: &Path,
    out: &Path,
    edit: impl FnOnce(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut tensors: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let data = safetensors::serialize(views, header.metadata().clone()).unwrap();
    std::fs::write(out, data).unwrap();
}

/// A weights file of the tiny model, saved once per test that asks.
fn saved_weights(dir: &Path) -> (AlexNet, PathBuf) {
    let model = AlexNet::new(gpu(), tiny_model()).unwrap();
    let path = dir.join("w.safetensors");
    model.save_weights(gpu(), &path).unwrap();
    (model, path)
}

#[test]
fn truncated_safetensors_names_the_file() {
    let dir = tmpdir("w-trunc");
    let (model, path) = saved_weights(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.join("cut.safetensors");
    for len in [0, 5, 100, bytes.len() - 1] {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let text = err_text(model.load_weights(gpu(), &cut));
        assert_mentions(&text, &["cut.safetensors", "not a valid safetensors file"]);
    }
}

#[test]
fn wrong_dtype_names_the_tensor_and_the_accepted_dtypes() {
    let dir = tmpdir("w-dtype");
    let (model, path) = saved_weights(&dir);
    let out = dir.join("int.safetensors");
    rewrite_safetensors(&path, &out, |t| {
        let bias = t.iter_mut().find(|x| x.0 == "features.0.bias").unwrap();
        bias.1 = safetensors::Dtype::I32;
    });
    let text = err_text(model.load_weights(gpu(), &out));
    assert_mentions(
        &text,
        &[
            "int.safetensors",
            "'features.0.bias'",
            "I32",
            "expected F32",
        ],
    );
}

#[test]
fn missing_extra_and_misshaped_tensors_are_named() {
    let dir = tmpdir("w-names");
    let (model, path) = saved_weights(&dir);
    let out = dir.join("edited.safetensors");

    rewrite_safetensors(&path, &out, |t| t.retain(|x| x.0 != "classifier.6.bias"));
    let text = err_text(model.load_weights(gpu(), &out));
    assert_mentions(&text, &["missing tensor 'classifier.6.bias'", "[10]"]);

    rewrite_safetensors(&path, &out, |t| {
        t.push((
            "features.99.weight".into(),
            safetensors::Dtype::F32,
            vec![1],
            vec![0; 4],
        ))
    });
    let text = err_text(model.load_weights(gpu(), &out));
    assert_mentions(
        &text,
        &["features.99.weight", "not parameters of this model"],
    );

    rewrite_safetensors(&path, &out, |t| {
        let w = t.iter_mut().find(|x| x.0 == "features.4.weight").unwrap();
        w.2 = vec![w.2[0], w.2[1], w.2[2] * w.2[3], 1];
    });
    let text = err_text(model.load_weights(gpu(), &out));
    assert_mentions(
        &text,
        &[
            "'features.4.weight'",
            "[32, 6, 25, 1] in the file",
            "[32, 6, 5, 5] in the model",
        ],
    );
}

#[test]
fn checkpoint_of_another_architecture_or_class_count_is_refused_by_name() {
    let dir = tmpdir("w-arch");
    let (model, path) = saved_weights(&dir);
    let tv = AlexNet::new(gpu(), AlexNetConfig::torchvision(10).scaled(0.125)).unwrap();
    let text = err_text(tv.load_weights(gpu(), &path));
    assert_mentions(
        &text,
        &[
            "not parameters of this model",
            "TorchVision",
            "another architecture",
        ],
    );

    let five = AlexNet::new(gpu(), AlexNetConfig::original(5).scaled(0.125)).unwrap();
    let text = err_text(five.load_weights(gpu(), &path));
    assert_mentions(
        &text,
        &[
            "'classifier.6.weight'",
            "[10, 512] in the file",
            "[5, 512] in the model",
        ],
    );

    // A plain weights file is not a checkpoint.
    let mut optimizer = Optimizer::new(gpu(), &model, OptimizerConfig::sgd()).unwrap();
    let text = err_text(checkpoint::load(gpu(), &path, &model, &mut optimizer));
    assert_mentions(&text, &["w.safetensors", "weights file, not a checkpoint"]);
}

#[test]
fn fine_tuning_weights_of_the_wrong_shape_name_the_tensor_and_both_shapes() {
    let dir = tmpdir("finetune-shapes");
    let (_, path) = saved_weights(&dir);
    let options = |weights: &Path| TrainOptions {
        data: Some(dir.clone()),
        weights: Some(weights.to_path_buf()),
        ..Default::default()
    };
    // Another class count re-initialises the head: not an error.
    options(&path).config(7).unwrap();
    let narrow = dir.join("narrow.safetensors");
    rewrite_safetensors(&path, &narrow, |tensors| {
        let t = tensors
            .iter_mut()
            .find(|t| t.0 == "classifier.4.weight")
            .unwrap();
        t.2 = vec![t.2[0], t.2[1] / 2];
        t.3.truncate(t.3.len() / 2);
    });
    let text = err_text(options(&narrow).config(7));
    assert_mentions(
        &text,
        &[
            "narrow.safetensors",
            "'classifier.4.weight'",
            "[512, 256]",
            "[512, 512]",
        ],
    );
    // A head whose input width differs is no new class count: an error too.
    let head = dir.join("head.safetensors");
    rewrite_safetensors(&path, &head, |tensors| {
        let t = tensors
            .iter_mut()
            .find(|t| t.0 == "classifier.6.weight")
            .unwrap();
        t.2 = vec![10, 256];
        t.3.truncate(10 * 256 * 4);
    });
    let text = err_text(options(&head).config(7));
    assert_mentions(
        &text,
        &[
            "head.safetensors",
            "'classifier.6.weight'",
            "[10, 256]",
            "[7, 512]",
        ],
    );
    let text = err_text(
        TrainOptions {
            width: Some(0.5),
            ..options(&path)
        }
        .config(7),
    );
    assert_mentions(&text, &["--arch and --width do not go with --weights"]);
}

#[test]
fn a_weights_path_that_is_a_folder_says_so() {
    let dir = tmpdir("w-folder");
    let model = AlexNet::new(gpu(), tiny_model()).unwrap();
    let text = err_text(model.load_weights(gpu(), &dir));
    assert_mentions(
        &text,
        &["w-folder", "is a folder; expected a .safetensors file"],
    );
    let text = err_text(model.save_weights(gpu(), &dir));
    assert_mentions(&text, &["w-folder", "is a folder; expected a file path"]);
}

// =============================================================================================
// Bad flags
// =============================================================================================

/// The tiny run every training test here uses: the seed's topology at 1/8 width, 64x64.
fn tiny_config(out_dir: PathBuf) -> TrainConfig {
    TrainConfig {
        model: tiny_model(),
        init: Init::Kaiming,
        image_size: 64,
        epochs: 1,
        batch_size: 8,
        optimizer: OptimizerConfig::sgd(),
        schedule: Schedule::Constant,
        augment: Augment::imagenet(64),
        seed: 4,
        workers: 1,
        on_bad_sample: OnBadSample::Stop,
        augment_on: Default::default(),
        decode: Default::default(),
        on_nan: OnNonFinite::Stop,
        log_every: 1,
        out_dir,
        max_steps: None,
        show_progress: false,
        weights: None,
        freeze: Vec::new(),
    }
}

#[test]
fn batch_size_zero_names_the_flag() {
    let c = TrainConfig {
        batch_size: 0,
        ..tiny_config(PathBuf::from("x"))
    };
    assert_mentions(
        &err_text(c.validate()),
        &["--batch-size must be at least 1"],
    );
}

#[test]
fn image_size_below_the_smallest_says_the_number() {
    let c = TrainConfig {
        image_size: 40,
        ..tiny_config(PathBuf::from("x"))
    };
    assert_mentions(
        &err_text(c.validate()),
        &[
            "--image-size 40 is below 63",
            "smallest input this architecture accepts",
        ],
    );
}

#[test]
fn learning_rate_nan_or_negative_names_the_flag() {
    for (lr, shown) in [
        (f64::NAN, "--lr NaN"),
        (-0.1, "--lr -0.1"),
        (f64::INFINITY, "--lr inf"),
    ] {
        let c = OptimizerConfig {
            lr,
            ..OptimizerConfig::sgd()
        };
        assert_mentions(
            &err_text(c.validate()),
            &[shown, "expected a finite, non-negative number"],
        );
    }
    let c = OptimizerConfig {
        momentum: 1.5,
        ..OptimizerConfig::sgd()
    };
    assert_mentions(&err_text(c.validate()), &["momentum (1.5)", "[0, 1)"]);
}

#[test]
fn unknown_backend_and_policy_names_list_the_choices() {
    assert_mentions(
        &err_text(parse_backend("cuda")),
        &["unknown backend 'cuda'", "vulkan, metal, dx12, gl"],
    );
    let text = "sometimes".parse::<OnBadSample>().unwrap_err().to_string();
    assert_mentions(&text, &["--on-bad-image 'sometimes'", "'stop' or 'skip'"]);
    let text = "retry".parse::<OnNonFinite>().unwrap_err().to_string();
    assert_mentions(&text, &["--on-nan 'retry'", "'stop' or 'rollback'"]);
    let text = "some".parse::<ShaderChecks>().unwrap_err().to_string();
    assert_mentions(&text, &["--shader-checks 'some'", "full, bounds or off"]);
    let text = "64x64".parse::<GemmTiles>().unwrap_err().to_string();
    assert_mentions(&text, &["--gemm-tiles '64x64'", "BMxBNxBK/TMxTN"]);
    // Well formed, but 5 outputs per invocation is not a shape the shader can take.
    let text = "80x64x16/5x4".parse::<GemmTiles>().unwrap_err().to_string();
    assert_mentions(&text, &["--gemm-tiles 80x64x16/5x4", "TM, TN of 4 or 8"]);
    for good in ["64", "128", "128x64x16/8x4", "64x64x8/4x4"] {
        good.parse::<GemmTiles>().unwrap();
    }
}

/// Runs the `alexnet` binary; returns (success, stderr).
fn alexnet(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_alexnet"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn the_cli_refuses_bad_flags_with_a_nonzero_exit_and_the_flag_named() {
    let out = tmpdir("cli");
    let out = out.to_str().unwrap();
    for (args, want) in [
        (vec!["--batch-size", "0"], "--batch-size must be at least 1"),
        (vec!["--image-size", "32"], "--image-size 32 is below 63"),
        (vec!["--lr", "NaN"], "--lr NaN"),
        (vec!["--lr=-1"], "--lr -1"),
        (vec!["--backend", "cuda"], "unknown backend 'cuda'"),
        (vec!["--on-nan", "maybe"], "--on-nan 'maybe'"),
        (vec!["--freeze", "featurez"], "--freeze 'featurez'"),
        (
            vec!["--freeze", "features,classifier"],
            "every parameter would be frozen and nothing would train",
        ),
        (vec!["--lr-backbone=-1"], "--lr-backbone -1"),
        (
            vec!["--weights", "/nonexistent/w.safetensors"],
            "/nonexistent/w.safetensors",
        ),
        (vec!["--shader-checks", "most"], "--shader-checks 'most'"),
        (
            vec!["--gemm-tiles", "32x32x16/4x4"],
            "--gemm-tiles 32x32x16/4x4",
        ),
        (
            vec!["--data", "/nonexistent/photos"],
            "--data /nonexistent/photos: not a folder",
        ),
    ] {
        let mut all = vec!["train", "--out", out];
        all.extend(&args);
        let (ok, stderr) = alexnet(&all);
        eprintln!("alexnet {}: {}", args.join(" "), stderr.trim());
        assert!(!ok, "alexnet {args:?} succeeded");
        assert!(stderr.contains(want), "alexnet {args:?}: {stderr}");
    }
}

// =============================================================================================
// NaN / Inf
// =============================================================================================

fn run_training(config: &TrainConfig, resume: Option<&Path>) -> alexnet_wgpu::Result<TrainOutcome> {
    let train_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(32, 64, 9, 0));
    let val_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(16, 64, 9, 1));
    train(
        gpu(),
        config,
        train_set,
        val_set,
        resume,
        Arc::new(AtomicBool::new(false)),
    )
}

#[test]
fn a_nan_injected_into_a_weight_stops_training_with_step_and_layer_and_keeps_the_checkpoint() {
    let dir = tmpdir("nan-stop");
    // Two good steps, checkpointed as an interrupt would...
    let config = TrainConfig {
        max_steps: Some(2),
        ..tiny_config(dir.clone())
    };
    assert!(run_training(&config, None).unwrap().interrupted);
    let good = dir.join("checkpoint.safetensors");
    // ...then a NaN injected into one bias of the last layer.
    let poisoned = dir.join("poisoned.safetensors");
    rewrite_safetensors(&good, &poisoned, |t| {
        let b = t.iter_mut().find(|x| x.0 == "classifier.6.bias").unwrap();
        b.3[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let before = std::fs::read(&good).unwrap();
    let config = tiny_config(dir.clone());
    let e = run_training(&config, Some(&poisoned)).err().unwrap();
    let text = e.to_string();
    assert_mentions(
        &text,
        &[
            "non-finite value (NaN or Inf) at step 3",
            "loss",
            "classifier.6.bias.grad",
            "features.0.weight.grad",
            "training stopped",
            "--on-nan rollback",
        ],
    );
    match e {
        Error::NonFinite { step, tensors, .. } => {
            assert_eq!(step, 3);
            assert_eq!(tensors[0], "loss");
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }
    // The checkpoint on disk was not overwritten with NaN weights.
    assert_eq!(std::fs::read(&good).unwrap(), before);
}

#[test]
fn a_nan_in_the_input_is_flagged_on_the_gpu_and_read_only_with_the_metrics() {
    let gpu = gpu();
    let model = AlexNet::new(gpu, tiny_model()).unwrap();
    model.initialize(gpu, Init::Kaiming, 1).unwrap();
    let options = PlanOptions {
        batch: 2,
        image_h: 64,
        image_w: 64,
        training: true,
        input_grad: false,
    };
    let plan = Plan::new(gpu, &model, options).unwrap();
    let guard = NonFiniteGuard::new(gpu, &model, &plan).unwrap();
    let mut optimizer = Optimizer::new(gpu, &model, OptimizerConfig::sgd()).unwrap();
    let mut rng = Rng::new(2);
    let mut input = rng.normals(plan.input.numel(), 1.0);
    plan.input.write_f32(gpu, &input).unwrap();
    for _ in 0..3 {
        train_step_checked(gpu, &plan, &mut optimizer, 1, Some(&guard)).unwrap();
    }
    assert_eq!(guard.read(gpu).unwrap(), None);
    // One NaN pixel at step 4; steps 5 and 6 do not move the flag.
    input[1234] = f32::NAN;
    plan.input.write_f32(gpu, &input).unwrap();
    for _ in 0..3 {
        train_step_checked(gpu, &plan, &mut optimizer, 1, Some(&guard)).unwrap();
    }
    let report = guard.read(gpu).unwrap().unwrap();
    eprintln!("NaN input: {report:?}");
    assert_eq!(report.step, 4);
    assert_eq!(report.tensors[0], "loss");
    assert!(report
        .tensors
        .contains(&"features.0.weight.grad".to_string()));
    guard.reset(gpu).unwrap();
    assert_eq!(guard.read(gpu).unwrap(), None);
}

#[test]
fn a_diverging_run_rolls_back_and_lowers_the_learning_rate() {
    let dir = tmpdir("nan-rollback");
    // SGD at lr 10 overflows to Inf/NaN within three steps, at lr 1 within four; lr 0.1 gets
    // through the epoch (four steps).
    let config = TrainConfig {
        optimizer: OptimizerConfig {
            lr: 10.0,
            ..OptimizerConfig::sgd()
        },
        on_nan: OnNonFinite::Rollback,
        ..tiny_config(dir.clone())
    };
    let outcome = run_training(&config, None).unwrap();
    for r in &outcome.rollbacks {
        eprintln!("rollback: {r:?}");
    }
    assert!(!outcome.rollbacks.is_empty(), "lr 10 did not diverge");
    assert!(outcome.rollbacks.len() <= 3);
    let last = outcome.rollbacks.last().unwrap();
    assert_eq!(last.to_step, 0, "rolled back to the initial checkpoint");
    assert!((last.lr_scale - 0.1f64.powi(outcome.rollbacks.len() as i32)).abs() < 1e-12);
    assert_eq!(outcome.rollbacks.len(), 2);
    assert_eq!(outcome.epochs.len(), 1);
    assert!(outcome.epochs.iter().all(|e| e.train_loss.is_finite()));
    assert!(outcome.epochs[0].lr < 10.0);
    // The checkpoint written after the rollback loads and is finite.
    let model = AlexNet::new(gpu(), tiny_model()).unwrap();
    model.load_weights(gpu(), &outcome.checkpoint).unwrap();
    for p in &model.params {
        assert!(
            p.value
                .read_f32(gpu())
                .unwrap()
                .iter()
                .all(|v| v.is_finite()),
            "{}",
            p.name
        );
    }
}

// =============================================================================================
// Device errors: uncaptured errors, device loss, out of memory
// =============================================================================================

#[test]
fn an_uncaptured_gpu_error_becomes_a_typed_error_not_a_panic() {
    // A device of its own: the error must not reach other tests' calls.
    let gpu = Gpu::new(&GpuOptions::default()).unwrap();
    // MAP_READ with STORAGE is invalid in WebGPU; by default wgpu panics on this.
    let _bad = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("invalid"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let text = err_text(gpu.check());
    assert_mentions(&text, &["GPU error", "invalid"]);
    gpu.check().unwrap(); // reported once
}

#[test]
fn a_lost_device_is_a_typed_error_on_the_next_call() {
    let gpu = Gpu::new(&GpuOptions::default()).unwrap();
    let model = AlexNet::new(&gpu, tiny_model()).unwrap();
    let options = PlanOptions {
        batch: 1,
        image_h: 64,
        image_w: 64,
        training: true,
        input_grad: false,
    };
    let plan = Plan::new(&gpu, &model, options).unwrap();
    let mut optimizer = Optimizer::new(&gpu, &model, OptimizerConfig::sgd()).unwrap();
    // What a driver reset or an unplugged eGPU does, on demand.
    gpu.device.destroy();
    let e = plan.totals.read_f32(&gpu).err().unwrap();
    assert!(matches!(e, Error::DeviceLost { .. }), "{e:?}");
    assert_mentions(
        &e.to_string(),
        &[
            "device was lost",
            "Destroyed",
            "resume from the last checkpoint",
        ],
    );
    // Every later call says the same, and none panics.
    let e = train_step_checked(&gpu, &plan, &mut optimizer, 0, None)
        .err()
        .unwrap();
    assert!(matches!(e, Error::DeviceLost { .. }), "{e:?}");
    assert!(matches!(
        Plan::new(&gpu, &model, options),
        Err(Error::DeviceLost { .. })
    ));
    assert!(matches!(
        Optimizer::new(&gpu, &model, OptimizerConfig::sgd()),
        Err(Error::DeviceLost { .. })
    ));
}

#[test]
fn a_batch_too_large_for_the_device_is_a_typed_error_with_a_batch_that_fits() {
    let dir = tmpdir("oom");
    let config = TrainConfig {
        batch_size: 100_000,
        ..tiny_config(dir)
    };
    let e = run_training(&config, None).err().unwrap();
    let text = e.to_string();
    assert_mentions(
        &text,
        &[
            "batch size 100000 does not fit",
            "tensor 'input'",
            "or less: larger batches need one buffer over the limit",
        ],
    );
    let Error::OutOfMemory { batch, hint, .. } = e else {
        panic!("expected OutOfMemory");
    };
    assert_eq!(batch, 100_000);
    // The suggested batch keeps the largest buffer (the 3x64x64 input) under the limit.
    let fits: usize = hint
        .split("--batch-size ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap()
        .parse()
        .unwrap();
    let per_sample = 3 * 64 * 64 * 4;
    assert!(fits > 0 && (fits * per_sample) as u64 <= gpu().limits().max_buffer_size);
    assert!(((fits + 1) * per_sample) as u64 > gpu().limits().max_buffer_size);
}

// =============================================================================================
// SIGTERM
// =============================================================================================

#[cfg(unix)]
#[test]
fn sigterm_writes_a_checkpoint_and_exits_0_saying_how_to_resume() {
    let out = tmpdir("sigterm");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_alexnet"))
        .args([
            "train",
            "--width",
            "0.125",
            "--batch-size",
            "4",
            "--train-size",
            "400",
        ])
        .args([
            "--val-size",
            "20",
            "--epochs",
            "50",
            "--workers",
            "1",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The metrics log is created once training (and so the signal handler) has started.
    let started = Instant::now();
    while !out.join("metrics.jsonl").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "training never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!(
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));
    assert_mentions(
        &stdout,
        &[
            "stopped; checkpoint in",
            "Resume with: alexnet train --resume",
        ],
    );
    let model = AlexNet::new(gpu(), AlexNetConfig::original(10).scaled(0.125)).unwrap();
    model
        .load_weights(gpu(), &out.join("checkpoint.safetensors"))
        .unwrap();
}

// =============================================================================================
// A crash during a checkpoint write
// =============================================================================================

const KILL_DIR: &str = "ALEXNET_KILL_TEST_DIR";

/// One "checkpoint" of generation `g`: a tensor of 2M copies of g, with g in the metadata, so
/// a torn file cannot parse or disagrees with itself.
fn generation_file(g: u32) -> Vec<u8> {
    let data: Vec<u8> = (0..2_000_000)
        .flat_map(|_| (g as f32).to_le_bytes())
        .collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2_000_000], &data)
            .unwrap();
    let meta = HashMap::from([("generation".to_string(), g.to_string())]);
    safetensors::serialize([("w", view)], Some(meta)).unwrap()
}

/// The generation in a checkpoint file, checking every value against it.
fn read_generation(path: &Path) -> Result<u32, String> {
    let bytes = weights::read_file(path).map_err(|e| e.to_string())?;
    let (tensors, meta) = weights::parse(path, &bytes).map_err(|e| e.to_string())?;
    let g: u32 = meta["generation"].parse().map_err(|_| "bad metadata")?;
    let (_, values) = &tensors["w"];
    if values.len() != 2_000_000 || values.iter().any(|&v| v != g as f32) {
        return Err(format!("generation {g}: values disagree"));
    }
    Ok(g)
}

/// The child side of the kill test: writes checkpoints in a loop until killed. A no-op unless
/// the parent test starts it with `ALEXNET_KILL_TEST_DIR` set.
#[test]
fn checkpoint_writer_child_process() {
    let Some(dir) = std::env::var_os(KILL_DIR) else {
        return;
    };
    let path = Path::new(&dir).join("checkpoint.safetensors");
    let mut g = read_generation(&path).map_or(0, |g| g + 1);
    loop {
        write_atomic(&path, &generation_file(g)).unwrap();
        g += 1;
    }
}

#[test]
fn killing_a_checkpoint_writer_at_random_instants_never_leaves_a_torn_file() {
    let dir = tmpdir("kill");
    let path = dir.join("checkpoint.safetensors");
    let mut rng = Rng::new(99);
    let kills = 40;
    let mut generations = Vec::new();
    for _ in 0..kills {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "checkpoint_writer_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(KILL_DIR, &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + rng.next_u64() % 300));
        child.kill().unwrap(); // SIGKILL: no destructor, no flush, no cleanup
        child.wait().unwrap();
        if path.exists() {
            generations.push(read_generation(&path).unwrap());
        }
    }
    let temps = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count()
    };
    let stale = temps(&dir);
    eprintln!(
        "{kills} kills: every file read back whole; generations {generations:?}; {stale} temp files of killed writers"
    );
    assert!(
        generations.len() >= kills / 2,
        "the children barely wrote anything"
    );
    assert!(generations.windows(2).all(|w| w[0] <= w[1]));
    // The next successful write cleans up what killed writers left.
    write_atomic(&path, &generation_file(1_000_000)).unwrap();
    assert_eq!(read_generation(&path).unwrap(), 1_000_000);
    assert_eq!(temps(&dir), 0, "stale temp files remain");
}

// =============================================================================================
// Long runs: flat memory, determinism
// =============================================================================================

/// Resident set size of this process in bytes (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn memory_stays_flat_over_hundreds_of_training_steps() {
    let gpu = gpu();
    let model = AlexNet::new(gpu, tiny_model()).unwrap();
    model.initialize(gpu, Init::Kaiming, 1).unwrap();
    let options = PlanOptions {
        batch: 2,
        image_h: 64,
        image_w: 64,
        training: true,
        input_grad: false,
    };
    let plan = Plan::new(gpu, &model, options).unwrap();
    let guard = NonFiniteGuard::new(gpu, &model, &plan).unwrap();
    let mut optimizer = Optimizer::new(
        gpu,
        &model,
        OptimizerConfig {
            lr: 1e-3,
            ..OptimizerConfig::sgd()
        },
    )
    .unwrap();
    let mut rng = Rng::new(8);
    let input = rng.normals(plan.input.numel(), 1.0);
    let (warmup, steps) = (50, 300);
    let mut after_warmup = 0;
    for step in 0..steps {
        plan.input.write_f32(gpu, &input).unwrap();
        train_step_checked(gpu, &plan, &mut optimizer, step, Some(&guard)).unwrap();
        if step % 10 == 9 {
            plan.totals.read_f32(gpu).unwrap();
            guard.read(gpu).unwrap();
        }
        if step + 1 == warmup {
            gpu.wait().unwrap();
            after_warmup = rss_bytes().unwrap_or(0);
        }
    }
    gpu.wait().unwrap();
    let end = rss_bytes().unwrap_or(0);
    let growth = end as i64 - after_warmup as i64;
    eprintln!(
        "RSS after {warmup} steps {:.1} MiB, after {steps} {:.1} MiB: growth {:.2} MiB",
        after_warmup as f64 / 1048576.0,
        end as f64 / 1048576.0,
        growth as f64 / 1048576.0
    );
    // Other tests in this binary run in parallel and allocate too; a leak of even one
    // staging buffer per step (64 bytes x 250) would not show, but one per dispatch would.
    assert!(growth < 32 << 20, "RSS grew {growth} bytes after warm-up");
}

#[test]
fn two_runs_with_the_same_seed_give_bit_identical_losses() {
    let runs: Vec<Vec<(u64, f32)>> = (0..2)
        .map(|i| {
            let config = TrainConfig {
                epochs: 2,
                workers: 2,
                ..tiny_config(tmpdir(&format!("determinism-{i}")))
            };
            run_training(&config, None).unwrap().step_losses
        })
        .collect();
    eprintln!("losses: {:?}", runs[0]);
    assert_eq!(runs[0].len(), 8);
    // Compare bits, so that even a NaN would have to repeat exactly.
    let bits = |r: &[(u64, f32)]| r.iter().map(|(s, l)| (*s, l.to_bits())).collect::<Vec<_>>();
    assert_eq!(bits(&runs[0]), bits(&runs[1]));
}

// =============================================================================================
// Randomised robustness: the loaders never panic on garbage
// =============================================================================================

/// Flips, truncates, extends or overwrites bytes of `seed`.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.next_u64() % 4 {
        let at = if v.is_empty() {
            0
        } else {
            (rng.next_u64() as usize) % v.len()
        };
        match rng.next_u64() % 5 {
            0 => v.truncate(at),
            1 if !v.is_empty() => v[at] ^= 1 << (rng.next_u64() % 8),
            2 if !v.is_empty() => v[at] = rng.next_u64() as u8,
            3 => v
                .splice(
                    at..at,
                    (0..rng.next_u64() % 16).map(|_| rng.next_u64() as u8),
                )
                .for_each(drop),
            // Header integers are where parsers overflow: write a big one.
            _ if v.len() >= at + 8 => v[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes()),
            _ => v.push(0xFF),
        }
    }
    v
}

#[test]
fn thousands_of_mutated_files_give_errors_never_panics() {
    let dir = tmpdir("mutate");
    let mut rng = Rng::new(2024);
    // Seeds: a small safetensors file, a CIFAR record, IDX images and labels, a PNG, a JPEG.
    let st = {
        let data: Vec<u8> = (0..24).collect();
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 3], &data)
            .unwrap();
        safetensors::serialize([("features.0.bias", view)], None).unwrap()
    };
    let mut idx_images = 0x803u32.to_be_bytes().to_vec();
    for s in [2u32, 3, 3] {
        idx_images.extend(s.to_be_bytes());
    }
    idx_images.extend([7u8; 18]);
    let mut idx_labels = 0x801u32.to_be_bytes().to_vec();
    idx_labels.extend(2u32.to_be_bytes());
    idx_labels.extend([1u8, 2]);
    let mut png = Vec::new();
    noise(5, 4)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let jpeg = jpeg_bytes(&noise(9, 7));
    let cifar = vec![3u8; 3073];

    let (mut ok, mut errors) = (0, 0);
    let mut count = |r: bool| if r { ok += 1 } else { errors += 1 };
    let n = 1500;
    let file = dir.join("f");
    for _ in 0..n {
        let bytes = mutate(&st, &mut rng);
        count(weights::parse(&file, &bytes).is_ok());
        count(decode_image(&mutate(&png, &mut rng), &file).is_ok());
        count(decode_image(&mutate(&jpeg, &mut rng), &file).is_ok());
        std::fs::write(dir.join("data_batch_1.bin"), mutate(&cifar, &mut rng)).unwrap();
        count(Cifar10::open(&dir, true).is_ok());
        std::fs::write(dir.join("im"), mutate(&idx_images, &mut rng)).unwrap();
        std::fs::write(dir.join("lb"), mutate(&idx_labels, &mut rng)).unwrap();
        count(Idx::open(&dir.join("im"), &dir.join("lb")).is_ok());
    }
    eprintln!(
        "{} mutated inputs: {ok} still loaded, {errors} gave errors, none panicked",
        5 * n
    );
    assert!(errors > n, "the mutations were too gentle to test anything");
}

/// The libjpeg-turbo-exact JPEG decoder on randomly mutated JPEGs of every kind it decodes
/// (progressive with restarts or block smoothing, 4:2:0, 4:1:1, 4:4:0, mixed sampling,
/// grayscale, RGB, 16-bit quantization tables): an image or an error, never a panic or a hang. The decoder is called
/// directly too, so truncated files reach it past `decode_image`'s truncation guard.
#[test]
fn mutated_jpegs_of_every_kind_never_panic_the_decoder() {
    use alexnet_wgpu::data::jpeg;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg");
    let seeds: Vec<Vec<u8>> = [
        "cj_restart_5b_prog.jpg",
        "pil_restart_rows_prog.jpg",
        "pil_33x31_s2_prog.jpg",
        "pil_17x13_s1_base.jpg",
        "cj_411_37x11.jpg",
        "cj_440_32x32_prog.jpg",
        "cj_mixed_22_21_12.jpg",
        "cj_gray_restart_prog.jpg",
        "cj_rgb.jpg",
        "cj_q1_16bit_qt_extended.jpg",
        "cj_prog_stops_at_al1_420_h24.jpg",
        "cj_prog_dc_only_420.jpg",
    ]
    .iter()
    .map(|name| std::fs::read(fixtures.join(name)).unwrap())
    .collect();
    let limits = jpeg::Limits {
        max_pixels: 1 << 22,
        max_bytes: 1 << 28,
    };
    let mut rng = Rng::new(4242);
    let (mut ok, mut errors) = (0, 0);
    let start = Instant::now();
    for round in 0..20_000 {
        let seed = &seeds[round % seeds.len()];
        let bytes = mutate(seed, &mut rng);
        match jpeg::decode(&bytes, limits) {
            Ok(img) => {
                assert_eq!(
                    img.data.len(),
                    (img.width * img.height) as usize * usize::from(img.channels)
                );
                ok += 1;
            }
            Err(_) => errors += 1,
        }
        if round % 16 == 0 {
            let _ = decode_image(&bytes, Path::new("m.jpg"));
        }
    }
    eprintln!(
        "20000 mutated JPEGs: {ok} decoded, {errors} refused, none panicked ({:.1?})",
        start.elapsed()
    );
    assert!(
        errors > 100,
        "the mutations were too gentle to test anything"
    );
}

/// The image-folder scanner on randomly built trees (empty files, nested folders, odd names,
/// symbolic-link loops) returns a dataset or an error, never panics or hangs.
#[test]
fn random_folder_trees_scan_without_panics() {
    let mut rng = Rng::new(77);
    for round in 0..40 {
        let root = tmpdir(&format!("tree-{round}"));
        for _ in 0..rng.next_u64() % 12 {
            let depth = rng.next_u64() % 3;
            let mut p = root.clone();
            for d in 0..=depth {
                p = p.join(format!("d{}{}", d, rng.next_u64() % 3));
            }
            std::fs::create_dir_all(&p).unwrap();
            let ext = ["png", "JPG", "txt", "jpeg", ""][(rng.next_u64() % 5) as usize];
            let name = format!("f{}.{ext}", rng.next_u64() % 100);
            std::fs::write(p.join(name), vec![0u8; (rng.next_u64() % 3) as usize]).unwrap();
            #[cfg(unix)]
            if rng.next_u64().is_multiple_of(4) {
                let _ = std::os::unix::fs::symlink(&root, p.join("loop"));
            }
        }
        match ImageFolder::open(&root) {
            Ok(ds) => {
                for i in 0..ds.len() {
                    let _ = ds.load(i); // errors are fine, panics are not
                }
            }
            Err(e) => assert!(e.to_string().contains("alexnet-rel-"), "{e}"),
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
