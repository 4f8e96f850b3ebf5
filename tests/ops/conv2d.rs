use alexnet_wgpu::ops::conv2d::{conv2d_backward, conv2d_forward, Conv2dConfig};

use crate::common::gradcheck::{self, program, GradCase};
use crate::common::reference::{self as cpu, to_f64};
use alexnet_wgpu::Gpu;

use crate::common::{assert_close, assert_relu_of, gpus, run, upload, Fixture, Rng};
use alexnet_wgpu::runtime::Tensor;

/// (input shape, config) — AlexNet's conv1, conv2, conv3/4 forms plus odd sizes.
pub(crate) fn cases() -> Vec<([usize; 4], Conv2dConfig)> {
    let cfg = |in_channels, out_channels, kernel, stride, padding, groups| Conv2dConfig {
        in_channels,
        out_channels,
        kernel,
        stride,
        padding,
        groups,
    };
    vec![
        ([2, 3, 23, 23], cfg(3, 8, 11, 4, 2, 1)),
        ([2, 4, 9, 7], cfg(4, 6, 5, 1, 2, 2)),
        ([3, 6, 7, 5], cfg(6, 4, 3, 2, 1, 2)),
        ([2, 6, 5, 6], cfg(6, 6, 3, 1, 1, 1)),
        ([1, 6, 6, 5], cfg(6, 9, 3, 1, 1, 3)),
        ([2, 2, 4, 3], cfg(2, 4, 1, 1, 0, 1)),
        // A weight-gradient reduction of 4·47·47 = 8836 terms: the tiled kernel splits it.
        ([4, 3, 47, 47], cfg(3, 4, 3, 1, 1, 1)),
    ]
}

fn case(
    gpu: &'static Gpu,
    xs: [usize; 4],
    cfg: Conv2dConfig,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
) -> GradCase {
    let (oh, ow) = cfg.output_hw(xs[2], xs[3]).unwrap();
    let inputs = vec![
        ("x", xs.to_vec(), x),
        ("weight", cfg.weight_shape().to_vec(), w),
        ("bias", vec![cfg.out_channels], b),
    ];
    gradcheck::build(
        gpu,
        inputs,
        &[xs[0], cfg.out_channels, oh, ow],
        |t, y, dy, g| {
            let f = conv2d_forward(gpu, &cfg, &t[0], &t[1], &t[2], y, false).unwrap();
            let b = conv2d_backward(
                gpu,
                &cfg,
                &t[0],
                &t[1],
                dy,
                Some(&g[0]),
                Some((&g[1], &g[2])),
            )
            .unwrap();
            (program(f), program(b))
        },
    )
}

pub(crate) fn random_case(
    gpu: &'static Gpu,
    rng: &mut Rng,
    xs: [usize; 4],
    cfg: Conv2dConfig,
) -> (GradCase, [Vec<f32>; 3]) {
    let ws = cfg.weight_shape();
    let x = rng.normals(xs.iter().product(), 1.0);
    let w = rng.normals(ws.iter().product(), 0.3);
    let b = rng.normals(cfg.out_channels, 1.0);
    (
        case(gpu, xs, cfg, x.clone(), w.clone(), b.clone()),
        [x, w, b],
    )
}

#[test]
fn conv2d_forward_and_backward_match_cpu_reference() {
    let mut rng = Rng::new(1);
    for ((kernels, gpu), (xs, cfg)) in gpus()
        .into_iter()
        .flat_map(|g| cases().into_iter().map(move |c| (g, c)))
    {
        let (c, [x, w, b]) = random_case(gpu, &mut rng, xs, cfg);
        let dy = rng.normals(c.output.numel(), 1.0);
        let (y, grads) = c.evaluate(gpu, &[&x, &w, &b], &dy);
        let p = cpu::Conv2dParams {
            stride: cfg.stride,
            padding: cfg.padding,
            groups: cfg.groups,
        };
        let ws = cfg.weight_shape();
        let (y_ref, _) = cpu::conv2d_forward(&to_f64(&x), xs, &to_f64(&w), ws, &to_f64(&b), &p);
        let (dx, dw, db) = cpu::conv2d_backward(&to_f64(&x), xs, &to_f64(&w), ws, &to_f64(&dy), &p);
        // f32 sums of up to C/G·K² terms: PyTorch's own float32 lands ~1e-7 from float64.
        let tol = 1e-5;
        let what = format!("conv2d ({kernels}) {xs:?} {cfg:?}");
        assert_close(&format!("{what} y"), &y, &y_ref, tol);
        assert_close(&format!("{what} dx"), &grads[0], &dx, tol);
        assert_close(&format!("{what} dweight"), &grads[1], &dw, tol);
        assert_close(&format!("{what} dbias"), &grads[2], &db, tol);
    }
}

#[test]
fn conv2d_backward_matches_finite_differences() {
    let mut rng = Rng::new(2);
    for (kernels, gpu) in gpus() {
        for (xs, cfg) in cases().into_iter().skip(1).take(3) {
            let (c, _) = random_case(gpu, &mut rng, xs, cfg);
            // Conv is linear in each input, so only f32 rounding of the forward separates the
            // two (observed ~2e-5): 1e-3.
            gradcheck::check(
                gpu,
                &format!("conv2d ({kernels}) {cfg:?}"),
                &c,
                24,
                1e-2,
                1e-3,
            );
        }
    }
}

#[test]
fn conv2d_matches_pytorch() {
    for name in [
        "conv2d_conv1like",
        "conv2d_5x5_groups2",
        "conv2d_3x3_stride2_groups2",
    ] {
        let f = Fixture::load(name);
        let xs: [usize; 4] = f.shape("x").try_into().unwrap();
        let ws = f.shape("weight");
        let cfg = Conv2dConfig {
            in_channels: xs[1],
            out_channels: ws[0],
            kernel: ws[2],
            stride: f.meta_usize("stride"),
            padding: f.meta_usize("padding"),
            groups: f.meta_usize("groups"),
        };
        let inputs = [f.f32("x"), f.f32("weight"), f.f32("bias")];
        for (kernels, gpu) in gpus() {
            eprintln!("{kernels} kernels:");
            let c = case(
                gpu,
                xs,
                cfg,
                inputs[0].clone(),
                inputs[1].clone(),
                inputs[2].clone(),
            );
            let (y, g) = c.evaluate(gpu, &[&inputs[0], &inputs[1], &inputs[2]], &f.f32("dy"));
            // Within 10× PyTorch's float32 error (~1e-7 here), never asked below 1e-6.
            f.assert_matches("y", &y, 10.0, 1e-6);
            f.assert_matches("dx", &g[0], 10.0, 1e-6);
            f.assert_matches("dweight", &g[1], 10.0, 1e-6);
            f.assert_matches("dbias", &g[2], 10.0, 1e-6);
        }
    }
}

#[test]
fn conv2d_input_gradient_is_assigned_and_parameter_gradients_accumulate() {
    let mut rng = Rng::new(3);
    for (kernels, gpu) in gpus() {
        let (xs, cfg) = cases()[2];
        let (c, [x, w, b]) = random_case(gpu, &mut rng, xs, cfg);
        let dy = rng.normals(c.output.numel(), 1.0);
        let what = format!("conv2d ({kernels})");
        c.assert_inputs_assigned_params_accumulated(gpu, &what, &[&x, &w, &b], &dy, &[1, 2]);
    }
}

/// With `relu` the forward is exactly ReLU of the forward without it, on every kernel path
/// (plain, tiled, split-K): the model fuses the ReLU after each convolution this way.
#[test]
fn conv2d_forward_with_relu_is_relu_of_its_output() {
    let mut rng = Rng::new(4);
    for ((kernels, gpu), (xs, cfg)) in gpus()
        .into_iter()
        .flat_map(|g| cases().into_iter().map(move |c| (g, c)))
    {
        let ws = cfg.weight_shape();
        let (oh, ow) = cfg.output_hw(xs[2], xs[3]).unwrap();
        let x = upload(gpu, "x", &xs, &rng.normals(xs.iter().product(), 1.0));
        let w = upload(gpu, "w", &ws, &rng.normals(ws.iter().product(), 0.3));
        let b = upload(
            gpu,
            "b",
            &[cfg.out_channels],
            &rng.normals(cfg.out_channels, 1.0),
        );
        let ys = [xs[0], cfg.out_channels, oh, ow];
        let [y, fused] = [false, true].map(|relu| {
            let y = Tensor::zeros(gpu, "y", &ys).unwrap();
            run(
                gpu,
                conv2d_forward(gpu, &cfg, &x, &w, &b, &y, relu).unwrap(),
            );
            y.read_f32(gpu).unwrap()
        });
        assert_relu_of(&format!("conv2d ({kernels}) {xs:?} {cfg:?}"), &fused, &y);
    }
}
