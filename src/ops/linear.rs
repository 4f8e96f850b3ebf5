//! Linear (`shaders/linear.wgsl`): `y = x Wᵀ + b`, and the gradients of input, weight and
//! bias. A weight too large for one storage binding (FC6) is bound as aligned row slices,
//! one dispatch per slice.

use crate::error::{Error, Result};
use crate::ops::gemm::{self, Geometry, Rows};
use crate::ops::gemm_reduce;
use crate::ops::shader_params;
use crate::ops::tune::{self, Tuned};
use crate::ops::{expect_shape, launch, launch_with, to_u32};
use crate::ops::{GemmChoice, KernelPolicy, Kernels, Shader};
use crate::runtime::{binding_chunks, Arg, Dispatch, Gpu, KernelCall, Phase, Tensor};

/// Below this batch a linear layer is matrix-vector work (and its weight gradient an outer
/// product): a 64-wide GEMM tile would be mostly empty, so the forward runs as GEMVs (a
/// workgroup per weight row where the device's policy has `parallel_small_batches`) and the
/// backward as the one-output-per-invocation kernels.
const GEMV_BELOW_BATCH: usize = 64;
/// The same where the GEMM is the direct kernel (CPU drivers): its blocks are 8 columns wide
/// at small batches, and it multiplies 8 weight rows per load of an input, where the GEMVs
/// load a weight and an input per multiply-add (on lavapipe the GEMVs ran FC layers at a
/// third of the convolutions' GFLOP/s).
const DIRECT_GEMV_BELOW_BATCH: usize = 8;
/// The most workgroups along one grid dimension (WebGPU's limit).
const MAX_GRID: usize = 65535;

/// Whether a linear layer of `dims` (batch, in, out) runs its forward (`backward` false) or
/// backward as tiled GEMMs: below [`GEMV_BELOW_BATCH`] ([`DIRECT_GEMV_BELOW_BATCH`] with the
/// direct GEMM) never (the matrix-vector kernels round operands under mixed precision as the
/// GEMM does); else the device policy's
/// kernels, or where it autotunes, the faster on scratch tensors of this shape.
fn use_tiled(gpu: &Gpu, dims: (usize, usize, usize), backward: bool) -> Result<Option<Tuned>> {
    let (n, in_f, out_f) = dims;
    let policy = KernelPolicy::of(gpu);
    let below = if policy.direct_gemm(gpu) {
        DIRECT_GEMV_BELOW_BATCH
    } else {
        GEMV_BELOW_BATCH
    };
    if n < below {
        return Ok(None);
    }
    let pass = if backward { "backward" } else { "forward" };
    let key = format!("linear n{n} {in_f}->{out_f} {pass}");
    // The forward's GEMM rows are the outputs; the backward's input gradient has the inputs as
    // rows (its weight gradient, the outputs): the larger stands for both.
    let m = if backward { in_f.max(out_f) } else { out_f };
    let tuned = tune::choose(gpu, &key, m, || {
        let scratch = |name: &str, shape: &[usize]| Tensor::zeros(gpu, name, shape);
        let x = scratch("autotune x", &[n, in_f])?;
        let w = scratch("autotune w", &[out_f, in_f])?;
        let y = scratch("autotune y", &[n, out_f])?;
        let b = scratch("autotune b", &[out_f])?;
        if backward {
            let dx = scratch("autotune dx", &[n, in_f])?;
            let dw = scratch("autotune dw", &[out_f, in_f])?;
            linear_backward(gpu, &x, &w, &y, Some(&dx), Some((&dw, &b)))
        } else {
            linear_forward(gpu, &x, &w, &b, &y, false)
        }
    })?;
    Ok((tuned.kernels == Kernels::Tiled).then_some(tuned))
}

/// Whether the small-batch forward is `linear_forward_broadcast`: with tiled kernels on CPU
/// drivers (the direct GEMM's devices) whose lanes can share the input's elements by subgroup
/// broadcast; on lavapipe the one-output-per-invocation kernel loads the same input element
/// in every lane, one lane at a time.
fn broadcast_forward(gpu: &Gpu) -> bool {
    let policy = KernelPolicy::of(gpu);
    policy.kernels == Kernels::Tiled
        && policy.direct_gemm(gpu)
        && gemm::lanes_share_by_subgroup(gpu)
}

/// The matrix-vector kernels' operand rounding: on under mixed precision.
fn rounding(gpu: &Gpu) -> [(&'static str, f64); 1] {
    [KernelPolicy::of(gpu).precision.round_f16_constant()]
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct LinearParams {
    batch: u32,
    in_features: u32,
    out_features: u32,
    row_offset: u32,
    rows: u32,
    accumulate: u32,
    relu: u32,
}

shader_params!(LinearParams {
    batch,
    in_features,
    out_features,
    row_offset,
    rows,
    accumulate,
    relu
});

/// Checks x `[N, IN]`, w `[OUT, IN]`, y `[N, OUT]`; returns (N, IN, OUT).
fn check(x: &Tensor, w: &Tensor, y: &Tensor) -> Result<(usize, usize, usize)> {
    let [out_f, in_f] = <[usize; 2]>::try_from(w.shape()).map_err(|_| Error::Shape {
        op: "linear",
        what: format!(
            "weight '{}' has shape {:?}, expected [out, in]",
            w.name(),
            w.shape()
        ),
    })?;
    let n = x.shape().first().copied().unwrap_or(0);
    expect_shape("linear", x, &[n, in_f])?;
    expect_shape("linear", y, &[n, out_f])?;
    to_u32(
        "linear",
        "elements",
        (n * in_f).max(n * out_f).max(w.numel()),
    )?;
    Ok((n, in_f, out_f))
}

/// The dispatches of every weight row slice, each slice's made with its parameter struct.
fn per_row_slice<D: IntoIterator<Item = Dispatch>>(
    gpu: &Gpu,
    (n, in_f, out_f): (usize, usize, usize),
    mut make: impl FnMut(LinearParams, usize, usize) -> Result<D>,
) -> Result<Vec<Dispatch>> {
    binding_chunks(gpu, out_f, in_f)
        .into_iter()
        .enumerate()
        .map(|(k, (first, rows))| {
            let p = LinearParams {
                batch: n as u32,
                in_features: in_f as u32,
                out_features: out_f as u32,
                row_offset: first as u32,
                rows: rows as u32,
                accumulate: u32::from(k > 0),
                relu: 0,
            };
            make(p, first, rows)
        })
        .collect::<Result<Vec<D>>>()
        .map(|slices| slices.into_iter().flatten().collect())
}

/// `y = x Wᵀ + b`, or with `relu`, `y = relu(x Wᵀ + b)`: the ReLU layer after it fused into
/// its output (the backward is ReLU's, from this y).
///
/// # Shapes
/// x `[N, IN]`, w `[OUT, IN]`, b `[OUT]`, y `[N, OUT]`.
pub fn linear_forward(
    gpu: &Gpu,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    y: &Tensor,
    relu: bool,
) -> Result<Vec<Dispatch>> {
    let dims = check(x, w, y)?;
    expect_shape("linear", b, &[dims.2])?;
    if let Some(tuned) = use_tiled(gpu, dims, false)? {
        let g = Geometry::linear(dims.0, dims.1, dims.2);
        return per_row_slice(gpu, dims, |_, first, rows| {
            let w_rows = w.slice(first * dims.1, rows * dims.1);
            gemm::forward(
                gpu,
                &g,
                x,
                w_rows,
                b,
                y,
                Rows {
                    offset: first,
                    per_group: rows,
                },
                relu,
                tuned.gemm,
            )
        });
    }
    per_row_slice(gpu, dims, |p, first, rows| {
        let p = LinearParams {
            relu: u32::from(relu),
            ..p
        };
        let w_rows = w.slice(first * dims.1, rows * dims.1);
        let args = [
            Arg::Read(x.all()),
            Arg::Read(w_rows),
            Arg::Read(b.all()),
            Arg::Write(y.all()),
        ];
        // The matrix-vector kernels launched as a grid of `workgroups` (x + y · 65535).
        let on_grid = |shader: Shader, entry: &'static str, workgroups: usize| {
            let call = KernelCall {
                shader: shader.into(),
                entry,
                params: bytemuck::bytes_of(&p),
                args: &args,
                threads: 0,
            };
            let grid = [workgroups.min(MAX_GRID), workgroups.div_ceil(MAX_GRID), 1];
            gpu.prepare_grid_with(call, &rounding(gpu), grid)
                .map(|d| [d])
        };
        if KernelPolicy::of(gpu).tiled_small_batches(gpu) {
            return on_grid(Shader::Linear, "linear_forward_gemv", rows);
        }
        if broadcast_forward(gpu) {
            let blocks = rows.div_ceil(gemm::BROADCAST_LANES);
            return on_grid(Shader::LinearBroadcast, "linear_forward_broadcast", blocks);
        }
        let entry = "linear_forward";
        launch_with(
            gpu,
            Shader::Linear,
            entry,
            &p,
            &args,
            dims.0 * rows,
            &rounding(gpu),
        )
        .map(|d| [d])
    })
}

/// `dx = dy W` (assigned; skipped when `dx` is `None`), and with `grads = Some((dw, db))`,
/// `dw += dyᵀ x`, `db += Σ_n dy` (`None` for frozen parameters: no weight-gradient kernel).
///
/// # Shapes
/// As `linear_forward`; dy like y, dx like x, dw like w, db like b.
pub fn linear_backward(
    gpu: &Gpu,
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    dx: Option<&Tensor>,
    grads: Option<(&Tensor, &Tensor)>,
) -> Result<Vec<Dispatch>> {
    let dims = check(x, w, dy)?;
    let (n, in_f, out_f) = dims;
    if let Some((dw, db)) = grads {
        expect_shape("linear", dw, w.shape())?;
        expect_shape("linear", db, &[out_f])?;
    }
    if let Some(dx) = dx {
        expect_shape("linear", dx, x.shape())?;
    }
    if let Some(tuned) = use_tiled(gpu, dims, true)? {
        return linear_backward_tiled(gpu, dims, tuned.gemm, x, w, dy, dx, grads);
    }
    let mut dispatches = Vec::new();
    if let Some(dx) = dx {
        dispatches.extend(per_row_slice(gpu, dims, |p, first, rows| {
            let w_rows = w.slice(first * in_f, rows * in_f);
            let args = [Arg::Read(dy.all()), Arg::Read(w_rows), Arg::Write(dx.all())];
            let entry = "linear_backward_input";
            launch_with(
                gpu,
                Shader::Linear,
                entry,
                &p,
                &args,
                n * in_f,
                &rounding(gpu),
            )
            .map(|d| [d.in_phase(Phase::InputGrad)])
        })?);
    }
    let Some((dw, db)) = grads else {
        return Ok(dispatches);
    };
    dispatches.extend(per_row_slice(gpu, dims, |p, first, rows| {
        let dw_rows = dw.slice(first * in_f, rows * in_f);
        let args = [Arg::Read(dy.all()), Arg::Read(x.all()), Arg::Write(dw_rows)];
        let entry = "linear_backward_weight";
        launch_with(
            gpu,
            Shader::Linear,
            entry,
            &p,
            &args,
            rows * in_f,
            &rounding(gpu),
        )
        .map(|d| [d.in_phase(Phase::WeightGrad)])
    })?);
    let p = LinearParams {
        batch: n as u32,
        in_features: in_f as u32,
        out_features: out_f as u32,
        row_offset: 0,
        rows: out_f as u32,
        accumulate: 0,
        relu: 0,
    };
    let args = [Arg::Read(dy.all()), Arg::Write(db.all())];
    dispatches.push(
        launch(
            gpu,
            Shader::Linear,
            "linear_backward_bias",
            &p,
            &args,
            out_f,
        )?
        .in_phase(Phase::BiasGrad),
    );
    Ok(dispatches)
}

/// The tiled backward: per weight slice, the input gradient (accumulated over slices) and
/// that slice's weight gradient; then the bias gradient.
#[allow(clippy::too_many_arguments)]
fn linear_backward_tiled(
    gpu: &Gpu,
    dims: (usize, usize, usize),
    gemm: Option<GemmChoice>,
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    dx: Option<&Tensor>,
    grads: Option<(&Tensor, &Tensor)>,
) -> Result<Vec<Dispatch>> {
    let (n, in_f, out_f) = dims;
    let g = Geometry::linear(n, in_f, out_f);
    let mut dispatches = Vec::new();
    for (k, (first, rows)) in binding_chunks(gpu, out_f, in_f).into_iter().enumerate() {
        let (start, len) = (first * in_f, rows * in_f);
        let r = Rows {
            offset: first,
            per_group: rows,
        };
        if let Some(dx) = dx {
            dispatches.push(
                gemm::backward_input(gpu, &g, dy, w.slice(start, len), dx, r, k > 0, gemm)?
                    .in_phase(Phase::InputGrad),
            );
        }
        if let Some((dw, _)) = grads {
            dispatches.extend(
                gemm::backward_weight(gpu, &g, dy, x, dw.slice(start, len), r, gemm)?
                    .into_iter()
                    .map(|d| d.in_phase(Phase::WeightGrad)),
            );
        }
    }
    if let Some((_, db)) = grads {
        dispatches.push(gemm_reduce::backward_bias(gpu, &g, dy, db)?.in_phase(Phase::BiasGrad));
    }
    Ok(dispatches)
}
