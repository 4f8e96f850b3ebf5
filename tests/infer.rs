//! Inference: torchvision's preprocessing on real photographs (CPU and GPU paths), a
//! torchvision-variant weight file written by PyTorch giving PyTorch's logits, the ten-crop
//! test, and the two examples running on this machine's adapter.

mod common;

use std::path::PathBuf;

use alexnet_wgpu::data::dataset::load_image;
use alexnet_wgpu::infer::{softmax, Classifier};
use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Init};
use alexnet_wgpu::ops::preprocess::PreprocessConfig;
use alexnet_wgpu::runtime::Program;
use common::{gpu, Fixture};

const PHOTOS: [&str; 3] = ["astronaut.jpg", "chelsea.png", "coffee.jpg"];

fn photo(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/photos")
        .join(name)
}

fn stem(name: &str) -> &str {
    name.split('.').next().unwrap()
}

/// torchvision's 224×224 crop (before ToTensor) as 0..255 values, channel-major.
fn torchvision_crop(name: &str) -> Vec<f32> {
    let crop = load_image(&photo(&format!("{}.crop.png", stem(name)))).unwrap();
    let (w, h) = (crop.width() as usize, crop.height() as usize);
    let mut chw = vec![0.0; 3 * w * h];
    for (i, p) in crop.pixels().enumerate() {
        for c in 0..3 {
            chw[c * w * h + i] = f32::from(p[c]);
        }
    }
    chw
}

/// Undoes Normalize so a tensor can be compared in 8-bit levels.
fn to_levels(normalized: &[f32], cfg: &PreprocessConfig) -> Vec<f32> {
    let plane = normalized.len() / 3;
    normalized
        .iter()
        .enumerate()
        .map(|(i, v)| (v * cfg.std[i / plane] + cfg.mean[i / plane]) * 255.0)
        .collect()
}

/// Checks our preprocessed `ours` (0..255 levels) against torchvision's crop of `name`.
///
/// PNGs decode identically everywhere and our JPEG decoder reproduces libjpeg-turbo's pixels
/// (PIL's), so for every photo the preprocessing itself must land within one level of
/// torchvision's at every value.
fn assert_within_levels(what: &str, name: &str, ours: &[f32]) {
    let (max, differing) = level_difference(ours, &torchvision_crop(name));
    let share = differing as f64 / ours.len() as f64;
    eprintln!("{what} {name}: within {max:.3} levels of torchvision's; {:.3}% of values off by more than half a level", 100.0 * share);
    assert!(
        max <= 1.0 + 1e-3,
        "{what} {name}: {max} levels from torchvision's tensor"
    );
}

/// Largest per-pixel difference in 8-bit levels, and how many values differ by more than 0.5.
fn level_difference(ours: &[f32], theirs: &[f32]) -> (f32, usize) {
    let diffs: Vec<f32> = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .collect();
    (
        diffs.iter().copied().fold(0.0, f32::max),
        diffs.iter().filter(|&&d| d > 0.5).count(),
    )
}

fn small_classifier(batch: usize) -> Classifier {
    let weights = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torchvision_small.safetensors");
    Classifier::from_file(gpu(), &weights, 224, batch, None).unwrap()
}

#[test]
fn preprocessing_real_photos_matches_torchvision() {
    let classifier = small_classifier(1);
    for name in PHOTOS {
        let ours = to_levels(
            &classifier.preprocess_image(&load_image(&photo(name)).unwrap()),
            &classifier.preprocess,
        );
        assert_within_levels("CPU preprocessing", name, &ours);
    }
}

#[test]
fn gpu_texture_preprocessing_matches_torchvision() {
    let gpu = gpu();
    let classifier = small_classifier(1);
    for name in PHOTOS {
        let image = load_image(&photo(name)).unwrap();
        for format in [
            wgpu::TextureFormat::Rgba8Unorm,
            wgpu::TextureFormat::Rgba8UnormSrgb,
        ] {
            let texture = upload_texture(gpu, &image, format);
            let view = texture.create_view(&Default::default());
            let mut program = Program::new();
            program.push(classifier.prepare_texture(gpu, &texture, &view, 0).unwrap());
            program.run(gpu).unwrap();
            let ours = to_levels(
                &classifier.plan.input.read_f32(gpu).unwrap(),
                &classifier.preprocess,
            );
            assert_within_levels(&format!("GPU preprocessing from {format:?}"), name, &ours);
        }
    }
}

fn upload_texture(
    gpu: &alexnet_wgpu::Gpu,
    image: &image::RgbImage,
    format: wgpu::TextureFormat,
) -> alexnet_wgpu::runtime::Gated<wgpu::Texture> {
    let rgba = image::DynamicImage::ImageRgb8(image.clone()).to_rgba8();
    let size = wgpu::Extent3d {
        width: image.width(),
        height: image.height(),
        depth_or_array_layers: 1,
    };
    // As an app sharing its device would on GL: wgpu calls from this thread take their turn.
    let _turn = gpu.exclusive();
    let texture = gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("photo"),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    gpu.queue.write_texture(
        texture.as_image_copy(),
        &rgba,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(4 * image.width()),
            rows_per_image: None,
        },
        size,
    );
    gpu.gated(texture)
}

#[test]
fn torchvision_weights_written_by_pytorch_give_pytorchs_logits_on_photos() {
    let classifier = small_classifier(3);
    assert_eq!(
        classifier.model.config.arch,
        alexnet_wgpu::model::Arch::TorchVision
    );
    assert_eq!(classifier.model.config.classes, 1000);
    let f = Fixture::load("torchvision_small_logits");
    // Feed torchvision's own crops, so the comparison is of the network alone.
    let cfg = classifier.preprocess;
    let tensors: Vec<f32> = PHOTOS
        .iter()
        .flat_map(|name| {
            let crop = torchvision_crop(name);
            let plane = crop.len() / 3;
            crop.into_iter()
                .enumerate()
                .map(|(i, v)| (v / 255.0 - cfg.mean[i / plane]) / cfg.std[i / plane])
                .collect::<Vec<f32>>()
        })
        .collect();
    let logits = classifier.logits(gpu(), &tensors).unwrap();
    for (name, got) in PHOTOS.iter().zip(&logits) {
        // Within 10× PyTorch's own float32 error on these logits, never asked below 1e-6.
        f.assert_matches(&format!("logits.{}", stem(name)), got, 10.0, 1e-6);
    }
}

#[test]
fn ten_crop_of_a_uniform_image_equals_its_centre_crop() {
    let gpu = gpu();
    let model = AlexNet::new(gpu, AlexNetConfig::torchvision(10).scaled(0.125)).unwrap();
    model.initialize(gpu, Init::PyTorch, 4).unwrap();
    let classifier = Classifier::new(gpu, model, 64, 10, None).unwrap();
    let image = image::RgbImage::from_pixel(90, 70, image::Rgb([200, 40, 90]));
    let ten = classifier.ten_crop_probabilities(gpu, &image).unwrap();
    let single = softmax(
        &classifier
            .logits(gpu, &classifier.preprocess_image(&image))
            .unwrap()[0],
    );
    assert!((ten.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    common::assert_close(
        "ten-crop vs centre crop",
        &ten,
        &common::reference::to_f64(&single),
        1e-5,
    );
}

/// Embeddings at `classifier.1` and `classifier.4` are those layers' own outputs, before the
/// ReLU a classifier's plan fuses into them: an unfused plan's outputs, negatives included.
#[test]
fn features_are_the_fc_outputs_before_their_relu() {
    use alexnet_wgpu::infer::features::{FeatureExtractor, FeatureLayer};
    use alexnet_wgpu::model::{Plan, PlanOptions};
    use alexnet_wgpu::ops::KernelPolicy;
    let gpu = &alexnet_wgpu::Gpu::new(&Default::default()).unwrap();
    let model = AlexNet::new(gpu, AlexNetConfig::torchvision(10).scaled(0.125)).unwrap();
    model.initialize(gpu, Init::PyTorch, 6).unwrap();
    let file = std::env::temp_dir().join(format!("alexnet-features-{}.st", std::process::id()));
    model.save_weights(gpu, &file).unwrap();
    let image = image::RgbImage::from_fn(80, 72, |x, y| {
        image::Rgb([(3 * x) as u8, (5 * y) as u8, (x * y) as u8])
    });
    for layer in [FeatureLayer::Classifier1, FeatureLayer::Classifier4] {
        KernelPolicy::default().apply(gpu).unwrap();
        let extractor = FeatureExtractor::from_file(gpu, &file, layer, 64, 1).unwrap();
        let got = extractor
            .embed(gpu, std::slice::from_ref(&image))
            .unwrap()
            .remove(0);
        KernelPolicy {
            unfused: true,
            ..KernelPolicy::default()
        }
        .apply(gpu)
        .unwrap();
        let options = PlanOptions::inference(1, 64);
        let plan = Plan::new(gpu, &extractor.classifier.model, options).unwrap();
        plan.input
            .write_f32(gpu, &extractor.classifier.preprocess_image(&image))
            .unwrap();
        plan.forward.run(gpu).unwrap();
        let (_, output) = plan
            .outputs
            .iter()
            .find(|(name, _)| name == layer.module())
            .unwrap();
        let want = output.read_f32(gpu).unwrap();
        assert!(got.iter().any(|&v| v < 0.0), "{layer:?}: no negative value");
        assert_eq!(got, want, "{layer:?}");
    }
    let _ = std::fs::remove_file(&file);
}

/// An example binary, built by `cargo test` beside the test binaries.
fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    deps.parent()
        .unwrap()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

fn run_example(name: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(example(name))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "example {name} failed");
    text
}

#[test]
fn the_embed_example_classifies_rendered_frames_on_the_apps_device() {
    let text = run_example("embed", &["--frames", "3", "--width", "0.125"]);
    assert_eq!(
        text.matches("top-5:").count(),
        3,
        "expected three classified frames"
    );
    assert!(text.contains("share one device"));
}

#[test]
fn the_classify_example_prints_top5_for_photos() {
    let weights = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torchvision_small.safetensors");
    let photos: Vec<String> = PHOTOS
        .iter()
        .map(|p| photo(p).display().to_string())
        .collect();
    let mut args = vec![weights.to_str().unwrap()];
    args.extend(photos.iter().map(String::as_str));
    let text = run_example("classify", &args);
    for name in PHOTOS {
        assert!(text.contains(name), "no result for {name}");
    }
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_end().ends_with('%') || l.contains('%'))
            .count(),
        15
    );
}

#[test]
fn label_files_from_any_os_read_the_same_names() {
    let dir = std::env::temp_dir().join(format!("alexnet-labels-ü日-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Windows Notepad: a byte-order mark and CRLF; an old Mac: lone CRs; padding and blanks.
    for (name, text) in [
        (
            "crlf bom.txt",
            "\u{feff}tench\r\ngoldfish\r\n\r\ngreat white shark\r\n",
        ),
        ("cr.txt", "tench\rgoldfish\rgreat white shark"),
        ("lf.txt", "  tench\ngoldfish \n\ngreat white shark\n"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let labels = alexnet_wgpu::infer::read_labels(&path).unwrap();
        assert_eq!(labels, ["tench", "goldfish", "great white shark"], "{name}");
    }
    let latin1 = dir.join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9\n").unwrap();
    let err = alexnet_wgpu::infer::read_labels(&latin1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("latin1.txt") && err.contains("UTF-8"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
