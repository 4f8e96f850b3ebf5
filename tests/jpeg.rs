//! The JPEG decoder against Pillow (libjpeg-turbo): byte-for-byte equal pixels on every
//! fixture `tools/gen_jpeg_fixtures.py` wrote, and on the photos, through both the decoder
//! itself and `decode_image`.

use std::path::{Path, PathBuf};

use alexnet_wgpu::data::dataset::{decode_image, load_image};
use alexnet_wgpu::data::jpeg::{decode, decode_scaled, JpegError, Limits};

const LIMITS: Limits = Limits {
    max_pixels: 1 << 26,
    max_bytes: 1 << 30,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg")
}

fn manifest() -> Vec<Vec<String>> {
    std::fs::read_to_string(dir().join("manifest.txt"))
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn fnv1a64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Fast decoding's reduced-scale decodes against Pillow's `draft()` (libjpeg-turbo with
/// `scale_denom` 2, 4, 8), written by `tools/gen_draft_fixtures.py`: byte for byte.
#[test]
fn scaled_decodes_equal_pillow_draft() {
    let draft = dir().with_file_name("jpeg_draft");
    let manifest = std::fs::read_to_string(draft.join("manifest.txt")).unwrap();
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for line in manifest.lines() {
        let [name, denom, w, h] = &line.split_whitespace().collect::<Vec<_>>()[..] else {
            continue;
        };
        let denom: usize = denom.parse().unwrap();
        let bytes = std::fs::read(dir().join(name)).unwrap();
        let ours = decode_scaled(&bytes, LIMITS, denom)
            .unwrap_or_else(|e| panic!("{name} 1/{denom}: {e}"))
            .into_rgb8();
        let png = draft.join(format!("{}_d{denom}.png", name.trim_end_matches(".jpg")));
        let theirs = load_image(&png).unwrap();
        assert_eq!(
            (ours.width().to_string(), ours.height().to_string()),
            (w.to_string(), h.to_string()),
            "{name} 1/{denom}"
        );
        let differing = ours
            .as_raw()
            .iter()
            .zip(theirs.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        if differing > 0 {
            mismatches.push(format!("{name} 1/{denom}: {differing} values differ"));
        }
        checked += 1;
    }
    eprintln!("{checked} reduced-scale decodes compared with Pillow's draft()");
    assert!(checked >= 100, "only {checked} cases");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_fixture_decodes_exactly_as_pillow() {
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for line in manifest() {
        let [name, kind] = &line[..] else { continue };
        let bytes = std::fs::read(dir().join(name)).unwrap();
        let result = decode(&bytes, LIMITS);
        if kind == "unsupported" {
            assert!(
                matches!(result, Err(JpegError::Unsupported(_))),
                "{name}: expected Unsupported, got {:?}",
                result.map(|i| (i.width, i.height))
            );
            // decode_image hands it to the image crate, which cannot decode arithmetic coding
            // either: an error that names the file.
            if let Err(e) = decode_image(&bytes, Path::new(name)) {
                assert!(e.to_string().contains(name.as_str()), "{e}");
            }
            continue;
        }
        let ours = result.unwrap_or_else(|e| panic!("{name}: {e}")).into_rgb8();
        let png = dir().join(name.replace(".jpg", ".png"));
        let theirs = load_image(&png).unwrap();
        assert_eq!(ours.dimensions(), theirs.dimensions(), "{name}");
        let max = ours
            .as_raw()
            .iter()
            .zip(theirs.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        let differing = ours
            .as_raw()
            .iter()
            .zip(theirs.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        if differing > 0 {
            mismatches.push(format!("{name}: {differing} values differ, by up to {max}"));
        }
        // The public entry point decodes JPEGs with the same decoder.
        assert_eq!(
            decode_image(&bytes, Path::new(name)).unwrap(),
            ours,
            "{name}"
        );
        checked += 1;
    }
    eprintln!("{checked} fixtures compared with Pillow");
    assert!(checked >= 50, "only {checked} fixtures");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn photos_decode_exactly_as_pillow() {
    let photos: Vec<_> = manifest().into_iter().filter(|l| l[0] == "photo").collect();
    assert_eq!(photos.len(), 2);
    for p in photos {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/photos")
            .join(&p[1]);
        let img = load_image(&path).unwrap();
        let sums: Vec<u64> = (0..3)
            .map(|c| img.pixels().map(|px| u64::from(px[c])).sum())
            .collect();
        let got = format!(
            "{} {} {:016x} {} {} {}",
            img.width(),
            img.height(),
            fnv1a64(img.as_raw()),
            sums[0],
            sums[1],
            sums[2]
        );
        assert_eq!(got, p[2..].join(" "), "{}: ours vs Pillow's", p[1]);
    }
}
