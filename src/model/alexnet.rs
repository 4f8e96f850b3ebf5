//! AlexNet: the seed's topology (Krizhevsky et al. 2012, one-GPU form with groups = 2 where
//! the paper split across two GPUs) and torchvision's variant, with configurable widths.

use crate::error::{Error, Result};
use crate::model::layers::{Layer, LayerKind};
use crate::ops::activation::Nonlinearity;
use crate::ops::avg_pool::AvgPoolConfig;
use crate::ops::batch_norm::BatchNormConfig;
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

/// The non-linearity after every convolution and hidden fully connected layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// The paper's.
    #[default]
    Relu,
    /// `torch.nn.LeakyReLU(slope)`.
    LeakyRelu { slope: f32 },
    /// `torch.nn.ELU(alpha)`.
    Elu { alpha: f32 },
    /// `torch.nn.Sigmoid`: the saturating non-linearity the paper's ReLU replaced.
    Sigmoid,
    /// `torch.nn.Tanh`: the paper's Figure 1 compares ReLU with it.
    Tanh,
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Activation::Relu => write!(f, "ReLU"),
            Activation::LeakyRelu { slope } => write!(f, "LeakyReLU({slope})"),
            Activation::Elu { alpha } => write!(f, "ELU({alpha})"),
            Activation::Sigmoid => write!(f, "sigmoid"),
            Activation::Tanh => write!(f, "tanh"),
        }
    }
}

/// The three pooling layers of `features`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Pool {
    /// The paper's overlapping max pool, 3×3 stride 2.
    #[default]
    Overlapping,
    /// Non-overlapping max pool, 2×2 stride 2.
    Max2,
    /// Average pool 3×3 stride 2.
    Avg3,
    /// Average pool 2×2 stride 2.
    Avg2,
}

impl std::fmt::Display for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pool::Overlapping => "overlapping 3x3/2 max pool",
            Pool::Max2 => "2x2/2 max pool",
            Pool::Avg3 => "3x3/2 average pool",
            Pool::Avg2 => "2x2/2 average pool",
        })
    }
}

/// What follows conv1's and conv2's activation (where the paper has LRN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    Lrn,
    /// BatchNorm2d in LRN's place: the same layer indices, so `features.2` and `features.6`
    /// hold its `weight`, `bias`, `running_mean`, `running_var` and `num_batches_tracked`.
    BatchNorm,
    None,
}

impl std::fmt::Display for Norm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Norm::Lrn => "LRN",
            Norm::BatchNorm => "BatchNorm",
            Norm::None => "no normalization",
        })
    }
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
    #[serde(default)]
    pub activation: Activation,
    #[serde(default)]
    pub pool: Pool,
    /// `None`: the architecture's own (LRN for the original, nothing for torchvision's), so
    /// configurations saved before this field existed mean what they meant.
    #[serde(default)]
    pub norm: Option<Norm>,
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
            activation: Activation::Relu,
            pool: Pool::Overlapping,
            norm: None,
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

    /// The normalisation actually used: `norm`, or the architecture's own.
    pub fn resolved_norm(&self) -> Norm {
        self.norm.unwrap_or(match self.arch {
            Arch::Original => Norm::Lrn,
            Arch::TorchVision => Norm::None,
        })
    }

    fn activation_layer(&self) -> LayerKind {
        match self.activation {
            Activation::Relu => LayerKind::Relu,
            Activation::LeakyRelu { slope } => {
                LayerKind::Nonlinearity(Nonlinearity::LeakyRelu { slope })
            }
            Activation::Elu { alpha } => LayerKind::Nonlinearity(Nonlinearity::Elu { alpha }),
            Activation::Sigmoid => LayerKind::Nonlinearity(Nonlinearity::Sigmoid),
            Activation::Tanh => LayerKind::Nonlinearity(Nonlinearity::Tanh),
        }
    }

    fn pool_layer(&self) -> LayerKind {
        let avg = |kernel| {
            LayerKind::AvgPool(AvgPoolConfig {
                kernel,
                stride: 2,
                padding: 0,
            })
        };
        match self.pool {
            Pool::Overlapping => LayerKind::MaxPool(MaxPoolConfig::ALEXNET),
            Pool::Max2 => LayerKind::MaxPool(MaxPoolConfig {
                kernel: 2,
                stride: 2,
            }),
            Pool::Avg3 => avg(3),
            Pool::Avg2 => avg(2),
        }
    }

    /// The normalisation layer after a block with `channels` outputs, if any.
    fn norm_layer(&self, channels: usize) -> Option<LayerKind> {
        match self.resolved_norm() {
            Norm::Lrn => Some(LayerKind::Lrn(self.lrn)),
            Norm::BatchNorm => Some(LayerKind::BatchNorm {
                channels,
                cfg: BatchNormConfig::default(),
            }),
            Norm::None => None,
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
        let pool = self.pool_layer();
        let act = self.activation_layer();
        let mut features = vec![conv(3, c1, 11, 4, 2, 1), act.clone()];
        features.extend(self.norm_layer(c1));
        features.extend([pool.clone(), conv(c1, c2, 5, 1, 2, groups), act.clone()]);
        features.extend(self.norm_layer(c2));
        features.extend([
            pool.clone(),
            conv(c2, c3, 3, 1, 1, 1),
            act.clone(),
            conv(c3, c4, 3, 1, 1, groups),
            act.clone(),
            conv(c4, c5, 3, 1, 1, groups),
            act.clone(),
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
            act.clone(),
            dropout,
            fc(self.fc_width, self.fc_width),
            act,
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
    /// Frozen ([`AlexNet::freeze`]): no gradient kernel, no optimizer state, no update.
    pub frozen: bool,
}

/// A state tensor that is saved and loaded with the weights but not trained (BatchNorm's
/// running statistics), named as PyTorch names its buffers.
pub struct Buffer {
    pub name: String,
    pub value: Tensor,
}

pub struct AlexNet {
    pub config: AlexNetConfig,
    pub layers: Vec<Layer>,
    pub params: Vec<Param>,
    pub buffers: Vec<Buffer>,
}

impl AlexNet {
    /// Allocates the parameters (zero) and their gradients.
    pub fn new(gpu: &Gpu, config: AlexNetConfig) -> Result<Self> {
        let layers = config.layers()?;
        Self::with_layers(gpu, config, layers)
    }

    /// A model of `layers` (a part of `config`'s network, as one device of a model-parallel
    /// split holds), its parameters allocated (zero) with their gradients: the parameters in
    /// layer order in one arena ([`Tensor::arena`]), the gradients in another laid out alike,
    /// so that the optimizer updates them all as one span.
    pub fn with_layers(gpu: &Gpu, config: AlexNetConfig, layers: Vec<Layer>) -> Result<Self> {
        let mut buffers = Vec::new();
        let mut shapes = Vec::new();
        for layer in &layers {
            for (name, shape, fill) in layer.buffer_shapes() {
                let init = vec![fill; shape.iter().product()];
                buffers.push(Buffer {
                    value: Tensor::from_f32(gpu, &name, &shape, &init)?,
                    name,
                });
            }
            shapes.extend(layer.parameter_shapes());
        }
        let grad_shapes: Vec<_> = shapes
            .iter()
            .map(|(name, shape)| (format!("{name}.grad"), shape.clone()))
            .collect();
        let values = Tensor::arena(gpu, "parameters", &shapes)?;
        let grads = Tensor::arena(gpu, "gradients", &grad_shapes)?;
        let params = shapes
            .into_iter()
            .zip(values.into_iter().zip(grads))
            .map(|((name, _), (value, grad))| Param {
                name,
                value,
                grad,
                frozen: false,
            })
            .collect();
        Ok(Self {
            config,
            layers,
            params,
            buffers,
        })
    }

    pub fn param(&self, name: &str) -> Result<&Param> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::Config(format!("the model has no parameter named '{name}'")))
    }

    pub fn buffer(&self, name: &str) -> Result<&Buffer> {
        self.buffers
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| Error::Config(format!("the model has no buffer named '{name}'")))
    }

    /// Every tensor a `state_dict` holds, parameters then buffers, by name.
    pub fn state_tensors(&self) -> Vec<(String, &Tensor)> {
        let params = self.params.iter().map(|p| (p.name.clone(), &p.value));
        let buffers = self.buffers.iter().map(|b| (b.name.clone(), &b.value));
        params.chain(buffers).collect()
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
