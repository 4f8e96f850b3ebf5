//! The image-folder scanner on trees the input describes. Each 3-byte instruction
//! `(kind, a, b)` adds, under folder `a % 4` of depth `b % 3`: a file with an image or other
//! extension holding the next `b` bytes of the input, an empty folder, or a symbolic link
//! back to the root (a cycle). The scan must return a dataset or an error, and every listed
//! sample must load or fail with an error, never panic or loop.
#![no_main]

use std::path::{Path, PathBuf};

use alexnet_wgpu::data::{Dataset, ImageFolder};
use libfuzzer_sys::fuzz_target;

fn root() -> PathBuf {
    let d = std::env::temp_dir().join(format!("alexnet-fuzz-folder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn folder(root: &Path, a: u8, b: u8) -> PathBuf {
    let mut p = root.to_path_buf();
    for level in 0..=(b % 3) {
        p = p.join(format!("c{}{level}", a % 4));
    }
    p
}

fuzz_target!(|data: &[u8]| {
    let root = root();
    let mut rest = data;
    let mut n = 0;
    while let [kind, a, b, tail @ ..] = rest {
        let dir = folder(&root, *a, *b);
        std::fs::create_dir_all(&dir).unwrap();
        let take = usize::from(*b).min(tail.len());
        match kind % 4 {
            0 | 1 => {
                let ext = ["png", "JPG", "jpeg", "txt", "bmp", ""][usize::from(*a) % 6];
                std::fs::write(dir.join(format!("f{n}.{ext}")), &tail[..take]).unwrap();
            }
            2 => std::fs::create_dir_all(dir.join(format!("empty{n}"))).unwrap(),
            _ => {
                #[cfg(unix)]
                let _ = std::os::unix::fs::symlink(&root, dir.join(format!("loop{n}")));
            }
        }
        rest = &tail[take..];
        n += 1;
    }
    if let Ok(ds) = ImageFolder::open(&root) {
        for i in 0..ds.len() {
            assert!(ds.label(i) < ds.classes().len());
            let _ = ds.load(i);
        }
    }
});
