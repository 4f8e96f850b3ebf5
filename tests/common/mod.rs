//! Shared test support: one GPU per test binary, PyTorch fixtures, a seeded RNG, comparisons
//! that print their error, and a finite-difference gradient checker.
#![allow(dead_code)]

pub mod fixture_model;
pub mod gradcheck;
pub mod parallel;
pub mod reference;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use alexnet_wgpu::ops::{GemmCoop, GemmTiles, KernelPolicy, Kernels, Matrix, Precision};
use alexnet_wgpu::runtime::{Dispatch, Gpu, GpuOptions, Program, ShaderChecks, Tensor};

/// The naga capabilities wgpu derives from the device features a shader needs
/// (`Shader::features`): what naga must be allowed to validate it as wgpu does.
pub fn naga_capabilities(features: wgpu::Features) -> naga::valid::Capabilities {
    use naga::valid::Capabilities;
    [
        (
            wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
            Capabilities::COOPERATIVE_MATRIX,
        ),
        (wgpu::Features::SUBGROUP, Capabilities::SUBGROUP),
        (wgpu::Features::SHADER_F16, Capabilities::SHADER_FLOAT16),
    ]
    .into_iter()
    .filter(|(feature, _)| features.contains(*feature))
    .fold(Capabilities::empty(), |caps, (_, cap)| caps | cap)
}

/// The adapter every test in this binary shares (lavapipe on a machine without a GPU).
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let _ = env_logger::builder().is_test(true).try_init();
        let gpu =
            Gpu::new(&GpuOptions::default()).expect("a wgpu adapter (install mesa-vulkan-drivers)");
        eprintln!("adapter: {}", gpu.adapter_name());
        gpu
    })
}

/// The same adapter with the plain (one-invocation-per-output) kernels: the oracle the tiled
/// kernels are checked against, itself checked against the same references.
pub fn plain_gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu =
            Gpu::new(&GpuOptions::default()).expect("a wgpu adapter (install mesa-vulkan-drivers)");
        KernelPolicy::default()
            .with_kernels(Kernels::Plain)
            .apply(&gpu)
            .unwrap();
        gpu
    })
}

/// The tiled kernels with other settings than the default (which picks the 32 × 128 tiles for
/// the small outputs of most test shapes, and the GEMM kernel by adapter: the direct one on CPU
/// drivers, the SIMT one in workgroup memory on GPUs): index 0 with the direct GEMM, every wgpu
/// runtime check, no parallel small-batch paths and the 64 × 64 tiles full-size layers get,
/// 1 with the SIMT GEMM, no checks, 128 × 128 tiles, the parallel small-batch paths (row
/// GEMV, split-K forward) and LRN in workgroup memory (both off by default on a CPU driver).
/// So each GEMM kernel runs every test on any adapter.
fn tiled_variant(index: usize) -> &'static Gpu {
    static GPUS: OnceLock<[Gpu; 2]> = OnceLock::new();
    let gpus = GPUS.get_or_init(|| {
        [
            (ShaderChecks::Full, GemmTiles::SMALL, false),
            (ShaderChecks::Off, GemmTiles::LARGE, true),
        ]
        .map(|(shader_checks, gemm_tiles, parallel)| {
            // The first runs the direct GEMM, the second the SIMT one.
            let direct_gemm = Some(!parallel);
            let options = GpuOptions {
                shader_checks,
                ..Default::default()
            };
            let gpu = Gpu::new(&options).expect("a wgpu adapter (install mesa-vulkan-drivers)");
            let policy = KernelPolicy {
                gemm_tiles: Some(gemm_tiles),
                parallel_small_batches: Some(parallel),
                workgroup_lrn: Some(parallel),
                direct_gemm,
                ..KernelPolicy::default()
            };
            policy.apply(&gpu).unwrap();
            gpu
        })
    });
    &gpus[index]
}

/// The adapter with mixed precision (`Precision::Mixed`: f16 operands, f32 sums), index 0 with
/// the default tiles, small-batch paths and GEMM kernel, on matrix units wherever the adapter
/// offers them (`Matrix::On`: also on a CPU driver, where `auto` passes them over, so that
/// Mesa 26's lavapipe runs the whole network on them), 1 with the SIMT GEMM, 128 × 128 tiles
/// and the small-batch paths (split-K forward) on.
pub fn mixed_gpus() -> [(&'static str, &'static Gpu); 2] {
    static GPUS: OnceLock<[Gpu; 2]> = OnceLock::new();
    let gpus = GPUS.get_or_init(|| {
        [(None, None), (Some(GemmTiles::LARGE), Some(true))].map(|(gemm_tiles, parallel)| {
            let direct_gemm = parallel.map(|_| false);
            let gpu = Gpu::new(&GpuOptions::default())
                .expect("a wgpu adapter (install mesa-vulkan-drivers)");
            let policy = KernelPolicy {
                gemm_tiles,
                parallel_small_batches: parallel,
                direct_gemm,
                precision: Precision::Mixed,
                ..KernelPolicy::default()
            };
            let on = KernelPolicy {
                matrix: Matrix::On,
                ..policy
            };
            let matrix_units = parallel.is_none() && GemmCoop::for_device(&gpu, &on).is_some();
            if matrix_units { on } else { policy }.apply(&gpu).unwrap();
            gpu
        })
    });
    [
        ("mixed", &gpus[0]),
        ("mixed, SIMT GEMM, 128 tiles, small-batch paths", &gpus[1]),
    ]
}

/// Both kernel families, the tiled one also with every wgpu runtime check and with none
/// (`--shader-checks full | off`) and with each tile size, for tests that must hold for each.
pub fn gpus() -> [(&'static str, &'static Gpu); 4] {
    [
        ("tiled", gpu()),
        ("plain", plain_gpu()),
        (
            "tiled, direct GEMM, full checks, 64x64 tiles",
            tiled_variant(0),
        ),
        (
            "tiled, SIMT GEMM, no checks, 128 tiles, small-batch paths, workgroup LRN",
            tiled_variant(1),
        ),
    ]
}

/// Runs prepared dispatches once and waits.
pub fn run(gpu: &Gpu, dispatches: impl IntoIterator<Item = Dispatch>) {
    let mut program = Program::new();
    program.extend(dispatches);
    program.run(gpu).unwrap();
}

pub fn upload(gpu: &Gpu, name: &str, shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_f32(gpu, name, shape, data).unwrap()
}

/// Asserts that `got` (from the GPU) is within normwise relative error `tol` of the
/// reference `want`, and that no single element is far outside it
/// ([`reference::element_mismatches`]), printing the error either way so the test log shows
/// the margin, and the first mismatching elements on failure.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_close_per_element(what, got, want, tol, tol);
}

/// [`assert_close`] with its own normwise tolerance for the per-element bound,
/// `element_tol` (which `reference::ELEMENT_FACTOR` multiplies).
pub fn assert_close_per_element(what: &str, got: &[f32], want: &[f64], tol: f64, element_tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let err = reference::rel_err(got, want);
    let abs = reference::max_abs_diff(got, want);
    eprintln!("{what}: normwise relative error {err:.3e} (max abs {abs:.3e}, tolerance {tol:.0e})");
    assert!(
        err <= tol,
        "{what}: relative error {err:.3e} exceeds {tol:.0e}"
    );
    let bad = reference::element_mismatches(got, want, element_tol);
    let first: Vec<String> = bad
        .iter()
        .take(5)
        .map(|(i, g, w)| format!("[{i}] {g} vs {w}"))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: {} of {} elements beyond {:.0e} per element; first: {}",
        bad.len(),
        got.len(),
        reference::ELEMENT_FACTOR * element_tol,
        first.join(", ")
    );
}

/// Asserts that `fused` (a forward with its ReLU epilogue) is exactly ReLU of `plain` (the
/// same forward without it), and that `plain` had negatives for the ReLU to clear.
pub fn assert_relu_of(what: &str, fused: &[f32], plain: &[f32]) {
    assert_eq!(fused.len(), plain.len(), "{what}: length");
    let negatives = plain.iter().filter(|&&v| v < 0.0).count();
    assert!(negatives > 0, "{what}: no negative output to test ReLU on");
    let bad: Vec<String> = fused
        .iter()
        .zip(plain)
        .enumerate()
        .filter(|(_, (&f, &p))| f != if p > 0.0 { p } else { 0.0 })
        .take(5)
        .map(|(i, (f, p))| format!("[{i}] {f} from {p}"))
        .collect();
    assert!(bad.is_empty(), "{what}: not ReLU of the output: {bad:?}");
    eprintln!(
        "{what}: ReLU of the output ({negatives} of {} cleared)",
        plain.len()
    );
}

/// A small deterministic generator (xorshift64*), so tests need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    pub fn normals(&mut self, n: usize, scale: f64) -> Vec<f32> {
        (0..n).map(|_| (self.normal() * scale) as f32).collect()
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A safetensors fixture written by `tools/gen_fixtures.py`.
pub struct Fixture {
    pub name: String,
    tensors: HashMap<String, (Vec<usize>, Vec<u8>, safetensors::Dtype)>,
    meta: HashMap<String, String>,
}

impl Fixture {
    pub fn load(name: &str) -> Self {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(format!("{name}.safetensors"));
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run tools/gen_fixtures.py)", path.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(k, v)| (k, (v.shape().to_vec(), v.data().to_vec(), v.dtype())))
            .collect();
        Self {
            name: name.to_string(),
            tensors,
            meta: header.metadata().clone().unwrap_or_default(),
        }
    }

    fn get(&self, key: &str) -> &(Vec<usize>, Vec<u8>, safetensors::Dtype) {
        self.tensors
            .get(key)
            .unwrap_or_else(|| panic!("fixture {} has no tensor '{key}'", self.name))
    }

    pub fn shape(&self, key: &str) -> Vec<usize> {
        self.get(key).0.clone()
    }

    pub fn f32(&self, key: &str) -> Vec<f32> {
        let (_, data, dtype) = self.get(key);
        assert_eq!(
            *dtype,
            safetensors::Dtype::F32,
            "{}: {key} dtype",
            self.name
        );
        data.chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    /// A reference tensor (float64 in PyTorch, stored rounded to f32) widened for comparison.
    pub fn f64(&self, key: &str) -> Vec<f64> {
        reference::to_f64(&self.f32(key))
    }

    pub fn i64(&self, key: &str) -> Vec<i64> {
        let (_, data, dtype) = self.get(key);
        assert_eq!(
            *dtype,
            safetensors::Dtype::I64,
            "{}: {key} dtype",
            self.name
        );
        data.chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    pub fn meta(&self, key: &str) -> String {
        self.meta
            .get(key)
            .unwrap_or_else(|| panic!("fixture {} has no metadata '{key}'", self.name))
            .clone()
    }

    pub fn meta_f64(&self, key: &str) -> f64 {
        self.meta(key).parse().unwrap()
    }

    pub fn meta_usize(&self, key: &str) -> usize {
        self.meta(key).parse().unwrap()
    }

    /// How far PyTorch's own float32 result lies from its float64 one for `key`.
    pub fn torch_f32_err(&self, key: &str) -> f64 {
        self.meta_f64(&format!("f32_err.{key}"))
    }

    /// How far PyTorch's own float32 result's farthest element lies from its float64 one
    /// for `key`, relative to the tensor's RMS plus the element's magnitude.
    pub fn torch_f32_element_err(&self, key: &str) -> f64 {
        self.meta_f64(&format!("f32_element_err.{key}"))
    }

    /// Compares a GPU result with the fixture's float64 reference. The tolerance is
    /// `max(factor × PyTorch's float32 error on this tensor, floor)`: we ask to be as accurate
    /// as PyTorch's float32 within a small factor, with a floor for tensors where PyTorch's
    /// float32 happens to be exact (pools, ReLU) but a different summation order is not.
    /// No element may be farther off than `assert_close` allows or than twice PyTorch's
    /// float32's farthest element, whichever is wider: in mixed precision a float32 sum can
    /// land across a float16 rounding midpoint from the float64 one, so one operand rounds to
    /// the other neighbour and every product it feeds moves by up to 2⁻¹⁰ of itself, as it
    /// does in PyTorch's own float32 (docs/coop-on-lavapipe.md).
    pub fn assert_matches(&self, key: &str, got: &[f32], factor: f64, floor: f64) {
        let torch = self.torch_f32_err(key);
        let torch_element = self.torch_f32_element_err(key);
        let tol = (factor * torch).max(floor);
        let element_tol = tol.max(2.0 * torch_element / reference::ELEMENT_FACTOR);
        eprintln!(
            "{}.{key}: PyTorch float32 error {torch:.3e}, farthest element {torch_element:.3e}",
            self.name
        );
        assert_close_per_element(
            &format!("{}.{key}", self.name),
            got,
            &self.f64(key),
            tol,
            element_tol,
        );
    }
}
