//! The benchmark behind `alexnet bench`: inference and training images/s and achieved
//! GFLOP/s for the plain kernels (the baseline) and the tiled ones on the same adapter in the
//! same run (with `unfused`, the tiled ones without the fusions too), the speed-up ratios, peak GPU memory, start-up (pipeline compile) time, and per-
//! layer GPU times from timestamp queries where the adapter has them.

pub mod parallel;

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::summary::summarize;
use crate::model::{AlexNet, AlexNetConfig, Init, Plan, PlanOptions};
use crate::ops::conv2d::{conv2d_forward, Conv2dConfig};
use crate::ops::{Autotune, GemmCoop, KernelPolicy, Kernels, Matrix, Precision};
use crate::runtime::{Gated, Gpu, GpuOptions, Phase, Program, Tensor};
use crate::train::loss_scale::LossScaler;
use crate::train::{train_step, Optimizer, OptimizerConfig};

#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub models: Vec<AlexNetConfig>,
    pub image_size: usize,
    pub inference_batches: Vec<usize>,
    pub training_batches: Vec<usize>,
    /// Timed iterations per measurement (after one warm-up).
    pub iterations: usize,
    pub profile_layers: bool,
    /// Also run every case with the tiled kernels unfused ([`KernelPolicy::unfused`]) and LRN
    /// reading its windows from global memory: the baseline of the fusions and of the
    /// workgroup-memory LRN, as an `unfused` row beside the `tiled` one.
    pub unfused: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub model: String,
    pub mode: &'static str,
    pub batch: usize,
    pub kernels: &'static str,
    pub images_per_sec: f64,
    pub seconds_per_iteration: f64,
    pub gflops: f64,
    pub peak_memory_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Speedup {
    pub model: String,
    pub mode: &'static str,
    pub batch: usize,
    pub tiled_over_plain: f64,
    /// With `--autotune`: the autotuned kernels' images/s over the tiled ones'.
    pub autotuned_over_tiled: Option<f64>,
    /// With `--precision mixed`: mixed precision's images/s over the f32 tiled kernels'.
    pub mixed_over_tiled: Option<f64>,
    /// With `--unfused`: the tiled (fused) kernels' images/s over the same kernels unfused.
    pub fused_over_unfused: Option<f64>,
    /// On CPU drivers: the tiled kernels' images/s (with the direct GEMM, their default there)
    /// over the same kernels with the SIMT GEMM in workgroup memory.
    pub direct_over_simt: Option<f64>,
}

/// A training step with `features` frozen beside a full one (same model, batch, kernels):
/// what fine-tuning only the classifier costs.
#[derive(Clone, Debug, Serialize)]
pub struct FrozenStep {
    pub model: String,
    pub batch: usize,
    pub kernels: &'static str,
    pub full_seconds: f64,
    pub frozen_seconds: f64,
    pub frozen_over_full: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerTime {
    pub model: String,
    pub mode: &'static str,
    pub batch: usize,
    pub kernels: &'static str,
    pub layer: String,
    pub milliseconds: f64,
    pub gflops: Option<f64>,
}

/// Start-up: opening the device, uploading the model and building a training plan, which
/// compiles every pipeline a training step uses (the step itself is not run).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Startup {
    /// First run: an empty driver pipeline cache.
    pub cold_seconds: f64,
    /// Second run: the driver cache the first one saved (where the adapter keeps one).
    pub warm_seconds: f64,
    pub pipelines: u64,
    pub driver_pipeline_cache: bool,
}

/// A convolution's GEMM against a dense matrix product of the same size (M = out channels,
/// N = batch·output pixels, K = the reduction; B row-major with N contiguous, as the
/// convolution reads its pixels), both on the tiled kernel: the implicit-GEMM addressing's
/// cost, and how far the convolution is from what the GEMM itself attains.
#[derive(Clone, Debug, Serialize)]
pub struct Ceiling {
    pub model: String,
    pub batch: usize,
    pub layer: String,
    pub conv_gflops: f64,
    pub dense_gemm_gflops: f64,
    pub fraction: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub adapter: String,
    pub backend: String,
    pub driver: String,
    pub image_size: usize,
    pub first_plan_seconds: f64,
    pub pipelines_compiled: u64,
    pub pipeline_compile_seconds: f64,
    pub driver_pipeline_cache: bool,
    /// wgpu's runtime checks in the shaders (full, bounds or off).
    pub shader_checks: String,
    /// The tiled GEMM's tile shape, BMxBNxBK/TMxTN.
    pub gemm_tiles: String,
    /// Per variant with tiled GEMMs (tiled, autotuned, mixed): the cooperative-matrix
    /// configuration they ran on (`--matrix`), or "off" where they ran the SIMT kernel.
    pub matrix_units: BTreeMap<String, String>,
    pub startup: Startup,
    pub measurements: Vec<Measurement>,
    pub speedups: Vec<Speedup>,
    pub frozen_steps: Vec<FrozenStep>,
    pub layers: Vec<LayerTime>,
    pub ceilings: Vec<Ceiling>,
}

/// A program to profile, its `(layer, dispatch count)` spans, and whether it is a backward pass.
type Profiled<'a> = (&'a Program, &'a [(String, usize)], bool);

/// Which part of a layer's backward pass a dispatch computes, as a name suffix.
fn backward_part(phase: Phase) -> &'static str {
    match phase {
        Phase::InputGrad => " (input grad)",
        Phase::WeightGrad => " (weight grad)",
        Phase::BiasGrad => " (bias grad)",
        Phase::Whole => " (backward)",
    }
}

fn model_name(c: &AlexNetConfig) -> String {
    let full = c.arch_default_channels();
    format!("{:?} x{:.3}", c.arch, c.channels[0] as f64 / full[0] as f64).to_lowercase()
}

/// Runs every measurement with the plain kernels, then with the tiled ones, each on a fresh
/// device of the adapter `options` selects.
pub fn run(options: &GpuOptions, policy: KernelPolicy, cfg: &BenchConfig) -> Result<Report> {
    let mut measurements = Vec::new();
    let mut layers = Vec::new();
    let mut first_call = None;
    let mut adapter = None;
    let mut matrix_units = BTreeMap::new();
    // With --autotune, a third pass: each layer's kernels timed and chosen when planned.
    // With --precision mixed, a fourth: the tiled kernels with f16 operands (and training
    // with its loss scaler). The other variants run f32.
    // --matrix on asks for matrix units at the precision asked for: the f32 rows beside a mixed
    // run take them where offered.
    let f32_policy = KernelPolicy {
        matrix: match (policy.precision, policy.matrix) {
            (Precision::Mixed, Matrix::On) => Matrix::Auto,
            (_, matrix) => matrix,
        },
        ..policy.with_precision(Precision::F32)
    };
    let mut variants = vec![
        ("plain", f32_policy.with_kernels(Kernels::Plain)),
        ("tiled", f32_policy.with_kernels(Kernels::Tiled)),
    ];
    if policy.autotune != Autotune::Off {
        variants.push(("autotuned", f32_policy));
    }
    if policy.precision == Precision::Mixed {
        // Tiled kernels (mixed precision's only ones), autotuned under --autotune full: the
        // GEMM kernel per shape, matrix units against SIMT.
        let mixed = KernelPolicy {
            kernels: Kernels::Tiled,
            ..policy
        };
        variants.push(("mixed", mixed));
    }
    // On a CPU driver the tiled rows run the direct GEMM: the SIMT one is its baseline. The
    // first variant's device says which the adapter is.
    let mut first_gpu = Some(Gpu::new(options)?);
    let tiled = f32_policy.with_kernels(Kernels::Tiled);
    if tiled.direct_gemm.is_none() && first_gpu.as_ref().is_some_and(Gpu::is_cpu) {
        let simt = KernelPolicy {
            direct_gemm: Some(false),
            ..tiled
        };
        variants.push(("simt", simt));
    }
    if cfg.unfused {
        let unfused = KernelPolicy {
            unfused: true,
            workgroup_lrn: Some(false),
            ..f32_policy.with_kernels(Kernels::Tiled)
        };
        variants.push(("unfused", unfused));
    }
    for (kernels, policy) in variants {
        let gpu = match first_gpu.take() {
            Some(gpu) => gpu,
            None => Gpu::new(options)?,
        };
        policy.apply(&gpu)?;
        adapter = gpu.adapter_info.clone();
        if kernels != "plain" {
            let used = GemmCoop::for_device(&gpu, &policy);
            matrix_units.insert(
                kernels.to_string(),
                used.map_or("off".to_string(), |c| c.to_string()),
            );
        }
        for model_cfg in &cfg.models {
            let mut model = AlexNet::new(&gpu, model_cfg.clone())?;
            model.initialize(&gpu, Init::PyTorch, 0)?;
            let rows = summarize(model_cfg, cfg.image_size)?;
            let macs: u64 = rows.iter().map(|r| r.multiply_adds).sum();
            let classifier_macs: u64 = rows
                .iter()
                .filter(|r| r.name.starts_with("classifier"))
                .map(|r| r.multiply_adds)
                .sum();
            let cases = cfg
                .inference_batches
                .iter()
                .map(|&b| (INFERENCE, b))
                .chain(cfg.training_batches.iter().map(|&b| (TRAINING, b)))
                .chain(cfg.training_batches.iter().map(|&b| (FROZEN, b)));
            for (mode, batch) in cases {
                let training = mode != INFERENCE;
                if mode == FROZEN && !model.params[0].frozen {
                    model.freeze(&["features".to_string()])?;
                }
                let start = Instant::now();
                gpu.memory.reset_peak();
                let mut plan = Plan::new(
                    &gpu,
                    &model,
                    PlanOptions::new(batch, cfg.image_size, training),
                )?;
                let mut optimizer = if training {
                    Some(Optimizer::new(&gpu, &model, OptimizerConfig::sgd())?)
                } else {
                    None
                };
                if let Some(o) = optimizer.as_mut() {
                    LossScaler::for_device(&gpu, &model, &mut plan, o)?;
                }
                let mut step = |gpu: &Gpu| -> Result<()> {
                    match optimizer.as_mut() {
                        Some(o) => train_step(gpu, &plan, o, 0),
                        None => plan.forward.run(gpu),
                    }
                };
                step(&gpu)?;
                gpu.wait()?;
                if first_call.is_none() && kernels == "tiled" {
                    let stats = gpu.pipelines.stats();
                    first_call = Some((
                        start.elapsed().as_secs_f64(),
                        stats.misses,
                        stats.compile_time.as_secs_f64(),
                        gpu.pipelines.has_driver_cache(),
                    ));
                }
                let timed = Instant::now();
                for _ in 0..cfg.iterations {
                    step(&gpu)?;
                }
                gpu.wait()?;
                let per_iter = timed.elapsed().as_secs_f64() / cfg.iterations.max(1) as f64;
                // A training step: the forward, then input and weight gradients of each layer
                // (about 2x its forward); with frozen features, of the classifier only.
                let flops_per_image = 2.0
                    * match mode {
                        INFERENCE => macs as f64,
                        TRAINING => 3.0 * macs as f64,
                        _ => (macs + 2 * classifier_macs) as f64,
                    };
                measurements.push(Measurement {
                    model: model_name(model_cfg),
                    mode,
                    batch,
                    kernels,
                    images_per_sec: batch as f64 / per_iter,
                    seconds_per_iteration: per_iter,
                    gflops: flops_per_image * batch as f64 / per_iter / 1e9,
                    peak_memory_bytes: gpu.memory.peak(),
                });
                log::info!("{:?}", measurements.last().unwrap());
                if cfg.profile_layers
                    && gpu
                        .device
                        .features()
                        .contains(wgpu::Features::TIMESTAMP_QUERY)
                {
                    let mut programs: Vec<Profiled<'_>> =
                        vec![(&plan.forward, &plan.forward_spans, false)];
                    let update = optimizer.as_ref().map(|o| {
                        let spans = vec![("optimizer".to_string(), o.program().dispatch_count())];
                        (o.program(), spans)
                    });
                    if training {
                        programs.push((&plan.backward, &plan.backward_spans, true));
                    }
                    if let Some((program, spans)) = &update {
                        programs.push((program, spans, false));
                    }
                    let row_macs: BTreeMap<String, u64> = summarize(model_cfg, cfg.image_size)?
                        .into_iter()
                        .map(|r| (r.name, r.multiply_adds))
                        .collect();
                    for (layer, ms) in profile(&gpu, &programs)? {
                        // Forward, input and weight gradient each cost the layer's multiply-
                        // adds once; other backward parts (bias, pooling) have none counted.
                        let (base, part) = layer.split_once(" (").unwrap_or((&layer, ""));
                        let gflops = row_macs
                            .get(base)
                            .filter(|&&m| m > 0 && ms > 0.0)
                            .filter(|_| {
                                part.is_empty()
                                    || part.contains("grad)") && !part.starts_with("bias")
                            })
                            .map(|&m| 2.0 * m as f64 * batch as f64 / (ms * 1e-3) / 1e9);
                        layers.push(LayerTime {
                            model: model_name(model_cfg),
                            mode,
                            batch,
                            kernels,
                            layer,
                            milliseconds: ms,
                            gflops,
                        });
                    }
                }
            }
        }
    }
    let speedups = speedups(&measurements);
    let frozen_steps = frozen_steps(&measurements);
    let ceilings = ceilings(options, policy, cfg, &layers)?;
    let startup = match cfg.models.first() {
        Some(model) => measure_startup(options, policy, model, cfg.image_size)?,
        None => Startup::default(),
    };
    let (first_plan_seconds, pipelines_compiled, pipeline_compile_seconds, driver_pipeline_cache) =
        first_call.unwrap_or_default();
    let info = adapter.ok_or_else(|| Error::Config("no adapter".into()))?;
    Ok(Report {
        adapter: info.name,
        backend: format!("{:?}", info.backend),
        driver: format!("{} {}", info.driver, info.driver_info),
        image_size: cfg.image_size,
        first_plan_seconds,
        pipelines_compiled,
        pipeline_compile_seconds,
        driver_pipeline_cache,
        shader_checks: format!("{:?}", options.shader_checks).to_lowercase(),
        gemm_tiles: policy
            .gemm_tiles
            .map_or_else(|| "by problem".to_string(), |t| t.to_string()),
        matrix_units,
        startup,
        measurements,
        speedups,
        frozen_steps,
        layers,
        ceilings,
    })
}

/// Times start-up twice with a fresh driver cache directory: cold, then warm.
fn measure_startup(
    options: &GpuOptions,
    policy: KernelPolicy,
    model: &AlexNetConfig,
    image: usize,
) -> Result<Startup> {
    let dir = std::env::temp_dir().join(format!("alexnet-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let once = || -> Result<(f64, u64, bool)> {
        let start = Instant::now();
        let gpu = Gpu::new(&GpuOptions {
            pipeline_cache_dir: Some(dir.clone()),
            ..options.clone()
        })?;
        policy.with_kernels(Kernels::Tiled).apply(&gpu)?;
        let net = AlexNet::new(&gpu, model.clone())?;
        let plan_options = PlanOptions::training(1, image);
        let _plan = Plan::new(&gpu, &net, plan_options)?;
        let _optimizer = Optimizer::new(&gpu, &net, OptimizerConfig::sgd())?;
        gpu.wait()?;
        let seconds = start.elapsed().as_secs_f64();
        gpu.save_pipeline_cache();
        Ok((
            seconds,
            gpu.pipelines.stats().misses,
            gpu.pipelines.has_driver_cache(),
        ))
    };
    let (cold_seconds, pipelines, driver_pipeline_cache) = once()?;
    let (warm_seconds, _, _) = once()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Startup {
        cold_seconds,
        warm_seconds,
        pipelines,
        driver_pipeline_cache,
    })
}

/// For the largest inference batch measured, each tiled convolution's forward GFLOP/s beside
/// the tiled kernel's on a dense matrix product of the same M, N and K (groups stacked into M).
fn ceilings(
    options: &GpuOptions,
    policy: KernelPolicy,
    cfg: &BenchConfig,
    layers: &[LayerTime],
) -> Result<Vec<Ceiling>> {
    let Some(&batch) = cfg.inference_batches.iter().max() else {
        return Ok(Vec::new());
    };
    let gpu = Gpu::new(options)?;
    policy.with_kernels(Kernels::Tiled).apply(&gpu)?;
    let mut out = Vec::new();
    for model_cfg in &cfg.models {
        let model = model_name(model_cfg);
        for row in summarize(model_cfg, cfg.image_size)?
            .into_iter()
            .filter(|r| r.kind == "Conv2d")
        {
            let Some(conv) = layers.iter().find(|l| {
                l.model == model
                    && l.mode == "inference"
                    && l.batch == batch
                    && l.kernels == "tiled"
                    && l.layer == row.name
            }) else {
                continue;
            };
            let &[channels, oh, ow] = row.output.as_slice() else {
                continue;
            };
            let n = batch * oh * ow;
            let k = row.multiply_adds as usize / (channels * oh * ow);
            let Some(dense_ms) = time_dense_gemm(&gpu, n, k, channels)? else {
                continue;
            };
            let dense = 2.0 * (n * k * channels) as f64 / (dense_ms * 1e-3) / 1e9;
            let conv_gflops = conv.gflops.unwrap_or(0.0);
            out.push(Ceiling {
                model: model.clone(),
                batch,
                layer: row.name,
                conv_gflops,
                dense_gemm_gflops: dense,
                fraction: conv_gflops / dense,
            });
        }
    }
    Ok(out)
}

/// Milliseconds of one tiled `[m, k] · [k, n]` product (best of three), or `None` where the
/// adapter has no timestamp queries. It runs as the 1×1 convolution of a 1×n image with k
/// channels: the same kernel with the im2col addressing reduced to a plain row-major read.
fn time_dense_gemm(gpu: &Gpu, n: usize, k: usize, m: usize) -> Result<Option<f64>> {
    if !gpu
        .device
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY)
    {
        return Ok(None);
    }
    let dense = Conv2dConfig {
        in_channels: k,
        out_channels: m,
        kernel: 1,
        stride: 1,
        padding: 0,
        groups: 1,
    };
    let x = Tensor::zeros(gpu, "dense B", &[1, k, 1, n])?;
    let w = Tensor::zeros(gpu, "dense A", &[m, k, 1, 1])?;
    let b = Tensor::zeros(gpu, "dense bias", &[m])?;
    let y = Tensor::zeros(gpu, "dense C", &[1, m, 1, n])?;
    let mut program = Program::new();
    program.extend(conv2d_forward(gpu, &dense, &x, &w, &b, &y, false)?);
    let spans = [("dense".to_string(), program.dispatch_count())];
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let times = profile(gpu, &[(&program, &spans, false)])?;
        best = best.min(times.iter().map(|(_, ms)| ms).sum());
    }
    Ok(Some(best))
}

const INFERENCE: &str = "inference";
const TRAINING: &str = "training";
const FROZEN: &str = "training, features frozen";

fn frozen_steps(measurements: &[Measurement]) -> Vec<FrozenStep> {
    measurements
        .iter()
        .filter(|m| m.mode == FROZEN)
        .filter_map(|f| {
            let full = measurements.iter().find(|m| {
                m.mode == TRAINING
                    && m.model == f.model
                    && m.batch == f.batch
                    && m.kernels == f.kernels
            })?;
            Some(FrozenStep {
                model: f.model.clone(),
                batch: f.batch,
                kernels: f.kernels,
                full_seconds: full.seconds_per_iteration,
                frozen_seconds: f.seconds_per_iteration,
                frozen_over_full: f.seconds_per_iteration / full.seconds_per_iteration,
            })
        })
        .collect()
}

fn speedups(measurements: &[Measurement]) -> Vec<Speedup> {
    let find = |kernels: &str, t: &Measurement| {
        measurements.iter().find(|p| {
            p.kernels == kernels && p.model == t.model && p.mode == t.mode && p.batch == t.batch
        })
    };
    measurements
        .iter()
        .filter(|m| m.kernels == "tiled")
        .filter_map(|t| {
            let base = find("plain", t)?;
            Some(Speedup {
                model: t.model.clone(),
                mode: t.mode,
                batch: t.batch,
                tiled_over_plain: t.images_per_sec / base.images_per_sec,
                autotuned_over_tiled: find("autotuned", t)
                    .map(|a| a.images_per_sec / t.images_per_sec),
                mixed_over_tiled: find("mixed", t).map(|a| a.images_per_sec / t.images_per_sec),
                fused_over_unfused: find("unfused", t).map(|u| t.images_per_sec / u.images_per_sec),
                direct_over_simt: find("simt", t).map(|u| t.images_per_sec / u.images_per_sec),
            })
        })
        .collect()
}

/// Milliseconds per layer for one run of `programs`, from timestamps around each dispatch;
/// a backward layer is reported per part (input, weight and bias gradient).
fn profile(gpu: &Gpu, programs: &[Profiled<'_>]) -> Result<Vec<(String, f64)>> {
    let count: usize = programs.iter().map(|(p, _, _)| p.dispatch_count()).sum();
    let turn = gpu.exclusive();
    let queries = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("profile"),
        ty: wgpu::QueryType::Timestamp,
        count: (2 * count) as u32,
    });
    let bytes = (2 * count * 8) as u64;
    let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timestamps"),
        size: bytes,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let resolve = Gated::new(resolve, &gpu.gate);
    let queries = Gated::new(queries, &gpu.gate);
    drop(turn);
    let readback = Tensor::zeros(gpu, "timestamps", &[2 * count * 2])?;
    let mut phases = Vec::new();
    gpu.submit("profiling", |encoder| {
        for (program, _, _) in programs {
            let first = 2 * phases.len() as u32;
            phases.extend(program.record_timed(encoder, &queries, first));
        }
        encoder.resolve_query_set(&queries, 0..(2 * count) as u32, &resolve, 0);
        encoder.copy_buffer_to_buffer(&resolve, 0, readback.buffer(), 0, bytes);
    })?;
    let raw: Vec<u64> = bytemuck::cast_slice(&readback.read_u32(gpu)?).to_vec();
    let period_ns = f64::from(gpu.queue.get_timestamp_period());
    let mut times: Vec<(String, f64)> = Vec::new();
    let mut index = 0;
    for (_, spans, backward) in programs {
        for (layer, n) in spans.iter() {
            let first_row = times.len();
            for i in index..index + n {
                let ms = raw[2 * i + 1].saturating_sub(raw[2 * i]) as f64 * period_ns / 1e6;
                let part = if *backward {
                    backward_part(phases[i])
                } else {
                    ""
                };
                let name = format!("{layer}{part}");
                match times[first_row..].iter_mut().find(|(n, _)| *n == name) {
                    Some((_, total)) => *total += ms,
                    None => times.push((name, ms)),
                }
            }
            index += n;
        }
    }
    Ok(times)
}
