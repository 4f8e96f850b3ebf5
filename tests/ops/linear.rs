use alexnet_wgpu::ops::linear::{linear_backward, linear_forward};

use crate::common::gradcheck::{self, GradCase};
use crate::common::reference::{self as cpu, to_f64};
use alexnet_wgpu::Gpu;

use crate::common::{assert_close, assert_relu_of, gpus, run, upload, Fixture, Rng};
use alexnet_wgpu::runtime::Tensor;

fn case(
    gpu: &'static Gpu,
    n: usize,
    in_f: usize,
    out_f: usize,
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
) -> GradCase {
    let inputs = vec![
        ("x", vec![n, in_f], x),
        ("weight", vec![out_f, in_f], w),
        ("bias", vec![out_f], b),
    ];
    gradcheck::build(gpu, inputs, &[n, out_f], |t, y, dy, g| {
        let f = linear_forward(gpu, &t[0], &t[1], &t[2], y, false).unwrap();
        let b = linear_backward(gpu, &t[0], &t[1], dy, Some(&g[0]), Some((&g[1], &g[2]))).unwrap();
        (gradcheck::program(f), gradcheck::program(b))
    })
}

pub(crate) fn random(
    gpu: &'static Gpu,
    rng: &mut Rng,
    n: usize,
    in_f: usize,
    out_f: usize,
) -> (GradCase, [Vec<f32>; 3]) {
    let x = rng.normals(n * in_f, 1.0);
    let w = rng.normals(out_f * in_f, 0.2);
    let b = rng.normals(out_f, 1.0);
    (
        case(gpu, n, in_f, out_f, x.clone(), w.clone(), b.clone()),
        [x, w, b],
    )
}

/// (batch, in, out). Batches of 64 and more take the tiled GEMM; smaller ones the GEMV kernels
/// (8 images a pass, so 11 takes two, the second partly empty; 300 features, two strides of
/// 256), except with the direct GEMM (CPU drivers), which takes batches from 8 on, with 1, 2
/// or 4 columns per lane (8, 11 and 64 here); below 8 CPU drivers with subgroups take
/// `linear_forward_broadcast` (8 rows and 8 inputs a step: 7, 5 and 33 rows, 10, 37 and 64
/// inputs here).
const SHAPES: [(usize, usize, usize); 7] = [
    (3, 10, 7),
    (11, 300, 9),
    (1, 37, 5),
    (5, 64, 33),
    (70, 50, 33),
    (64, 130, 65),
    (8, 45, 20),
];

#[test]
fn linear_forward_and_backward_match_cpu_reference() {
    let mut rng = Rng::new(11);
    for ((kernels, gpu), (n, in_f, out_f)) in gpus()
        .into_iter()
        .flat_map(|g| SHAPES.into_iter().map(move |s| (g, s)))
    {
        let (c, [x, w, b]) = random(gpu, &mut rng, n, in_f, out_f);
        let dy = rng.normals(n * out_f, 1.0);
        let (y, g) = c.evaluate(gpu, &[&x, &w, &b], &dy);
        let (x64, w64) = (to_f64(&x), to_f64(&w));
        let y_ref = cpu::linear_forward(&x64, n, in_f, &w64, out_f, &to_f64(&b));
        let (dx, dw, db) = cpu::linear_backward(&x64, n, in_f, &w64, out_f, &to_f64(&dy));
        let what = format!("linear ({kernels}) {n}x{in_f}->{out_f}");
        // Dot products of ≤ 130 terms in f32: ~1e-7 relative, as PyTorch's float32.
        assert_close(&format!("{what} y"), &y, &y_ref, 1e-6);
        assert_close(&format!("{what} dx"), &g[0], &dx, 1e-6);
        assert_close(&format!("{what} dweight"), &g[1], &dw, 1e-6);
        assert_close(&format!("{what} dbias"), &g[2], &db, 1e-6);
    }
}

/// On every kernel path (each shape's): dx assigned, dweight and dbias added.
#[test]
fn linear_input_gradient_is_assigned_and_parameter_gradients_accumulate() {
    let mut rng = Rng::new(13);
    for ((kernels, gpu), (n, in_f, out_f)) in gpus()
        .into_iter()
        .flat_map(|g| SHAPES.into_iter().map(move |s| (g, s)))
    {
        let (c, [x, w, b]) = random(gpu, &mut rng, n, in_f, out_f);
        let dy = rng.normals(n * out_f, 1.0);
        let what = format!("linear ({kernels}) {n}x{in_f}->{out_f}");
        c.assert_inputs_assigned_params_accumulated(gpu, &what, &[&x, &w, &b], &dy, &[1, 2]);
    }
}

#[test]
fn linear_backward_matches_finite_differences() {
    for (kernels, gpu) in gpus() {
        for batch in [4, 64] {
            let (c, _) = random(gpu, &mut Rng::new(12), batch, 9, 6);
            gradcheck::check(
                gpu,
                &format!("linear ({kernels}) batch {batch}"),
                &c,
                30,
                1e-2,
                1e-3,
            );
        }
    }
}

#[test]
fn linear_matches_pytorch() {
    let f = Fixture::load("linear");
    let [n, in_f]: [usize; 2] = f.shape("x").try_into().unwrap();
    let out_f = f.shape("weight")[0];
    let inputs = [f.f32("x"), f.f32("weight"), f.f32("bias")];
    for (kernels, gpu) in gpus() {
        eprintln!("{kernels} kernels:");
        let c = case(
            gpu,
            n,
            in_f,
            out_f,
            inputs[0].clone(),
            inputs[1].clone(),
            inputs[2].clone(),
        );
        let (y, g) = c.evaluate(gpu, &[&inputs[0], &inputs[1], &inputs[2]], &f.f32("dy"));
        // Within 10× PyTorch's float32 error (~4e-8), never asked below 5e-7.
        f.assert_matches("y", &y, 10.0, 5e-7);
        f.assert_matches("dx", &g[0], 10.0, 5e-7);
        f.assert_matches("dweight", &g[1], 10.0, 5e-7);
        f.assert_matches("dbias", &g[2], 10.0, 5e-7);
    }
}

/// With `relu` the forward is exactly ReLU of the forward without it, on every kernel path
/// (per-output, row GEMV, tiled): the model fuses the ReLU after each hidden layer this way.
#[test]
fn linear_forward_with_relu_is_relu_of_its_output() {
    let mut rng = Rng::new(13);
    for ((kernels, gpu), (n, in_f, out_f)) in gpus()
        .into_iter()
        .flat_map(|g| SHAPES.into_iter().map(move |s| (g, s)))
    {
        let x = upload(gpu, "x", &[n, in_f], &rng.normals(n * in_f, 1.0));
        let w = upload(gpu, "w", &[out_f, in_f], &rng.normals(out_f * in_f, 0.2));
        let b = upload(gpu, "b", &[out_f], &rng.normals(out_f, 1.0));
        let [y, fused] = [false, true].map(|relu| {
            let y = Tensor::zeros(gpu, "y", &[n, out_f]).unwrap();
            run(gpu, linear_forward(gpu, &x, &w, &b, &y, relu).unwrap());
            y.read_f32(gpu).unwrap()
        });
        assert_relu_of(
            &format!("linear ({kernels}) {n}x{in_f}->{out_f}"),
            &fused,
            &y,
        );
    }
}
