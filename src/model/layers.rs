//! A layer as the model sees it: its PyTorch name, what it computes, and its output shape.

use crate::error::{Error, Result};
use crate::ops::activation::Nonlinearity;
use crate::ops::avg_pool::AvgPoolConfig;
use crate::ops::batch_norm::BatchNormConfig;
use crate::ops::conv2d::Conv2dConfig;
use crate::ops::lrn::LrnConfig;
use crate::ops::max_pool::MaxPoolConfig;

#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    Conv(Conv2dConfig),
    Relu,
    /// LeakyReLU, ELU, Sigmoid or Tanh (`ops::activation`).
    Nonlinearity(Nonlinearity),
    Lrn(LrnConfig),
    /// BatchNorm2d over `channels`: trains `weight` and `bias`, and keeps the buffers
    /// `running_mean`, `running_var` and `num_batches_tracked` (see [`Layer::buffer_shapes`]).
    BatchNorm {
        channels: usize,
        cfg: BatchNormConfig,
    },
    MaxPool(MaxPoolConfig),
    AvgPool(AvgPoolConfig),
    AdaptiveAvgPool {
        out_h: usize,
        out_w: usize,
    },
    Flatten,
    Dropout {
        p: f32,
    },
    Linear {
        in_features: usize,
        out_features: usize,
    },
}

/// One entry of the network, named as in PyTorch's module tree (`features.0`, `avgpool`,
/// `classifier.6`) so parameter names match a `state_dict`.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub name: String,
    pub kind: LayerKind,
}

impl Layer {
    /// The output shape for an input of shape `input`, or an error naming the layer.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let bad = |what: String| Error::Shape {
            op: "model",
            what: format!("layer {} ({:?}): {what}", self.name, self.kind),
        };
        let nchw = || -> Result<[usize; 4]> {
            <[usize; 4]>::try_from(input)
                .map_err(|_| bad(format!("expects an [N, C, H, W] input, got {input:?}")))
        };
        Ok(match &self.kind {
            LayerKind::Conv(cfg) => {
                let [n, c, h, w] = nchw()?;
                if c != cfg.in_channels {
                    return Err(bad(format!("input has {c} channels")));
                }
                let (oh, ow) = cfg.output_hw(h, w).map_err(|e| bad(e.to_string()))?;
                vec![n, cfg.out_channels, oh, ow]
            }
            LayerKind::MaxPool(cfg) => {
                let [n, c, h, w] = nchw()?;
                let (oh, ow) = cfg.output_hw(h, w).map_err(|e| bad(e.to_string()))?;
                vec![n, c, oh, ow]
            }
            LayerKind::AvgPool(cfg) => {
                let [n, c, h, w] = nchw()?;
                let (oh, ow) = cfg.output_hw(h, w).map_err(|e| bad(e.to_string()))?;
                vec![n, c, oh, ow]
            }
            LayerKind::BatchNorm { channels, .. } => {
                let [_, c, _, _] = nchw()?;
                if c != *channels {
                    return Err(bad(format!("input has {c} channels")));
                }
                input.to_vec()
            }
            LayerKind::AdaptiveAvgPool { out_h, out_w } => {
                let [n, c, _, _] = nchw()?;
                vec![n, c, *out_h, *out_w]
            }
            LayerKind::Flatten => vec![input[0], input[1..].iter().product()],
            LayerKind::Linear {
                in_features,
                out_features,
            } => {
                if input.len() != 2 || input[1] != *in_features {
                    return Err(bad(format!("expects [N, {in_features}], got {input:?}")));
                }
                vec![input[0], *out_features]
            }
            LayerKind::Relu
            | LayerKind::Nonlinearity(_)
            | LayerKind::Lrn(_)
            | LayerKind::Dropout { .. } => input.to_vec(),
        })
    }

    /// `(name, shape)` of each parameter, weight first, as in a PyTorch `state_dict`.
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        match &self.kind {
            LayerKind::Conv(cfg) => vec![
                (format!("{}.weight", self.name), cfg.weight_shape().to_vec()),
                (format!("{}.bias", self.name), vec![cfg.out_channels]),
            ],
            LayerKind::Linear {
                in_features,
                out_features,
            } => vec![
                (
                    format!("{}.weight", self.name),
                    vec![*out_features, *in_features],
                ),
                (format!("{}.bias", self.name), vec![*out_features]),
            ],
            LayerKind::BatchNorm { channels, .. } => vec![
                (format!("{}.weight", self.name), vec![*channels]),
                (format!("{}.bias", self.name), vec![*channels]),
            ],
            _ => Vec::new(),
        }
    }

    /// `(name, shape, initial value)` of each non-trained state tensor, as PyTorch's
    /// `state_dict` names its buffers. PyTorch's `num_batches_tracked` is a 0-d int64; it is
    /// kept here as a 1-element f32 (PyTorch's `load_state_dict` accepts that shape).
    pub fn buffer_shapes(&self) -> Vec<(String, Vec<usize>, f32)> {
        match &self.kind {
            LayerKind::BatchNorm { channels, .. } => vec![
                (format!("{}.running_mean", self.name), vec![*channels], 0.0),
                (format!("{}.running_var", self.name), vec![*channels], 1.0),
                (format!("{}.num_batches_tracked", self.name), vec![1], 0.0),
            ],
            _ => Vec::new(),
        }
    }

    /// Multiply-adds of the forward pass for one sample producing `output`.
    pub fn multiply_adds(&self, output: &[usize]) -> u64 {
        let per_sample: usize = output[1..].iter().product();
        match &self.kind {
            LayerKind::Conv(cfg) => {
                (per_sample * (cfg.in_channels / cfg.groups) * cfg.kernel * cfg.kernel) as u64
            }
            LayerKind::Linear { in_features, .. } => (per_sample * in_features) as u64,
            _ => 0,
        }
    }
}
