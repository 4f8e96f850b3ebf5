//! The seed AlexNet (and torchvision's variant) in Burn's modules, as a Burn user would write
//! it, and its shape at a width: what `AlexNetConfig::original(classes).scaled(width)` of
//! ours describes.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Linear, LinearConfig, LocalResponseNorm, LocalResponseNormConfig,
    PaddingConfig2d,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arch {
    Original,
    TorchVision,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Original => "original",
            Arch::TorchVision => "torchvision",
        }
    }

    pub fn channels(self) -> [usize; 5] {
        match self {
            Arch::Original => [96, 256, 384, 384, 256],
            Arch::TorchVision => [64, 192, 384, 256, 256],
        }
    }
}

/// `AlexNetConfig::scaled`: every channel count and the hidden FC width times `width`,
/// rounded to an even number, at least 2.
pub fn scale(c: usize, width: f64) -> usize {
    (((c as f64 * width) / 2.0).round() as usize * 2).max(2)
}

/// The model's shape: what `AlexNetConfig::original(classes).scaled(width)` describes.
#[derive(Clone, Debug)]
pub struct Shape {
    pub arch: Arch,
    pub channels: [usize; 5],
    pub fc_width: usize,
    pub classes: usize,
}

impl Shape {
    pub fn new(arch: Arch, width: f64, classes: usize) -> Self {
        Shape {
            arch,
            channels: arch.channels().map(|c| scale(c, width)),
            fc_width: scale(4096, width),
            classes,
        }
    }

    /// `alexnet bench`'s model name, e.g. `original x0.250`.
    pub fn name(&self) -> String {
        format!(
            "{} x{:.3}",
            self.arch.name(),
            self.channels[0] as f64 / self.arch.channels()[0] as f64
        )
    }

    /// Multiply-adds per image of the convolutions and linear layers (as our summary counts).
    pub fn multiply_adds(&self, image: usize) -> u64 {
        let [c1, c2, c3, c4, c5] = self.channels;
        let g = if self.arch == Arch::Original { 2 } else { 1 };
        let conv = |h: usize, k: usize, s: usize, p: usize| (h + 2 * p - k) / s + 1;
        let pool = |h: usize| (h - 3) / 2 + 1;
        let h1 = conv(image, 11, 4, 2);
        let h2 = pool(h1);
        let h3 = pool(h2);
        let h4 = pool(h3);
        let _ = h4;
        let macs = [
            h1 * h1 * c1 * 3 * 121,
            h2 * h2 * c2 * (c1 / g) * 25,
            h3 * h3 * c3 * c2 * 9,
            h3 * h3 * c4 * (c3 / g) * 9,
            h3 * h3 * c5 * (c4 / g) * 9,
            c5 * 36 * self.fc_width,
            self.fc_width * self.fc_width,
            self.fc_width * self.classes,
        ];
        macs.iter().map(|&m| m as u64).sum()
    }

    /// The largest activation of one image, in floats (conv1's output).
    pub fn largest_activation(&self, image: usize) -> usize {
        let h1 = (image + 4 - 11) / 4 + 1;
        h1 * h1 * self.channels[0]
    }
}

#[derive(Module, Debug)]
pub struct AlexNet {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    conv4: Conv2d,
    conv5: Conv2d,
    lrn: Option<LocalResponseNorm>,
    pool: MaxPool2d,
    avgpool: AdaptiveAvgPool2d,
    dropout: Dropout,
    /// FC6, split along its outputs so that each part's weight fits one storage binding.
    fc6: Vec<Linear>,
    fc7: Linear,
    fc8: Linear,
}

impl AlexNet {
    pub fn new(shape: &Shape, fc6_parts: usize, device: &Device) -> Self {
        let [c1, c2, c3, c4, c5] = shape.channels;
        let g = if shape.arch == Arch::Original { 2 } else { 1 };
        let conv = |cin: usize, cout: usize, k: usize, s: usize, p: usize, groups: usize| {
            Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_groups(groups)
                .init(device)
        };
        let fc6_in = c5 * 36;
        let fc6_parts = fc6_parts.min(shape.fc_width);
        let fc6 = (0..fc6_parts)
            .map(|i| {
                let lo = shape.fc_width * i / fc6_parts;
                let hi = shape.fc_width * (i + 1) / fc6_parts;
                LinearConfig::new(fc6_in, hi - lo).init(device)
            })
            .collect();
        AlexNet {
            conv1: conv(3, c1, 11, 4, 2, 1),
            conv2: conv(c1, c2, 5, 1, 2, g),
            conv3: conv(c2, c3, 3, 1, 1, 1),
            conv4: conv(c3, c4, 3, 1, 1, g),
            conv5: conv(c4, c5, 3, 1, 1, g),
            // PyTorch's LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2): alpha / size.
            lrn: (shape.arch == Arch::Original).then(|| {
                LocalResponseNormConfig::new(5)
                    .with_alpha(1e-4)
                    .with_beta(0.75)
                    .with_k(2.0)
                    .init()
            }),
            pool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init(),
            avgpool: AdaptiveAvgPool2dConfig::new([6, 6]).init(),
            dropout: DropoutConfig::new(0.5).init(),
            fc6,
            fc7: LinearConfig::new(shape.fc_width, shape.fc_width).init(device),
            fc8: LinearConfig::new(shape.fc_width, shape.classes).init(device),
        }
    }

    pub fn norm(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.lrn {
            Some(lrn) => lrn.forward(x),
            None => x,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(self.norm(relu(self.conv1.forward(x))));
        let x = self.pool.forward(self.norm(relu(self.conv2.forward(x))));
        let x = relu(self.conv3.forward(x));
        let x = relu(self.conv4.forward(x));
        let x = self.pool.forward(relu(self.conv5.forward(x)));
        let x: Tensor<2> = self.avgpool.forward(x).flatten(1, 3);
        let x = self.dropout.forward(x);
        let x = if self.fc6.len() == 1 {
            self.fc6[0].forward(x)
        } else {
            Tensor::cat(self.fc6.iter().map(|l| l.forward(x.clone())).collect(), 1)
        };
        let x = self.dropout.forward(relu(x));
        let x = relu(self.fc7.forward(x));
        self.fc8.forward(x)
    }
}
