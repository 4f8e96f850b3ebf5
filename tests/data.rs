//! The data pipeline through its public API: ImageFolder on real files (including broken
//! ones), the stratified split, loader determinism and resume, the synthetic dataset, and
//! resize against Pillow.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alexnet_wgpu::data::dataset::split;
use alexnet_wgpu::data::transforms::resize_shorter;
use alexnet_wgpu::data::{
    Augment, AugmentOn, Batch, Dataset, DecodeMode, ImageFolder, Loader, LoaderConfig, OnBadSample,
    Synthetic,
};
use image::{GrayImage, ImageBuffer, Rgb, RgbImage, RgbaImage};

/// A fresh, empty temporary folder for one test.
fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("alexnet-data-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rgb(w: u32, h: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x * 13 + seed) as u8,
            (y * 29 + seed * 7) as u8,
            ((x ^ y) * 5) as u8,
        ])
    })
}

/// cat/ and dog/ with good images of several kinds plus two broken files in dog/.
fn make_folder(root: &Path) {
    let (cat, dog) = (root.join("cat"), root.join("dog"));
    std::fs::create_dir_all(cat.join("nested")).unwrap();
    std::fs::create_dir_all(&dog).unwrap();
    rgb(20, 16, 1).save(cat.join("b.png")).unwrap();
    rgb(16, 20, 2).save(cat.join("a.jpg")).unwrap();
    GrayImage::from_fn(12, 12, |x, _| image::Luma([(x * 20) as u8]))
        .save(cat.join("nested/gray.png"))
        .unwrap();
    RgbaImage::from_fn(10, 14, |_, _| image::Rgba([10, 20, 30, 0]))
        .save(dog.join("rgba.png"))
        .unwrap();
    ImageBuffer::<Rgb<u16>, Vec<u16>>::from_fn(9, 9, |_, _| Rgb([65535, 0, 32896]))
        .save(dog.join("deep.PNG"))
        .unwrap();
    std::fs::write(dog.join("empty.jpg"), b"").unwrap();
    std::fs::write(dog.join("notes.png"), b"this is not an image\n").unwrap();
    std::fs::write(dog.join("readme.txt"), b"ignored: not an image extension").unwrap();
}

fn config(batch_size: usize, on_bad_sample: OnBadSample) -> LoaderConfig {
    LoaderConfig {
        batch_size,
        shuffle: false,
        drop_last: false,
        augment: Augment {
            image_size: 8,
            resize: 10,
            ..Augment::imagenet(8)
        },
        seed: 11,
        workers: 2,
        prefetch: 2,
        on_bad_sample,
        augment_on: AugmentOn::Cpu,
        decode: DecodeMode::Exact,
    }
}

fn drain(loader: &mut Loader) -> Vec<Batch> {
    std::iter::from_fn(|| loader.next_batch())
        .map(|b| b.unwrap())
        .collect()
}

#[test]
fn image_folder_lists_like_torchvision_and_converts_to_rgb() {
    let root = tmpdir("folder");
    make_folder(&root);
    let ds = ImageFolder::open(&root).unwrap();
    assert_eq!(ds.classes(), ["cat", "dog"]);
    // Files directly in a class folder first (sorted), then sub-folders; readme.txt ignored.
    let names: Vec<String> = (0..ds.len())
        .map(|i| {
            ds.describe(i)
                .strip_prefix(root.to_str().unwrap())
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "/cat/a.jpg",
            "/cat/b.png",
            "/cat/nested/gray.png",
            "/dog/deep.PNG",
            "/dog/empty.jpg",
            "/dog/notes.png",
            "/dog/rgba.png"
        ]
    );
    assert_eq!(
        (0..ds.len()).map(|i| ds.label(i)).collect::<Vec<_>>(),
        [0, 0, 0, 1, 1, 1, 1]
    );

    assert_eq!(ds.load(1).unwrap(), rgb(20, 16, 1));
    let jpg = ds.load(0).unwrap();
    assert_eq!(jpg.dimensions(), (16, 20));
    let gray = ds.load(2).unwrap();
    assert_eq!(gray.get_pixel(3, 5).0, [60, 60, 60]);
    let deep = ds.load(3).unwrap();
    assert_eq!(deep.get_pixel(0, 0).0, [255, 0, 128]);
    let rgba = ds.load(6).unwrap();
    assert_eq!(rgba.get_pixel(0, 0).0, [10, 20, 30]); // alpha dropped, as PIL's convert("RGB")

    let e = ds.load(4).unwrap_err().to_string();
    assert!(e.contains("empty.jpg") && e.contains("empty file"), "{e}");
    let e = ds.load(5).unwrap_err().to_string();
    assert!(
        e.contains("notes.png") && e.contains("not a recognised image"),
        "{e}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn loader_skip_counts_bad_files_and_stop_names_them() {
    let root = tmpdir("bad");
    make_folder(&root);
    let ds: Arc<dyn Dataset> = Arc::new(ImageFolder::open(&root).unwrap());

    let mut skip = Loader::new(ds.clone(), config(3, OnBadSample::Skip), 0, 0).unwrap();
    let batches = drain(&mut skip);
    assert_eq!(batches.iter().map(|b| b.len).collect::<Vec<_>>(), [3, 1, 1]);
    assert_eq!(batches[1].labels, [1]);
    assert_eq!(batches[1].images.len(), 3 * 8 * 8);
    assert_eq!(skip.skipped().len(), 2);
    assert!(
        skip.skipped()[0].contains("empty.jpg"),
        "{:?}",
        skip.skipped()
    );
    assert!(
        skip.skipped()[1].contains("notes.png"),
        "{:?}",
        skip.skipped()
    );

    let mut stop = Loader::new(ds, config(3, OnBadSample::Stop), 0, 0).unwrap();
    assert_eq!(stop.next_batch().unwrap().unwrap().len, 3);
    let e = stop.next_batch().unwrap().unwrap_err().to_string();
    assert!(e.contains("empty.jpg"), "{e}");
    assert!(stop.next_batch().is_none());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn image_folder_errors_name_the_problem() {
    let root = tmpdir("errors");
    let e = ImageFolder::open(&root.join("missing"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing"), "{e}");
    std::fs::write(root.join("file"), b"x").unwrap();
    let e = ImageFolder::open(&root.join("file"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a folder"), "{e}");
    let e = ImageFolder::open(&root).unwrap_err().to_string();
    assert!(e.contains("no class sub-folders"), "{e}");
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::create_dir_all(root.join("b")).unwrap();
    rgb(4, 4, 0).save(root.join("a/x.png")).unwrap();
    std::fs::write(root.join("b/x.txt"), b"x").unwrap();
    let e = ImageFolder::open(&root).unwrap_err().to_string();
    assert!(e.contains("\"b\"") && e.contains("no image files"), "{e}");
    rgb(4, 4, 0).save(root.join("b/y.png")).unwrap();
    let train = ImageFolder::open(&root).unwrap();

    let val = tmpdir("errors-val");
    for c in ["a", "c"] {
        std::fs::create_dir_all(val.join(c)).unwrap();
        rgb(4, 4, 0).save(val.join(c).join("z.png")).unwrap();
    }
    let e = ImageFolder::with_classes(&val, train.classes())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing [\"b\"]") && e.contains("unexpected [\"c\"]"),
        "{e}"
    );
    std::fs::rename(val.join("c"), val.join("b")).unwrap();
    let v = ImageFolder::with_classes(&val, train.classes()).unwrap();
    assert_eq!(v.classes(), train.classes());
    // Labels follow the given class order.
    let reversed = vec!["b".to_string(), "a".to_string()];
    let v = ImageFolder::with_classes(&val, &reversed).unwrap();
    assert_eq!(v.label(0), 0);
    assert!(v.describe(0).contains("/b/"));
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::remove_dir_all(&val).unwrap();
}

#[test]
fn split_is_stratified() {
    let ds: Arc<dyn Dataset> = Arc::new(Synthetic::new(200, 16, 0, 0));
    let (train, val) = split(ds.clone(), 0.1, 5).unwrap();
    assert_eq!((train.len(), val.len()), (180, 20));
    for c in 0..10 {
        assert_eq!(
            (0..val.len()).filter(|&i| val.label(i) == c).count(),
            2,
            "class {c}"
        );
    }
    let (_, again) = split(ds, 0.1, 5).unwrap();
    assert_eq!(val.indices, again.indices);
}

#[test]
fn loader_is_deterministic_and_resumable() {
    let ds: Arc<dyn Dataset> = Arc::new(Synthetic::new(30, 16, 1, 0));
    let cfg = LoaderConfig {
        shuffle: true,
        augment: Augment {
            image_size: 12,
            resize: 14,
            ..Augment::imagenet(12)
        },
        workers: 2,
        ..config(4, OnBadSample::Stop)
    };
    let a = drain(&mut Loader::new(ds.clone(), cfg.clone(), 3, 0).unwrap());
    let b = drain(
        &mut Loader::new(
            ds.clone(),
            LoaderConfig {
                workers: 1,
                prefetch: 5,
                ..cfg.clone()
            },
            3,
            0,
        )
        .unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(a.len(), 8);
    assert_eq!(
        a.iter().map(|b| b.index).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    assert_eq!(a[7].len, 2);
    // Every sample exactly once per epoch.
    let mut per_class = [0; 10];
    for b in &a {
        for &l in &b.labels {
            per_class[l as usize] += 1;
        }
    }
    assert_eq!(per_class, [3; 10]);

    let resumed = drain(&mut Loader::new(ds.clone(), cfg.clone(), 3, 5).unwrap());
    assert_eq!(resumed, a[5..]);
    let other_seed = drain(
        &mut Loader::new(
            ds.clone(),
            LoaderConfig {
                seed: 12,
                ..cfg.clone()
            },
            3,
            0,
        )
        .unwrap(),
    );
    assert_ne!(other_seed, a);
    let drop_last = drain(
        &mut Loader::new(
            ds,
            LoaderConfig {
                drop_last: true,
                ..cfg
            },
            3,
            0,
        )
        .unwrap(),
    );
    assert_eq!(drop_last, a[..7]);
}

#[test]
fn synthetic_is_deterministic_balanced_and_split_dependent() {
    let train = Synthetic::new(40, 64, 7, 0);
    let val = Synthetic::new(40, 64, 7, 1);
    assert!(train.classes().len() >= 10);
    let n = train.classes().len();
    let mut counts = vec![0; n];
    for i in 0..train.len() {
        counts[train.label(i)] += 1;
    }
    assert!(counts.iter().all(|&c| c == 40 / n), "{counts:?}");
    for i in 0..n {
        let img = train.load(i).unwrap();
        assert_eq!(img.dimensions(), (64, 64));
        assert_eq!(img, Synthetic::new(40, 64, 7, 0).load(i).unwrap());
        assert_ne!(img, val.load(i).unwrap());
    }
    assert!(train.classes().iter().any(|c| c == "circle"));
}

/// Pillow's bilinear resize, bit-exact. The fixtures were made with Pillow 13.0 by:
///
/// ```python
/// import random
/// from PIL import Image
/// random.seed(1)
/// def save(name, w, h, data, size):
///     im = Image.frombytes("RGB", (w, h), bytes(data))
///     short, long = (w, h) if w <= h else (h, w)
///     new_long = int(size * long / short)          # torchvision's Resize(size)
///     ow, oh = (size, new_long) if w <= h else (new_long, size)
///     im.save(f"resize_{name}_in.png")
///     im.resize((ow, oh), Image.BILINEAR).save(f"resize_{name}_out{size}.png")
/// noise = [random.randrange(256) for _ in range(37 * 53 * 3)]
/// save("noise37x53", 37, 53, noise, 24)                       # downscale, odd sizes
/// edges = [v for y in range(30) for x in range(45)
///          for v in ((x * 255) // 44, (y * 7 + x * 3) % 256, 255 if (x // 5 + y // 5) % 2 else 0)]
/// save("edges45x30", 45, 30, edges, 67)                       # upscale, non-integer ratio
/// ```
#[test]
fn resize_matches_pillow_exactly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data");
    for (name, size) in [("noise37x53", 24), ("edges45x30", 67)] {
        let input = image::open(dir.join(format!("resize_{name}_in.png")))
            .unwrap()
            .to_rgb8();
        let want = image::open(dir.join(format!("resize_{name}_out{size}.png")))
            .unwrap()
            .to_rgb8();
        let got = resize_shorter(&input, size);
        assert_eq!(got.dimensions(), want.dimensions(), "{name}");
        let max_diff = got
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert_eq!(max_diff, 0, "{name}: max difference from Pillow");
    }
}

/// CIFAR-100's binary layout, generated small: a `cifar-100-binary/` folder with train.bin
/// and test.bin (coarse label, fine label, 1024 R, 1024 G, 1024 B per record) and the two
/// label-name files.
#[test]
fn cifar100_is_detected_with_fine_or_coarse_labels_and_names_from_its_meta_files() {
    use alexnet_wgpu::data::source::{open_eval, open_splits, Format};
    use alexnet_wgpu::data::Cifar100Labels;
    let root = tmpdir("cifar100");
    let dir = root.join("cifar-100-binary");
    std::fs::create_dir_all(&dir).unwrap();
    let record = |coarse: u8, fine: u8, r: u8| {
        let mut b = vec![coarse, fine];
        b.extend(vec![r; 1024]);
        b.extend(vec![20u8; 1024]);
        b.extend((0..1024).map(|i| (i % 256) as u8));
        b
    };
    let train: Vec<u8> = [record(3, 41, 200), record(19, 99, 10), record(0, 0, 0)].concat();
    std::fs::write(dir.join("train.bin"), &train).unwrap();
    std::fs::write(dir.join("test.bin"), record(7, 5, 1)).unwrap();
    let names =
        |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}{i}\n")).collect::<String>();
    std::fs::write(dir.join("fine_label_names.txt"), names("fine", 100)).unwrap();
    std::fs::write(dir.join("coarse_label_names.txt"), names("coarse", 20)).unwrap();

    assert_eq!(Format::detect(&root).unwrap(), Format::Cifar100);
    let fine = open_splits(&root, None, 0.1, 0, Cifar100Labels::Fine).unwrap();
    assert_eq!((fine.train.len(), fine.val.len()), (3, 1));
    assert_eq!(fine.train.classes().len(), 100);
    assert_eq!(fine.train.classes()[41], "fine41");
    let labels: Vec<usize> = (0..3).map(|i| fine.train.label(i)).collect();
    assert_eq!(labels, [41, 99, 0]);
    let image = fine.train.load(0).unwrap();
    assert_eq!(image.dimensions(), (32, 32));
    assert_eq!(image.get_pixel(5, 2).0, [200, 20, (2 * 32 + 5) as u8]);
    let coarse = open_splits(&root, None, 0.1, 0, Cifar100Labels::Coarse).unwrap();
    assert_eq!(coarse.train.classes().len(), 20);
    assert_eq!(coarse.train.classes()[19], "coarse19");
    assert_eq!(coarse.train.label(1), 19);
    assert_eq!(coarse.val.label(0), 7);
    let eval = open_eval(&root).unwrap();
    assert_eq!((eval.len(), eval.label(0)), (1, 5));
}

#[test]
fn non_ascii_paths_and_class_names_load_as_they_are_spelled() {
    // A user's photo folder on any OS: accents, CJK, spaces, in the root, classes and files.
    let root = tmpdir("фото 日本");
    for (class, file) in [("café crème", "été 1.png"), ("日本の猫", "写真.jpg")] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        rgb(12, 10, 3).save(root.join(class).join(file)).unwrap();
    }
    let ds = ImageFolder::open(&root).unwrap();
    assert_eq!(ds.classes(), ["café crème", "日本の猫"]);
    assert_eq!(ds.len(), 2);
    for i in 0..ds.len() {
        assert_eq!(ds.label(i), i);
        assert_eq!(ds.load(i).unwrap().dimensions(), (12, 10));
        assert!(
            ds.describe(i).contains(&ds.classes()[i]),
            "{}",
            ds.describe(i)
        );
    }
}
