use alexnet_wgpu::ops::batch_norm::{
    batch_norm_backward, batch_norm_eval_forward, batch_norm_train_forward, BatchNormConfig,
    BatchNormState,
};
use alexnet_wgpu::runtime::Tensor;

use crate::common::gradcheck::{self, GradCase};
use crate::common::reference::{self as cpu, to_f64};
use crate::common::{assert_close, gpu, run, upload, Fixture, Rng};

/// Running statistics and the saved batch statistics of one layer.
struct Buffers {
    running_mean: Tensor,
    running_var: Tensor,
    num_batches: Tensor,
}

fn buffers(mean: &[f32], var: &[f32]) -> Buffers {
    let c = mean.len();
    Buffers {
        running_mean: upload(gpu(), "running_mean", &[c], mean),
        running_var: upload(gpu(), "running_var", &[c], var),
        num_batches: upload(gpu(), "num_batches_tracked", &[1], &[0.0]),
    }
}

/// A training-mode case with differentiable x, weight and bias.
fn case(shape: [usize; 4], x: Vec<f32>, w: Vec<f32>, b: Vec<f32>, bufs: &Buffers) -> GradCase {
    let gpu = gpu();
    let c = shape[1];
    let cfg = BatchNormConfig::default();
    let saved = Tensor::zeros(gpu, "saved", &[2, c]).unwrap();
    let inputs = vec![
        ("x", shape.to_vec(), x),
        ("weight", vec![c], w),
        ("bias", vec![c], b),
    ];
    gradcheck::build(gpu, inputs, &shape, |t, y, dy, g| {
        let state = BatchNormState {
            weight: &t[1],
            bias: &t[2],
            running_mean: &bufs.running_mean,
            running_var: &bufs.running_var,
            num_batches: &bufs.num_batches,
        };
        let f = batch_norm_train_forward(gpu, &cfg, &t[0], &state, y, &saved).unwrap();
        let bwd =
            batch_norm_backward(gpu, &cfg, &t[0], &t[1], &saved, dy, &g[0], &g[1], &g[2]).unwrap();
        (gradcheck::program([f]), gradcheck::program([bwd]))
    })
}

fn eval_forward(x: &[f32], shape: [usize; 4], w: &[f32], b: &[f32], bufs: &Buffers) -> Vec<f32> {
    let gpu = gpu();
    let c = shape[1];
    let (xt, y) = (
        upload(gpu, "x", &shape, x),
        Tensor::zeros(gpu, "y", &shape).unwrap(),
    );
    let (wt, bt) = (upload(gpu, "w", &[c], w), upload(gpu, "b", &[c], b));
    let state = BatchNormState {
        weight: &wt,
        bias: &bt,
        running_mean: &bufs.running_mean,
        running_var: &bufs.running_var,
        num_batches: &bufs.num_batches,
    };
    let d = batch_norm_eval_forward(gpu, &BatchNormConfig::default(), &xt, &state, &y).unwrap();
    run(gpu, [d]);
    y.read_f32(gpu).unwrap()
}

#[test]
fn batch_norm_train_and_eval_match_cpu_reference() {
    let mut rng = Rng::new(31);
    // Batch 1 (statistics over H·W only); channels of more than one workgroup's 256 values
    // with an offset mean (where a one-pass variance would lose digits); a 1×1 plane.
    for shape in [[1, 3, 5, 7], [4, 5, 9, 11], [16, 2, 1, 1]] {
        let c = shape[1];
        let n = shape.iter().product();
        let x: Vec<f32> = rng.normals(n, 2.0).iter().map(|v| v + 10.0).collect();
        let (w, b) = (rng.normals(c, 1.0), rng.normals(c, 1.0));
        let (rm0, rv0): (Vec<f32>, Vec<f32>) = (rng.normals(c, 0.5), vec![1.5; c]);
        let bufs = buffers(&rm0, &rv0);
        let gc = case(shape, x.clone(), w.clone(), b.clone(), &bufs);
        let dy = rng.normals(n, 1.0);
        let (y, g) = gc.evaluate(gpu(), &[&x, &w, &b], &dy);
        let (x64, w64, b64) = (to_f64(&x), to_f64(&w), to_f64(&b));
        let (mean, var) = cpu::batch_stats(&x64, shape);
        let eps = 1e-5;
        // Normalised values: 2e-6 (the mean is ~10, x − mean loses ~4 bits of 24).
        let what = |s: &str| format!("batch_norm {shape:?} {s}");
        assert_close(
            &what("y"),
            &y,
            &cpu::batch_norm_apply(&x64, shape, &mean, &var, &w64, &b64, eps),
            2e-6,
        );
        let (dx, dw, db) = cpu::batch_norm_backward(&x64, shape, &w64, &to_f64(&dy), eps);
        // dx subtracts two sums from M·dy: cancellation, hence 1e-5.
        assert_close(&what("dx"), &g[0], &dx, 1e-5);
        // dweight and dbias are sums of dy·x̂ and dy that may nearly cancel (at 16 values a
        // channel, they do): the error allowed grows with the sum's condition number.
        let dy64 = to_f64(&dy);
        let (dw_abs, db_abs) = abs_sums(&x64, shape, &dy64);
        let cond = |abs: &[f64], sum: &[f64]| norm(abs) / norm(sum);
        assert_close(
            &what("dweight"),
            &g[1],
            &dw,
            1e-6 * cond(&dw_abs, &dw).max(10.0),
        );
        assert_close(
            &what("dbias"),
            &g[2],
            &db,
            1e-6 * cond(&db_abs, &db).max(10.0),
        );
        // `evaluate` ran the training forward exactly once.
        let (rm, rv) = cpu::batch_norm_running(&x64, shape, &to_f64(&rm0), &to_f64(&rv0), 0.1);
        assert_close(
            &what("running_mean"),
            &bufs.running_mean.read_f32(gpu()).unwrap(),
            &rm,
            1e-6,
        );
        assert_close(
            &what("running_var"),
            &bufs.running_var.read_f32(gpu()).unwrap(),
            &rv,
            1e-6,
        );
        assert_eq!(bufs.num_batches.read_f32(gpu()).unwrap(), [1.0]);
        // Evaluation: the running statistics just updated, on fresh inputs.
        let x2 = rng.normals(n, 2.0);
        let y2 = eval_forward(&x2, shape, &w, &b, &bufs);
        let want = cpu::batch_norm_apply(&to_f64(&x2), shape, &rm, &rv, &w64, &b64, eps);
        assert_close(&what("eval y"), &y2, &want, 1e-6);
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// Per channel Σ|dy·x̂| and Σ|dy|: the sums' magnitudes without cancellation.
fn abs_sums(x: &[f64], shape: [usize; 4], dy: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mean, var) = cpu::batch_stats(x, shape);
    let plane = shape[2] * shape[3];
    let (mut dw, mut db) = (vec![0.0; shape[1]], vec![0.0; shape[1]]);
    for i in 0..x.len() {
        let c = (i / plane) % shape[1];
        let xhat = (x[i] - mean[c]) / (var[c] + 1e-5).sqrt();
        dw[c] += (dy[i] * xhat).abs();
        db[c] += dy[i].abs();
    }
    (dw, db)
}

#[test]
fn batch_norm_refuses_a_single_value_per_channel() {
    let gpu = gpu();
    let bufs = buffers(&[0.0; 2], &[1.0; 2]);
    let x = Tensor::zeros(gpu, "x", &[1, 2, 1, 1]).unwrap();
    let y = Tensor::zeros(gpu, "y", &[1, 2, 1, 1]).unwrap();
    let saved = Tensor::zeros(gpu, "saved", &[2, 2]).unwrap();
    let state = BatchNormState {
        weight: &bufs.running_var,
        bias: &bufs.running_mean,
        running_mean: &bufs.running_mean,
        running_var: &bufs.running_var,
        num_batches: &bufs.num_batches,
    };
    let err = batch_norm_train_forward(gpu, &BatchNormConfig::default(), &x, &state, &y, &saved)
        .err()
        .expect("a 1x1 plane at batch 1 has no batch statistics");
    assert!(err.to_string().contains("more than one value"), "{err}");
}

#[test]
fn batch_norm_backward_matches_finite_differences() {
    let mut rng = Rng::new(32);
    let shape = [3, 2, 4, 5];
    let x = rng.normals(shape.iter().product(), 1.0);
    let (w, b) = (rng.normals(2, 1.0), rng.normals(2, 1.0));
    let bufs = buffers(&[0.0; 2], &[1.0; 2]);
    let c = case(shape, x, w, b, &bufs);
    // Smooth, but the normalisation couples every x in a channel: 3e-3 with eps 1e-2.
    gradcheck::check(gpu(), "batch_norm", &c, 60, 1e-2, 3e-3);
}

#[test]
fn batch_norm_input_gradient_is_assigned_and_parameter_gradients_accumulate() {
    let mut rng = Rng::new(33);
    let shape = [4, 5, 9, 11];
    let x = rng.normals(shape.iter().product(), 1.0);
    let (w, b) = (rng.normals(5, 1.0), rng.normals(5, 1.0));
    let bufs = buffers(&[0.0; 5], &[1.0; 5]);
    let c = case(shape, x.clone(), w.clone(), b.clone(), &bufs);
    let dy = rng.normals(x.len(), 1.0);
    c.assert_inputs_assigned_params_accumulated(gpu(), "batch_norm", &[&x, &w, &b], &dy, &[1, 2]);
}

#[test]
fn batch_norm_matches_pytorch() {
    let f = Fixture::load("batch_norm");
    let shape: [usize; 4] = f.shape("x").try_into().unwrap();
    let bufs = buffers(&f.f32("running_mean"), &f.f32("running_var"));
    let (w, b) = (f.f32("weight"), f.f32("bias"));
    let c = case(shape, f.f32("x"), w.clone(), b.clone(), &bufs);
    let (y, g) = c.evaluate(gpu(), &[&f.f32("x"), &w, &b], &f.f32("dy"));
    // Reductions in another order than PyTorch's: 10× its float32 error, floor 1e-6.
    f.assert_matches("y", &y, 10.0, 1e-6);
    f.assert_matches("dx", &g[0], 10.0, 1e-6);
    f.assert_matches("dweight", &g[1], 10.0, 1e-6);
    f.assert_matches("dbias", &g[2], 10.0, 1e-6);
    let rm = bufs.running_mean.read_f32(gpu()).unwrap();
    let rv = bufs.running_var.read_f32(gpu()).unwrap();
    f.assert_matches("running_mean_after", &rm, 10.0, 1e-6);
    f.assert_matches("running_var_after", &rv, 10.0, 1e-6);
    let y_eval = eval_forward(&f.f32("x_eval"), shape, &w, &b, &bufs);
    f.assert_matches("y_eval", &y_eval, 10.0, 1e-6);
}
