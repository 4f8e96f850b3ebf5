//! The WGSL sources, embedded at build time: one file per op family in `shaders/`, each
//! preceded by the shared snippets it uses (`common.wgsl`, `tree_sum.wgsl`, `resize.wgsl`). The runtime
//! compiles them as [`ShaderSource`]s without knowing which exist.

use crate::runtime::ShaderSource;

/// One shader file. Its name is the file stem in `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Conv2d,
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
    GemmReduce,
    Finite,
    LossScale,
}

impl Shader {
    pub const ALL: [Shader; 18] = [
        Shader::Conv2d,
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
        Shader::GemmReduce,
        Shader::Finite,
        Shader::LossScale,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shader::Conv2d => "conv2d",
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
            Shader::GemmReduce => "gemm_reduce",
            Shader::Finite => "finite",
            Shader::LossScale => "loss_scale",
        }
    }

    /// The snippet files (stems in `shaders/`) the loader prepends to this shader's own file,
    /// in order: WGSL has no `#include`. Every shader gets `common`; those with a workgroup
    /// reduction `tree_sum`, the image shaders the resize helpers, the GEMM its operands.
    pub fn snippets(self) -> &'static [&'static str] {
        match self {
            Shader::Preprocess => &["common", "resize"],
            Shader::Augment => &["common", "tree_sum", "resize"],
            Shader::BatchNorm | Shader::GemmReduce => &["common", "tree_sum"],
            Shader::Gemm => &["common", "gemm_operands"],
            _ => &["common"],
        }
    }

    /// The WGSL the runtime compiles: [`Shader::snippets`] then the shader's own file.
    pub fn source(self) -> &'static str {
        macro_rules! wgsl {
            ($($file:literal),+) => {
                concat!($(include_str!(concat!("../../shaders/", $file, ".wgsl"))),+)
            };
        }
        match self {
            Shader::Conv2d => wgsl!("common", "conv2d"),
            Shader::Activation => wgsl!("common", "activation"),
            Shader::AvgPool => wgsl!("common", "avg_pool"),
            Shader::BatchNorm => wgsl!("common", "tree_sum", "batch_norm"),
            Shader::Lrn => wgsl!("common", "lrn"),
            Shader::MaxPool => wgsl!("common", "max_pool"),
            Shader::AdaptiveAvgPool => wgsl!("common", "adaptive_avg_pool"),
            Shader::Dropout => wgsl!("common", "dropout"),
            Shader::Linear => wgsl!("common", "linear"),
            Shader::CrossEntropy => wgsl!("common", "cross_entropy"),
            Shader::Sgd => wgsl!("common", "sgd"),
            Shader::Adam => wgsl!("common", "adam"),
            Shader::Preprocess => wgsl!("common", "resize", "preprocess"),
            Shader::Augment => wgsl!("common", "tree_sum", "resize", "augment"),
            Shader::Gemm => wgsl!("common", "gemm_operands", "gemm"),
            Shader::GemmReduce => wgsl!("common", "tree_sum", "gemm_reduce"),
            Shader::Finite => wgsl!("common", "finite"),
            Shader::LossScale => wgsl!("common", "loss_scale"),
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
