//! Measures `--decode fast` against exact decoding on a folder of JPEGs: decode + Resize(R)
//! time per image for both, and how far the fast path's evaluation crop (Resize(R),
//! CenterCrop(S), u8) is from the exact one: PSNR and the largest difference in levels.
//!
//! The fast path's pixels equal Pillow's `Image.draft()` decodes (tests/jpeg.rs), and the
//! resize is Pillow's, so this is also what torchvision gives after `draft()`.
//!
//! ```sh
//! python3 tools/loader_bench.py --make /tmp/large --scale 4   # 1600x1200..2000x1600 JPEGs
//! cargo run --release --example fast_decode -- /tmp/large [IMAGE_SIZE]
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use alexnet_wgpu::data::dataset::{decode_image, decode_image_draft};
use alexnet_wgpu::data::transforms::SampleRng;
use alexnet_wgpu::data::Augment;
use anyhow::{bail, Context, Result};

fn jpegs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            jpegs(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("jpg"))
        {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        bail!("usage: fast_decode DIR [IMAGE_SIZE]");
    };
    let size: usize = args.next().map_or(Ok(224), |s| s.parse())?;
    let augment = Augment::imagenet(size).eval();
    let mut files = Vec::new();
    jpegs(Path::new(&dir), &mut files)?;
    files.sort();
    let (mut exact_s, mut fast_s, mut sq, mut n, mut max) = (0.0, 0.0, 0.0, 0usize, 0u8);
    let mut scaled = 0;
    for path in &files {
        let bytes = std::fs::read(path)?;
        let t0 = Instant::now();
        let exact = decode_image(&bytes, path)?;
        let (exact_crop, _) = augment.crop(&exact, &mut SampleRng::new(0, 0, 0));
        let t1 = Instant::now();
        let fast = decode_image_draft(&bytes, path, Some(augment.resize))?;
        let (fast_crop, _) = augment.crop(&fast, &mut SampleRng::new(0, 0, 0));
        let t2 = Instant::now();
        exact_s += (t1 - t0).as_secs_f64();
        fast_s += (t2 - t1).as_secs_f64();
        scaled += usize::from(fast.width() < exact.width());
        for (a, b) in exact_crop.as_raw().iter().zip(fast_crop.as_raw()) {
            let d = a.abs_diff(*b);
            max = max.max(d);
            sq += f64::from(d) * f64::from(d);
            n += 1;
        }
    }
    if n == 0 {
        bail!("no .jpg files under {dir}");
    }
    let psnr = 10.0 * (255.0f64 * 255.0 / (sq / n as f64)).log10();
    let k = files.len() as f64;
    println!(
        "{} JPEGs ({} decoded at reduced scale), Resize({}) + CenterCrop({size}):",
        files.len(),
        scaled,
        augment.resize
    );
    println!(
        "  exact: {:.2} ms/image ({:.0} images/s on one core)",
        1e3 * exact_s / k,
        k / exact_s
    );
    println!(
        "  fast:  {:.2} ms/image ({:.0} images/s on one core), {:.2}x",
        1e3 * fast_s / k,
        k / fast_s,
        exact_s / fast_s
    );
    println!("  fast vs exact crop: PSNR {psnr:.1} dB, largest difference {max} levels");
    Ok(())
}
