use alexnet_wgpu::ops::lrn::{lrn_backward, lrn_forward, LrnConfig, TILED_MAX_SIZE};
use alexnet_wgpu::runtime::{Gpu, Tensor};

use crate::common::gradcheck::{self, GradCase};
use crate::common::reference::{self as cpu, to_f64};
use crate::common::{assert_close, gpus, plain_gpu, Fixture, Rng};

fn case(gpu: &'static Gpu, shape: [usize; 4], cfg: LrnConfig, x: Vec<f32>) -> GradCase {
    let scale = Tensor::zeros(gpu, "scale", &shape).unwrap();
    gradcheck::build(
        gpu,
        vec![("x", shape.to_vec(), x)],
        &shape,
        |t, y, dy, g| {
            let f = lrn_forward(gpu, &cfg, &t[0], y, &scale).unwrap();
            let b = lrn_backward(gpu, &cfg, &t[0], y, &scale, dy, &g[0]).unwrap();
            (gradcheck::program([f]), gradcheck::program([b]))
        },
    )
}

fn cpu_params(cfg: &LrnConfig) -> cpu::LrnParams {
    cpu::LrnParams {
        size: cfg.size,
        alpha: f64::from(cfg.alpha),
        beta: f64::from(cfg.beta),
        k: f64::from(cfg.k),
    }
}

/// AlexNet's settings with activations large enough that the normalisation matters, an even
/// window (asymmetric padding), a window wider than the channel count, windows across the
/// tiled kernels' channel blocks (8 channels) and pixel tiles (32, the last one partial), the
/// widest window they hold and one wider (the plain kernel's).
fn cases() -> Vec<([usize; 4], LrnConfig, f64)> {
    let strong = |size, alpha, beta, k| LrnConfig {
        size,
        alpha,
        beta,
        k,
    };
    vec![
        ([2, 7, 5, 3], LrnConfig::default(), 40.0),
        ([2, 6, 3, 4], strong(4, 0.05, 0.6, 1.5), 3.0),
        ([1, 3, 4, 4], strong(7, 0.3, 0.75, 1.0), 2.0),
        ([3, 9, 2, 3], strong(3, 0.1, 0.9, 2.0), 2.0),
        ([2, 19, 7, 6], LrnConfig::default(), 40.0),
        ([2, 21, 5, 7], strong(4, 0.05, 0.6, 1.5), 3.0),
        ([2, 12, 6, 7], strong(TILED_MAX_SIZE, 0.2, 0.75, 1.0), 2.0),
        (
            [1, 20, 3, 3],
            strong(TILED_MAX_SIZE + 1, 0.2, 0.75, 1.0),
            2.0,
        ),
    ]
}

#[test]
fn lrn_forward_and_backward_match_cpu_reference() {
    let mut rng = Rng::new(5);
    for ((kernels, gpu), (shape, cfg, scale)) in gpus()
        .into_iter()
        .flat_map(|g| cases().into_iter().map(move |c| (g, c)))
    {
        let x = rng.normals(shape.iter().product(), scale);
        let c = case(gpu, shape, cfg, x.clone());
        let dy = rng.normals(x.len(), 1.0);
        let (y, g) = c.evaluate(gpu, &[&x], &dy);
        let p = cpu_params(&cfg);
        // A window sum, a pow and a product: PyTorch's float32 reaches ~5e-8 here.
        assert_close(
            &format!("lrn ({kernels}) {shape:?} {cfg:?} y"),
            &y,
            &cpu::lrn_forward(&to_f64(&x), shape, &p),
            1e-6,
        );
        let dx = cpu::lrn_backward(&to_f64(&x), shape, &to_f64(&dy), &p);
        assert_close(
            &format!("lrn ({kernels}) {shape:?} {cfg:?} dx"),
            &g[0],
            &dx,
            1e-6,
        );
    }
}

#[test]
fn lrn_backward_matches_finite_differences() {
    let mut rng = Rng::new(6);
    for ((kernels, gpu), (shape, cfg, scale)) in gpus()
        .into_iter()
        .flat_map(|g| cases().into_iter().map(move |c| (g, c)))
    {
        let x = rng.normals(shape.iter().product(), scale);
        let c = case(gpu, shape, cfg, x);
        // eps relative to the inputs' scale; smooth function, f32 noise only.
        gradcheck::check(
            gpu,
            &format!("lrn ({kernels}) {shape:?} {cfg:?}"),
            &c,
            24,
            1e-2 * scale as f32,
            1e-3,
        );
    }
}

#[test]
fn lrn_matches_pytorch() {
    for name in ["lrn_alexnet", "lrn_even_size"] {
        let f = Fixture::load(name);
        let cfg = LrnConfig {
            size: f.meta_usize("size"),
            alpha: f.meta_f64("alpha") as f32,
            beta: f.meta_f64("beta") as f32,
            k: f.meta_f64("k") as f32,
        };
        let shape: [usize; 4] = f.shape("x").try_into().unwrap();
        for (kernels, gpu) in gpus() {
            eprintln!("{kernels} kernels:");
            let c = case(gpu, shape, cfg, f.f32("x"));
            let (y, g) = c.evaluate(gpu, &[&f.f32("x")], &f.f32("dy"));
            // Within 10× PyTorch's float32 error (~5e-8), never asked below 5e-7.
            f.assert_matches("y", &y, 10.0, 5e-7);
            f.assert_matches("dx", &g[0], 10.0, 5e-7);
        }
    }
}

/// The kernels that sum each window from workgroup memory do so in the plain kernels' order:
/// the same y and dx, bit for bit, on every kernel path.
#[test]
fn lrn_gives_the_plain_kernels_results_on_every_path() {
    let mut rng = Rng::new(7);
    for (shape, cfg, scale) in cases() {
        let x = rng.normals(shape.iter().product(), scale);
        let dy = rng.normals(x.len(), 1.0);
        let results = |gpu| {
            let c = case(gpu, shape, cfg, x.clone());
            let (y, g) = c.evaluate(gpu, &[&x], &dy);
            [y, g[0].clone()]
        };
        let plain = results(plain_gpu());
        for (kernels, gpu) in gpus() {
            assert!(
                results(gpu) == plain,
                "lrn ({kernels}) {shape:?} {cfg:?}: differs from the plain kernels"
            );
        }
    }
}
