//! `alexnet selftest`: proves that an adapter computes AlexNet correctly, in seconds.
//!
//! A reduced original AlexNet (every layer kind, grouped convolutions, LRN, overlapping
//! pooling, dropout, the classifier) is planned on the adapter exactly as training plans it,
//! so every kernel family the adapter would use runs — tiled or plain, split-K, row GEMV,
//! sliced bindings — chosen by the same rules from the same limits. Each layer's forward and
//! backward, the loss and one SGD step run on random inputs and are compared with the plain
//! CPU reference (`crate::reference`, f64). The report is what a Mac or Windows user pastes
//! into a bug report: adapter, backend, driver, limits, and per op the error and speed.

use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::layers::{Layer, LayerKind};
use crate::model::plan::{dropout_config, layer_backward, layer_forward};
use crate::model::{AlexNet, AlexNetConfig};
use crate::ops::activation::Nonlinearity;
use crate::ops::dropout::StepSeed;
use crate::ops::sgd::{sgd_step, SgdHyper};
use crate::ops::{KernelPolicy, Precision};
use crate::reference as cpu;
use crate::runtime::{Gpu, Program, Tensor, Uniform};

/// What to build the check on. The defaults run in a few seconds on lavapipe.
#[derive(Clone, Debug)]
pub struct SelftestOptions {
    pub batch: usize,
    /// Square input side (67 gives conv1 16×16 and an avgpool input of 1×1 < 6×6).
    pub image: usize,
    /// Channel multiplier of the original AlexNet.
    pub width: f64,
    pub classes: usize,
    pub seed: u64,
}

impl Default for SelftestOptions {
    fn default() -> Self {
        Self {
            batch: 2,
            image: 67,
            width: 0.25,
            classes: 10,
            seed: 7,
        }
    }
}

/// Normwise relative error each part must stay within. The reference is f64; f32 sums of a
/// few thousand terms land near 1e-7, so a correct kernel is far inside these, and a wrong
/// index or a missed tile is orders of magnitude outside.
const FORWARD_TOLERANCE: f64 = 1e-5;
const BACKWARD_TOLERANCE: f64 = 1e-4;

/// One comparison: a layer's forward output or one of its gradients, the loss or an update.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub layer: String,
    pub op: String,
    /// `forward`, `input grad`, `weight grad`, `bias grad`, `loss`, `update`.
    pub part: String,
    pub rel_err: f64,
    pub max_abs_err: f64,
    pub tolerance: f64,
    pub passed: bool,
    /// Elements beyond the per-element bound (`reference::element_mismatches`).
    pub outliers: usize,
    /// Achieved GFLOP/s of the layer's forward or backward (convolutions and linear layers).
    pub gflops: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SelftestReport {
    pub adapter: String,
    pub backend: String,
    pub driver: String,
    pub kernels: String,
    pub limits: String,
    pub checks: Vec<Check>,
    pub seconds: f64,
}

impl SelftestReport {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// Runs every check on `gpu`. Errors only when the device fails outright (a typed error from
/// the runtime); wrong numbers are failed checks in the report.
pub fn run(gpu: &Gpu, options: &SelftestOptions) -> Result<SelftestReport> {
    let start = Instant::now();
    let config = AlexNetConfig::original(options.classes).scaled(options.width);
    let model = AlexNet::new(gpu, config)?;
    let mut rng = SplitMix(options.seed);
    for p in &model.params {
        let scale = 1.0 / (p.value.numel() as f64 / p.value.shape()[0] as f64).sqrt();
        p.value
            .write_f32(gpu, &rng.values(p.value.numel(), scale))?;
    }
    let seed = Uniform::new(gpu, "dropout seed", &StepSeed { seed: 12345 });
    let mut checks = Vec::new();
    let mut shape = vec![options.batch, 3, options.image, options.image];
    for (index, layer) in model.layers.iter().enumerate() {
        let out_shape = layer.output_shape(&shape)?;
        if layer.kind != LayerKind::Flatten {
            let case = LayerCase {
                gpu,
                model: &model,
                layer,
                index,
                seed: &seed,
            };
            checks.extend(case.check(&shape, &out_shape, &mut rng)?);
        }
        shape = out_shape;
    }
    checks.push(check_loss(gpu, &shape, &mut rng)?);
    checks.push(check_sgd(gpu, &model, &mut rng)?);
    let info = gpu.adapter_info.clone();
    let limits = gpu.limits();
    Ok(SelftestReport {
        adapter: gpu.adapter_name(),
        backend: info
            .as_ref()
            .map_or("unknown".into(), |i| format!("{:?}", i.backend)),
        driver: info
            .as_ref()
            .map_or(String::new(), |i| format!("{} {}", i.driver, i.driver_info)),
        kernels: crate::ops::KernelPolicy::of(gpu).describe(gpu),
        limits: format!(
            "workgroup memory {} KiB, {} invocations, storage binding {} MiB, {} storage buffers per stage",
            limits.max_compute_workgroup_storage_size >> 10,
            limits.max_compute_invocations_per_workgroup,
            limits.max_storage_buffer_binding_size >> 20,
            limits.max_storage_buffers_per_shader_stage
        ),
        checks,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// One layer of the model under test.
struct LayerCase<'a> {
    gpu: &'a Gpu,
    model: &'a AlexNet,
    layer: &'a Layer,
    index: usize,
    seed: &'a Uniform<StepSeed>,
}

impl LayerCase<'_> {
    fn check(
        &self,
        in_shape: &[usize],
        out_shape: &[usize],
        rng: &mut SplitMix,
    ) -> Result<Vec<Check>> {
        let gpu = self.gpu;
        let x_data = rng.values(in_shape.iter().product(), 1.0);
        let dy_data = rng.values(out_shape.iter().product(), 1.0);
        let x = Tensor::from_f32(
            gpu,
            &format!("{}.input", self.layer.name),
            in_shape,
            &x_data,
        )?;
        let (y, saved, forward) = layer_forward(
            gpu, self.model, self.layer, self.index, &x, true, self.seed, false,
        )?;
        let mut program = Program::new();
        program.extend(forward);
        let forward_ms = run_timed(gpu, &program)?;
        let dy = Tensor::from_f32(
            gpu,
            &format!("{}.output.grad", self.layer.name),
            out_shape,
            &dy_data,
        )?;
        // As the model plans it: no input gradient for the first layer.
        let want_dx = self.index > 0;
        let (dx, backward) = layer_backward(
            gpu, self.model, self.layer, &x, &y, &saved, &dy, want_dx, self.index, self.seed,
        )?;
        // Parameter gradients accumulate, so each run starts from zero, as a training step's.
        let mut program = Program::new();
        for p in self.params() {
            program.clear(&p.grad);
        }
        program.extend(backward);
        let backward_ms = run_timed(gpu, &program)?;

        let expected = self.reference(in_shape, &cpu::to_f64(&x_data), &cpu::to_f64(&dy_data));
        let macs = self.layer.multiply_adds(out_shape) as f64 * in_shape[0] as f64;
        let gflops = |flops: f64, ms: f64| (macs > 0.0 && ms > 0.0).then(|| flops / ms / 1e6);
        let backward_flops = 2.0 * macs * if want_dx { 2.0 } else { 1.0 };
        let mut checks = vec![self.row(
            "forward",
            &y.read_f32(gpu)?,
            &expected.y,
            FORWARD_TOLERANCE,
            gflops(2.0 * macs, forward_ms),
        )];
        let mut backward_speed = gflops(backward_flops, backward_ms);
        if let Some(dx) = &dx {
            checks.push(self.row(
                "input grad",
                &dx.read_f32(gpu)?,
                &expected.dx,
                BACKWARD_TOLERANCE,
                backward_speed.take(),
            ));
        }
        for (p, (part, want)) in self.params().iter().zip(expected.params) {
            checks.push(self.row(
                part,
                &p.grad.read_f32(gpu)?,
                &want,
                BACKWARD_TOLERANCE,
                backward_speed.take(),
            ));
        }
        Ok(checks)
    }

    fn params(&self) -> Vec<&crate::model::Param> {
        self.layer
            .parameter_shapes()
            .iter()
            .filter_map(|(name, _)| self.model.param(name).ok())
            .collect()
    }

    fn param_values(&self, which: usize) -> Vec<f64> {
        self.params()
            .get(which)
            .and_then(|p| p.value.read_f32(self.gpu).ok())
            .map_or_else(Vec::new, |v| cpu::to_f64(&v))
    }

    /// A GEMM operand as the device's kernels multiply it: rounded to f16 under mixed
    /// precision (the values are f32 from the GPU, so the f32 rounding is exact).
    fn operand(&self, v: &[f64]) -> Vec<f64> {
        if KernelPolicy::of(self.gpu).precision == Precision::Mixed {
            v.iter()
                .map(|&x| f64::from(cpu::round_f16(x as f32)))
                .collect()
        } else {
            v.to_vec()
        }
    }

    /// The CPU reference's output, input gradient and parameter gradients for this layer.
    fn reference(&self, in_shape: &[usize], x: &[f64], dy: &[f64]) -> Expected {
        let nchw = || -> [usize; 4] { in_shape.try_into().unwrap_or([0; 4]) };
        let mut params = Vec::new();
        let (y, dx) = match &self.layer.kind {
            LayerKind::Conv(cfg) => {
                let (w, b) = (self.param_values(0), self.param_values(1));
                let p = cpu::Conv2dParams {
                    stride: cfg.stride,
                    padding: cfg.padding,
                    groups: cfg.groups,
                };
                let ws = cfg.weight_shape();
                let (xg, wg, dyg) = (self.operand(x), self.operand(&w), self.operand(dy));
                let (y, _) = cpu::conv2d_forward(&xg, nchw(), &wg, ws, &b, &p);
                let (dx, dw, _) = cpu::conv2d_backward(&xg, nchw(), &wg, ws, &dyg, &p);
                // The bias gradient sums dy itself, unrounded.
                let (_, _, db) = cpu::conv2d_backward(x, nchw(), &w, ws, dy, &p);
                params = vec![("weight grad", dw), ("bias grad", db)];
                (y, dx)
            }
            LayerKind::Linear {
                in_features,
                out_features,
            } => {
                let (w, b) = (self.param_values(0), self.param_values(1));
                let n = in_shape[0];
                let (i, o) = (*in_features, *out_features);
                let (xg, wg, dyg) = (self.operand(x), self.operand(&w), self.operand(dy));
                let y = cpu::linear_forward(&xg, n, i, &wg, o, &b);
                let (dx, dw, _) = cpu::linear_backward(&xg, n, i, &wg, o, &dyg);
                let (_, _, db) = cpu::linear_backward(x, n, i, &w, o, dy);
                params = vec![("weight grad", dw), ("bias grad", db)];
                (y, dx)
            }
            LayerKind::Relu => (cpu::relu_forward(x), cpu::relu_backward(x, dy)),
            LayerKind::Nonlinearity(f) => match *f {
                Nonlinearity::LeakyRelu { slope } => (
                    cpu::leaky_relu_forward(x, f64::from(slope)),
                    cpu::leaky_relu_backward(x, dy, f64::from(slope)),
                ),
                Nonlinearity::Elu { alpha } => (
                    cpu::elu_forward(x, f64::from(alpha)),
                    cpu::elu_backward(x, dy, f64::from(alpha)),
                ),
                Nonlinearity::Sigmoid => (cpu::sigmoid_forward(x), cpu::sigmoid_backward(x, dy)),
                Nonlinearity::Tanh => (cpu::tanh_forward(x), cpu::tanh_backward(x, dy)),
            },
            LayerKind::Lrn(cfg) => {
                let p = cpu::LrnParams {
                    size: cfg.size,
                    alpha: f64::from(cfg.alpha),
                    beta: f64::from(cfg.beta),
                    k: f64::from(cfg.k),
                };
                (
                    cpu::lrn_forward(x, nchw(), &p),
                    cpu::lrn_backward(x, nchw(), dy, &p),
                )
            }
            LayerKind::MaxPool(cfg) => {
                let (y, _, argmax) = cpu::max_pool_forward(x, nchw(), cfg.kernel, cfg.stride);
                (y, cpu::max_pool_backward(x.len(), &argmax, dy))
            }
            LayerKind::AdaptiveAvgPool { out_h, out_w } => (
                cpu::adaptive_avg_pool_forward(x, nchw(), *out_h, *out_w),
                cpu::adaptive_avg_pool_backward(nchw(), *out_h, *out_w, dy),
            ),
            LayerKind::Dropout { p } => {
                let salted = 12345 ^ dropout_config(*p, self.index).salt;
                (
                    cpu::dropout_forward(x, salted, *p),
                    cpu::dropout_backward(dy, salted, *p),
                )
            }
            // Not in the original AlexNet the selftest builds.
            LayerKind::BatchNorm { .. } | LayerKind::AvgPool(_) | LayerKind::Flatten => {
                (Vec::new(), Vec::new())
            }
        };
        Expected { y, dx, params }
    }

    fn row(
        &self,
        part: &str,
        got: &[f32],
        want: &[f64],
        tolerance: f64,
        gflops: Option<f64>,
    ) -> Check {
        compare(
            &self.layer.name,
            op_name(&self.layer.kind),
            part,
            got,
            want,
            tolerance,
            gflops,
        )
    }
}

struct Expected {
    y: Vec<f64>,
    dx: Vec<f64>,
    params: Vec<(&'static str, Vec<f64>)>,
}

fn op_name(kind: &LayerKind) -> &'static str {
    match kind {
        LayerKind::Conv(_) => "conv2d",
        LayerKind::Relu => "relu",
        LayerKind::Nonlinearity(f) => match f {
            Nonlinearity::LeakyRelu { .. } => "leaky_relu",
            Nonlinearity::Elu { .. } => "elu",
            Nonlinearity::Sigmoid => "sigmoid",
            Nonlinearity::Tanh => "tanh",
        },
        LayerKind::Lrn(_) => "lrn",
        LayerKind::BatchNorm { .. } => "batch_norm",
        LayerKind::MaxPool(_) => "max_pool",
        LayerKind::AvgPool(_) => "avg_pool",
        LayerKind::AdaptiveAvgPool { .. } => "adaptive_avg_pool",
        LayerKind::Flatten => "flatten",
        LayerKind::Dropout { .. } => "dropout",
        LayerKind::Linear { .. } => "linear",
    }
}

/// Cross-entropy of random logits: the mean loss and its gradient.
fn check_loss(gpu: &Gpu, logits_shape: &[usize], rng: &mut SplitMix) -> Result<Check> {
    use crate::ops::cross_entropy::{cross_entropy, totals};
    let &[n, k] = logits_shape else {
        return Err(Error::Config(format!(
            "selftest: logits of shape {logits_shape:?}"
        )));
    };
    let logits_data = rng.values(n * k, 3.0);
    let labels: Vec<u32> = (0..n).map(|i| ((i * 7 + 3) % k) as u32).collect();
    let logits = Tensor::from_f32(gpu, "logits", logits_shape, &logits_data)?;
    let label_tensor = Tensor::from_u32(gpu, "labels", &[n], &labels)?;
    let stats = Tensor::zeros(gpu, "sample stats", &[n, 3])?;
    let dlogits = Tensor::zeros(gpu, "logits.grad", logits_shape)?;
    let sums = Tensor::zeros(gpu, "loss totals", &[totals::LEN])?;
    let mut program = Program::new();
    program.clear(&sums);
    program.extend(cross_entropy(
        gpu,
        &logits,
        &label_tensor,
        &stats,
        &dlogits,
        &sums,
    )?);
    program.run(gpu)?;
    let labels: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    let (loss, dlogits_ref) = cpu::cross_entropy(&cpu::to_f64(&logits_data), n, k, &labels);
    let mut got = vec![sums.read_f32(gpu)?[totals::LOSS]];
    got.extend(dlogits.read_f32(gpu)?);
    let mut want = vec![loss];
    want.extend(dlogits_ref);
    Ok(compare(
        "loss",
        "cross_entropy",
        "loss and logit grad",
        &got,
        &want,
        FORWARD_TOLERANCE,
        None,
    ))
}

/// One SGD step (momentum, weight decay) of every parameter from random gradients.
fn check_sgd(gpu: &Gpu, model: &AlexNet, rng: &mut SplitMix) -> Result<Check> {
    let hyper = SgdHyper {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 5e-4,
    };
    let uniform = Uniform::new(gpu, "sgd hyper", &hyper);
    let mut program = Program::new();
    let mut expected = Vec::new();
    let mut momenta = Vec::new();
    for p in &model.params {
        let grad = rng.values(p.grad.numel(), 1.0);
        p.grad.write_f32(gpu, &grad)?;
        let mut value = cpu::to_f64(&p.value.read_f32(gpu)?);
        let mut momentum = vec![0.0; value.len()];
        let s = cpu::SgdParams {
            lr: f64::from(hyper.lr),
            momentum: f64::from(hyper.momentum),
            weight_decay: f64::from(hyper.weight_decay),
        };
        cpu::sgd_step(&mut value, &mut momentum, &cpu::to_f64(&grad), &s);
        expected.extend(value);
        let buf = Tensor::zeros(gpu, &format!("{}.momentum", p.name), p.value.shape())?;
        program.extend(sgd_step(gpu, &uniform, &p.grad, &p.value, &buf)?);
        momenta.push(buf);
    }
    program.run(gpu)?;
    let mut got = Vec::new();
    for p in &model.params {
        got.extend(p.value.read_f32(gpu)?);
    }
    Ok(compare(
        "parameters",
        "sgd",
        "update",
        &got,
        &expected,
        FORWARD_TOLERANCE,
        None,
    ))
}

fn compare(
    layer: &str,
    op: &str,
    part: &str,
    got: &[f32],
    want: &[f64],
    tolerance: f64,
    gflops: Option<f64>,
) -> Check {
    let (rel_err, max_abs_err, outliers) = if got.len() == want.len() {
        let outliers = cpu::element_mismatches(got, want, tolerance).len();
        (
            cpu::rel_err(got, want),
            cpu::max_abs_diff(got, want),
            outliers,
        )
    } else {
        (f64::INFINITY, f64::INFINITY, 0)
    };
    Check {
        layer: layer.to_string(),
        op: op.to_string(),
        part: part.to_string(),
        rel_err,
        max_abs_err,
        tolerance,
        // NaN compares false, so a NaN anywhere fails; so does one element far off.
        passed: rel_err <= tolerance && outliers == 0,
        outliers,
        gflops,
    }
}

/// Runs `program` once to warm up (it compiles nothing: its dispatches are prepared), then
/// times a second run, whose results are the ones checked; returns milliseconds.
fn run_timed(gpu: &Gpu, program: &Program) -> Result<f64> {
    program.run(gpu)?;
    gpu.wait()?;
    let start = Instant::now();
    program.run(gpu)?;
    gpu.wait()?;
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

/// A tiny deterministic generator (splitmix64) for the random inputs: no extra crate.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `len` values uniform in `[-scale, scale)`.
    fn values(&mut self, len: usize, scale: f64) -> Vec<f32> {
        (0..len)
            .map(|_| ((self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale)
            .map(|v| v as f32)
            .collect()
    }
}
