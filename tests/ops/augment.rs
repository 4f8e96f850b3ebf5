//! GPU augmentation (`shaders/augment.wgsl`) against its oracle, the CPU path
//! (`Augment::apply`): the same loader batches, made once for each path from the same seeds.

use std::sync::Arc;

use alexnet_wgpu::data::{
    Augment, AugmentOn, Batch, ColorDraws, ColorJitter, Dataset, GpuSample, Loader, LoaderConfig,
    Placement,
};
use alexnet_wgpu::error::Result;
use alexnet_wgpu::ops::augment::GpuAugment;
use alexnet_wgpu::runtime::Tensor;
use image::RgbImage;

use crate::common::{gpu, Rng};

/// Noise images of assorted sizes: landscape, portrait, smaller than the crop (upscaled, and
/// for the centre crop padded), and one too large for the GPU's slot (resized and cropped on
/// the CPU instead).
struct Assorted(Vec<RgbImage>, Vec<String>);

impl Assorted {
    fn new() -> Self {
        let mut rng = Rng::new(5);
        let sizes = [
            (21, 15),
            (15, 21),
            (30, 21),
            (60, 45),
            (16, 16),
            (9, 7),
            (33, 20),
        ];
        let images = sizes
            .iter()
            .map(|&(w, h)| {
                let data = (0..w * h * 3).map(|_| rng.below(256) as u8).collect();
                RgbImage::from_raw(w, h, data).unwrap()
            })
            .collect();
        Assorted(images, vec!["a".into(), "b".into()])
    }
}

impl Dataset for Assorted {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn classes(&self) -> &[String] {
        &self.1
    }
    fn label(&self, i: usize) -> usize {
        i % 2
    }
    fn load(&self, i: usize) -> Result<RgbImage> {
        Ok(self.0[i].clone())
    }
    fn describe(&self, i: usize) -> String {
        format!("assorted #{i}")
    }
}

/// Every batch of an epoch of `ds`, made by a loader with augmentation on `on`.
fn batches(ds: &Arc<dyn Dataset>, augment: &Augment, batch: usize, on: AugmentOn) -> Vec<Batch> {
    let config = LoaderConfig {
        workers: 1,
        seed: 42,
        augment_on: on,
        ..LoaderConfig::new(batch, augment.clone())
    };
    let mut loader = Loader::new(ds.clone(), config, 3, 0).unwrap();
    std::iter::from_fn(|| loader.next_batch())
        .map(|b| b.unwrap())
        .collect()
}

/// Runs the GPU path on every GPU-mode batch and compares it with the CPU-mode batch: the
/// largest difference, after checking that padding images are zeros.
fn max_difference(augment: &Augment, batch: usize) -> f64 {
    let gpu = gpu();
    let ds: Arc<dyn Dataset> = Arc::new(Assorted::new());
    let cpu = batches(&ds, augment, batch, AugmentOn::Cpu);
    let on_gpu = batches(&ds, augment, batch, AugmentOn::Gpu);
    assert_eq!(cpu.len(), on_gpu.len());
    let s = augment.image_size;
    let x = Tensor::zeros(gpu, "x", &[batch, 3, s, s]).unwrap();
    let mut gpu_augment = GpuAugment::new(gpu, augment, &x).unwrap();
    let mut worst = 0f64;
    for (c, g) in cpu.iter().zip(&on_gpu) {
        assert_eq!((c.labels.clone(), c.len), (g.labels.clone(), g.len));
        assert!(g.images.is_empty() && c.gpu.is_empty() && g.gpu.len() == g.len);
        // Stale values from the previous batch must not survive in the padding.
        x.write_f32(gpu, &vec![f32::NAN; x.numel()]).unwrap();
        gpu_augment.upload(gpu, &g.gpu).unwrap();
        gpu_augment.program().run(gpu).unwrap();
        let got = x.read_f32(gpu).unwrap();
        let (used, padding) = got.split_at(c.images.len());
        assert!(padding.iter().all(|&v| v == 0.0), "padding is not zero");
        for (i, (a, b)) in used.iter().zip(&c.images).enumerate() {
            let d = f64::from((a - b).abs());
            assert!(d <= 1e-6, "batch {} element {i}: gpu {a} cpu {b}", c.index);
            worst = worst.max(d);
        }
    }
    worst
}

#[test]
fn gpu_augmentation_gives_the_cpu_batches() {
    let jitter = ColorJitter {
        brightness: 0.4,
        contrast: 0.4,
        saturation: 0.4,
    };
    // image_size 15 makes crops of 675 bytes (not whole u32 words).
    let cases = [
        ("paper: crop, flip, lighting", Augment::imagenet(16)),
        (
            "with ColorJitter 0.4",
            Augment {
                color_jitter: Some(jitter),
                ..Augment::imagenet(15)
            },
        ),
        ("evaluation: centre crop", Augment::imagenet(16).eval()),
    ];
    for (what, augment) in cases {
        // The 60x45 image exceeds the slot (a 2·resize square): the CPU crops it.
        assert!(augment.gpu_resizes(33, 20) && !augment.gpu_resizes(60, 45));
        // 7 images in batches of 3: the last batch is short (padding).
        let worst = max_difference(&augment, 3);
        eprintln!("{what}: largest |gpu - cpu| = {worst:e}");
    }
}

#[test]
fn upload_refuses_a_batch_that_does_not_fit() {
    let gpu = gpu();
    let augment = Augment::imagenet(8);
    let x = Tensor::zeros(gpu, "x", &[2, 3, 8, 8]).unwrap();
    let mut g = GpuAugment::new(gpu, &augment, &x).unwrap();
    let sample = |w: usize, h: usize, bytes: usize| GpuSample {
        pixels: vec![0; bytes],
        width: w,
        height: h,
        placement: Placement {
            resized: (9, 9),
            left: 0,
            top: 0,
        },
        draws: ColorDraws::NONE,
    };
    let e = g
        .upload(gpu, &vec![sample(8, 8, 192); 3])
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most 2"), "{e}");
    let e = g.upload(gpu, &[sample(8, 8, 100)]).unwrap_err().to_string();
    assert!(e.contains("expected 192"), "{e}");
    // Larger than the slot (the loader resizes such images on the CPU).
    let e = g
        .upload(gpu, &[sample(40, 40, 4800)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most"), "{e}");
    let wrong = Tensor::zeros(gpu, "x", &[2, 3, 9, 9]).unwrap();
    assert!(GpuAugment::new(gpu, &augment, &wrong).is_err());
}
