//! The CIFAR-10 and IDX (MNIST) readers on arbitrary files. The first byte picks the reader;
//! for IDX the next two give where the rest splits into the images and the labels file.
//! Every sample of a dataset that opens is loaded (up to 64), so labels and pixel offsets
//! are exercised too.
#![no_main]

use std::path::PathBuf;

use alexnet_wgpu::data::{Cifar10, Dataset, Idx};
use libfuzzer_sys::fuzz_target;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("alexnet-fuzz-cifar-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn load_some(ds: &dyn Dataset) {
    for i in 0..ds.len().min(64) {
        assert!(ds.label(i) < ds.classes().len());
        let _ = ds.load(i);
        let _ = ds.describe(i);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let d = dir();
    if which % 2 == 0 {
        std::fs::write(d.join("data_batch_1.bin"), rest).unwrap();
        if let Ok(ds) = Cifar10::open(&d, true) {
            load_some(&ds);
        }
    } else {
        if rest.len() < 2 {
            return;
        }
        let at = (usize::from(u16::from_le_bytes([rest[0], rest[1]]))).min(rest.len() - 2);
        let (images, labels) = rest[2..].split_at(at);
        std::fs::write(d.join("images"), images).unwrap();
        std::fs::write(d.join("labels"), labels).unwrap();
        if let Ok(ds) = Idx::open(&d.join("images"), &d.join("labels")) {
            load_some(&ds);
        }
    }
});
