//! The cooperative-matrix GEMM (`shaders/gemm_coop.wgsl` after a configuration,
//! `gemm_coop_f16.wgsl` or `gemm_coop_f32.wgsl`): the tiled GEMM's three entry points with the
//! multiply-adds on the adapter's matrix units (tensor cores, Apple's simdgroup matrices)
//! through wgpu's experimental cooperative matrices. Same bindings, parameters, grid and split-K
//! as `gemm.wgsl`, so `ops::gemm` picks one kernel or the other per dispatch with
//! [`GemmCoop::for_device`].
//!
//! wgpu does not check a shader's matrix sizes and types against what the adapter lists (a
//! configuration the adapter lacks has run and given zeros, with no error), so the kernel runs
//! only where the adapter lists its configuration exactly. `tests/coop_shaders.rs` proves the
//! shaders with naga (validation, SPIR-V, MSL), and the runtime comparison (`tests/ops/coop.rs`)
//! runs where an adapter offers a configuration: Mesa 26's lavapipe offers the 8 × 8 f16 one,
//! which CI runs (`tools/lavapipe_coop.sh`, docs/coop-on-lavapipe.md); the others wait for the
//! GPU machines `tools/device_bench.sh` is for.

use crate::ops::{KernelPolicy, Matrix, Precision, Shader};
use crate::runtime::Gpu;

/// A cooperative-matrix configuration of the GEMM: its element types and block size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GemmCoop {
    /// f16 × f16 → f32 in 16 × 16 × 16 blocks, as NVIDIA and AMD list it on Vulkan: mixed
    /// precision (`Precision::Mixed`).
    F16x16,
    /// f32 × f32 → f32 in 8 × 8 × 8 blocks, as Apple GPUs list it on Metal: f32 precision.
    F32x8,
    /// f16 × f16 → f32 in 8 × 8 × 8 blocks, as Apple GPUs list it on Metal: mixed precision.
    F16x8,
}

impl GemmCoop {
    pub const ALL: [Self; 3] = [Self::F16x16, Self::F32x8, Self::F16x8];
    /// Invocations per workgroup (`THREADS` in `gemm_operands.wgsl`).
    const THREADS: u32 = 256;
    /// The workgroup tile, BM × BN outputs (both configurations).
    pub const BM: u32 = 64;
    pub const BN: u32 = 64;

    pub fn shader(self) -> Shader {
        match self {
            Self::F16x16 => Shader::GemmCoopF16,
            Self::F32x8 => Shader::GemmCoopF32,
            Self::F16x8 => Shader::GemmCoopF16x8,
        }
    }

    /// The precision whose numbers this configuration computes: f16 operands (rounded as the
    /// SIMT kernel rounds them) with f32 sums, or f32 throughout.
    pub fn precision(self) -> Precision {
        match self {
            Self::F16x16 | Self::F16x8 => Precision::Mixed,
            Self::F32x8 => Precision::F32,
        }
    }

    /// The side of a block (`MATRIX` in the configuration's file).
    pub fn side(self) -> u32 {
        match self {
            Self::F16x16 => 16,
            Self::F32x8 | Self::F16x8 => 8,
        }
    }

    /// The configuration as an adapter lists it (`Gpu::cooperative_matrices`).
    pub fn properties(self) -> wgpu::CooperativeMatrixProperties {
        let (ab_type, cr_type) = match self {
            Self::F16x16 | Self::F16x8 => (
                wgpu::CooperativeScalarType::F16,
                wgpu::CooperativeScalarType::F32,
            ),
            Self::F32x8 => (
                wgpu::CooperativeScalarType::F32,
                wgpu::CooperativeScalarType::F32,
            ),
        };
        wgpu::CooperativeMatrixProperties {
            m_size: self.side(),
            n_size: self.side(),
            k_size: self.side(),
            ab_type,
            cr_type,
            saturating_accumulation: false,
        }
    }

    /// The tile's depth BK: 32 with f16 operands, 16 in f32, which needs twice the bytes per
    /// element, to stay under 32 KiB of workgroup memory, as Apple GPUs have.
    pub fn depth(self) -> u32 {
        match self {
            Self::F16x16 | Self::F16x8 => 32,
            Self::F32x8 => 16,
        }
    }

    /// The most blocks one subgroup keeps (`MAX_PASSES` in the configuration's file).
    fn max_passes(self) -> u32 {
        match self {
            Self::F16x16 => 4,
            Self::F32x8 | Self::F16x8 => 8,
        }
    }

    fn element_bytes(self) -> u32 {
        match self {
            Self::F16x16 | Self::F16x8 => 2,
            Self::F32x8 => 4,
        }
    }

    /// Workgroup memory the kernel declares: tile_a, tile_b (rows padded by 16 bytes), tile_c
    /// (f32, likewise), the double-buffered k terms and the uniform vec4.
    pub fn workgroup_bytes(self) -> u32 {
        let (e, bk) = (self.element_bytes(), self.depth());
        let pad = 16 / e;
        e * (Self::BM * (bk + pad) + bk * (Self::BN + pad))
            + 4 * Self::BM * (Self::BN + 4)
            + 16 * (2 * bk + 1)
    }

    /// Whether every subgroup size from `min` to `max` (powers of two) splits the tile's blocks
    /// evenly over the workgroup's subgroups, at most `max_passes` blocks each: the counts the
    /// kernel handles (any other gives NaN, see `gemm_coop.wgsl`).
    pub fn fits_subgroups(self, min: u32, max: u32) -> bool {
        let blocks = (Self::BM / self.side()) * (Self::BN / self.side());
        min.is_power_of_two()
            && min <= max
            && (min.trailing_zeros()..=max.trailing_zeros()).all(|log| {
                let subgroups = Self::THREADS >> log.min(31);
                subgroups > 0
                    && blocks.is_multiple_of(subgroups)
                    && (1..=self.max_passes()).contains(&(blocks / subgroups))
            })
    }

    /// Whether `gpu` can run this configuration: the features, the exact configuration in the
    /// adapter's list, subgroup sizes the kernel handles, and the workgroup memory.
    pub fn runs_on(self, gpu: &Gpu) -> bool {
        let limits = gpu.limits();
        let listed = gpu.cooperative_matrices().iter().any(|p| {
            wgpu::CooperativeMatrixProperties {
                saturating_accumulation: false,
                ..*p
            } == self.properties()
        });
        gpu.device.features().contains(self.shader().features())
            && listed
            && gpu
                .subgroup_sizes()
                .is_some_and(|(min, max)| self.fits_subgroups(min, max))
            && self.workgroup_bytes() <= limits.max_compute_workgroup_storage_size
            && Self::THREADS <= limits.max_compute_invocations_per_workgroup
    }

    /// The configuration the GEMM runs with on `gpu` under `policy`: the one for its precision
    /// where the device can run it and the policy does not say `Matrix::Off`.
    pub fn for_device(gpu: &Gpu, policy: &KernelPolicy) -> Option<Self> {
        let device_type = gpu.adapter_info.as_ref().map(|i| i.device_type);
        let passed_over =
            policy.matrix == Matrix::Auto && device_type.is_some_and(|t| !Self::auto_takes(t));
        if policy.matrix == Matrix::Off || passed_over {
            return None;
        }
        Self::ALL
            .into_iter()
            .find(|c| c.precision() == policy.precision && c.runs_on(gpu))
    }

    /// Whether `--matrix auto` takes the matrix units of a device of this type: not a CPU
    /// driver's, which lowers the matrix operations to scalar code (on Mesa 26's lavapipe the
    /// kernel ran at 0.19-0.34x the SIMT one, docs/coop-on-lavapipe.md); `--matrix on` does.
    pub fn auto_takes(device_type: wgpu::DeviceType) -> bool {
        device_type != wgpu::DeviceType::Cpu
    }

    /// The override constants: the f16 rounding (always on for f16 operands: their conversion
    /// is exact only for values round_f16 made) and the tile.
    pub fn constants(self) -> [(&'static str, f64); 4] {
        [
            self.precision().round_f16_constant(),
            ("BM", f64::from(Self::BM)),
            ("BN", f64::from(Self::BN)),
            ("BK", f64::from(self.depth())),
        ]
    }
}

impl std::fmt::Display for GemmCoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.properties();
        write!(
            f,
            "{}x{}x{} {:?}->{:?}",
            p.m_size, p.n_size, p.k_size, p.ab_type, p.cr_type
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subgroup_sizes_the_kernel_handles() {
        // 16 blocks of 16 × 16: 4 subgroups of 64 (4 each) to 16 of 16 (1 each).
        assert!(GemmCoop::F16x16.fits_subgroups(32, 32));
        assert!(GemmCoop::F16x16.fits_subgroups(16, 64));
        assert!(!GemmCoop::F16x16.fits_subgroups(8, 32));
        assert!(!GemmCoop::F16x16.fits_subgroups(32, 128));
        // 64 blocks of 8 × 8: at most 8 per subgroup, so subgroups of at most 32.
        assert!(GemmCoop::F32x8.fits_subgroups(32, 32));
        assert!(GemmCoop::F32x8.fits_subgroups(4, 32));
        assert!(!GemmCoop::F32x8.fits_subgroups(32, 64));
        assert!(!GemmCoop::F16x16.fits_subgroups(0, 32));
        // The same 64 blocks in f16 (Metal's mixed configuration).
        assert!(GemmCoop::F16x8.fits_subgroups(32, 32));
        assert!(!GemmCoop::F16x8.fits_subgroups(32, 64));
    }

    #[test]
    fn every_configuration_fits_in_32_kib_of_workgroup_memory() {
        for c in GemmCoop::ALL {
            assert!(
                c.workgroup_bytes() <= 32 << 10,
                "{c}: {}",
                c.workgroup_bytes()
            );
        }
    }
}
