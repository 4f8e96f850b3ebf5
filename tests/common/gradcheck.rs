//! Central finite differences of a GPU forward against its GPU backward.
//!
//! With the loss L = Σ r·y for a fixed random r, the backward run with dy = r gives ∂L/∂x;
//! finite differences perturb sampled elements of each input by ±eps and rerun the *shader*
//! forward, with L summed on the host in f64. In f32 the estimate carries rounding noise of
//! roughly √|y| · 6e-8 · |y| / eps, which is why eps is large (1e-2) and the tolerance is
//! stated per call.

use alexnet_wgpu::runtime::{Gpu, Program, Tensor};

use super::{assert_close, Rng};

pub struct GradCase {
    /// Differentiable inputs, each with the host copy of its values.
    pub inputs: Vec<(Tensor, Vec<f32>)>,
    pub output: Tensor,
    pub forward: Program,
    /// Filled with r before the backward runs.
    pub dy: Tensor,
    /// Gradients of each input, in the same order (zero before the backward runs).
    pub grads: Vec<Tensor>,
    pub backward: Program,
}

fn loss(gpu: &Gpu, case: &GradCase, r: &[f64]) -> f64 {
    case.forward.run(gpu).unwrap();
    let y = case.output.read_f32(gpu).unwrap();
    y.iter().zip(r).map(|(&y, &r)| f64::from(y) * r).sum()
}

/// Checks every input's gradient on `samples` random elements (all if fewer).
pub fn check(gpu: &Gpu, what: &str, case: &GradCase, samples: usize, eps: f32, tol: f64) {
    let mut rng = Rng::new(0x5eed);
    let r32 = rng.normals(case.output.numel(), 1.0);
    let r: Vec<f64> = r32.iter().map(|&v| f64::from(v)).collect();
    case.forward.run(gpu).unwrap();
    case.dy.write_f32(gpu, &r32).unwrap();
    case.backward.run(gpu).unwrap();
    for ((input, values), grad) in case.inputs.iter().zip(&case.grads) {
        let analytic = grad.read_f32(gpu).unwrap();
        let picks: Vec<usize> = if values.len() <= samples {
            (0..values.len()).collect()
        } else {
            (0..samples).map(|_| rng.below(values.len())).collect()
        };
        let mut numeric = Vec::with_capacity(picks.len());
        let mut values = values.clone();
        for &i in &picks {
            let orig = values[i];
            values[i] = orig + eps;
            input.write_f32(gpu, &values).unwrap();
            let plus = loss(gpu, case, &r);
            values[i] = orig - eps;
            input.write_f32(gpu, &values).unwrap();
            let minus = loss(gpu, case, &r);
            values[i] = orig;
            input.write_f32(gpu, &values).unwrap();
            // The difference actually applied, after rounding to f32.
            let step = f64::from(orig + eps) - f64::from(orig - eps);
            numeric.push((plus - minus) / step);
        }
        let picked: Vec<f32> = picks.iter().map(|&i| analytic[i]).collect();
        assert_close(
            &format!("{what}: d/d{} vs finite differences", input.name()),
            &picked,
            &numeric,
            tol,
        );
    }
}

impl GradCase {
    /// Sets the inputs, runs forward and backward (from zeroed gradients) with upstream
    /// gradient `dy`, and returns y and every input's gradient.
    pub fn evaluate(&self, gpu: &Gpu, inputs: &[&[f32]], dy: &[f32]) -> (Vec<f32>, Vec<Vec<f32>>) {
        for ((tensor, _), values) in self.inputs.iter().zip(inputs) {
            tensor.write_f32(gpu, values).unwrap();
        }
        for g in &self.grads {
            g.write_f32(gpu, &vec![0.0; g.numel()]).unwrap();
        }
        self.forward.run(gpu).unwrap();
        self.dy.write_f32(gpu, dy).unwrap();
        self.backward.run(gpu).unwrap();
        let y = self.output.read_f32(gpu).unwrap();
        let grads = self
            .grads
            .iter()
            .map(|g| g.read_f32(gpu).unwrap())
            .collect();
        (y, grads)
    }

    /// The convention every op keeps (`ops/mod.rs`): input gradients are assigned, parameter
    /// gradients added. A second backward pass after `evaluate` must leave the gradients of
    /// the inputs not in `params` exactly as they were and double those in `params`.
    pub fn assert_inputs_assigned_params_accumulated(
        &self,
        gpu: &Gpu,
        what: &str,
        inputs: &[&[f32]],
        dy: &[f32],
        params: &[usize],
    ) {
        let (_, once) = self.evaluate(gpu, inputs, dy);
        self.backward.run(gpu).unwrap();
        for (i, (grad, once)) in self.grads.iter().zip(&once).enumerate() {
            let twice = grad.read_f32(gpu).unwrap();
            let name = grad.name();
            if params.contains(&i) {
                let doubled: Vec<f64> = once.iter().map(|&v| 2.0 * f64::from(v)).collect();
                let what = format!("{what}: {name} after two backward passes (added)");
                assert_close(&what, &twice, &doubled, 1e-6);
            } else {
                assert_eq!(&twice, once, "{what}: {name} must be assigned, not added");
            }
        }
    }
}

/// Builds a case from host inputs: uploads them, allocates dy and the gradients like them,
/// and lets `plan` prepare the forward and backward programs.
pub fn build(
    gpu: &Gpu,
    inputs: Vec<(&str, Vec<usize>, Vec<f32>)>,
    output_shape: &[usize],
    plan: impl FnOnce(&[Tensor], &Tensor, &Tensor, &[Tensor]) -> (Program, Program),
) -> GradCase {
    let tensors: Vec<Tensor> = inputs
        .iter()
        .map(|(name, shape, data)| Tensor::from_f32(gpu, name, shape, data).unwrap())
        .collect();
    let grads: Vec<Tensor> = inputs
        .iter()
        .map(|(name, shape, _)| Tensor::zeros(gpu, &format!("{name}.grad"), shape).unwrap())
        .collect();
    let output = Tensor::zeros(gpu, "y", output_shape).unwrap();
    let dy = Tensor::zeros(gpu, "dy", output_shape).unwrap();
    let (forward, backward) = plan(&tensors, &output, &dy, &grads);
    GradCase {
        inputs: tensors
            .into_iter()
            .zip(inputs)
            .map(|(t, (_, _, data))| (t, data))
            .collect(),
        output,
        forward,
        dy,
        grads,
        backward,
    }
}

/// A program of these dispatches.
pub fn program(dispatches: impl IntoIterator<Item = alexnet_wgpu::runtime::Dispatch>) -> Program {
    let mut p = Program::new();
    p.extend(dispatches);
    p
}
