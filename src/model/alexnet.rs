//! AlexNet: the seed's topology (Krizhevsky et al. 2012, one-GPU form with groups = 2 where
//! the paper split across two GPUs) and torchvision's variant, with configurable widths.

use crate::error::{Error, Result};
use crate::model::layers::{Layer, LayerKind};
use crate::ops::conv2d::Conv2dConfig;
use crate::ops::lrn::LrnConfig;
use crate::ops::max_pool::MaxPoolConfig;
use crate::runtime::{Gpu, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// The paper's: 96/256/384/384/256 channels, LRN after conv1 and conv2, groups 2 on
    /// conv2, conv4 and conv5.
    Original,
    /// torchvision's: 64/192/384/256/256 channels, no LRN, no groups; conv1 is 11×11/4 pad 2
    /// as in the original. Pretrained ImageNet weights exist for this one.
    TorchVision,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlexNetConfig {
    pub arch: Arch,
    /// Output channels of conv1..conv5.
    pub channels: [usize; 5],
    /// Width of the two hidden fully connected layers.
    pub fc_width: usize,
    pub classes: usize,
    pub dropout: f32,
    pub lrn: LrnConfig,
}

impl AlexNetConfig {
    /// The seed's AlexNet: 60,965,224 parameters for 1000 classes.
    pub fn original(classes: usize) -> Self {
        Self {
            arch: Arch::Original,
            channels: [96, 256, 384, 384, 256],
            fc_width: 4096,
            classes,
            dropout: 0.5,
            lrn: LrnConfig::default(),
        }
    }

    /// torchvision's `alexnet()`: 61,100,840 parameters for 1000 classes.
    pub fn torchvision(classes: usize) -> Self {
        Self {
            arch: Arch::TorchVision,
            channels: [64, 192, 384, 256, 256],
            ..Self::original(classes)
        }
    }

    /// The full-width channels of this architecture (to report a width multiplier).
    pub fn arch_default_channels(&self) -> [usize; 5] {
        match self.arch {
            Arch::Original => Self::original(self.classes).channels,
            Arch::TorchVision => Self::torchvision(self.classes).channels,
        }
    }

    /// The same architecture with every convolution's channels and the hidden FC width
    /// scaled by `width` (at least 2 channels, even where groups = 2), for small machines.
    pub fn scaled(mut self, width: f64) -> Self {
        let scale = |c: usize| (((c as f64 * width) / 2.0).round() as usize * 2).max(2);
        self.channels = self.channels.map(scale);
        self.fc_width = scale(self.fc_width);
        self
    }

    /// The layer list, named as PyTorch's `features`, `avgpool`, `classifier`.
    pub fn layers(&self) -> Result<Vec<Layer>> {
        let [c1, c2, c3, c4, c5] = self.channels;
        let original = self.arch == Arch::Original;
        let groups = if original { 2 } else { 1 };
        let conv = |in_channels, out_channels, kernel, stride, padding, groups| {
            LayerKind::Conv(Conv2dConfig {
                in_channels,
                out_channels,
                kernel,
                stride,
                padding,
                groups,
            })
        };
        let pool = LayerKind::MaxPool(MaxPoolConfig::ALEXNET);
        let lrn = LayerKind::Lrn(self.lrn);
        let mut features = vec![conv(3, c1, 11, 4, 2, 1), LayerKind::Relu];
        if original {
            features.push(lrn.clone());
        }
        features.extend([pool.clone(), conv(c1, c2, 5, 1, 2, groups), LayerKind::Relu]);
        if original {
            features.push(lrn);
        }
        features.extend([
            pool.clone(),
            conv(c2, c3, 3, 1, 1, 1),
            LayerKind::Relu,
            conv(c3, c4, 3, 1, 1, groups),
            LayerKind::Relu,
            conv(c4, c5, 3, 1, 1, groups),
            LayerKind::Relu,
            pool,
        ]);
        let fc = |in_features, out_features| LayerKind::Linear {
            in_features,
            out_features,
        };
        let dropout = LayerKind::Dropout { p: self.dropout };
        let classifier = [
            dropout.clone(),
            fc(c5 * 36, self.fc_width),
            LayerKind::Relu,
            dropout,
            fc(self.fc_width, self.fc_width),
            LayerKind::Relu,
            fc(self.fc_width, self.classes),
        ];
        let named = |prefix: &str, kinds: Vec<LayerKind>| {
            kinds
                .into_iter()
                .enumerate()
                .map(|(i, kind)| Layer {
                    name: format!("{prefix}.{i}"),
                    kind,
                })
                .collect::<Vec<_>>()
        };
        let mut layers = named("features", features);
        layers.push(Layer {
            name: "avgpool".into(),
            kind: LayerKind::AdaptiveAvgPool { out_h: 6, out_w: 6 },
        });
        layers.push(Layer {
            name: "flatten".into(),
            kind: LayerKind::Flatten,
        });
        layers.extend(named("classifier", classifier.to_vec()));
        for layer in &layers {
            if let LayerKind::Conv(cfg) = &layer.kind {
                cfg.validate()?;
            }
        }
        if self.classes == 0 {
            return Err(Error::Config(
                "the number of classes must be at least 1".into(),
            ));
        }
        Ok(layers)
    }
}

/// A parameter and its gradient, on the GPU. Optimizer state lives with the optimizer.
pub struct Param {
    pub name: String,
    pub value: Tensor,
    pub grad: Tensor,
}

pub struct AlexNet {
    pub config: AlexNetConfig,
    pub layers: Vec<Layer>,
    pub params: Vec<Param>,
}

impl AlexNet {
    /// Allocates the parameters (zero) and their gradients.
    pub fn new(gpu: &Gpu, config: AlexNetConfig) -> Result<Self> {
        let layers = config.layers()?;
        let mut params = Vec::new();
        for layer in &layers {
            for (name, shape) in layer.parameter_shapes() {
                params.push(Param {
                    value: Tensor::zeros(gpu, &name, &shape)?,
                    grad: Tensor::zeros(gpu, &format!("{name}.grad"), &shape)?,
                    name,
                });
            }
        }
        Ok(Self {
            config,
            layers,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Result<&Param> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::Config(format!("the model has no parameter named '{name}'")))
    }

    /// Writes one parameter's values, checking the name and the shape.
    pub fn set_parameter(
        &self,
        gpu: &Gpu,
        name: &str,
        shape: &[usize],
        data: &[f32],
    ) -> Result<()> {
        let param = self.param(name)?;
        if param.value.shape() != shape {
            return Err(Error::Shape {
                op: "set_parameter",
                what: format!(
                    "parameter '{name}' has shape {:?} in the model, {shape:?} given",
                    param.value.shape()
                ),
            });
        }
        param.value.write_f32(gpu, data)
    }

    /// Total number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.params.iter().map(|p| p.value.numel()).sum()
    }
}
