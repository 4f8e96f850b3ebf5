//! Randomised robustness: the loaders never panic on garbage.

use std::path::Path;
use std::time::Instant;

use alexnet_wgpu::data::dataset::decode_image;
use alexnet_wgpu::data::{Cifar10, Dataset, Idx, ImageFolder};
use alexnet_wgpu::model::weights;

use crate::common::Rng;
use crate::support::{jpeg_bytes, noise, tmpdir};

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
