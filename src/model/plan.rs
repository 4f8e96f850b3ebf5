//! A plan: every buffer and every dispatch of a forward, loss, backward and update for one
//! batch size, created once. A training step then only records the prepared programs into
//! one command encoder; nothing is allocated and nothing is read back.
//!
//! A convolution or linear layer followed by a ReLU is planned as one dispatch whose output is
//! the ReLU's (the kernels' `relu` epilogue): the pre-activation tensor never exists, and the
//! ReLU layer plans no forward dispatch. Its backward is unchanged, ReLU's from that output.
//! `KernelPolicy::unfused` plans them apart, as the baseline the benchmark times beside.

use crate::error::Result;
use crate::model::alexnet::AlexNet;
use crate::model::layers::{Layer, LayerKind};
use crate::ops;
use crate::ops::cross_entropy::totals;
use crate::ops::dropout::{DropoutConfig, StepSeed};
use crate::ops::KernelPolicy;
use crate::runtime::{Dispatch, Gpu, Program, Tensor, Uniform};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    pub batch: usize,
    pub image_h: usize,
    pub image_w: usize,
    /// Dropout active and the backward/update programs built.
    pub training: bool,
    /// Also compute the gradient with respect to the input images.
    pub input_grad: bool,
}

impl PlanOptions {
    /// Square `image_size`² images, no input gradient: what training and inference plan.
    pub fn new(batch: usize, image_size: usize, training: bool) -> Self {
        PlanOptions {
            batch,
            image_h: image_size,
            image_w: image_size,
            training,
            input_grad: false,
        }
    }

    /// A training plan: forward, loss, backward and update, dropout active.
    pub fn training(batch: usize, image_size: usize) -> Self {
        Self::new(batch, image_size, true)
    }

    /// An inference plan: the forward only, dropout off.
    pub fn inference(batch: usize, image_size: usize) -> Self {
        Self::new(batch, image_size, false)
    }

    /// Also compute the gradient with respect to the input images.
    pub fn with_input_grad(self) -> Self {
        PlanOptions {
            input_grad: true,
            ..self
        }
    }
}

/// What a layer's forward kept for its backward.
pub(crate) enum Saved {
    Nothing,
    LrnScale(Tensor),
    Argmax(Tensor),
    /// `[2, C]`: the batch mean and inverse std of a training BatchNorm forward.
    BatchStats(Tensor),
}

pub struct Plan {
    pub options: PlanOptions,
    /// `[N, 3, H, W]` images; write them before running the forward.
    pub input: Tensor,
    /// `[N]` u32 class indices.
    pub labels: Tensor,
    /// `[N, classes]`.
    pub logits: Tensor,
    /// `[N, classes]`: ∂loss/∂logits, written by `loss`, where the backward starts (a loss
    /// scaler multiplies it).
    pub logits_grad: Tensor,
    /// `[N, 3]` per-sample (loss, top-1 hit, top-5 hit) of the last batch.
    pub stats: Tensor,
    /// Loss totals on the GPU; see [`ops::cross_entropy::totals`].
    pub totals: Tensor,
    /// `[N, 3, H, W]` when `input_grad` was asked for.
    pub input_grad: Option<Tensor>,
    /// The dropout seed; rewrite it every step.
    pub seed: Uniform<StepSeed>,
    pub forward: Program,
    /// Cross-entropy, its gradient, and the loss/accuracy totals.
    pub loss: Program,
    /// Zeroes parameter gradients, then back-propagates through every layer (training
    /// plans only). The optimizer's update is separate: see `train::Optimizer`.
    pub backward: Program,
    /// Every layer's output by layer name, in order (what a PyTorch forward hook on that
    /// module sees), for feature extraction; a layer fused with the ReLU after it has none
    /// (see [`Plan::keeping_outputs`]).
    pub outputs: Vec<(String, Tensor)>,
    /// `(layer name, dispatch count)` in program order, to attribute profiled dispatches.
    pub forward_spans: Vec<(String, usize)>,
    pub backward_spans: Vec<(String, usize)>,
}

impl Plan {
    pub fn new(gpu: &Gpu, model: &AlexNet, options: PlanOptions) -> Result<Self> {
        Self::keeping_outputs(gpu, model, options, &[])
    }

    /// As [`Plan::new`], with the layers named in `keep` not fused with the ReLU after them,
    /// so that their own (pre-activation) output is in [`Plan::outputs`].
    pub fn keeping_outputs(
        gpu: &Gpu,
        model: &AlexNet,
        options: PlanOptions,
        keep: &[&str],
    ) -> Result<Self> {
        let PlanOptions {
            batch,
            image_h,
            image_w,
            training,
            input_grad,
        } = options;
        // Preparing dispatches on a lost device would panic inside wgpu; fail typed first.
        gpu.check()?;
        let input = Tensor::zeros(gpu, "input", &[batch, 3, image_h, image_w])?;
        let seed = Uniform::new(gpu, "dropout seed", &StepSeed::default());

        let mut forward = Program::new();
        let mut forward_spans = Vec::new();
        let mut backward_spans = Vec::new();
        let mut acts = vec![input.clone()];
        let mut saved = Vec::with_capacity(model.layers.len());
        // Per layer: whether it applies the ReLU that follows it.
        let fuse = !KernelPolicy::of(gpu).unfused;
        let mut fused = Vec::with_capacity(model.layers.len());
        for (index, layer) in model.layers.iter().enumerate() {
            let x = acts.last().unwrap().clone();
            let relu = fuse && relu_follows(&model.layers, index) && !keep.contains(&&*layer.name);
            let (y, kept, dispatches) = if index > 0 && fused[index - 1] {
                // The layer before applied this ReLU: its output is this layer's.
                (x, Saved::Nothing, Vec::new())
            } else {
                layer_forward(gpu, model, layer, index, &x, training, &seed, relu)?
            };
            forward_spans.push((layer.name.clone(), dispatches.len()));
            forward.extend(dispatches);
            acts.push(y);
            saved.push(kept);
            fused.push(relu);
        }
        let logits = acts.last().unwrap().clone();
        let outputs = model
            .layers
            .iter()
            .zip(&acts[1..])
            .zip(&fused)
            .filter(|(_, &relu)| !relu)
            .map(|((l, t), _)| (l.name.clone(), t.clone()))
            .collect();
        let labels = Tensor::zeros_u32(gpu, "labels", &[batch])?;
        let stats = Tensor::zeros(gpu, "sample stats", &[batch, 3])?;
        let totals = Tensor::zeros(gpu, "loss totals", &[totals::LEN])?;

        let (mut loss, mut backward) = (Program::new(), Program::new());
        let mut input_grad_tensor = None;
        let dlogits = Tensor::zeros(gpu, "logits.grad", logits.shape())?;
        loss.extend(ops::cross_entropy::cross_entropy(
            gpu, &logits, &labels, &stats, &dlogits, &totals,
        )?);
        if training {
            // Frozen layers get no gradient kernels. A kernel that writes a frozen gradient
            // anyway (BatchNorm's; a layer with only its weight frozen) adds into it, so that
            // gradient is cleared too (and never applied).
            for layer in &model.layers {
                let written = model.layer_trains(&layer.name)
                    || matches!(layer.kind, LayerKind::BatchNorm { .. });
                for (name, _) in layer.parameter_shapes() {
                    let p = model.param(&name)?;
                    if !p.frozen || written {
                        backward.clear(&p.grad);
                    }
                }
            }
            // Below the lowest layer that trains nothing needs a gradient: the backward
            // stops there (unless the input's gradient is asked for).
            let lowest = if input_grad {
                0
            } else {
                model
                    .layers
                    .iter()
                    .position(|l| model.layer_trains(&l.name))
                    .unwrap_or(model.layers.len())
            };
            let mut dy = dlogits.clone();
            for (index, layer) in model.layers.iter().enumerate().rev() {
                if index < lowest {
                    break;
                }
                let want_dx = index > lowest || input_grad;
                let (dx, dispatches) = layer_backward(
                    gpu,
                    model,
                    layer,
                    &acts[index],
                    &acts[index + 1],
                    &saved[index],
                    &dy,
                    want_dx,
                    index,
                    &seed,
                )?;
                backward_spans.push((layer.name.clone(), dispatches.len()));
                backward.extend(dispatches);
                match dx {
                    Some(dx) => dy = dx,
                    None => break,
                }
            }
            if input_grad {
                input_grad_tensor = Some(dy);
            }
        }
        Ok(Self {
            options,
            input,
            labels,
            logits,
            logits_grad: dlogits,
            stats,
            totals,
            input_grad: input_grad_tensor,
            seed,
            forward,
            loss,
            backward,
            outputs,
            forward_spans,
            backward_spans,
        })
    }

    /// Forward, loss and backward, with `seed` for dropout; parameter gradients stay
    /// readable afterwards.
    pub fn forward_backward(&self, gpu: &Gpu, seed: u32) -> Result<()> {
        self.seed.write(gpu, &StepSeed { seed });
        gpu.submit("a forward and backward pass", |encoder| {
            for program in [&self.forward, &self.loss, &self.backward] {
                program.record(encoder);
            }
        })
    }

    /// Forward and loss only: logits and the loss/accuracy totals, as for evaluation.
    pub fn forward_loss(&self, gpu: &Gpu) -> Result<()> {
        gpu.submit("a forward pass", |encoder| {
            self.forward.record(encoder);
            self.loss.record(encoder);
        })
    }
}

fn param<'m>(model: &'m AlexNet, layer: &Layer, which: &str) -> Result<&'m crate::model::Param> {
    model.param(&format!("{}.{which}", layer.name))
}

/// A BatchNorm layer's parameters and buffers, looked up by their PyTorch names.
struct BatchNormTensors<'m> {
    weight: &'m Tensor,
    bias: &'m Tensor,
    running_mean: &'m Tensor,
    running_var: &'m Tensor,
    num_batches: &'m Tensor,
}

impl BatchNormTensors<'_> {
    fn view(&self) -> ops::batch_norm::BatchNormState<'_> {
        ops::batch_norm::BatchNormState {
            weight: self.weight,
            bias: self.bias,
            running_mean: self.running_mean,
            running_var: self.running_var,
            num_batches: self.num_batches,
        }
    }
}

fn batch_norm_state<'m>(model: &'m AlexNet, layer: &Layer) -> Result<BatchNormTensors<'m>> {
    let buffer = |which: &str| -> Result<&'m Tensor> {
        Ok(&model.buffer(&format!("{}.{which}", layer.name))?.value)
    };
    Ok(BatchNormTensors {
        weight: &param(model, layer, "weight")?.value,
        bias: &param(model, layer, "bias")?.value,
        running_mean: buffer("running_mean")?,
        running_var: buffer("running_var")?,
        num_batches: buffer("num_batches_tracked")?,
    })
}

pub(crate) fn dropout_config(p: f32, index: usize) -> DropoutConfig {
    // A distinct, well-mixed salt per layer so two dropout layers never share a mask.
    DropoutConfig {
        p,
        salt: (index as u32 + 1).wrapping_mul(0x9E37_79B9),
    }
}

/// Whether layer `index` is a convolution or linear layer with a ReLU after it.
fn relu_follows(layers: &[Layer], index: usize) -> bool {
    matches!(
        layers[index].kind,
        LayerKind::Conv(_) | LayerKind::Linear { .. }
    ) && matches!(
        layers.get(index + 1).map(|l| &l.kind),
        Some(LayerKind::Relu)
    )
}

/// Plans one layer's forward; returns its output, what its backward needs, and dispatches.
/// With `relu` (a convolution or linear layer only), the output is ReLU'd in the same dispatch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn layer_forward(
    gpu: &Gpu,
    model: &AlexNet,
    layer: &Layer,
    index: usize,
    x: &Tensor,
    training: bool,
    seed: &Uniform<StepSeed>,
    relu: bool,
) -> Result<(Tensor, Saved, Vec<Dispatch>)> {
    let shape = layer.output_shape(x.shape())?;
    let out = |suffix: &str| Tensor::zeros(gpu, &format!("{}.{suffix}", layer.name), &shape);
    Ok(match &layer.kind {
        LayerKind::Conv(cfg) => {
            let y = out("output")?;
            let (w, b) = (param(model, layer, "weight")?, param(model, layer, "bias")?);
            let d = ops::conv2d::conv2d_forward(gpu, cfg, x, &w.value, &b.value, &y, relu)?;
            (y, Saved::Nothing, d)
        }
        LayerKind::Relu => {
            let y = out("output")?;
            let d = ops::activation::relu_forward(gpu, x, &y)?;
            (y, Saved::Nothing, vec![d])
        }
        LayerKind::Nonlinearity(f) => {
            let y = out("output")?;
            let d = ops::activation::activation_forward(gpu, *f, x, &y)?;
            (y, Saved::Nothing, vec![d])
        }
        LayerKind::AvgPool(cfg) => {
            let y = out("output")?;
            let d = ops::avg_pool::avg_pool_forward(gpu, cfg, x, &y)?;
            (y, Saved::Nothing, vec![d])
        }
        LayerKind::BatchNorm { channels, cfg } => {
            let y = out("output")?;
            let state = batch_norm_state(model, layer)?;
            let state = state.view();
            if training {
                let name = format!("{}.batch_stats", layer.name);
                let saved = Tensor::zeros(gpu, &name, &[2, *channels])?;
                let d = ops::batch_norm::batch_norm_train_forward(gpu, cfg, x, &state, &y, &saved)?;
                (y, Saved::BatchStats(saved), vec![d])
            } else {
                let d = ops::batch_norm::batch_norm_eval_forward(gpu, cfg, x, &state, &y)?;
                (y, Saved::Nothing, vec![d])
            }
        }
        LayerKind::Lrn(cfg) => {
            let (y, scale) = (out("output")?, out("scale")?);
            let d = ops::lrn::lrn_forward(gpu, cfg, x, &y, &scale)?;
            (y, Saved::LrnScale(scale), vec![d])
        }
        LayerKind::MaxPool(cfg) => {
            let y = out("output")?;
            let argmax = Tensor::zeros_u32(gpu, &format!("{}.argmax", layer.name), &shape)?;
            let d = ops::max_pool::max_pool_forward(gpu, cfg, x, &y, &argmax)?;
            (y, Saved::Argmax(argmax), vec![d])
        }
        LayerKind::AdaptiveAvgPool { .. } => {
            let y = out("output")?;
            let d = ops::adaptive_avg_pool::adaptive_avg_pool_forward(gpu, x, &y)?;
            (y, Saved::Nothing, vec![d])
        }
        LayerKind::Flatten => (x.reshape(&shape)?, Saved::Nothing, Vec::new()),
        // Evaluation: dropout is the identity, so the next layer reads x itself.
        LayerKind::Dropout { .. } if !training => (x.clone(), Saved::Nothing, Vec::new()),
        LayerKind::Dropout { p } => {
            let y = out("output")?;
            let d = ops::dropout::dropout_forward(gpu, &dropout_config(*p, index), seed, x, &y)?;
            (y, Saved::Nothing, vec![d])
        }
        LayerKind::Linear { .. } => {
            let y = out("output")?;
            let (w, b) = (param(model, layer, "weight")?, param(model, layer, "bias")?);
            let d = ops::linear::linear_forward(gpu, x, &w.value, &b.value, &y, relu)?;
            (y, Saved::Nothing, d)
        }
    })
}

/// Plans one layer's backward from dy; returns dx (if wanted) and the dispatches.
#[allow(clippy::too_many_arguments)]
pub(crate) fn layer_backward(
    gpu: &Gpu,
    model: &AlexNet,
    layer: &Layer,
    x: &Tensor,
    y: &Tensor,
    saved: &Saved,
    dy: &Tensor,
    want_dx: bool,
    index: usize,
    seed: &Uniform<StepSeed>,
) -> Result<(Option<Tensor>, Vec<Dispatch>)> {
    let dx = || Tensor::zeros(gpu, &format!("{}.input.grad", layer.name), x.shape());
    let trains = model.layer_trains(&layer.name);
    if !want_dx && !trains {
        return Ok((None, Vec::new()));
    }
    Ok(match (&layer.kind, saved) {
        (LayerKind::Conv(cfg), _) => {
            let dx = if want_dx { Some(dx()?) } else { None };
            let (w, b) = (param(model, layer, "weight")?, param(model, layer, "bias")?);
            let grads = trains.then_some((&w.grad, &b.grad));
            let d = ops::conv2d::conv2d_backward(gpu, cfg, x, &w.value, dy, dx.as_ref(), grads)?;
            (dx, d)
        }
        (LayerKind::Linear { .. }, _) => {
            let dx = if want_dx { Some(dx()?) } else { None };
            let (w, b) = (param(model, layer, "weight")?, param(model, layer, "bias")?);
            let grads = trains.then_some((&w.grad, &b.grad));
            let d = ops::linear::linear_backward(gpu, x, &w.value, dy, dx.as_ref(), grads)?;
            (dx, d)
        }
        (LayerKind::Relu, _) => {
            let dx = dx()?;
            let d = ops::activation::relu_backward(gpu, y, dy, &dx)?;
            (Some(dx), vec![d])
        }
        (LayerKind::Nonlinearity(f), _) => {
            let dx = dx()?;
            let d = ops::activation::activation_backward(gpu, *f, x, y, dy, &dx)?;
            (Some(dx), vec![d])
        }
        (LayerKind::AvgPool(cfg), _) => {
            let dx = dx()?;
            let d = ops::avg_pool::avg_pool_backward(gpu, cfg, dy, &dx)?;
            (Some(dx), vec![d])
        }
        (LayerKind::BatchNorm { cfg, .. }, Saved::BatchStats(saved)) => {
            // The kernel always writes dx; the first layer never is BatchNorm, so a dx
            // nobody reads costs nothing worth a second kernel.
            let dx = dx()?;
            let (w, b) = (param(model, layer, "weight")?, param(model, layer, "bias")?);
            let d = ops::batch_norm::batch_norm_backward(
                gpu, cfg, x, &w.value, saved, dy, &dx, &w.grad, &b.grad,
            )?;
            (Some(dx), vec![d])
        }
        (LayerKind::Lrn(cfg), Saved::LrnScale(scale)) => {
            let dx = dx()?;
            let d = ops::lrn::lrn_backward(gpu, cfg, x, y, scale, dy, &dx)?;
            (Some(dx), vec![d])
        }
        (LayerKind::MaxPool(cfg), Saved::Argmax(argmax)) => {
            let dx = dx()?;
            let d = ops::max_pool::max_pool_backward(gpu, cfg, dy, argmax, &dx)?;
            (Some(dx), vec![d])
        }
        (LayerKind::AdaptiveAvgPool { .. }, _) => {
            let dx = dx()?;
            let d = ops::adaptive_avg_pool::adaptive_avg_pool_backward(gpu, dy, &dx)?;
            (Some(dx), vec![d])
        }
        (LayerKind::Flatten, _) => (Some(dy.reshape(x.shape())?), Vec::new()),
        (LayerKind::Dropout { p }, _) => {
            let dx = dx()?;
            let d = ops::dropout::dropout_backward(gpu, &dropout_config(*p, index), seed, dy, &dx)?;
            (Some(dx), vec![d])
        }
        (kind, _) => unreachable!("layer {kind:?} planned without the state its backward needs"),
    })
}
