//! Bad datasets: empty folders, classes without images, train and validation classes that
//! differ, and CIFAR and IDX files of the wrong length or with labels out of range.

use std::path::PathBuf;

use alexnet_wgpu::data::{Cifar10, Cifar100, Cifar100Labels, Dataset, Idx, ImageFolder};

use crate::support::{assert_mentions, err_text, noise, tmpdir};

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
