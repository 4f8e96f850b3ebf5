//! The runtime: FC6's 151 MB weight past the 128 MiB binding limit, a device the caller owns,
//! the on-disk driver pipeline cache, and errors that name what went wrong.

mod common;

use alexnet_wgpu::ops::activation::relu_forward;
use alexnet_wgpu::ops::conv2d::{conv2d_forward, Conv2dConfig};
use alexnet_wgpu::ops::linear::{linear_backward, linear_forward};
use alexnet_wgpu::ops::sgd::{sgd_step, SgdHyper};
use alexnet_wgpu::runtime::{
    binding_chunks, Arg, Gpu, GpuOptions, KernelCall, Program, ShaderSource, Tensor, Uniform,
};
use alexnet_wgpu::Error;
use common::reference::{self as cpu, to_f64};
use common::{assert_close, gpu, run, Rng};

#[test]
fn fc6_sized_weight_works_in_every_op_that_reads_it() {
    let gpu = gpu();
    let (n, in_f, out_f) = (2, 9216, 4096);
    let weight_bytes = (in_f * out_f * 4) as u64;
    let slices = binding_chunks(gpu, out_f, in_f).len();
    eprintln!(
        "FC6 weight: {weight_bytes} bytes, max binding {} bytes: bound as {slices} slice(s)",
        gpu.max_binding_bytes()
    );
    let mut rng = Rng::new(31);
    let x = rng.normals(n * in_f, 1.0);
    let w = rng.normals(out_f * in_f, 0.01);
    let b = rng.normals(out_f, 1.0);
    let dy = rng.normals(n * out_f, 1.0);
    let t = |name: &str, shape: &[usize], data: &[f32]| {
        Tensor::from_f32(gpu, name, shape, data).unwrap()
    };
    let (xt, wt, bt, dyt) = (
        t("x", &[n, in_f], &x),
        t("fc6.weight", &[out_f, in_f], &w),
        t("b", &[out_f], &b),
        t("dy", &[n, out_f], &dy),
    );
    let y = Tensor::zeros(gpu, "y", &[n, out_f]).unwrap();
    let dx = Tensor::zeros(gpu, "dx", &[n, in_f]).unwrap();
    let dw = Tensor::zeros(gpu, "fc6.weight.grad", &[out_f, in_f]).unwrap();
    let db = Tensor::zeros(gpu, "db", &[out_f]).unwrap();
    let momentum = Tensor::zeros(gpu, "fc6.weight.momentum", &[out_f, in_f]).unwrap();
    let hyper = SgdHyper::default();
    let hyper_uniform = Uniform::new(gpu, "hyper", &hyper);
    run(gpu, linear_forward(gpu, &xt, &wt, &bt, &y, false).unwrap());
    run(
        gpu,
        linear_backward(gpu, &xt, &wt, &dyt, Some(&dx), Some((&dw, &db))).unwrap(),
    );

    let (x64, w64) = (to_f64(&x), to_f64(&w));
    let y_ref = cpu::linear_forward(&x64, n, in_f, &w64, out_f, &to_f64(&b));
    let (dx_ref, dw_ref, _) = cpu::linear_backward(&x64, n, in_f, &w64, out_f, &to_f64(&dy));
    // Dot products of 9216 (y) and 4096 (dx) f32 terms, summed in blocks: ~2e-7 relative,
    // the order PyTorch's float32 reaches on FC layers (~3e-7 in the stack fixture).
    assert_close("fc6 y", &y.read_f32(gpu).unwrap(), &y_ref, 1e-6);
    assert_close("fc6 dx", &dx.read_f32(gpu).unwrap(), &dx_ref, 1e-6);
    assert_close("fc6 dweight", &dw.read_f32(gpu).unwrap(), &dw_ref, 1e-6);

    run(
        gpu,
        sgd_step(gpu, &hyper_uniform, &dw, &wt, &momentum).unwrap(),
    );
    let s = cpu::SgdParams {
        lr: hyper.lr.into(),
        momentum: hyper.momentum.into(),
        weight_decay: hyper.weight_decay.into(),
    };
    let (mut w_ref, mut buf) = (w64, vec![0.0; out_f * in_f]);
    let dw_f32: Vec<f64> = dw
        .read_f32(gpu)
        .unwrap()
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    cpu::sgd_step(&mut w_ref, &mut buf, &dw_f32, &s);
    assert_close(
        "fc6 weight after SGD",
        &wt.read_f32(gpu).unwrap(),
        &w_ref,
        1e-6,
    );
}

#[test]
fn binding_chunks_cover_every_row_once_aligned_and_within_the_limit() {
    let gpu = gpu();
    for (rows, row_len) in [
        (4096, 9216),
        (1000, 3),
        (7, 1),
        (123_457, 1),
        (5, 40_000_000),
    ] {
        let chunks = binding_chunks(gpu, rows, row_len);
        let mut next = 0;
        for &(first, count) in &chunks {
            assert_eq!(first, next, "rows {rows}x{row_len}: gap or overlap");
            assert_eq!(
                (first * row_len * 4) as u64 % gpu.binding_offset_alignment(),
                0
            );
            if count > 1 {
                assert!((count * row_len * 4) as u64 <= gpu.max_binding_bytes());
            }
            next = first + count;
        }
        assert_eq!(next, rows);
    }
}

#[test]
fn a_device_the_caller_owns_runs_the_ops() {
    // As a graphics app would: its own instance, adapter and device.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .unwrap();
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    let gpu = Gpu::from_device(device, queue);
    assert_eq!(gpu.adapter_name(), "external device");
    let x = Tensor::from_f32(&gpu, "x", &[4], &[-1.0, 2.0, -3.0, 4.0]).unwrap();
    let y = Tensor::zeros(&gpu, "y", &[4]).unwrap();
    let mut p = Program::new();
    p.push(relu_forward(&gpu, &x, &y).unwrap());
    p.run(&gpu).unwrap();
    assert_eq!(y.read_f32(&gpu).unwrap(), vec![0.0, 2.0, 0.0, 4.0]);
    assert_eq!(gpu.pipelines.stats().misses, 1);
}

#[test]
fn a_wrapped_device_keeps_the_apps_error_handler_and_the_library_reports_its_own_errors() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all()),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .unwrap();
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    let app_errors = Arc::new(AtomicUsize::new(0));
    let seen = app_errors.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        eprintln!("app handler: {e}");
        seen.fetch_add(1, Ordering::SeqCst);
    }));
    let gpu = Gpu::from_device(device.clone(), queue);

    // The library's own mistake (a copy past a tensor's end) is a typed error from the call,
    // and the app's handler never hears of it.
    let x = Tensor::zeros(&gpu, "x", &[4]).unwrap();
    let y = Tensor::zeros(&gpu, "y", &[4]).unwrap();
    let err = gpu
        .submit("copying too much", |encoder| {
            encoder.copy_buffer_to_buffer(x.buffer(), 0, y.buffer(), 0, 64);
        })
        .expect_err("an out-of-range copy is a validation error");
    eprintln!("{err}");
    assert!(matches!(err, Error::Gpu { .. }) && err.to_string().contains("copying too much"));
    gpu.wait().unwrap();
    assert_eq!(app_errors.load(Ordering::SeqCst), 0);

    // The app's own error still reaches the app's handler.
    {
        let _turn = gpu.exclusive();
        let _bad = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("app buffer with invalid usage"),
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
    }
    assert_eq!(app_errors.load(Ordering::SeqCst), 1);
    // And the library still works on the device afterwards.
    let z = Tensor::from_f32(&gpu, "z", &[2], &[1.0, -1.0]).unwrap();
    assert_eq!(z.read_f32(&gpu).unwrap(), vec![1.0, -1.0]);
}

#[test]
fn the_driver_pipeline_cache_is_saved_to_disk_where_the_adapter_has_one() {
    let dir = std::env::temp_dir().join(format!("alexnet-wgpu-cache-test-{}", std::process::id()));
    let options = GpuOptions {
        pipeline_cache_dir: Some(dir.clone()),
        ..Default::default()
    };
    let gpu = Gpu::new(&options).unwrap();
    let x = Tensor::zeros(&gpu, "x", &[8]).unwrap();
    let y = Tensor::zeros(&gpu, "y", &[8]).unwrap();
    relu_forward(&gpu, &x, &y).unwrap();
    gpu.save_pipeline_cache();
    let files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    eprintln!(
        "driver cache: {} ({} file(s) in {})",
        gpu.pipelines.has_driver_cache(),
        files.len(),
        dir.display()
    );
    if gpu.pipelines.has_driver_cache() {
        assert_eq!(files.len(), 1, "expected one cache file");
        assert!(files[0].metadata().unwrap().len() > 0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_adapter_error_says_what_was_tried_and_how_to_get_a_driver() {
    let options = GpuOptions {
        adapter_name: Some("no-such-adapter-anywhere".into()),
        ..Default::default()
    };
    let err = Gpu::new(&options).err().expect("no adapter should match");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(matches!(err, Error::NoAdapter { .. }));
    assert!(text.contains("no-such-adapter-anywhere") && text.contains("mesa-vulkan-drivers"));
}

#[test]
fn shape_errors_name_the_tensor_and_both_shapes() {
    let gpu = gpu();
    let cfg = Conv2dConfig {
        in_channels: 3,
        out_channels: 4,
        kernel: 3,
        stride: 1,
        padding: 1,
        groups: 1,
    };
    let x = Tensor::zeros(gpu, "images", &[1, 3, 8, 8]).unwrap();
    let w = Tensor::zeros(gpu, "conv.weight", &[4, 3, 5, 5]).unwrap();
    let b = Tensor::zeros(gpu, "conv.bias", &[4]).unwrap();
    let y = Tensor::zeros(gpu, "conv.out", &[1, 4, 8, 8]).unwrap();
    let text = conv2d_forward(gpu, &cfg, &x, &w, &b, &y, false)
        .err()
        .unwrap()
        .to_string();
    assert!(
        text.contains("conv.weight")
            && text.contains("[4, 3, 5, 5]")
            && text.contains("[4, 3, 3, 3]"),
        "{text}"
    );
    let text = x.write_f32(gpu, &[0.0; 5]).err().unwrap().to_string();
    assert!(
        text.contains("images") && text.contains("192") && text.contains('5'),
        "{text}"
    );
    let grouped = Conv2dConfig { groups: 2, ..cfg };
    let text = grouped.validate().err().unwrap().to_string();
    assert!(
        text.contains("groups 2 must divide in_channels 3"),
        "{text}"
    );
}

#[test]
fn selftest_passes_in_every_kernel_configuration_of_this_adapter() {
    use alexnet_wgpu::selftest::{run as selftest, SelftestOptions};
    for (what, gpu) in common::gpus() {
        let report = selftest(gpu, &SelftestOptions::default()).unwrap();
        let failed: Vec<String> = report
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} {} {}: {:.2e}", c.layer, c.op, c.part, c.rel_err))
            .collect();
        eprintln!(
            "{what}: {} checks in {:.1} s, {} failed",
            report.checks.len(),
            report.seconds,
            failed.len()
        );
        // Every conv and linear layer forward plus each gradient, the loss and the update.
        assert!(
            report.checks.len() >= 60,
            "{what}: {} checks",
            report.checks.len()
        );
        assert!(failed.is_empty(), "{what}: {failed:?}");
    }
}

#[test]
fn selftest_command_checks_the_chosen_adapter_and_exits_zero() {
    let backend = gpu()
        .adapter_info
        .as_ref()
        .map(|i| format!("{:?}", i.backend))
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_alexnet"))
        .args(["selftest", "--backend", &backend.to_lowercase()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    assert!(
        stdout.contains("PASS") && stdout.contains("classifier.1") && stdout.contains("GFLOP/s")
    );
}

#[test]
fn gemm_tiles_follow_the_workgroup_memory_the_device_reports() {
    use alexnet_wgpu::ops::GemmTiles;
    use alexnet_wgpu::runtime::DeviceLimits;
    // WebGPU's 16 KiB keeps the default shapes; less gets shallower tiles that still fit.
    assert_eq!(GemmTiles::for_rows(64, 16384), GemmTiles::SMALL);
    assert_eq!(GemmTiles::for_rows(16, 16384), GemmTiles::NARROW);
    for bytes in [8192u32, 6144, 4096, 2304] {
        for rows in [16, 64] {
            let tiles = GemmTiles::for_rows(rows, bytes);
            tiles.validate().unwrap();
            assert!(
                tiles.workgroup_bytes() <= bytes,
                "{tiles} needs {} > {bytes}",
                tiles.workgroup_bytes()
            );
        }
    }
    // And a device that reports 4 KiB runs the whole selftest on them.
    let limits = wgpu::Limits {
        max_compute_workgroup_storage_size: 4096,
        ..wgpu::Limits::defaults()
    };
    let gpu = Gpu::new(&GpuOptions {
        limits: Some(DeviceLimits::Custom(Box::new(limits))),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(gpu.limits().max_compute_workgroup_storage_size, 4096);
    let report = alexnet_wgpu::selftest::run(&gpu, &Default::default()).unwrap();
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "{failed:?}");
}

/// The benchmark's per-layer profile splits each convolution's and linear layer's backward
/// into the parts the ops tag (input, weight and bias gradient), for both kernel families,
/// and leaves the other layers' backward whole.
#[test]
fn the_benchmark_profile_splits_backward_passes_by_the_ops_phases() {
    use alexnet_wgpu::bench::{self, BenchConfig};
    use alexnet_wgpu::model::AlexNetConfig;
    use alexnet_wgpu::ops::KernelPolicy;

    let probe = gpu();
    if !probe
        .device
        .features()
        .contains(wgpu::Features::TIMESTAMP_QUERY)
    {
        eprintln!(
            "skipped: '{}' has no timestamp queries",
            probe.adapter_name()
        );
        return;
    }
    let cfg = BenchConfig {
        models: vec![AlexNetConfig::original(10).scaled(0.0625)],
        image_size: 64,
        inference_batches: vec![],
        training_batches: vec![2],
        iterations: 1,
        profile_layers: true,
        unfused: false,
    };
    let report = bench::run(&GpuOptions::default(), KernelPolicy::default(), &cfg).unwrap();
    for kernels in ["plain", "tiled"] {
        let rows: Vec<&str> = report
            .layers
            .iter()
            .filter(|l| l.kernels == kernels && l.mode == "training")
            .map(|l| l.layer.as_str())
            .collect();
        // The first convolution computes no input gradient (nothing below it learns).
        for part in ["features.0 (weight grad)", "features.0 (bias grad)"] {
            assert!(rows.contains(&part), "{kernels}: no '{part}' in {rows:?}");
        }
        assert!(
            !rows.contains(&"features.0 (input grad)"),
            "{kernels}: {rows:?}"
        );
        for layer in ["features.4", "classifier.1", "classifier.6"] {
            for part in ["input grad", "weight grad", "bias grad"] {
                let name = format!("{layer} ({part})");
                assert!(
                    rows.contains(&name.as_str()),
                    "{kernels}: no '{name}' in {rows:?}"
                );
            }
            let whole = format!("{layer} (backward)");
            assert!(
                !rows.contains(&whole.as_str()),
                "{kernels}: '{whole}' in {rows:?}"
            );
        }
        assert!(
            rows.contains(&"features.3 (backward)"),
            "{kernels}: {rows:?}"
        );
    }
}

/// An arena lays tensors back to back at binding-aligned offsets, in a new buffer when the
/// device's `max_buffer_size` would be passed; each view writes, reads, clears and binds as a
/// tensor of its own, without touching its neighbours, and a span covers neighbours in one
/// buffer only.
#[test]
fn an_arena_packs_aligned_views_into_buffers_the_device_allows() {
    use alexnet_wgpu::runtime::DeviceLimits;
    let limits = wgpu::Limits {
        max_buffer_size: 4096,
        ..wgpu::Limits::defaults()
    };
    let gpu = &Gpu::new(&GpuOptions {
        limits: Some(DeviceLimits::Custom(Box::new(limits))),
        ..Default::default()
    })
    .unwrap();
    let align = (gpu.binding_offset_alignment() / 4) as usize;
    let shapes = [vec![3, 5], vec![7], vec![1000], vec![200], vec![1024]];
    let named: Vec<(String, Vec<usize>)> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("t{i}"), s.clone()))
        .collect();
    let t = Tensor::arena(gpu, "arena", &named).unwrap();
    let y = Tensor::arena(gpu, "outputs", &named).unwrap();
    // t0 and t1 share the first 1024-element buffer; each later one needs a buffer of its own.
    assert_eq!(
        t[1].offset_after(&t[0]),
        Some(15usize.next_multiple_of(align))
    );
    assert_eq!(t[0].offset_after(&t[1]), None);
    for (i, later) in t.iter().enumerate().skip(2) {
        assert_eq!(later.offset_after(&t[i - 1]), None, "t{i}");
        assert_eq!(later.byte_offset(), 0, "t{i}");
    }
    let mut rng = Rng::new(41);
    let data: Vec<Vec<f32>> = t.iter().map(|v| rng.normals(v.numel(), 1.0)).collect();
    for (view, values) in t.iter().zip(&data) {
        view.write_f32(gpu, values).unwrap();
    }
    for (view, values) in t.iter().zip(&data) {
        assert_eq!(&view.read_f32(gpu).unwrap(), values, "{}", view.name());
    }
    // A kernel binds views at their offsets: ReLU of t1 into the second arena's t1.
    run(gpu, [relu_forward(gpu, &t[1], &y[1]).unwrap()]);
    let relu: Vec<f32> = data[1].iter().map(|&v| v.max(0.0)).collect();
    assert_eq!(y[1].read_f32(gpu).unwrap(), relu);
    assert!(y[0].read_f32(gpu).unwrap().iter().all(|&v| v == 0.0));
    // Clearing t1 leaves t0; the span from t0 to t1 reads both and the zeros between.
    let mut clear = Program::new();
    clear.clear(&t[1]);
    clear.run(gpu).unwrap();
    assert_eq!(t[0].read_f32(gpu).unwrap(), data[0]);
    let span = t[0].span_to(&t[1]).unwrap();
    let mut expected = data[0].clone();
    expected.resize(span.numel(), 0.0);
    assert_eq!(span.read_f32(gpu).unwrap(), expected);
    assert!(t[0].span_to(&t[2]).is_err());
    let too_large = Tensor::arena(gpu, "arena", &[("huge".to_string(), vec![1025])]);
    assert!(
        matches!(&too_large, Err(Error::BufferTooLarge { tensor, .. }) if tensor == "huge"),
        "{too_large:?}"
    );
}

/// Threads sharing one device prepare kernels at once, some the cache has and some it must
/// compile, as the suites' parallel tests and a multi-threaded app do. The pipeline cache
/// once took its two locks in opposite orders on the two paths and deadlocked here.
#[test]
fn threads_sharing_a_device_prepare_kernels_concurrently() {
    const SHADER: ShaderSource = ShaderSource {
        name: "concurrent_preparation",
        wgsl: "struct Params { n: u32 }
               @group(0) @binding(0) var<uniform> p: Params;
               @group(0) @binding(1) var<storage, read_write> out: array<f32>;
               override WG: u32 = 64u;
               override SCALE: f32 = 1.0;
               @compute @workgroup_size(WG)
               fn scaled(@builtin(global_invocation_id) gid: vec3u) {
                   if gid.x == 0u { out[0] = f32(p.n) * SCALE; }
               }",
    };
    const THREADS: usize = 4;
    let gpu = gpu();
    let (done, finished) = std::sync::mpsc::channel();
    for thread in 0..THREADS {
        let done = done.clone();
        std::thread::spawn(move || {
            let out = Tensor::zeros(gpu, "out", &[1]).unwrap();
            for i in 0..1000 {
                // Mostly pipelines every thread shares (hits), every fifth one new (a miss).
                let scale = if i % 5 == 4 {
                    (thread * 1000 + i) as f64
                } else {
                    1.0
                };
                let call = KernelCall {
                    shader: SHADER,
                    entry: "scaled",
                    params: &[0; 4],
                    args: &[Arg::Write(out.all())],
                    threads: 1,
                };
                gpu.prepare_overriding(call, &[("SCALE", scale)]).unwrap();
            }
            done.send(()).unwrap();
        });
    }
    for _ in 0..THREADS {
        finished
            .recv_timeout(std::time::Duration::from_secs(300))
            .expect("threads preparing kernels on one device did not finish: a deadlock");
    }
}
