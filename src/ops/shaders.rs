//! The WGSL sources, embedded at build time: one file per op family in `shaders/`, each
//! preceded by the shared snippets it uses (`common.wgsl`, `tree_sum.wgsl`, `resize.wgsl`, the
//! GEMMs' operands). The runtime compiles them as [`ShaderSource`]s without knowing which exist.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
    /// The tiled GEMM for CPU drivers: operands straight from the buffers, no workgroup memory;
    /// every lane loads A's elements.
    GemmDirect,
    /// The same, where lanes share A's elements by subgroup broadcasts.
    GemmDirectSubgroup,
    /// `linear.wgsl` with the small-batch forward for CPU drivers with subgroups, whose lanes
    /// share the input's elements by subgroup broadcasts.
    LinearBroadcast,
    /// The cooperative-matrix GEMM with f16 operands and f32 sums in 16 × 16 blocks.
    GemmCoopF16,
    /// The cooperative-matrix GEMM in f32, 8 × 8 blocks.
    GemmCoopF32,
    /// The cooperative-matrix GEMM with f16 operands and f32 sums in 8 × 8 blocks.
    GemmCoopF16x8,
}

impl Shader {
    pub const ALL: [Shader; 24] = [
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
        Shader::GemmDirect,
        Shader::GemmDirectSubgroup,
        Shader::LinearBroadcast,
        Shader::GemmCoopF16,
        Shader::GemmCoopF32,
        Shader::GemmCoopF16x8,
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
            Shader::GemmDirect => "gemm_direct",
            Shader::GemmDirectSubgroup => "gemm_direct_subgroup",
            Shader::LinearBroadcast => "linear_broadcast",
            Shader::GemmCoopF16 => "gemm_coop_f16",
            Shader::GemmCoopF32 => "gemm_coop_f32",
            Shader::GemmCoopF16x8 => "gemm_coop_f16x8",
        }
    }

    /// The files (stems in `shaders/`) the loader concatenates, in order: WGSL has no
    /// `#include`. A shader's own file comes last, after `common` and the snippets it uses:
    /// `tree_sum` for a workgroup reduction, the resize helpers for the image shaders, the
    /// GEMMs' operands. The cooperative-matrix GEMM's own file is its configuration (element and
    /// matrix types), which comes first, since its `enable` directives must precede every
    /// declaration; the kernel, `gemm_coop`, is then a snippet both configurations end with.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Shader::Preprocess => &["common", "resize", "preprocess"],
            Shader::Augment => &["common", "tree_sum", "resize", "augment"],
            Shader::BatchNorm => &["common", "tree_sum", "batch_norm"],
            Shader::GemmReduce => &["common", "tree_sum", "gemm_reduce"],
            Shader::Gemm => &["common", "f16_rounding", "gemm_operands", "gemm"],
            Shader::GemmDirect => &[
                "common",
                "f16_rounding",
                "gemm_operands",
                "gemm_direct_loaded",
                "gemm_direct",
            ],
            Shader::GemmDirectSubgroup => &[
                "common",
                "f16_rounding",
                "gemm_operands",
                "subgroup_broadcast",
                "gemm_direct_subgroup",
                "gemm_direct",
            ],
            Shader::LinearBroadcast => &[
                "common",
                "f16_rounding",
                "linear",
                "subgroup_broadcast",
                "linear_broadcast",
            ],
            Shader::GemmCoopF16 => &[
                "gemm_coop_f16",
                "common",
                "f16_rounding",
                "gemm_operands",
                "gemm_coop",
            ],
            Shader::GemmCoopF32 => &[
                "gemm_coop_f32",
                "common",
                "f16_rounding",
                "gemm_operands",
                "gemm_coop",
            ],
            Shader::GemmCoopF16x8 => &[
                "gemm_coop_f16x8",
                "common",
                "f16_rounding",
                "gemm_operands",
                "gemm_coop",
            ],
            Shader::Conv2d => &["common", "conv2d"],
            Shader::Activation => &["common", "activation"],
            Shader::AvgPool => &["common", "pool", "avg_pool"],
            Shader::Lrn => &["common", "lrn"],
            Shader::MaxPool => &["common", "pool", "max_pool"],
            Shader::AdaptiveAvgPool => &["common", "pool", "adaptive_avg_pool"],
            Shader::Dropout => &["common", "dropout"],
            Shader::Linear => &["common", "f16_rounding", "linear"],
            Shader::CrossEntropy => &["common", "cross_entropy"],
            Shader::Sgd => &["common", "sgd"],
            Shader::Adam => &["common", "adam"],
            Shader::Finite => &["common", "workgroup_any", "finite"],
            Shader::LossScale => &["common", "workgroup_any", "loss_scale"],
        }
    }

    /// The wgpu features a device needs to compile this shader (the cooperative-matrix GEMM's;
    /// every other shader runs on any device).
    pub fn features(self) -> wgpu::Features {
        let coop = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SUBGROUP;
        match self {
            Shader::GemmCoopF16 | Shader::GemmCoopF16x8 => coop | wgpu::Features::SHADER_F16,
            Shader::GemmCoopF32 => coop,
            Shader::GemmDirectSubgroup | Shader::LinearBroadcast => wgpu::Features::SUBGROUP,
            _ => wgpu::Features::empty(),
        }
    }

    /// The WGSL the runtime compiles: [`Shader::files`] one after the other, from the
    /// embedded files or, where [`SHADER_DIR_ENV`] is set, from that folder.
    pub fn source(self) -> &'static str {
        static SOURCES: OnceLock<Vec<&'static str>> = OnceLock::new();
        let sources = SOURCES.get_or_init(|| {
            let dir = std::env::var_os(SHADER_DIR_ENV).map(PathBuf::from);
            if let Some(dir) = &dir {
                log::warn!(
                    "{SHADER_DIR_ENV}: compiling the shaders in {} instead of the embedded ones",
                    dir.display()
                );
            }
            // Built once per process, so leaking the two dozen strings costs nothing and lets
            // every `ShaderSource` stay `Copy` with a `'static` text.
            Shader::ALL
                .iter()
                .map(|shader| {
                    let text: String = shader
                        .files()
                        .iter()
                        .map(|stem| file_text(dir.as_deref(), stem))
                        .collect();
                    &*Box::leak(text.into_boxed_str())
                })
                .collect()
        });
        let index = Shader::ALL.iter().position(|&s| s == self);
        sources[index.expect("Shader::ALL lists every shader")]
    }
}

/// Set to a folder of `.wgsl` files to compile those instead of the embedded ones (a file the
/// folder lacks stays embedded): for editing a kernel without rebuilding, and for
/// `tools/shader_mutants.py`, which runs the suites against mutated copies.
pub const SHADER_DIR_ENV: &str = "ALEXNET_SHADER_DIR";

/// Every file in `shaders/`, as `(stem, text)`, embedded at build time.
const EMBEDDED: &[(&str, &str)] = {
    macro_rules! embed {
        ($($file:literal),+ $(,)?) => {
            &[$(($file, include_str!(concat!("../../shaders/", $file, ".wgsl")))),+]
        };
    }
    embed!(
        "activation",
        "adam",
        "adaptive_avg_pool",
        "augment",
        "avg_pool",
        "batch_norm",
        "common",
        "conv2d",
        "cross_entropy",
        "dropout",
        "f16_rounding",
        "finite",
        "gemm",
        "gemm_coop",
        "gemm_coop_f16",
        "gemm_coop_f16x8",
        "gemm_coop_f32",
        "gemm_direct",
        "gemm_direct_loaded",
        "gemm_direct_subgroup",
        "gemm_operands",
        "gemm_reduce",
        "linear",
        "linear_broadcast",
        "loss_scale",
        "lrn",
        "max_pool",
        "pool",
        "preprocess",
        "resize",
        "sgd",
        "subgroup_broadcast",
        "tree_sum",
        "workgroup_any",
    )
};

/// One file's text: from `dir` where it has the file, else the embedded copy.
fn file_text(dir: Option<&Path>, stem: &str) -> String {
    if let Some(path) = dir.map(|d| d.join(format!("{stem}.wgsl"))) {
        match std::fs::read_to_string(&path) {
            Ok(text) => return text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("{}: {e}; using the embedded copy", path.display()),
        }
    }
    let embedded = EMBEDDED.iter().find(|(name, _)| *name == stem);
    embedded
        .expect("Shader::files names embedded files")
        .1
        .to_string()
}

impl From<Shader> for ShaderSource {
    fn from(shader: Shader) -> Self {
        ShaderSource {
            name: shader.name(),
            wgsl: shader.source(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shader_folder_replaces_the_files_it_has_and_only_those() {
        let dir = std::env::temp_dir().join(format!("alexnet-shader-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sgd.wgsl"), "// edited\n").unwrap();
        assert_eq!(file_text(Some(&dir), "sgd"), "// edited\n");
        let embedded = include_str!("../../shaders/adam.wgsl");
        assert_eq!(file_text(Some(&dir), "adam"), embedded);
        assert_eq!(file_text(None, "adam"), embedded);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
