//! Which kernels the ops dispatch on a device: plain or tiled, the GEMM's tile shape, and the
//! small-batch paths. A device's policy is kept on its `Gpu` (a typed setting the runtime
//! stores without knowing it) and read when an op prepares its dispatches, so programs
//! recorded before a change keep the kernels they were recorded with.

use crate::error::{Error, Result};
use crate::ops::tune::Autotune;
use crate::ops::{GemmCoop, GemmTiles};
use crate::runtime::Gpu;

/// Which implementation the convolution and linear ops dispatch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kernels {
    /// One invocation per output element: simple, and the oracle the tiled kernels are
    /// tested against and benchmarked beside.
    Plain,
    /// Tiled implicit GEMM (`shaders/gemm.wgsl`).
    #[default]
    Tiled,
}

/// The arithmetic of the convolution and linear layers (`--precision`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 operands, f32 sums: PyTorch's float32 numbers.
    #[default]
    F32,
    /// Operands (activations, weights, gradients) rounded to f16 as the GEMM loads them,
    /// products summed and results stored in f32: the numbers of f16 matrix hardware (tensor
    /// cores) with f32 accumulators. Everything else (pooling, LRN, the loss, the optimizer
    /// and its master weights) stays f32; training adds dynamic loss scaling
    /// (`train::loss_scale`) so that small gradients survive f16. Every conv layer runs the
    /// tiled GEMM, whatever `kernels` says; linear layers too, but at small batches, where
    /// their matrix-vector kernels round the same operands.
    Mixed,
}

impl Precision {
    /// The override constant that makes `shaders/f16_rounding.wgsl`'s operand() round.
    pub(crate) fn round_f16_constant(self) -> (&'static str, f64) {
        ("ROUND_F16", f64::from(u8::from(self == Self::Mixed)))
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Self::F32),
            "mixed" => Ok(Self::Mixed),
            _ => Err(Error::Config(format!(
                "--precision '{s}': expected 'f32' or 'mixed'"
            ))),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Mixed => "mixed",
        })
    }
}

/// Whether the GEMM runs on the adapter's matrix units (`ops::gemm_coop`, `--matrix`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Matrix {
    /// Where the device offers a cooperative-matrix configuration for the precision (f16 × f16
    /// → f32 16 × 16 or 8 × 8 for mixed, f32 8 × 8 for f32) and its subgroup sizes suit the
    /// kernel, unless it is a CPU driver, which emulates matrix units more slowly than the
    /// SIMT kernel runs; the SIMT kernel elsewhere.
    #[default]
    Auto,
    /// Never: the SIMT kernel everywhere (the baseline benchmarks compare with).
    Off,
    /// Always: applying the policy fails on a device that cannot.
    On,
}

impl std::str::FromStr for Matrix {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            "on" => Ok(Self::On),
            _ => Err(Error::Config(format!(
                "--matrix '{s}': expected 'auto', 'on' or 'off'"
            ))),
        }
    }
}

/// The kernel choice for one device. `Default`: tiled kernels, tiles by problem, small-batch
/// paths by adapter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelPolicy {
    pub kernels: Kernels,
    /// The tiled GEMM's tile shape; `None`: by problem ([`GemmTiles::for_rows`]).
    pub gemm_tiles: Option<GemmTiles>,
    /// Spread small-batch work over more workgroups: linear layers as one workgroup per
    /// weight row (coalesced reads of the row, a tree reduction) instead of one invocation
    /// per output, and convolutions whose output fills few tiles with their reduction split
    /// (split-K). `None`: by adapter — on GPUs (3x on an H100's FC layers at batch 1), not on
    /// CPU drivers, whose few cores are busy anyway and where the extra barriers and partial
    /// sums only cost (the row GEMV ran 10x slower on lavapipe).
    pub parallel_small_batches: Option<bool>,
    /// With tiled kernels, LRN sums its channel windows from workgroup memory (each input
    /// loaded once per workgroup) instead of reading every window from global memory. `None`:
    /// by adapter — on GPUs, not on CPU drivers, where the neighbours are cache hits anyway and
    /// the copy and barrier only cost (forward 0.66-1.0x, backward 0.85-1.33x on lavapipe).
    pub workgroup_lrn: Option<bool>,
    /// The tiled GEMM as `shaders/gemm_direct.wgsl` (operands straight from the buffers into
    /// registers, no workgroup memory or barriers) instead of `gemm.wgsl`. `None`: by adapter
    /// — on CPU drivers, where a barrier switches coroutines and the caches already tile; not
    /// on GPUs, whose tiles in workgroup memory are what makes the GEMM fast.
    pub direct_gemm: Option<bool>,
    /// Time plain against tiled kernels per shape and phase when planning, instead of using
    /// `kernels` everywhere (`ops::tune`).
    pub autotune: Autotune,
    /// f32, or f16 operands with f32 sums.
    pub precision: Precision,
    /// Whether the tiled GEMM may run on matrix units (cooperative matrices). Their kernel has
    /// its own tile shapes: `gemm_tiles` is the SIMT kernel's.
    pub matrix: Matrix,
    /// Plan every layer and every parameter's update as its own dispatch, as before the
    /// fusions: a convolution or linear layer and the ReLU after it as two dispatches (and
    /// two activation tensors), the optimizer one dispatch per parameter tensor. The same
    /// results; the baseline `alexnet bench --unfused` times beside the fused default.
    pub unfused: bool,
}

impl KernelPolicy {
    /// The policy `gpu` was given with [`KernelPolicy::apply`], else the default.
    pub fn of(gpu: &Gpu) -> Self {
        gpu.setting::<Self>().unwrap_or_default()
    }

    /// Checks the policy against the device (a forced tile shape must fit its workgroup
    /// memory) and makes it the device's.
    pub fn apply(self, gpu: &Gpu) -> Result<()> {
        if let Some(tiles) = self.gemm_tiles {
            tiles.validate()?;
            let available = gpu.limits().max_compute_workgroup_storage_size;
            if self.kernels == Kernels::Tiled && tiles.workgroup_bytes() > available {
                return Err(Error::Config(format!(
                    "--gemm-tiles {tiles}: needs {} bytes of workgroup memory; '{}' has \
                     {available}",
                    tiles.workgroup_bytes(),
                    gpu.adapter_name()
                )));
            }
        }
        if self.matrix == Matrix::On && GemmCoop::for_device(gpu, &self).is_none() {
            return Err(Error::Config(format!(
                "--matrix on: '{}' offers no cooperative-matrix configuration the GEMM can use \
                 with --precision {} (see `alexnet devices`)",
                gpu.adapter_name(),
                self.precision
            )));
        }
        gpu.set_setting(self);
        Ok(())
    }

    /// The same policy with other kernels everywhere (benchmarks and oracle tests).
    pub fn with_kernels(self, kernels: Kernels) -> Self {
        Self {
            kernels,
            autotune: Autotune::Off,
            ..self
        }
    }

    /// The same policy with another precision.
    pub fn with_precision(self, precision: Precision) -> Self {
        Self { precision, ..self }
    }

    /// Whether the small-batch paths are on for `gpu`: as set, else on all but CPU drivers.
    pub fn parallel_small_batches(&self, gpu: &Gpu) -> bool {
        self.parallel_small_batches.unwrap_or(!gpu.is_cpu())
    }

    /// Whether LRN runs its workgroup-memory kernels on `gpu`: tiled kernels, and
    /// `workgroup_lrn` as set, else on all but CPU drivers.
    pub fn workgroup_lrn(&self, gpu: &Gpu) -> bool {
        self.kernels == Kernels::Tiled && self.workgroup_lrn.unwrap_or(!gpu.is_cpu())
    }

    /// Whether the tiled GEMM runs its direct kernel on `gpu`: as set, else on CPU drivers.
    pub fn direct_gemm(&self, gpu: &Gpu) -> bool {
        self.direct_gemm.unwrap_or(gpu.is_cpu())
    }

    /// Tiled kernels with the small-batch paths on.
    pub(crate) fn tiled_small_batches(&self, gpu: &Gpu) -> bool {
        self.kernels == Kernels::Tiled && self.parallel_small_batches(gpu)
    }

    /// The kernels every convolution and linear shape runs when the policy decides alone
    /// (no autotuning): mixed precision lives in the tiled GEMM only, so only `full`, which
    /// also times GEMM kernels, has anything to choose there.
    pub fn fixed_kernels(&self) -> Option<Kernels> {
        match (self.precision, self.autotune) {
            (Precision::Mixed, Autotune::Off | Autotune::Quick) => Some(Kernels::Tiled),
            (Precision::Mixed, Autotune::Full) => None,
            (Precision::F32, Autotune::Off) => Some(self.kernels),
            (Precision::F32, Autotune::Quick | Autotune::Full) => None,
        }
    }

    /// One line for reports: kernels, tile shape, small-batch paths, precision.
    pub fn describe(&self, gpu: &Gpu) -> String {
        let kernels = match self.fixed_kernels() {
            Some(kernels) => format!("{kernels:?}"),
            None => "autotuned per shape".to_string(),
        };
        format!(
            "{kernels}, GEMM tiles {}, small-batch paths {}{}",
            self.gemm_tiles
                .map_or("by problem".to_string(), |t| t.to_string()),
            if self.parallel_small_batches(gpu) {
                "on"
            } else {
                "off"
            },
            if self.unfused { ", unfused" } else { "" }
        ) + &format!(
            ", precision {}, matrix units {}",
            self.precision,
            GemmCoop::for_device(gpu, self).map_or("off".to_string(), |c| c.to_string())
        )
    }
}
