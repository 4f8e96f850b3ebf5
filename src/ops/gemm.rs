//! Tiled implicit GEMM (`shaders/gemm.wgsl`): the fast path of Conv2d and Linear — forward,
//! input gradient and weight gradient (split-K, with `ops::gemm_reduce`'s deterministic
//! reduction; the bias gradient is there too). The conv2d and linear modules choose it when
//! the device's [`KernelPolicy`] says `Tiled`; a linear layer is the 1×1 convolution of a 1×1
//! image. Each dispatch runs the SIMT kernel (tiles in workgroup memory), its direct form on
//! CPU drivers (`shaders/gemm_direct.wgsl`: operands straight from the buffers, the same bits,
//! see `KernelPolicy::direct_gemm`) or, where the device has matrix units the policy lets it
//! use, the cooperative-matrix one (`ops::gemm_coop`). All three take the same bindings,
//! parameters and grid.

use crate::error::{Error, Result};
use crate::ops::shader_params;
use crate::ops::{gemm_reduce, to_u32};
use crate::ops::{GemmCoop, KernelPolicy, Precision, Shader};
use crate::runtime::{Arg, Dispatch, Gpu, KernelCall, Tensor, TensorSlice};

/// Split-K chunks are a multiple of this (of every tile shape's depth `BK`, the
/// cooperative-matrix kernel's too, which divides it): `gemm.wgsl`'s `SUM_BLOCK`, the length of
/// its blocked sums.
const TILE_K: usize = 64;
/// Aim for weight-gradient reductions of about this length per workgroup.
const SPLIT_K_TARGET: usize = 2048;
/// A forward pass whose output fills fewer tiles than this (a small batch) has its reduction
/// split into chunks of at least `TILE_K`, aiming at `FORWARD_SPLIT_TARGET` workgroups, where
/// the device's policy has `parallel_small_batches`.
const FORWARD_SPLIT_BELOW: usize = 128;
const FORWARD_SPLIT_TARGET: usize = 256;

/// The direct kernel's tile when the policy forces none: only BM and BN mean anything to it
/// (its blocks are its own, `shaders/gemm_direct.wgsl`), and on a CPU a tile only sets the
/// work per workgroup. 32 × 32 gives small problems more workgroups than the SIMT kernel's
/// 64 × 64 or 32 × 128 (on lavapipe, inference at batch 1 ran 1.4-1.9x with it, batch 64
/// about the same, within the noise of those runs).
const DIRECT_TILE: GemmTiles = GemmTiles {
    bm: 32,
    bn: 32,
    ..GemmTiles::SMALL
};

/// Lanes per workgroup of the CPU-driver kernels that share elements by `broadcast8`
/// (`LANES` in `shaders/gemm_direct.wgsl`, `BROADCAST_LANES` in `subgroup_broadcast.wgsl`).
pub(crate) const BROADCAST_LANES: usize = 8;
/// The most entries of C one lane of the direct kernel keeps (`MAX_ENTRIES`).
const DIRECT_MAX_ENTRIES: usize = 32;

/// The direct kernel's block per lane for an `m × n` output: (`RH`, `CN`), RH blocks of 8 rows
/// by CN columns. CN is 4, or fewer when `n` is small (a linear layer's batch) so that fewer of
/// the 8 lanes compute nothing; RH then grows so that each gather of B serves more rows, up to
/// 32 entries per lane (RH · CN ≤ 4, the kernel's `MAX_ENTRIES`) and no more row blocks than C
/// has rows for.
fn direct_block(m: usize, n: usize) -> (u32, u32) {
    let columns: u32 = match n {
        0..=8 => 1,
        9..=16 => 2,
        _ => 4,
    };
    let most_blocks = (DIRECT_MAX_ENTRIES / BROADCAST_LANES) as u32;
    let row_blocks = (m.div_ceil(BROADCAST_LANES) as u32).clamp(1, most_blocks);
    ((most_blocks / columns).min(row_blocks), columns)
}

/// Whether `gpu`'s CPU-driver kernels can share elements across a workgroup of 8 lanes by
/// subgroup broadcasts (`shaders/subgroup_broadcast.wgsl`): the device has subgroups and none
/// smaller than 8 lanes, so such a workgroup is one subgroup (wgpu's GL backend has none).
pub(crate) fn lanes_share_by_subgroup(gpu: &Gpu) -> bool {
    gpu.device.features().contains(wgpu::Features::SUBGROUP)
        && gpu
            .subgroup_sizes()
            .is_some_and(|(min, _)| min as usize >= BROADCAST_LANES)
}

/// The direct kernel's form on `gpu`: A's elements shared by subgroup broadcasts where lanes
/// can share them, else loaded by every lane.
fn direct_shader(gpu: &Gpu) -> Shader {
    if lanes_share_by_subgroup(gpu) {
        Shader::GemmDirectSubgroup
    } else {
        Shader::GemmDirect
    }
}

/// The tiled GEMM's tile shape (`shaders/gemm.wgsl`'s override constants): `bm × bn` outputs
/// per workgroup of 256 invocations, `tm × tn` per invocation, `bk` deep.
///
/// By default a problem gets 64 × 64 × 16 with 4 × 4 per invocation — the fastest of six
/// shapes measured on an H100 (Vulkan), within 7 % of each other except 128 × 128, which ran
/// at a tenth of the speed (its 8 × 8 block and the blocked-sum copy of it, 128 accumulators,
/// spill registers) — or 32 × 128 × 16 when its output has at most 32 rows per group, where a
/// 64-row tile would be mostly empty (narrow models, few classes: 1.3-1.6x on such layers on
/// lavapipe). Other shapes are for tuning (`--gemm-tiles 128x64x16/8x4`); every shape passes
/// the same tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmTiles {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub tm: u32,
    pub tn: u32,
}

impl GemmTiles {
    pub const SMALL: Self = Self {
        bm: 64,
        bn: 64,
        bk: 16,
        tm: 4,
        tn: 4,
    };
    pub const NARROW: Self = Self {
        bm: 32,
        bn: 128,
        bk: 16,
        tm: 4,
        tn: 4,
    };
    pub const LARGE: Self = Self {
        bm: 128,
        bn: 128,
        bk: 8,
        tm: 8,
        tn: 8,
    };
    const THREADS: u32 = 256;
    const MAX_LOADS: u32 = 8;

    /// The default shape for an output of `rows` rows (per group) on a device with
    /// `workgroup_bytes` of workgroup memory: the preferred shape, else the same shape
    /// shallower (half the depth, half the memory) until it fits. Every default shape needs at
    /// most 11 KiB, so a device with WebGPU's 16 KiB keeps them; a stricter one gets `BK` 8 or 4.
    pub fn for_rows(rows: usize, workgroup_bytes: u32) -> Self {
        let mut tiles = if rows <= Self::NARROW.bm as usize {
            Self::NARROW
        } else {
            Self::SMALL
        };
        while tiles.workgroup_bytes() > workgroup_bytes {
            let shallower = Self {
                bk: tiles.bk / 2,
                ..tiles
            };
            if shallower.validate().is_err() {
                // Past the narrow shape's shallowest: the square one goes down to BK 4.
                if tiles.bm == Self::SMALL.bm {
                    break;
                }
                tiles = Self {
                    bk: 8,
                    ..Self::SMALL
                };
                continue;
            }
            tiles = shallower;
        }
        tiles
    }

    /// Workgroup memory the shape needs: both tiles (A padded by one vec4 per row) and the
    /// double-buffered k terms, 16 bytes per vec4.
    pub fn workgroup_bytes(&self) -> u32 {
        16 * (self.bk * (self.bm / 4 + 1) + self.bk * self.bn / 4 + 2 * self.bk)
    }

    /// Checks what the shader assumes of a shape (see the head of `shaders/gemm.wgsl`).
    pub fn validate(&self) -> Result<()> {
        let loads = |side: u32| side * self.bk / Self::THREADS;
        let ok = matches!(self.tm, 4 | 8)
            && matches!(self.tn, 4 | 8)
            && self.bk > 0
            && (TILE_K as u32).is_multiple_of(self.bk)
            && self.bm.is_multiple_of(self.tm)
            && self.bn.is_multiple_of(self.tn)
            && (self.bm / self.tm) * (self.bn / self.tn) == Self::THREADS
            && [self.bm, self.bn].iter().all(|&side| {
                (side * self.bk).is_multiple_of(Self::THREADS)
                    && (1..=Self::MAX_LOADS).contains(&loads(side))
            });
        if ok {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "--gemm-tiles {self}: expected TM, TN of 4 or 8, BK dividing 64, \
                 (BM/TM)·(BN/TN) = 256 and BM·BK, BN·BK multiples of 256 up to 2048"
            )))
        }
    }

    pub(crate) fn constants(&self, precision: Precision) -> [(&'static str, f64); 6] {
        [
            precision.round_f16_constant(),
            ("BM", f64::from(self.bm)),
            ("BN", f64::from(self.bn)),
            ("BK", f64::from(self.bk)),
            ("TM", f64::from(self.tm)),
            ("TN", f64::from(self.tn)),
        ]
    }
}

impl std::fmt::Display for GemmTiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}x{}x{}/{}x{}",
            self.bm, self.bn, self.bk, self.tm, self.tn
        )
    }
}

impl GemmTiles {
    /// `64`, `128`, or `BMxBNxBK/TMxTN`, not yet checked against the SIMT kernel's rules.
    fn parse_shape(s: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "--gemm-tiles '{s}': expected 64, 128 or BMxBNxBK/TMxTN (e.g. 128x64x16/8x4)"
            ))
        };
        Ok(match s.trim() {
            "64" => Self::SMALL,
            "128" => Self::LARGE,
            other => {
                let numbers: Vec<u32> = other
                    .split(['x', '/'])
                    .map(|n| n.trim().parse().map_err(|_| bad()))
                    .collect::<Result<_>>()?;
                let &[bm, bn, bk, tm, tn] = numbers.as_slice() else {
                    return Err(bad());
                };
                Self { bm, bn, bk, tm, tn }
            }
        })
    }
}

impl std::str::FromStr for GemmTiles {
    type Err = Error;

    /// `64`, `128`, or `BMxBNxBK/TMxTN`.
    fn from_str(s: &str) -> Result<Self> {
        let tiles = Self::parse_shape(s)?;
        tiles.validate()?;
        Ok(tiles)
    }
}

/// The SIMT kernel or its direct form with a tile shape: what `--autotune full` chooses per
/// problem instead of the policy's (`ops::tune`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmChoice {
    pub tiles: GemmTiles,
    pub direct: bool,
}

impl GemmChoice {
    /// The choices worth timing on `gpu` for an output of `m` rows per group: on CPU drivers
    /// the direct kernel with its tile and the 64 × 64 one, and the SIMT kernel's default; on
    /// GPUs the SIMT kernel with each of its three shapes that fits the workgroup memory; less
    /// the one the policy runs without tuning (timed as the policy's choice: the matrix units'
    /// kernel where the policy takes them).
    pub fn candidates(gpu: &Gpu, m: usize) -> Vec<Self> {
        let memory = gpu.limits().max_compute_workgroup_storage_size;
        let simt = |tiles| Self {
            tiles,
            direct: false,
        };
        let direct = |tiles| Self {
            tiles,
            direct: true,
        };
        let all = if gpu.is_cpu() {
            vec![
                direct(DIRECT_TILE),
                direct(GemmTiles::SMALL),
                simt(GemmTiles::for_rows(m, memory)),
            ]
        } else {
            [GemmTiles::SMALL, GemmTiles::NARROW, GemmTiles::LARGE]
                .into_iter()
                .filter(|t| t.workgroup_bytes() <= memory)
                .map(simt)
                .collect()
        };
        // What the policy runs anyway is timed as the policy's choice.
        let default = Kernel::choose(gpu, m, None);
        all.into_iter().filter(|c| c.kernel() != default).collect()
    }

    fn kernel(self) -> Kernel {
        if self.direct {
            Kernel::Direct(self.tiles)
        } else {
            Kernel::Simt(self.tiles)
        }
    }
}

impl std::fmt::Display for GemmChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kernel = if self.direct { "direct" } else { "simt" };
        write!(f, "{kernel} {}", self.tiles)
    }
}

impl std::str::FromStr for GemmChoice {
    type Err = Error;

    /// `simt BMxBNxBK/TMxTN` or `direct BMxBNxBK/TMxTN` (a direct tile need only be
    /// nonzero: the direct kernel reads BM and BN alone).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "GEMM choice '{s}': expected simt|direct BMxBNxBK/TMxTN"
            ))
        };
        let (kernel, tiles) = s.trim().split_once(' ').ok_or_else(bad)?;
        let (tiles, direct) = match kernel {
            "simt" => (tiles.parse()?, false),
            "direct" => (GemmTiles::parse_shape(tiles)?, true),
            _ => return Err(bad()),
        };
        if tiles.bm == 0 || tiles.bn == 0 {
            return Err(bad());
        }
        Ok(Self { tiles, direct })
    }
}

/// The twelve sizes both convolution shaders' parameter structs start with (see
/// [`Geometry::shader_sizes`]).
pub(crate) type ConvSizes = [u32; 12];

/// A convolution's shape (a linear layer: every spatial size 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
}

impl Geometry {
    pub fn linear(batch: usize, in_features: usize, out_features: usize) -> Self {
        Self {
            batch,
            in_channels: in_features,
            in_h: 1,
            in_w: 1,
            out_channels: out_features,
            out_h: 1,
            out_w: 1,
            kernel_h: 1,
            kernel_w: 1,
            stride: 1,
            padding: 0,
            groups: 1,
        }
    }

    /// The twelve sizes in the order both convolution shaders' parameter structs start with,
    /// checked to fit the shaders' u32 indices (the tensors' element counts too).
    pub(crate) fn shader_sizes(&self, op: &'static str) -> Result<ConvSizes> {
        to_u32(
            op,
            "input elements",
            self.batch * self.in_channels * self.in_h * self.in_w,
        )?;
        to_u32(
            op,
            "output elements",
            self.batch * self.out_channels * self.out_h * self.out_w,
        )?;
        let sizes = [
            ("batch", self.batch),
            ("in_channels", self.in_channels),
            ("height", self.in_h),
            ("width", self.in_w),
            ("out_channels", self.out_channels),
            ("output height", self.out_h),
            ("output width", self.out_w),
            ("kernel", self.kernel_h),
            ("kernel", self.kernel_w),
            ("stride", self.stride),
            ("padding", self.padding),
            ("groups", self.groups),
        ];
        let mut out = [0u32; 12];
        for (dst, (what, size)) in out.iter_mut().zip(sizes) {
            *dst = to_u32(op, what, size)?;
        }
        Ok(out)
    }

    /// Every weight row, grouped: the tiled kernel's view of an unsliced weight.
    pub(crate) fn all_rows(&self) -> Rows {
        Rows {
            offset: 0,
            per_group: self.out_channels / self.groups,
        }
    }

    fn taps(&self) -> usize {
        self.kernel_h * self.kernel_w
    }

    fn cin_per_group(&self) -> usize {
        self.in_channels / self.groups
    }
}

/// Which rows of the weight a dispatch sees: `rows_per_group` rows per group, the first of
/// them global row `row_offset` (0 unless the weight is bound in slices).
#[derive(Clone, Copy, Debug)]
pub struct Rows {
    pub offset: usize,
    pub per_group: usize,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct GemmParams {
    geometry: ConvSizes,
    row_offset: u32,
    rows_per_group: u32,
    accumulate: u32,
    relu: u32,
    k_split: u32,
    k_chunk: u32,
}

shader_params!(GemmParams {
    geometry,
    row_offset,
    rows_per_group,
    accumulate,
    relu,
    k_split,
    k_chunk
});

fn params(
    g: &Geometry,
    rows: Rows,
    accumulate: bool,
    relu: bool,
    k_split: usize,
    k_chunk: usize,
) -> Result<GemmParams> {
    Ok(GemmParams {
        geometry: g.shader_sizes("gemm")?,
        row_offset: rows.offset as u32,
        rows_per_group: rows.per_group as u32,
        accumulate: u32::from(accumulate),
        relu: u32::from(relu),
        k_split: k_split as u32,
        k_chunk: k_chunk as u32,
    })
}

/// The kernel a GEMM dispatch runs: the SIMT one with its tile shape, its direct form for CPU
/// drivers (`shaders/gemm_direct.wgsl`, the same tiles without workgroup memory), or the
/// cooperative-matrix one where the device and the policy allow it (`ops::gemm_coop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Simt(GemmTiles),
    Direct(GemmTiles),
    Coop(GemmCoop),
}

impl Kernel {
    /// The kernel for an output of `m` rows per group: the tuned choice for this problem
    /// (autotuning timed it against the rest), else matrix units where they can, else the
    /// direct kernel on CPU drivers or the SIMT one, with the policy's tile shape or their own.
    fn choose(gpu: &Gpu, m: usize, tuned: Option<GemmChoice>) -> Self {
        let policy = KernelPolicy::of(gpu);
        if let Some(choice) = tuned {
            return choice.kernel();
        }
        if let Some(coop) = GemmCoop::for_device(gpu, &policy) {
            return Self::Coop(coop);
        }
        if policy.direct_gemm(gpu) {
            return Self::Direct(policy.gemm_tiles.unwrap_or(DIRECT_TILE));
        }
        Self::Simt(policy.gemm_tiles.unwrap_or_else(|| {
            GemmTiles::for_rows(m, gpu.limits().max_compute_workgroup_storage_size)
        }))
    }

    /// The workgroup tile, (BM, BN).
    fn tile(&self) -> (usize, usize) {
        match self {
            Self::Simt(shape) | Self::Direct(shape) => (shape.bm as usize, shape.bn as usize),
            Self::Coop(_) => (GemmCoop::BM as usize, GemmCoop::BN as usize),
        }
    }
}

/// A GEMM dispatch over an `m × n` output per group, `depth` workgroups deep.
#[allow(clippy::too_many_arguments)]
fn tiled(
    gpu: &Gpu,
    entry: &'static str,
    p: &GemmParams,
    args: &[Arg<'_>],
    m: usize,
    n: usize,
    depth: usize,
    tuned: Option<GemmChoice>,
) -> Result<Dispatch> {
    let kernel = Kernel::choose(gpu, m, tuned);
    let (shader, constants) = match &kernel {
        Kernel::Simt(shape) => (
            Shader::Gemm,
            shape.constants(KernelPolicy::of(gpu).precision).to_vec(),
        ),
        Kernel::Direct(shape) => {
            let mut constants = shape.constants(KernelPolicy::of(gpu).precision).to_vec();
            let (row_blocks, columns) = direct_block(m, n);
            constants.push(("RH", f64::from(row_blocks)));
            constants.push(("CN", f64::from(columns)));
            (direct_shader(gpu), constants)
        }
        Kernel::Coop(coop) => (coop.shader(), coop.constants().to_vec()),
    };
    let (bm, bn) = kernel.tile();
    gpu.prepare_grid_with(
        KernelCall {
            shader: shader.into(),
            entry,
            params: bytemuck::bytes_of(p),
            args,
            threads: 0,
        },
        &constants,
        [n.div_ceil(bn), m.div_ceil(bm), depth],
    )
}

/// Splits a reduction of `reduction` terms into about `wanted` chunks whose length is a
/// multiple of `TILE_K`; returns (chunks, chunk length). One chunk means no split.
fn split_k(reduction: usize, wanted: usize) -> (usize, usize) {
    let chunk = reduction.div_ceil(wanted.max(1)).div_ceil(TILE_K) * TILE_K;
    (reduction.div_ceil(chunk.max(1)).max(1), chunk)
}

/// `y = conv(x, w rows) + b` (ReLU'd when `relu`) for the output channels `rows` covers: one
/// dispatch, or, when the output fills few tiles, a split reduction and the dispatch that adds
/// the chunks. `tuned`, here and below: the kernel and tiles autotuning chose for this problem.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    gpu: &Gpu,
    g: &Geometry,
    x: &Tensor,
    w: TensorSlice<'_>,
    b: &Tensor,
    y: &Tensor,
    rows: Rows,
    relu: bool,
    tuned: Option<GemmChoice>,
) -> Result<Vec<Dispatch>> {
    let n = g.batch * g.out_h * g.out_w;
    let reduction = g.cin_per_group() * g.taps();
    let (bm, bn) = Kernel::choose(gpu, rows.per_group, tuned).tile();
    let tiles = rows.per_group.div_ceil(bm) * n.div_ceil(bn) * g.groups;
    let wanted = if KernelPolicy::of(gpu).parallel_small_batches(gpu) && tiles < FORWARD_SPLIT_BELOW
    {
        FORWARD_SPLIT_TARGET.div_ceil(tiles).min(reduction / TILE_K)
    } else {
        1
    };
    let (k_split, k_chunk) = split_k(reduction, wanted);
    let p = params(g, rows, false, relu, k_split, k_chunk)?;
    let partial = (k_split > 1)
        .then(|| Tensor::zeros(gpu, "split-k partial outputs", &[k_split, y.numel()]))
        .transpose()?;
    let out = partial.as_ref().map_or_else(|| y.all(), Tensor::all);
    let args = [
        Arg::Read(w),
        Arg::Read(x.all()),
        Arg::Read(b.all()),
        Arg::Write(out),
    ];
    let depth = g.groups * k_split;
    let mut dispatches = vec![tiled(
        gpu,
        "gemm_forward",
        &p,
        &args,
        rows.per_group,
        n,
        depth,
        tuned,
    )?];
    if let Some(partial) = &partial {
        dispatches.push(gemm_reduce::splits_bias(gpu, g, partial, b, y, rows, relu)?);
    }
    Ok(dispatches)
}

/// `dx (+)= conv_transpose(dy, w rows)`: `accumulate` adds to what earlier slices wrote.
#[allow(clippy::too_many_arguments)]
pub fn backward_input(
    gpu: &Gpu,
    g: &Geometry,
    dy: &Tensor,
    w: TensorSlice<'_>,
    dx: &Tensor,
    rows: Rows,
    accumulate: bool,
    tuned: Option<GemmChoice>,
) -> Result<Dispatch> {
    let p = params(g, rows, accumulate, false, 1, 0)?;
    // Binding 3 is unused by this entry point; any buffer fills it.
    let args = [
        Arg::Read(w),
        Arg::Read(dy.all()),
        Arg::Read(w),
        Arg::Write(dx.all()),
    ];
    let n = g.batch * g.in_h * g.in_w;
    tiled(
        gpu,
        "gemm_backward_input",
        &p,
        &args,
        g.cin_per_group(),
        n,
        g.groups,
        tuned,
    )
}

/// `dw rows += dyᵀ · im2col(x)`, split along the reduction when it is long, with the
/// partial sums reduced in a fixed order.
pub fn backward_weight(
    gpu: &Gpu,
    g: &Geometry,
    dy: &Tensor,
    x: &Tensor,
    dw: TensorSlice<'_>,
    rows: Rows,
    tuned: Option<GemmChoice>,
) -> Result<Vec<Dispatch>> {
    let reduction = g.batch * g.out_h * g.out_w;
    let row_len = g.cin_per_group() * g.taps();
    let (k_split, k_chunk) = split_k(reduction, reduction.div_ceil(SPLIT_K_TARGET).min(64));
    let p = params(g, rows, false, false, k_split, k_chunk)?;
    let weights = g.groups * rows.per_group * row_len;
    let partial = (k_split > 1)
        .then(|| Tensor::zeros(gpu, "split-k partial sums", &[k_split, weights]))
        .transpose()?;
    let out = partial.as_ref().map_or(dw, Tensor::all);
    let args = [
        Arg::Read(dy.all()),
        Arg::Read(x.all()),
        Arg::Read(dy.all()),
        Arg::Write(out),
    ];
    let depth = g.groups * k_split;
    let entry = "gemm_backward_weight";
    let mut dispatches = vec![tiled(
        gpu,
        entry,
        &p,
        &args,
        rows.per_group,
        row_len,
        depth,
        tuned,
    )?];
    if let Some(partial) = &partial {
        dispatches.push(gemm_reduce::splits(gpu, partial, dw)?);
    }
    Ok(dispatches)
}
