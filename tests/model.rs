//! The whole AlexNet stack: the seed's topology with widths cut (12/32/48/48/32 channels,
//! FC 128, 10 classes, input 163×163, batch 1) against PyTorch — logits, loss, the gradient
//! of every parameter and of the input, and the parameters after two SGD steps — plus the
//! pipeline cache's promise that a second step compiles nothing, and the full-size model.

mod common;

use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Plan, PlanOptions};
use alexnet_wgpu::ops::cross_entropy::totals;
use alexnet_wgpu::runtime::Gpu;
use alexnet_wgpu::train::{train_step, Optimizer, OptimizerConfig};
use common::fixture_model::{load_fixture_model, small_config};
use common::{gpu, Fixture};

/// Tolerances, from how far PyTorch's own float32 lies from float64 on this fixture
/// (printed beside each check; `tools/gen_fixtures.py` prints the table): logits 3e-7,
/// loss 1.4e-7, gradients 2e-7..1e-6, parameters after two steps ~5e-8. We ask for 10× that,
/// with a floor of 1e-6 (parameters 2e-7). Random inputs keep max-pool and ReLU away from
/// near-ties here, so gradients routed through them are as accurate as the rest.
#[test]
fn alexnet_small_matches_pytorch_through_two_sgd_steps() {
    let gpu = gpu();
    let f = Fixture::load("alexnet_small");
    let (model, plan) = load_fixture_model(gpu, &f);
    plan.forward_backward(gpu, 0).unwrap();
    f.assert_matches("logits", &plan.logits.read_f32(gpu).unwrap(), 10.0, 1e-6);
    let loss = plan.totals.read_f32(gpu).unwrap()[totals::LOSS];
    f.assert_matches("loss", &[loss], 10.0, 1e-6);
    let input_grad = plan.input_grad.as_ref().unwrap().read_f32(gpu).unwrap();
    f.assert_matches("grad.input", &input_grad, 10.0, 1e-6);
    for p in &model.params {
        let got = p.grad.read_f32(gpu).unwrap();
        f.assert_matches(&format!("grad.{}", p.name), &got, 10.0, 1e-6);
    }
    let mut sgd = Optimizer::new(gpu, &model, OptimizerConfig::sgd()).unwrap();
    sgd.begin_step(gpu);
    sgd.program().run(gpu).unwrap();
    train_step(gpu, &plan, &mut sgd, 1).unwrap();
    for p in &model.params {
        let got = p.value.read_f32(gpu).unwrap();
        f.assert_matches(&format!("step2.{}", p.name), &got, 10.0, 2e-7);
    }
}

/// A convolution or linear layer and the ReLU after it are planned as one dispatch (the
/// kernels' ReLU epilogue): seven fewer forward dispatches in this model (five convolutions,
/// two hidden FC layers), and the same logits, loss and gradients, bit for bit, as the
/// unfused plan, with each kernel family.
#[test]
fn fusing_each_relu_into_the_layer_before_changes_no_result() {
    use alexnet_wgpu::ops::{KernelPolicy, Kernels};
    let gpu = &Gpu::new(&Default::default()).unwrap();
    let f = Fixture::load("alexnet_small");
    let small_batch_paths = KernelPolicy {
        parallel_small_batches: Some(true),
        ..KernelPolicy::default()
    };
    for (name, policy) in [
        (
            "plain",
            KernelPolicy::default().with_kernels(Kernels::Plain),
        ),
        ("tiled", KernelPolicy::default()),
        ("tiled, small-batch paths", small_batch_paths),
    ] {
        let run = |unfused| {
            KernelPolicy { unfused, ..policy }.apply(gpu).unwrap();
            let (model, plan) = load_fixture_model(gpu, &f);
            plan.forward_backward(gpu, 0).unwrap();
            let mut results = vec![
                plan.logits.read_f32(gpu).unwrap(),
                plan.totals.read_f32(gpu).unwrap(),
                plan.input_grad.as_ref().unwrap().read_f32(gpu).unwrap(),
            ];
            results.extend(model.params.iter().map(|p| p.grad.read_f32(gpu).unwrap()));
            (plan.forward.dispatch_count(), results)
        };
        let (fused_dispatches, fused) = run(false);
        let (unfused_dispatches, unfused) = run(true);
        eprintln!("{name}: {fused_dispatches} forward dispatches fused, {unfused_dispatches} not");
        assert_eq!(fused_dispatches + 7, unfused_dispatches, "{name}");
        assert!(fused == unfused, "{name}: the fused plan's results differ");
    }
}

/// The optimizer updates runs of parameters that lie back to back in the model's arenas as
/// one span each: one dispatch for the whole small model, one more per break (a frozen tensor
/// in between, `lr_backbone`'s second group), and after three steps every parameter and state
/// tensor holds the same bits as with one dispatch per tensor, for SGD, Adam and AdamW.
#[test]
fn the_optimizer_updates_adjacent_parameters_as_one_span_with_the_same_results() {
    use alexnet_wgpu::model::Init;
    use alexnet_wgpu::ops::KernelPolicy;
    let gpu = &Gpu::new(&Default::default()).unwrap();
    let mut rng = common::Rng::new(31);
    let grads: Vec<Vec<Vec<f32>>> = (0..3)
        .map(|_| {
            let model = AlexNet::new(gpu, small_config()).unwrap();
            let sizes: Vec<usize> = model.params.iter().map(|p| p.value.numel()).collect();
            sizes.iter().map(|&n| rng.normals(n, 1.0)).collect()
        })
        .collect();
    let configs = [
        ("sgd", OptimizerConfig::sgd()),
        ("adam", OptimizerConfig::adam()),
        ("adamw", OptimizerConfig::adamw()),
    ];
    // (frozen, lr_backbone, the fused step's dispatches)
    let setups: [(&[&str], Option<f64>, usize); 3] = [
        (&[], None, 1),
        (&["features.4.weight"], None, 2),
        (&["features"], Some(1e-4), 2),
    ];
    for ((name, config), (frozen, lr_backbone, dispatches)) in configs
        .iter()
        .flat_map(|c| setups.iter().map(move |s| (c, s)))
    {
        let what = format!("{name}, frozen {frozen:?}, lr_backbone {lr_backbone:?}");
        let run = |unfused| {
            KernelPolicy {
                unfused,
                ..KernelPolicy::default()
            }
            .apply(gpu)
            .unwrap();
            let mut model = AlexNet::new(gpu, small_config()).unwrap();
            model.initialize(gpu, Init::PyTorch, 5).unwrap();
            let frozen: Vec<String> = frozen.iter().map(|f| f.to_string()).collect();
            model.freeze(&frozen).unwrap();
            let config = OptimizerConfig {
                lr_backbone: *lr_backbone,
                ..config.clone()
            };
            let mut optimizer = Optimizer::new(gpu, &model, config).unwrap();
            for step in &grads {
                for (p, g) in model.params.iter().zip(step) {
                    p.grad.write_f32(gpu, g).unwrap();
                }
                optimizer.begin_step(gpu);
                optimizer.program().run(gpu).unwrap();
            }
            let values = model.params.iter().map(|p| &p.value);
            let state = optimizer.state.iter().flat_map(|s| s.tensors.iter());
            let results: Vec<Vec<f32>> = values
                .chain(state.map(|(_, t)| t))
                .map(|t| t.read_f32(gpu).unwrap())
                .collect();
            (optimizer.program().dispatch_count(), results)
        };
        let (fused_dispatches, fused) = run(false);
        let (unfused_dispatches, unfused) = run(true);
        eprintln!("{what}: {fused_dispatches} dispatches, {unfused_dispatches} unfused");
        assert_eq!(fused_dispatches, *dispatches, "{what}");
        assert!(fused == unfused, "{what}: the spans' update differs");
    }
}

#[test]
fn a_second_plan_and_step_of_the_same_shapes_compile_no_pipeline() {
    // A device of its own: other tests in this binary compile pipelines concurrently.
    let gpu = &Gpu::new(&Default::default()).unwrap();
    let model = AlexNet::new(gpu, small_config()).unwrap();
    let options = PlanOptions::training(2, 67);
    let plan = Plan::new(gpu, &model, options).unwrap();
    let mut sgd = Optimizer::new(gpu, &model, OptimizerConfig::sgd()).unwrap();
    train_step(gpu, &plan, &mut sgd, 1).unwrap();
    let after_first = gpu.pipelines.stats();
    train_step(gpu, &plan, &mut sgd, 2).unwrap();
    let again = Plan::new(gpu, &model, options).unwrap();
    train_step(gpu, &again, &mut sgd, 3).unwrap();
    gpu.wait().unwrap();
    let after_second = gpu.pipelines.stats();
    eprintln!("pipeline cache after one step: {after_first:?}; after more: {after_second:?}");
    assert!(after_first.misses > 0);
    assert_eq!(
        after_second.misses, after_first.misses,
        "a repeated step compiled pipelines"
    );
    assert!(after_second.hits > after_first.hits);
}

#[test]
fn full_size_alexnet_trains_one_step_at_batch_one() {
    let gpu = gpu();
    let model = AlexNet::new(gpu, AlexNetConfig::original(1000)).unwrap();
    assert_eq!(model.parameter_count(), 60_965_224);
    let mut rng = common::Rng::new(21);
    for p in &model.params {
        let fan_in: usize = p.value.shape()[1..].iter().product::<usize>().max(1);
        let std = if p.name.ends_with("bias") {
            0.0
        } else {
            (2.0 / fan_in as f64).sqrt()
        };
        model
            .set_parameter(
                gpu,
                &p.name,
                p.value.shape(),
                &rng.normals(p.value.numel(), std),
            )
            .unwrap();
    }
    let options = PlanOptions::training(1, 224);
    let plan = Plan::new(gpu, &model, options).unwrap();
    plan.input
        .write_f32(gpu, &rng.normals(3 * 224 * 224, 1.0))
        .unwrap();
    let start = std::time::Instant::now();
    plan.forward_backward(gpu, 5).unwrap();
    let loss = plan.totals.read_f32(gpu).unwrap()[totals::LOSS];
    eprintln!(
        "full-size forward+backward at batch 1: loss {loss}, {:.1?}",
        start.elapsed()
    );
    assert!(loss.is_finite() && loss > 0.0);
    // FC6's weight (151 MB) is bound in slices; its gradient must be complete, not just the
    // first slice: every slice of rows must hold non-zero gradients.
    let fc6 = model.param("classifier.1.weight").unwrap();
    let grad = fc6.grad.read_f32(gpu).unwrap();
    for (slice, rows) in grad.chunks(9216 * 512).enumerate() {
        assert!(
            rows.iter().any(|&g| g != 0.0),
            "FC6 gradient rows {} are all zero",
            slice * 512
        );
    }
    // The update runs over the parameter arena in binding-sized chunks; FC6's weight straddles
    // the first chunk's end at a 128 MiB binding limit and the head lies in the last one.
    let checked = [
        "classifier.1.weight",
        "classifier.6.weight",
        "classifier.6.bias",
    ];
    let before: Vec<(Vec<f32>, Vec<f32>)> = checked
        .iter()
        .map(|name| {
            let p = model.param(name).unwrap();
            (
                p.value.read_f32(gpu).unwrap(),
                p.grad.read_f32(gpu).unwrap(),
            )
        })
        .collect();
    let config = OptimizerConfig::sgd();
    let mut sgd = Optimizer::new(gpu, &model, config.clone()).unwrap();
    eprintln!(
        "full-size SGD step: {} dispatches",
        sgd.program().dispatch_count()
    );
    sgd.begin_step(gpu);
    sgd.program().run(gpu).unwrap();
    let (lr, wd) = (config.lr as f32, config.weight_decay as f32);
    for (name, (value, grad)) in checked.iter().zip(before) {
        let after = model.param(name).unwrap().value.read_f32(gpu).unwrap();
        let want: Vec<f64> = value
            .iter()
            .zip(&grad)
            .map(|(&p, &g)| f64::from(p - lr * (g + wd * p)))
            .collect();
        common::assert_close(&format!("{name} after SGD"), &after, &want, 1e-6);
    }
}

/// Every activation, pool and norm option builds, plans at its smallest input and trains a
/// step to a finite loss; BatchNorm's running statistics move in training, stay put in
/// evaluation, and go through a weights file under PyTorch's buffer names.
#[test]
fn model_variants_train_and_batch_norm_buffers_round_trip() {
    use alexnet_wgpu::model::{summary, Activation, Norm, Pool};
    let gpu = gpu();
    let variants = [
        (
            Activation::LeakyRelu { slope: 0.1 },
            Pool::Max2,
            Norm::BatchNorm,
        ),
        (Activation::Elu { alpha: 1.0 }, Pool::Avg3, Norm::None),
        (Activation::Relu, Pool::Avg2, Norm::Lrn),
        (Activation::Tanh, Pool::Overlapping, Norm::Lrn),
        (Activation::Sigmoid, Pool::Overlapping, Norm::BatchNorm),
    ];
    for (activation, pool, norm) in variants {
        let config = AlexNetConfig {
            channels: [4, 8, 8, 8, 8],
            fc_width: 16,
            activation,
            pool,
            norm: Some(norm),
            ..small_config()
        };
        let what = format!("{activation:?}/{pool:?}/{norm:?}");
        let size = summary::smallest_input(&config).unwrap();
        let model = AlexNet::new(gpu, config).unwrap();
        model
            .initialize(gpu, alexnet_wgpu::model::Init::Kaiming, 1)
            .unwrap();
        let options = |training| PlanOptions::new(2, size, training);
        let plan = Plan::new(gpu, &model, options(true)).unwrap();
        let eval = Plan::new(gpu, &model, options(false)).unwrap();
        let input: Vec<f32> = (0..plan.input.numel())
            .map(|i| (i % 7) as f32 - 3.0)
            .collect();
        plan.input.write_f32(gpu, &input).unwrap();
        plan.labels.write_u32(gpu, &[1u32, 2]).unwrap();
        let mut opt = Optimizer::new(gpu, &model, OptimizerConfig::sgd()).unwrap();
        train_step(gpu, &plan, &mut opt, 7).unwrap();
        let loss = plan.totals.read_f32(gpu).unwrap()[totals::LOSS];
        assert!(loss.is_finite(), "{what}: loss {loss}");
        if norm != Norm::BatchNorm {
            assert!(
                model.buffers.is_empty(),
                "{what}: buffers without BatchNorm"
            );
            continue;
        }
        let names: Vec<&str> = model.buffers.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "features.2.running_mean",
                "features.2.running_var",
                "features.2.num_batches_tracked",
                "features.6.running_mean",
                "features.6.running_var",
                "features.6.num_batches_tracked",
            ],
            "{what}: PyTorch's buffer names at LRN's indices"
        );
        let var = |m: &AlexNet| {
            m.buffer("features.2.running_var")
                .unwrap()
                .value
                .read_f32(gpu)
        };
        let after_train = var(&model).unwrap();
        assert!(
            after_train.iter().any(|&v| v != 1.0),
            "{what}: running_var did not move"
        );
        eval.input.write_f32(gpu, &input).unwrap();
        eval.forward_loss(gpu).unwrap();
        assert_eq!(
            var(&model).unwrap(),
            after_train,
            "{what}: evaluation changed the statistics"
        );
        let path = std::env::temp_dir().join(format!("bn-{}.safetensors", std::process::id()));
        model.save_weights(gpu, &path).unwrap();
        let copy = AlexNet::new(gpu, model.config.clone()).unwrap();
        copy.load_weights(gpu, &path).unwrap();
        let _ = std::fs::remove_file(&path);
        for b in &model.buffers {
            let loaded = copy.buffer(&b.name).unwrap().value.read_f32(gpu).unwrap();
            assert_eq!(loaded, b.value.read_f32(gpu).unwrap(), "{what}: {}", b.name);
        }
        assert_eq!(
            copy.buffer("features.6.num_batches_tracked")
                .unwrap()
                .value
                .read_f32(gpu)
                .unwrap(),
            [1.0]
        );
    }
}

/// `--autotune quick` and `full`: planning the fixture's model times the candidates for every
/// convolution and pass (quick: plain against tiled; full: also each GEMM kernel and tile
/// shape worth trying here), keeps one per shape (on the device and in the adapter's file),
/// and the plan it builds still matches PyTorch as tightly as the default one; a new device on
/// the same cache folder reads the choices back instead of timing again.
#[test]
fn an_autotuned_plan_keeps_a_kernel_per_shape_on_disk_and_matches_pytorch() {
    use alexnet_wgpu::ops::tune::TunedKernels;
    use alexnet_wgpu::ops::{Autotune, GemmChoice, KernelPolicy};
    use alexnet_wgpu::runtime::GpuOptions;
    for autotune in [Autotune::Quick, Autotune::Full] {
        let dir = std::env::temp_dir().join(format!(
            "alexnet-wgpu-autotune-{autotune:?}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let open = || {
            let gpu = Gpu::new(&GpuOptions {
                pipeline_cache_dir: Some(dir.clone()),
                ..Default::default()
            })
            .unwrap();
            let policy = KernelPolicy {
                autotune,
                ..Default::default()
            };
            policy.apply(&gpu).unwrap();
            gpu
        };
        let gpu = open();
        assert!(TunedKernels::of(&gpu).entries().is_empty());
        let f = Fixture::load("alexnet_small");
        let (model, plan) = load_fixture_model(&gpu, &f);
        let tuned = TunedKernels::of(&gpu).entries();
        for (key, choice) in &tuned {
            eprintln!("{autotune:?} {key}: {choice}");
        }
        // Five convolutions: forward, weight gradient, and (the input's gradient is asked
        // for) input gradient each. The linear layers run at batch 1 as GEMVs: nothing to
        // choose.
        for phase in ["Whole", "InputGrad", "WeightGrad"] {
            let count = tuned
                .iter()
                .filter(|(k, _)| k.starts_with("conv2d") && k.ends_with(phase))
                .count();
            assert_eq!(count, 5, "{phase}: {tuned:?}");
        }
        assert_eq!(tuned.len(), 15, "{tuned:?}");
        // Only full chooses GEMM kernels and tiles, and only among the adapter's candidates.
        for (key, choice) in &tuned {
            match (autotune, choice.gemm) {
                (Autotune::Quick, gemm) => assert_eq!(gemm, None, "{key}"),
                (_, Some(gemm)) => {
                    let all: Vec<GemmChoice> = [1, 4, 8, 16, 32, 64, 128]
                        .into_iter()
                        .flat_map(|m| GemmChoice::candidates(&gpu, m))
                        .collect();
                    assert!(all.contains(&gemm), "{key}: {gemm}");
                }
                _ => {}
            }
        }
        plan.forward_backward(&gpu, 0).unwrap();
        f.assert_matches("logits", &plan.logits.read_f32(&gpu).unwrap(), 10.0, 1e-6);
        let input_grad = plan.input_grad.as_ref().unwrap().read_f32(&gpu).unwrap();
        f.assert_matches("grad.input", &input_grad, 10.0, 1e-6);
        for p in &model.params {
            let got = p.grad.read_f32(&gpu).unwrap();
            f.assert_matches(&format!("grad.{}", p.name), &got, 10.0, 1e-6);
        }
        let file = gpu.adapter_cache_file("kernels").unwrap();
        assert!(file.is_file(), "{}", file.display());
        drop((model, plan, gpu));
        assert_eq!(TunedKernels::of(&open()).entries(), tuned);
        if autotune == Autotune::Full {
            // Choices of each GEMM kernel and tile shape, as full may write them, are read
            // back from the file and planned with: the same numbers.
            let forms = [
                "tiled simt 64x64x16/4x4",
                "tiled direct 32x32x16/4x4",
                "plain",
            ];
            let written: std::collections::BTreeMap<_, _> = tuned
                .iter()
                .enumerate()
                .map(|(i, (key, _))| (key.clone(), forms[i % forms.len()].to_string()))
                .collect();
            let json = serde_json::json!({ "kernels": written });
            std::fs::write(&file, serde_json::to_vec(&json).unwrap()).unwrap();
            let gpu = open();
            let read: Vec<(String, String)> = TunedKernels::of(&gpu)
                .entries()
                .into_iter()
                .map(|(k, c)| (k, c.to_string()))
                .collect();
            assert_eq!(read, written.into_iter().collect::<Vec<_>>());
            let (model, plan) = load_fixture_model(&gpu, &f);
            plan.forward_backward(&gpu, 0).unwrap();
            f.assert_matches("logits", &plan.logits.read_f32(&gpu).unwrap(), 10.0, 1e-6);
            for p in &model.params {
                let got = p.grad.read_f32(&gpu).unwrap();
                f.assert_matches(&format!("grad.{}", p.name), &got, 10.0, 1e-6);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
