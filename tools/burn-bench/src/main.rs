//! `burn-bench`: the seed AlexNet (and torchvision's variant) on Burn's wgpu backend, timed
//! the way `alexnet bench` times ours, so that `tools/burn_compare.py` can print our/Burn
//! ratios for the same model, image size, width, batch sizes and adapter.
//!
//! The model is built from Burn's own modules, as a Burn user would write it: `Conv2d` with
//! `groups = 2` for conv2, conv4 and conv5, Burn's `LocalResponseNorm` (tensor ops: square,
//! avg_pool1d over channels, powf; the same `alpha / size` semantics as PyTorch's), max pool
//! 3/2, adaptive average pool 6×6, dropout 0.5 and three `Linear` layers. FC6 is split along
//! its outputs into parts whose weights fit the adapter's largest storage binding (9216×4096
//! floats are 151 MB, over the 128 MiB many adapters allow; unsplit, Burn fails validation
//! there) and the parts' outputs are concatenated.
//!
//! Nothing is read at run time except the arguments (and the usual wgpu/Burn environment
//! variables): the CubeCL runtime configuration is set in code, so no `cubecl.toml` or
//! `burn.toml` is looked for, and the autotune and compilation caches live in a fresh
//! temporary directory deleted at exit unless `--cache-dir` names one to keep.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

mod model;

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::wgpu::{wgpu, WgpuSetup};
use burn::tensor::{Device, Distribution, Int, Tensor};
use cubecl_runtime::config::autotune::AutotuneLevel;
use cubecl_runtime::config::cache::CacheConfig;
use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};
use serde_json::{json, Value};

use model::{AlexNet, Arch, Shape};

const BURN_VERSION: &str = "0.22.1";

const USAGE: &str = "\
burn-bench: the seed AlexNet on Burn's wgpu backend, timed like `alexnet bench`

Usage: burn-bench [OPTIONS]

Options (the first seven mean what they mean for `alexnet bench`):
  --arch LIST                original and/or torchvision, comma-separated [default: original]
  --image-size N             square input size [default: 224]
  --width X                  channel and FC-width multiplier, as AlexNetConfig::scaled [default: 1]
  --inference-batches LIST   [default: 1,8,32]
  --training-batches LIST    [default: 8,32] (empty: none)
  --json FILE                also write the report as JSON here
  --backend NAME             vulkan, metal, dx12 or gl [default: WGPU_BACKEND, else vulkan]
  --device NAME              case-insensitive part of the adapter name [default: WGPU_ADAPTER_NAME]
  --iterations N             timed iterations after the warm-up; the median is reported [default: 5]
  --warmup N                 untimed iterations after the first call [default: 1]
  --classes N                [default: 1000]
  --fc6-parts N              split FC6 into N output parts [default: as few as fit one binding]
  --autotune-level L         minimal, balanced, extensive or full [default: CUBECL_AUTOTUNE_LEVEL,
                             else Burn's default, balanced]
  --cache-dir DIR            keep CubeCL's autotune/compilation caches here (a second run then
                             starts warm) [default: a temporary directory, deleted at exit, so every
                             run measures a cold first call]
  -h, --help
";

struct Args {
    archs: Vec<Arch>,
    image_size: usize,
    width: f64,
    inference_batches: Vec<usize>,
    training_batches: Vec<usize>,
    json: Option<PathBuf>,
    backend: Option<String>,
    device: Option<String>,
    iterations: usize,
    warmup: usize,
    classes: usize,
    fc6_parts: Option<usize>,
    autotune_level: Option<String>,
    cache_dir: Option<PathBuf>,
}

fn parse_list(s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().map_err(|_| format!("not a number: '{p}'")))
        .collect()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        archs: vec![Arch::Original],
        image_size: 224,
        width: 1.0,
        inference_batches: vec![1, 8, 32],
        training_batches: vec![8, 32],
        json: None,
        backend: None,
        device: None,
        iterations: 5,
        warmup: 1,
        classes: 1000,
        fc6_parts: None,
        autotune_level: None,
        cache_dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (flag, None),
        };
        if flag == "-h" || flag == "--help" {
            print!("{USAGE}");
            std::process::exit(0);
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .ok_or_else(|| format!("{flag} needs a value (see --help)"))?,
        };
        let number = |v: &str| -> Result<usize, String> {
            v.parse()
                .map_err(|_| format!("{flag}: not a number: '{v}'"))
        };
        match flag.as_str() {
            "--arch" => {
                args.archs = value
                    .split(',')
                    .map(|a| match a.trim() {
                        "original" => Ok(Arch::Original),
                        "torchvision" => Ok(Arch::TorchVision),
                        other => Err(format!("--arch: unknown architecture '{other}'")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--image-size" => args.image_size = number(&value)?,
            "--width" => {
                args.width = value
                    .parse()
                    .map_err(|_| format!("--width: not a number: '{value}'"))?
            }
            "--inference-batches" => args.inference_batches = parse_list(&value)?,
            "--training-batches" => args.training_batches = parse_list(&value)?,
            "--json" => args.json = Some(value.into()),
            "--backend" => args.backend = Some(value),
            "--device" => args.device = Some(value),
            "--iterations" => args.iterations = number(&value)?.max(1),
            "--warmup" => args.warmup = number(&value)?,
            "--classes" => args.classes = number(&value)?.max(1),
            "--fc6-parts" => args.fc6_parts = Some(number(&value)?.max(1)),
            "--autotune-level" => args.autotune_level = Some(value),
            "--cache-dir" => args.cache_dir = Some(value.into()),
            other => return Err(format!("unknown option '{other}' (see --help)")),
        }
    }
    Ok(args)
}

/// One (model, mode, batch) case.
struct Case {
    first_call: f64,
    /// Seconds of each timed iteration, each ending in a full sync.
    times: Vec<f64>,
    /// Seconds per iteration of as many iterations again queued back to back with one full
    /// sync after the last: how `alexnet bench` times ours, and what an iteration that returns
    /// before its work is done cannot shorten.
    pipelined: f64,
    reserved_bytes: Option<u64>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// One case: `shape` at `args.image_size` and `batch`, `args.warmup` and `args.iterations`.
fn run_case(
    device: &Device,
    shape: &Shape,
    fc6_parts: usize,
    args: &Args,
    batch: usize,
    training: bool,
) -> Result<Case, String> {
    let (image, warmup, iterations) = (args.image_size, args.warmup, args.iterations);
    // `step(true)` runs one iteration and waits for all of its work; `step(false)` only
    // queues one.
    let timed = |step: &mut dyn FnMut(bool) -> Result<(), String>| -> Result<Case, String> {
        let start = Instant::now();
        step(true)?;
        let first_call = start.elapsed().as_secs_f64();
        for _ in 0..warmup {
            step(true)?;
        }
        let mut times = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t = Instant::now();
            step(true)?;
            times.push(t.elapsed().as_secs_f64());
        }
        // Twice, the first untimed: queued work fuses into kernels of its own (inference also
        // sums the logits), which Burn compiles and autotunes on first use.
        let mut pipelined = 0.0;
        for _ in 0..2 {
            let t = Instant::now();
            for i in 1..=iterations {
                step(i == iterations)?;
            }
            pipelined = t.elapsed().as_secs_f64() / iterations.max(1) as f64;
        }
        Ok(Case {
            first_call,
            times,
            pipelined,
            reserved_bytes: device.memory_pool_usage().map(|u| u.bytes_reserved),
        })
    };
    if training {
        let device = device.clone().autodiff();
        let mut model = Some(AlexNet::new(shape, fc6_parts, &device));
        let input = Tensor::<4>::random([batch, 3, image, image], Distribution::Default, &device);
        let targets = Tensor::<1, Int>::random(
            [batch],
            Distribution::Uniform(0.0, shape.classes as f64),
            &device,
        );
        let loss_fn: CrossEntropyLoss = CrossEntropyLossConfig::new().init(&device);
        // `OptimizerConfig::sgd()`: lr 0.01, momentum 0.9 (no dampening), weight decay 5e-4.
        let mut optim = SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
            .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
            .init();
        device.sync().map_err(|e| format!("{e:?}"))?;
        timed(&mut |sync| {
            let m = model.take().expect("model");
            let logits = m.forward(input.clone());
            let loss = loss_fn.forward(logits, targets.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            // Each step's model is the last one's: the steps queue in order.
            model = Some(optim.step(0.01, m, grads));
            if sync {
                device.sync().map_err(|e| format!("{e:?}"))?;
            }
            Ok(())
        })
    } else {
        let model = AlexNet::new(shape, fc6_parts, device);
        let input = Tensor::<4>::random([batch, 3, image, image], Distribution::Default, device);
        device.sync().map_err(|e| format!("{e:?}"))?;
        // The queued passes' logits are summed, so the read-back after the last needs them all.
        let mut queued: Option<Tensor<2>> = None;
        timed(&mut |sync| {
            let logits = model.forward(input.clone());
            let sum = match queued.take() {
                Some(q) => q + logits,
                None => logits,
            };
            if sync {
                // Reading the logits back is the sync: every kernel of the passes has run.
                let _ = sum.into_data();
            } else {
                queued = Some(sum);
            }
            Ok(())
        })
    }
}

/// The adapter `alexnet bench` would pick for the same flags and environment (a
/// case-insensitive name filter, then discrete > integrated > virtual > other > CPU), with the
/// device Burn's own WGSL path requests on it (all the adapter's features and limits).
fn open_adapter(args: &Args) -> Result<WgpuSetup, String> {
    let backends = match args.backend.as_deref() {
        Some(name) => match name.to_lowercase().as_str() {
            "vulkan" | "vk" => wgpu::Backends::VULKAN,
            "metal" | "mtl" => wgpu::Backends::METAL,
            "dx12" | "d3d12" => wgpu::Backends::DX12,
            "gl" | "gles" | "opengl" => wgpu::Backends::GL,
            other => return Err(format!("--backend: unknown backend '{other}'")),
        },
        None => wgpu::Backends::from_env().unwrap_or(wgpu::Backends::VULKAN),
    };
    let filter = args
        .device
        .clone()
        .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
        .map(|f| f.to_lowercase());
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        flags: wgpu::InstanceFlags::default(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
    let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
    if let Some(f) = &filter {
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(f));
    }
    adapters.sort_by_key(|a| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    });
    let adapter = adapters.into_iter().next().ok_or_else(|| {
        format!(
            "no adapter on {backends:?}{} (found: {names:?}); on Linux without a GPU install \
             Mesa's lavapipe (mesa-vulkan-drivers)",
            filter
                .map(|f| format!(" with a name containing '{f}'"))
                .unwrap_or_default()
        )
    })?;
    let (device, queue) = pollster::block_on(
        adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("burn-bench"),
            required_features: adapter
                .features()
                .difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
            required_limits: adapter.limits(),
            memory_hints: wgpu::MemoryHints::MemoryUsage,
            trace: wgpu::Trace::Off,
            // SAFETY: what Burn's own device request enables (pass-through shaders).
            experimental_features: unsafe { wgpu::ExperimentalFeatures::enabled() },
        }),
    )
    .map_err(|e| format!("requesting a device: {e}"))?;
    let backend = adapter.get_info().backend;
    Ok(WgpuSetup {
        instance,
        adapter,
        device,
        queue,
        backend,
    })
}

/// Sets CubeCL's and Burn's runtime configuration in code (so no configuration file is
/// read), keeping their environment-variable overrides. Returns the temporary directory to
/// delete at exit, if one was made.
fn configure_runtime(args: &Args) -> Result<(Option<PathBuf>, String, bool), String> {
    let mut cfg = CubeClRuntimeConfig::default().override_from_env();
    if let Some(level) = &args.autotune_level {
        cfg.autotune.level = match level.as_str() {
            "minimal" | "0" => AutotuneLevel::Minimal,
            "balanced" | "1" => AutotuneLevel::Balanced,
            "extensive" | "2" => AutotuneLevel::Extensive,
            "full" | "3" => AutotuneLevel::Full,
            other => return Err(format!("--autotune-level: unknown level '{other}'")),
        };
    }
    let level = format!("{:?}", cfg.autotune.level).to_lowercase();
    let (dir, temporary) = match &args.cache_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let dir = std::env::temp_dir().join(format!("burn-bench-{}", std::process::id()));
            cfg.autotune.disable_cache = true;
            cfg.throughput.disable_cache = true;
            cfg.compilation.cache = false;
            (dir.clone(), Some(dir))
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    cfg.environment.path = CacheConfig::Directory(dir);
    let cache = !cfg.autotune.disable_cache;
    if !CubeClRuntimeConfig::try_set(cfg) {
        return Err("the CubeCL configuration was read before it could be set".into());
    }
    burn::BurnConfig::try_set(burn::BurnConfig::default().override_from_env());
    Ok((temporary, level, cache))
}

fn main() {
    env_logger::init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let (temporary, code) = match run(&args) {
        Ok(t) => (t, 0),
        Err((t, e)) => {
            eprintln!("error: {e}");
            (t, 1)
        }
    };
    if let Some(dir) = temporary {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::process::exit(code);
}

type Failure = (Option<PathBuf>, String);

fn run(args: &Args) -> Result<Option<PathBuf>, Failure> {
    let (temporary, autotune_level, autotune_cache) =
        configure_runtime(args).map_err(|e| (None, e))?;
    let fail = |e: String| (temporary.clone(), e);
    let setup = open_adapter(args).map_err(fail)?;
    let info = setup.adapter.get_info();
    let max_binding = setup.device.limits().max_storage_buffer_binding_size;
    let device = Device::wgpu_options()
        .setup(setup)
        .init()
        .map_err(|e| fail(format!("Burn refused the device: {e:?}")))?;
    println!(
        "adapter: {} ({:?}, driver {} {}), {}x{} input, Burn {BURN_VERSION} wgpu (WGSL), \
         autotune {autotune_level}{}",
        info.name,
        info.backend,
        info.driver,
        info.driver_info,
        args.image_size,
        args.image_size,
        if autotune_cache {
            " (cache kept)"
        } else {
            " (no cache: cold start)"
        }
    );
    println!(
        "{:<22} {:<10} {:>5} {:>11} {:>9} {:>12} {:>12} {:>13}",
        "model",
        "mode",
        "batch",
        "images/s",
        "GFLOP/s",
        "first call s",
        "median ms",
        "pipelined ms"
    );
    // Rewritten after every case, so a run cut short still leaves what it measured.
    let write_report = |measurements: &[Value], first_plan_seconds: Option<f64>| {
        let Some(path) = &args.json else {
            return Ok(());
        };
        let report = json!({
            "framework": "burn",
            "burn_version": BURN_VERSION,
            "shader_compiler": "wgsl",
            "adapter": info.name,
            "backend": format!("{:?}", info.backend),
            "driver": format!("{} {}", info.driver, info.driver_info),
            "image_size": args.image_size,
            "width": args.width,
            "iterations": args.iterations,
            "warmup": args.warmup,
            "autotune_level": autotune_level,
            "autotune_cache": autotune_cache,
            "max_storage_buffer_binding_size": max_binding,
            "first_plan_seconds": first_plan_seconds,
            "measurements": measurements,
        });
        let text = serde_json::to_string_pretty(&report).expect("JSON");
        std::fs::write(path, text).map_err(|e| fail(format!("writing {}: {e}", path.display())))
    };
    let mut measurements = Vec::new();
    let mut first_plan_seconds = None;
    for &arch in &args.archs {
        let shape = Shape::new(arch, args.width, args.classes);
        let fc6_bytes = (shape.channels[4] * 36 * shape.fc_width * 4) as u64;
        let parts = args
            .fc6_parts
            .unwrap_or_else(|| fc6_bytes.div_ceil(max_binding.max(1)).max(1) as usize);
        if parts > 1 {
            println!(
                "{}: FC6 weight {:.1} MiB > {:.0} MiB binding limit: {parts} parts",
                shape.name(),
                fc6_bytes as f64 / (1 << 20) as f64,
                max_binding as f64 / (1 << 20) as f64
            );
        }
        let macs = shape.multiply_adds(args.image_size);
        let cases = args
            .inference_batches
            .iter()
            .map(|&b| (false, b))
            .chain(args.training_batches.iter().map(|&b| (true, b)));
        for (training, batch) in cases {
            let mode = if training { "training" } else { "inference" };
            let act = (shape.largest_activation(args.image_size) * batch * 4) as u64;
            if act > max_binding {
                eprintln!(
                    "warning: {mode} batch {batch}: conv1's output ({:.0} MiB) exceeds the \
                     {:.0} MiB binding limit; Burn may fail validation",
                    act as f64 / (1 << 20) as f64,
                    max_binding as f64 / (1 << 20) as f64
                );
            }
            eprintln!(
                "{} {mode} batch {batch}: first call (compile + autotune)...",
                shape.name()
            );
            let result = catch_unwind(AssertUnwindSafe(|| {
                run_case(&device, &shape, parts, args, batch, training)
            }))
            .unwrap_or_else(|panic| {
                Err(panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()))
            });
            let mut m = json!({
                "model": shape.name(),
                "arch": arch.name(),
                "width": args.width,
                "mode": mode,
                "batch": batch,
                "kernels": "burn",
                "fc6_parts": parts,
            });
            match result {
                Ok(case) => {
                    let per_iter = median(&case.times);
                    let mean = case.times.iter().sum::<f64>() / case.times.len() as f64;
                    let flops = 2.0 * macs as f64 * if training { 3.0 } else { 1.0 };
                    first_plan_seconds.get_or_insert(case.first_call);
                    println!(
                        "{:<22} {:<10} {:>5} {:>11.2} {:>9.2} {:>12.2} {:>12.1} {:>13.1}",
                        shape.name(),
                        mode,
                        batch,
                        batch as f64 / per_iter,
                        flops * batch as f64 / per_iter / 1e9,
                        case.first_call,
                        per_iter * 1e3,
                        case.pipelined * 1e3
                    );
                    let extra = json!({
                        "images_per_sec": batch as f64 / per_iter,
                        "seconds_per_iteration": per_iter,
                        "mean_seconds_per_iteration": mean,
                        "pipelined_seconds_per_iteration": case.pipelined,
                        "iteration_seconds": case.times,
                        "gflops": flops * batch as f64 / per_iter / 1e9,
                        "first_call_seconds": case.first_call,
                        "reserved_memory_bytes": case.reserved_bytes,
                    });
                    merge(&mut m, extra);
                }
                Err(e) => {
                    println!("{:<22} {:<10} {:>5} failed: {e}", shape.name(), mode, batch);
                    merge(&mut m, json!({ "error": e }));
                }
            }
            measurements.push(m);
            write_report(&measurements, first_plan_seconds)?;
        }
    }
    if let Some(path) = &args.json {
        println!("JSON report: {}", path.display());
    }
    Ok(temporary)
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}
