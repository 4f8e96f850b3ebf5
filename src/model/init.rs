//! Parameter initialisation, seedable and reproducible: PyTorch's defaults or the paper's.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::alexnet::AlexNet;
use crate::model::layers::LayerKind;
use crate::runtime::Gpu;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// `torch.nn.Conv2d` / `Linear` defaults: weights and biases U(−1/√fan_in, 1/√fan_in)
    /// (kaiming_uniform with a = √5).
    PyTorch,
    /// He et al. 2015 (`kaiming_normal_`, fan-in, ReLU gain): weights N(0, 2/fan_in), biases
    /// 0. Keeps activations from shrinking layer by layer, so training starts at once; the
    /// default for the embedded demo.
    Kaiming,
    /// Krizhevsky et al. 2012: weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and the
    /// hidden fully connected layers (to give ReLUs positive inputs early), 0 elsewhere.
    Paper,
}

/// A small counter-based generator: splitmix64, with Box–Muller for normals.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

impl AlexNet {
    /// Initialises every parameter from `seed`; each tensor draws from its own stream, so
    /// the result does not depend on the order parameters are visited.
    pub fn initialize(&self, gpu: &Gpu, init: Init, seed: u64) -> Result<()> {
        let mut conv_index = 0;
        let mut linear_index = 0;
        let linear_count = self
            .layers
            .iter()
            .filter(|l| matches!(l.kind, LayerKind::Linear { .. }))
            .count();
        for layer in &self.layers {
            if let LayerKind::BatchNorm { channels, .. } = layer.kind {
                // PyTorch's BatchNorm init, whatever the scheme: the identity transform.
                self.param(&format!("{}.weight", layer.name))?
                    .value
                    .write_f32(gpu, &vec![1.0; channels])?;
                self.param(&format!("{}.bias", layer.name))?
                    .value
                    .write_f32(gpu, &vec![0.0; channels])?;
                continue;
            }
            let paper_bias = match layer.kind {
                LayerKind::Conv(_) => {
                    conv_index += 1;
                    [2, 4, 5].contains(&conv_index)
                }
                LayerKind::Linear { .. } => {
                    linear_index += 1;
                    linear_index < linear_count
                }
                _ => continue,
            };
            let weight = self.param(&format!("{}.weight", layer.name))?;
            let bias = self.param(&format!("{}.bias", layer.name))?;
            let fan_in: usize = weight.value.shape()[1..].iter().product();
            let bound = 1.0 / (fan_in as f64).sqrt();
            let stream = |name: &str| SplitMix::new(seed ^ fnv1a(name));
            let (w, b): (Vec<f32>, Vec<f32>) = match init {
                Init::PyTorch => {
                    let mut rw = stream(&weight.name);
                    let mut rb = stream(&bias.name);
                    (
                        (0..weight.value.numel())
                            .map(|_| ((rw.uniform() * 2.0 - 1.0) * bound) as f32)
                            .collect(),
                        (0..bias.value.numel())
                            .map(|_| ((rb.uniform() * 2.0 - 1.0) * bound) as f32)
                            .collect(),
                    )
                }
                Init::Kaiming => {
                    let mut rw = stream(&weight.name);
                    let std = (2.0 / fan_in as f64).sqrt();
                    (
                        (0..weight.value.numel())
                            .map(|_| (rw.normal() * std) as f32)
                            .collect(),
                        vec![0.0; bias.value.numel()],
                    )
                }
                Init::Paper => {
                    let mut rw = stream(&weight.name);
                    let fill = if paper_bias { 1.0 } else { 0.0 };
                    (
                        (0..weight.value.numel())
                            .map(|_| (rw.normal() * 0.01) as f32)
                            .collect(),
                        vec![fill; bias.value.numel()],
                    )
                }
            };
            weight.value.write_f32(gpu, &w)?;
            bias.value.write_f32(gpu, &b)?;
        }
        Ok(())
    }
}

/// FNV-1a, to derive a parameter's stream from its name.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
