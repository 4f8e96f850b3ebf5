//! The WGSL sources, embedded at build time: one file per op family in `shaders/`. The
//! runtime compiles them as [`ShaderSource`]s without knowing which exist.

use crate::runtime::ShaderSource;

/// One shader file. Its name is the file stem in `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Conv2d,
    Relu,
    Activation,
    Lrn,
    MaxPool,
    AvgPool,
    AdaptiveAvgPool,
    BatchNorm,
    Dropout,
    Linear,
    CrossEntropy,
    Sgd,
    Adam,
    Preprocess,
    Augment,
    Gemm,
    Finite,
}

impl Shader {
    pub const ALL: [Shader; 17] = [
        Shader::Conv2d,
        Shader::Relu,
        Shader::Activation,
        Shader::Lrn,
        Shader::MaxPool,
        Shader::AvgPool,
        Shader::AdaptiveAvgPool,
        Shader::BatchNorm,
        Shader::Dropout,
        Shader::Linear,
        Shader::CrossEntropy,
        Shader::Sgd,
        Shader::Adam,
        Shader::Preprocess,
        Shader::Augment,
        Shader::Gemm,
        Shader::Finite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shader::Conv2d => "conv2d",
            Shader::Relu => "relu",
            Shader::Activation => "activation",
            Shader::AvgPool => "avg_pool",
            Shader::BatchNorm => "batch_norm",
            Shader::Lrn => "lrn",
            Shader::MaxPool => "max_pool",
            Shader::AdaptiveAvgPool => "adaptive_avg_pool",
            Shader::Dropout => "dropout",
            Shader::Linear => "linear",
            Shader::CrossEntropy => "cross_entropy",
            Shader::Sgd => "sgd",
            Shader::Adam => "adam",
            Shader::Preprocess => "preprocess",
            Shader::Augment => "augment",
            Shader::Gemm => "gemm",
            Shader::Finite => "finite",
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            Shader::Conv2d => include_str!("../../shaders/conv2d.wgsl"),
            Shader::Relu => include_str!("../../shaders/relu.wgsl"),
            Shader::Activation => include_str!("../../shaders/activation.wgsl"),
            Shader::AvgPool => include_str!("../../shaders/avg_pool.wgsl"),
            Shader::BatchNorm => include_str!("../../shaders/batch_norm.wgsl"),
            Shader::Lrn => include_str!("../../shaders/lrn.wgsl"),
            Shader::MaxPool => include_str!("../../shaders/max_pool.wgsl"),
            Shader::AdaptiveAvgPool => include_str!("../../shaders/adaptive_avg_pool.wgsl"),
            Shader::Dropout => include_str!("../../shaders/dropout.wgsl"),
            Shader::Linear => include_str!("../../shaders/linear.wgsl"),
            Shader::CrossEntropy => include_str!("../../shaders/cross_entropy.wgsl"),
            Shader::Sgd => include_str!("../../shaders/sgd.wgsl"),
            Shader::Adam => include_str!("../../shaders/adam.wgsl"),
            Shader::Preprocess => include_str!("../../shaders/preprocess.wgsl"),
            Shader::Augment => include_str!("../../shaders/augment.wgsl"),
            Shader::Gemm => include_str!("../../shaders/gemm.wgsl"),
            Shader::Finite => include_str!("../../shaders/finite.wgsl"),
        }
    }
}

impl From<Shader> for ShaderSource {
    fn from(shader: Shader) -> Self {
        ShaderSource {
            name: shader.name(),
            wgsl: shader.source(),
        }
    }
}
