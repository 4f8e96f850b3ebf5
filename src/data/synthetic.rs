//! The embedded default dataset: coloured shapes on textured backgrounds, generated on the
//! fly, so training works with no download.
//!
//! The class is the *shape* (circle, square, triangle, …). Position, scale, rotation (where
//! the shape allows it without turning into another class), the shape's colour and the
//! background (noise, stripes, gradient or checker in two random colours) are all random and
//! independent of the class, so colour is no shortcut. Image `index` of split `split` is a
//! pure function of `(seed, split, index)`: train (split 0) and validation (split 1) differ
//! and both are reproducible.

use image::RgbImage;

use super::dataset::Dataset;
use super::transforms::SampleRng;
use crate::error::{Error, Result};

/// Class names, index = label.
pub const SHAPES: [&str; 10] = [
    "circle",
    "square",
    "triangle",
    "cross",
    "ring",
    "horizontal_bar",
    "vertical_bar",
    "diamond",
    "star",
    "two_dots",
];

/// Smallest image side that still shows the shapes.
pub const MIN_SIZE: usize = 8;

/// A generated dataset of `count` images of `size × size` pixels; label = `index % 10` (or
/// `index % shapes`, for a subset of the shapes).
#[derive(Debug, Clone)]
pub struct Synthetic {
    count: usize,
    size: usize,
    seed: u64,
    split: u64,
    /// The shape (index into [`SHAPES`]) of each label.
    shapes: Vec<usize>,
    classes: Vec<String>,
}

impl Synthetic {
    /// `count` images of `size × size` for split `split` (0 = train, 1 = validation, …).
    pub fn new(count: usize, size: usize, seed: u64, split: u64) -> Synthetic {
        Synthetic {
            count,
            size,
            seed,
            split,
            shapes: (0..SHAPES.len()).collect(),
            classes: SHAPES.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Only the shapes `shapes` (indices into [`SHAPES`]), labelled 0.. in that order: a
    /// class split, e.g. to pretrain on some shapes and fine-tune on the others.
    ///
    /// # Errors
    /// [`Error::Config`] when `shapes` is empty or names a shape that does not exist.
    pub fn with_shapes(
        count: usize,
        size: usize,
        seed: u64,
        split: u64,
        shapes: &[usize],
    ) -> Result<Synthetic> {
        if shapes.is_empty() || shapes.iter().any(|&s| s >= SHAPES.len()) {
            return Err(Error::Config(format!(
                "synthetic shapes {shapes:?}: expected some of 0..{}",
                SHAPES.len() - 1
            )));
        }
        Ok(Synthetic {
            shapes: shapes.to_vec(),
            classes: shapes.iter().map(|&s| SHAPES[s].to_string()).collect(),
            ..Synthetic::new(count, size, seed, split)
        })
    }

    /// Side of the generated images.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Renders image `index`.
    fn render(&self, index: usize) -> RgbImage {
        let n = self.size;
        let nf = n as f32;
        let label = self.shapes[index % self.shapes.len()];
        // Offset the seed so these streams never coincide with the loader's (seed, epoch,
        // position) augmentation streams.
        let mut rng = SampleRng::new(self.seed ^ 0x5EED_5EED_0000_0001, self.split, index as u64);

        let color = |rng: &mut SampleRng| -> [f32; 3] {
            [
                rng.range(0.0, 255.0),
                rng.range(0.0, 255.0),
                rng.range(0.0, 255.0),
            ]
        };
        let dist = |a: [f32; 3], b: [f32; 3]| {
            ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
        };

        // Background: two colours and a pattern that blends them with t(x, y) in [0, 1].
        let c1 = color(&mut rng);
        let c2 = color(&mut rng);
        // Shape colour: far enough from both background colours to stay visible.
        let mut fg = color(&mut rng);
        for _ in 0..64 {
            if dist(fg, c1) > 130.0 && dist(fg, c2) > 130.0 {
                break;
            }
            fg = color(&mut rng);
        }
        let pattern = rng.below(4);
        let theta = rng.range(0.0, std::f32::consts::TAU);
        let period = rng.range(nf / 16.0, nf / 4.0).max(2.0);
        let phase = rng.range(0.0, std::f32::consts::TAU);
        let cell = 1 + rng.below((n / 8).max(1));
        let grid_w = n / cell + 2;
        let grid: Vec<f32> = (0..grid_w * grid_w).map(|_| rng.uniform()).collect();
        let (ox, oy) = (rng.below(cell.max(2) * 2), rng.below(cell.max(2) * 2));
        let checker = (period as usize).max(2);
        let noise_amp = rng.range(4.0, 20.0);

        // The shape: centre, half-extent, rotation.
        let r = nf * rng.range(0.22, 0.34);
        let cx = r + rng.uniform() * (nf - 2.0 * r);
        let cy = r + rng.uniform() * (nf - 2.0 * r);
        let max_rot = match SHAPES[label] {
            // These would turn into another class when rotated far (square ↔ diamond,
            // horizontal ↔ vertical bar, + ↔ ×).
            "square" | "diamond" | "cross" | "horizontal_bar" | "vertical_bar" => {
                15f32.to_radians()
            }
            _ => std::f32::consts::PI,
        };
        let rot = rng.range(-max_rot, max_rot);
        let (sin, cos) = rot.sin_cos();

        let mut img = RgbImage::new(n as u32, n as u32);
        for y in 0..n {
            for x in 0..n {
                let (xf, yf) = (x as f32 + 0.5, y as f32 + 0.5);
                let t = match pattern {
                    0 => {
                        // Value noise on a grid of `cell` pixels, bilinearly interpolated.
                        let gx = (x + ox % cell) as f32 / cell as f32;
                        let gy = (y + oy % cell) as f32 / cell as f32;
                        let (ix, iy) = (gx as usize, gy as usize);
                        let (fx, fy) = (gx - ix as f32, gy - iy as f32);
                        let g = |i: usize, j: usize| {
                            grid[j.min(grid_w - 1) * grid_w + i.min(grid_w - 1)]
                        };
                        let top = g(ix, iy) * (1.0 - fx) + g(ix + 1, iy) * fx;
                        let bot = g(ix, iy + 1) * (1.0 - fx) + g(ix + 1, iy + 1) * fx;
                        top * (1.0 - fy) + bot * fy
                    }
                    1 => {
                        let d = xf * theta.cos() + yf * theta.sin();
                        0.5 + 0.5 * (std::f32::consts::TAU * d / period + phase).sin()
                    }
                    2 => {
                        let d = (xf - nf / 2.0) * theta.cos() + (yf - nf / 2.0) * theta.sin();
                        (d / (nf * 0.71) + 0.5).clamp(0.0, 1.0)
                    }
                    _ => (((x + ox) / checker + (y + oy) / checker) % 2) as f32,
                };
                let (dx, dy) = (xf - cx, yf - cy);
                let u = (dx * cos + dy * sin) / r;
                let v = (-dx * sin + dy * cos) / r;
                let base = if inside(label, u, v) {
                    fg
                } else {
                    [0, 1, 2].map(|c| c1[c] * (1.0 - t) + c2[c] * t)
                };
                let jitter = (rng.uniform() - 0.5) * 2.0 * noise_amp;
                let px = base.map(|v| (v + jitter).round().clamp(0.0, 255.0) as u8);
                img.put_pixel(x as u32, y as u32, image::Rgb(px));
            }
        }
        img
    }
}

/// Whether the point `(u, v)` (shape-local coordinates, unit half-extent, v pointing down)
/// is inside shape `label`.
fn inside(label: usize, u: f32, v: f32) -> bool {
    let r2 = u * u + v * v;
    match label {
        0 => r2 <= 1.0,
        1 => u.abs().max(v.abs()) <= 0.9,
        2 => {
            // Equilateral triangle, circumradius 1.15, apex up, centred on its centroid.
            let (u, v) = (u / 1.15, v / 1.15);
            v <= 0.5 && (v + 1.0) >= 3f32.sqrt() * u.abs()
        }
        3 => (u.abs() <= 0.3 && v.abs() <= 1.0) || (v.abs() <= 0.3 && u.abs() <= 1.0),
        4 => (0.55 * 0.55..=1.0).contains(&r2),
        5 => u.abs() <= 1.0 && v.abs() <= 0.3,
        6 => u.abs() <= 0.3 && v.abs() <= 1.0,
        7 => u.abs() + v.abs() <= 1.05,
        8 => in_star(u, v),
        _ => (u - 0.55).powi(2) + v * v <= 0.42 * 0.42 || (u + 0.55).powi(2) + v * v <= 0.42 * 0.42,
    }
}

/// A five-pointed star (outer radius 1.05, inner 0.45), even–odd rule.
fn in_star(u: f32, v: f32) -> bool {
    if u * u + v * v > 1.05 * 1.05 {
        return false;
    }
    let pts: [(f32, f32); 10] = std::array::from_fn(|i| {
        let a = -std::f32::consts::FRAC_PI_2 + i as f32 * std::f32::consts::PI / 5.0;
        let rad = if i % 2 == 0 { 1.05 } else { 0.45 };
        (rad * a.cos(), rad * a.sin())
    });
    let mut inside = false;
    let mut j = pts.len() - 1;
    for i in 0..pts.len() {
        let (xi, yi) = pts[i];
        let (xj, yj) = pts[j];
        if (yi > v) != (yj > v) && u < (xj - xi) * (v - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

impl Dataset for Synthetic {
    fn len(&self) -> usize {
        self.count
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn label(&self, index: usize) -> usize {
        index % self.shapes.len()
    }
    fn load(&self, index: usize) -> Result<RgbImage> {
        if self.size < MIN_SIZE {
            return Err(Error::Config(format!(
                "synthetic dataset image size {} is too small; expected at least {MIN_SIZE}",
                self.size
            )));
        }
        Ok(self.render(index))
    }
    fn describe(&self, index: usize) -> String {
        format!(
            "synthetic split {} #{index} ({})",
            self.split,
            self.classes[index % self.shapes.len()]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_split_dependent() {
        let a = Synthetic::new(20, 32, 1, 0);
        let b = Synthetic::new(20, 32, 1, 0);
        let v = Synthetic::new(20, 32, 1, 1);
        for i in 0..20 {
            let x = a.load(i).unwrap();
            assert_eq!((x.width(), x.height()), (32, 32));
            assert_eq!(x, b.load(i).unwrap());
            assert_ne!(x, v.load(i).unwrap());
            assert_eq!(a.label(i), i % 10);
        }
        assert_ne!(
            a.load(0).unwrap(),
            Synthetic::new(20, 32, 2, 0).load(0).unwrap()
        );
        assert!(Synthetic::new(1, 4, 0, 0).load(0).is_err());
    }

    #[test]
    fn shapes_are_large() {
        // Every class covers a reasonable part of a grid of the unit square.
        for (label, name) in SHAPES.iter().enumerate() {
            let mut hit = 0;
            for i in 0..100 {
                for j in 0..100 {
                    let (u, v) = (i as f32 / 50.0 - 1.0, j as f32 / 50.0 - 1.0);
                    hit += inside(label, u, v) as usize;
                }
            }
            assert!(hit > 1000, "{name} covers only {hit} / 10000");
        }
    }
}
