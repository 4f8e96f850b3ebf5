//! The paper's model-parallel split over two devices (Krizhevsky et al. 2012, §3.2): each
//! device holds half of every layer's kernels — conv2, conv4 and conv5 one of their two
//! groups, conv1, conv3 and the fully connected layers half of their outputs — and the halves
//! meet only where a layer reads every channel: conv3 and the fully connected layers, as in
//! the paper, plus the two LRNs, whose channel window crosses the group boundary in the
//! one-device model this must equal (the paper's GPUs normalised within their own half).
//!
//! A historical scheme, kept to measure against data parallelism (`alexnet bench --split
//! groups`): every meeting point goes through host memory, and the layers after an LRN up to
//! the next grouped convolution (the LRN and its pool) run on both devices. The parameters
//! are the one-device model's, each device holding a slice of rows ([`GroupSplit::scatter`],
//! [`GroupSplit::gather`]); dropout draws its masks per device half, so the two agree with
//! one device only without dropout.

use std::ops::Range;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::plan::{layer_backward, layer_forward, Saved};
use crate::model::{AlexNet, AlexNetConfig, Layer, LayerKind};
use crate::ops::conv2d::Conv2dConfig;
use crate::ops::cross_entropy::{cross_entropy, totals};
use crate::ops::dropout::StepSeed;
use crate::runtime::{Gpu, Program, Readback, Tensor, Uniform};
use crate::train::optim::{Optimizer, OptimizerConfig};
use crate::train::parallel::StepTimes;

/// How an activation lies over the two devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spread {
    /// The whole tensor on both devices.
    Whole,
    /// Channels (or features) split: the first half on device 0, the rest on device 1.
    Halves,
}

/// The half of `n` rows or channels device `d` holds.
fn half(n: usize, d: usize) -> Range<usize> {
    if d == 0 {
        0..n / 2
    } else {
        n / 2..n
    }
}

/// What a layer needs of its input (`None`: either) and what its output is (`None`: as its
/// input), and the layer device `d` runs on its part.
fn split_layer(
    layer: &Layer,
    input: Spread,
    d: usize,
) -> Result<(Option<Spread>, Option<Spread>, Layer)> {
    let part = |kind| Layer {
        name: layer.name.clone(),
        kind,
    };
    Ok(match &layer.kind {
        LayerKind::Conv(cfg) if cfg.groups == 1 => {
            let kind = LayerKind::Conv(Conv2dConfig {
                out_channels: half(cfg.out_channels, d).len(),
                ..*cfg
            });
            (Some(Spread::Whole), Some(Spread::Halves), part(kind))
        }
        LayerKind::Conv(cfg) if cfg.groups == 2 => {
            let kind = LayerKind::Conv(Conv2dConfig {
                in_channels: cfg.in_channels / 2,
                out_channels: cfg.out_channels / 2,
                groups: 1,
                ..*cfg
            });
            (Some(Spread::Halves), Some(Spread::Halves), part(kind))
        }
        LayerKind::Conv(cfg) => {
            return Err(Error::Config(format!(
                "--split groups: {} has {} groups; the split needs 1 or 2",
                layer.name, cfg.groups
            )))
        }
        LayerKind::Linear {
            in_features,
            out_features,
        } => {
            let kind = LayerKind::Linear {
                in_features: *in_features,
                out_features: half(*out_features, d).len(),
            };
            (Some(Spread::Whole), Some(Spread::Halves), part(kind))
        }
        LayerKind::Lrn(_) => (Some(Spread::Whole), None, layer.clone()),
        LayerKind::BatchNorm { channels, cfg } if input == Spread::Halves => {
            let kind = LayerKind::BatchNorm {
                channels: half(*channels, d).len(),
                cfg: *cfg,
            };
            (None, None, part(kind))
        }
        _ => (None, None, layer.clone()),
    })
}

/// A stretch of the forward each device runs alone, or a point where the devices meet.
enum Forward {
    Run([Program; 2]),
    /// Both halves (`parts`) assembled into the whole tensor on both devices (`wholes`).
    Meet {
        parts: [Tensor; 2],
        wholes: [Tensor; 2],
    },
    /// Each device takes its half of the whole tensor it holds.
    Part {
        wholes: [Tensor; 2],
        parts: [Tensor; 2],
    },
}

/// The backward's counterparts.
enum Backward {
    Run([Program; 2]),
    /// A [`Forward::Meet`] turned around: the devices' gradients of the whole tensor (a
    /// device without one contributed nothing) summed in device order; each its half.
    Sum {
        wholes: [Option<Tensor>; 2],
        parts: [Tensor; 2],
    },
    /// A [`Forward::Part`] turned around: each device's half-gradient placed in a gradient of
    /// the whole that is zero elsewhere.
    Embed {
        parts: [Tensor; 2],
        wholes: [Tensor; 2],
    },
}

/// One layer as planned on both devices, kept for its backward.
struct Planned {
    index: usize,
    layers: [Layer; 2],
    inputs: [Tensor; 2],
    outputs: [Tensor; 2],
    saved: [Saved; 2],
}

/// The forward in order: layers, and where the spread changed (an index into the steps).
enum Tape {
    Layer(Box<Planned>),
    Change(usize),
}

fn pair<T>(make: impl FnMut(usize) -> Result<T>) -> Result<[T; 2]> {
    let [a, b] = [0, 1].map(make);
    Ok([a?, b?])
}

/// AlexNet split over two devices for training.
pub struct GroupSplit<'g> {
    gpus: [&'g Gpu; 2],
    /// Each device's half of the model, its parameters named as the whole model's.
    pub models: [AlexNet; 2],
    optimizers: [Optimizer; 2],
    inputs: [Tensor; 2],
    /// On device 0, which computes the loss.
    labels: Tensor,
    totals: Tensor,
    seeds: [Uniform<StepSeed>; 2],
    forward: Vec<Forward>,
    loss: Program,
    backward: Vec<Backward>,
}

impl<'g> GroupSplit<'g> {
    /// Plans a training step of `config`'s model at `batch` on `gpus`, each device holding
    /// its half of the parameters (zero until [`GroupSplit::scatter`]).
    pub fn new(
        gpus: [&'g Gpu; 2],
        config: &AlexNetConfig,
        batch: usize,
        image_size: usize,
        optimizer: OptimizerConfig,
    ) -> Result<Self> {
        let whole_layers = config.layers()?;
        // Each device's layers, following how the activations lie.
        let mut device_layers: [Vec<Layer>; 2] = [Vec::new(), Vec::new()];
        let mut spreads = Vec::with_capacity(whole_layers.len());
        let mut spread = Spread::Whole;
        for layer in &whole_layers {
            let (needs, gives, _) = split_layer(layer, spread, 0)?;
            let input = needs.unwrap_or(spread);
            for (d, layers) in device_layers.iter_mut().enumerate() {
                layers.push(split_layer(layer, input, d)?.2);
            }
            spreads.push(input);
            spread = gives.unwrap_or(input);
        }
        let models =
            pair(|d| AlexNet::with_layers(gpus[d], config.clone(), device_layers[d].clone()))?;
        let optimizers = pair(|d| Optimizer::new(gpus[d], &models[d], optimizer.clone()))?;
        let shape = [batch, 3, image_size, image_size];
        let inputs = pair(|d| Tensor::zeros(gpus[d], "input", &shape))?;
        let seeds = [0, 1].map(|d| Uniform::new(gpus[d], "dropout seed", &StepSeed::default()));

        // The forward: each layer on both devices, meeting where a layer needs what the
        // other device holds.
        let mut forward = Vec::new();
        let mut tape = Vec::new();
        let mut programs = [Program::new(), Program::new()];
        let mut x = inputs.clone();
        let mut spread = Spread::Whole;
        for (index, layer) in whole_layers.iter().enumerate() {
            if spreads[index] != spread {
                forward.push(Forward::Run(std::mem::take(&mut programs)));
                let step = respread(gpus, &x, spreads[index], &layer.name)?;
                x = match &step {
                    Forward::Meet { wholes, .. } => wholes.clone(),
                    Forward::Part { parts, .. } => parts.clone(),
                    Forward::Run(_) => unreachable!("respread meets or parts"),
                };
                tape.push(Tape::Change(forward.len()));
                forward.push(step);
                spread = spreads[index];
            }
            let planned = pair(|d| {
                let part = device_layers[d][index].clone();
                let (y, keep, dispatches) = layer_forward(
                    gpus[d], &models[d], &part, index, &x[d], true, &seeds[d], false,
                )?;
                programs[d].extend(dispatches);
                Ok((part, y, keep))
            })?;
            let [(l0, y0, s0), (l1, y1, s1)] = planned;
            let outputs = [y0, y1];
            tape.push(Tape::Layer(Box::new(Planned {
                index,
                layers: [l0, l1],
                inputs: x.clone(),
                outputs: outputs.clone(),
                saved: [s0, s1],
            })));
            x = outputs;
            spread = split_layer(layer, spread, 0)?.1.unwrap_or(spread);
        }
        forward.push(Forward::Run(std::mem::take(&mut programs)));
        if spread == Spread::Halves {
            let step = respread(gpus, &x, Spread::Whole, "the logits")?;
            if let Forward::Meet { wholes, .. } = &step {
                x = wholes.clone();
            }
            tape.push(Tape::Change(forward.len()));
            forward.push(step);
        }

        // The loss, on device 0.
        let labels = Tensor::zeros_u32(gpus[0], "labels", &[batch])?;
        let stats = Tensor::zeros(gpus[0], "sample stats", &[batch, 3])?;
        let totals = Tensor::zeros(gpus[0], "loss totals", &[totals::LEN])?;
        let dlogits = Tensor::zeros(gpus[0], "logits.grad", x[0].shape())?;
        let mut loss = Program::new();
        loss.extend(cross_entropy(
            gpus[0], &x[0], &labels, &stats, &dlogits, &totals,
        )?);

        // The backward: the tape in reverse, each meeting point turned around.
        let mut backward = Vec::new();
        for (d, model) in models.iter().enumerate() {
            for p in &model.params {
                programs[d].clear(&p.grad);
            }
        }
        let mut dy: [Option<Tensor>; 2] = [Some(dlogits), None];
        for item in tape.iter().rev() {
            match item {
                Tape::Change(at) => {
                    backward.push(Backward::Run(std::mem::take(&mut programs)));
                    let (step, grads) = turn_around(gpus, &forward[*at], dy)?;
                    backward.push(step);
                    dy = grads;
                }
                Tape::Layer(p) => {
                    for d in 0..2 {
                        let grad = dy[d].clone().ok_or_else(|| {
                            Error::Config(format!(
                                "--split groups: no gradient reaches {}",
                                p.layers[d].name
                            ))
                        })?;
                        let (dx, dispatches) = layer_backward(
                            gpus[d],
                            &models[d],
                            &p.layers[d],
                            &p.inputs[d],
                            &p.outputs[d],
                            &p.saved[d],
                            &grad,
                            p.index > 0,
                            p.index,
                            &seeds[d],
                        )?;
                        programs[d].extend(dispatches);
                        dy[d] = dx;
                    }
                }
            }
        }
        backward.push(Backward::Run(programs));
        Ok(Self {
            gpus,
            models,
            optimizers,
            inputs,
            labels,
            totals,
            seeds,
            forward,
            loss,
            backward,
        })
    }

    /// Writes the whole model's parameters (on `gpu`) into the two halves.
    pub fn scatter(&self, whole: &AlexNet, gpu: &Gpu) -> Result<()> {
        for (d, model) in self.models.iter().enumerate() {
            for ((_, part), (name, from)) in model.state_tensors().iter().zip(whole.state_tensors())
            {
                let values = from.read_f32(gpu)?;
                let rows = from.shape().first().copied().unwrap_or(1);
                let slice = if part.numel() == from.numel() {
                    values
                } else {
                    let per_row = from.numel() / rows.max(1);
                    let range = half(rows, d);
                    values[range.start * per_row..range.end * per_row].to_vec()
                };
                part.write_f32(self.gpus[d], &slice)
                    .map_err(|e| Error::Config(format!("--split groups: {name}: {e}")))?;
            }
        }
        Ok(())
    }

    /// Writes the two halves' parameters back into the whole model (on `gpu`).
    pub fn gather(&self, whole: &AlexNet, gpu: &Gpu) -> Result<()> {
        let [a, b] = [0, 1].map(|d| self.models[d].state_tensors());
        for (((_, to), (_, first)), (_, second)) in whole.state_tensors().iter().zip(a).zip(b) {
            let mut values = first.read_f32(self.gpus[0])?;
            if first.numel() != to.numel() {
                values.extend(second.read_f32(self.gpus[1])?);
            }
            to.write_f32(gpu, &values)?;
        }
        Ok(())
    }

    /// Writes a batch: the images to both devices, the labels to device 0.
    pub fn write_batch(&self, images: &[f32], labels: &[u32]) -> Result<()> {
        for (gpu, input) in self.gpus.iter().zip(&self.inputs) {
            input.write_f32(gpu, images)?;
        }
        self.labels.write_u32(self.gpus[0], labels)?;
        self.totals.write_f32(self.gpus[0], &[0.0; totals::LEN])
    }

    /// One training step on the written batch; `seed` draws the dropout masks.
    pub fn step(&mut self, seed: u32) -> Result<StepTimes> {
        let started = Instant::now();
        let mut exchange = Duration::ZERO;
        for (gpu, s) in self.gpus.iter().zip(&self.seeds) {
            gpu.check()?;
            s.write(gpu, &StepSeed { seed });
        }
        for step in &self.forward {
            let meets = !matches!(step, Forward::Run(_));
            exchange += self.timed_meeting(meets, || match step {
                Forward::Run(programs) => run_both(self.gpus, programs),
                Forward::Meet { parts, wholes } => meet(self.gpus, parts, wholes),
                Forward::Part { wholes, parts } => take_parts(self.gpus, wholes, parts),
            })?;
        }
        self.loss.run(self.gpus[0])?;
        for step in &self.backward {
            let meets = !matches!(step, Backward::Run(_));
            exchange += self.timed_meeting(meets, || match step {
                Backward::Run(programs) => run_both(self.gpus, programs),
                Backward::Sum { wholes, parts } => sum_halves(self.gpus, wholes, parts),
                Backward::Embed { parts, wholes } => embed(self.gpus, parts, wholes),
            })?;
        }
        for gpu in self.gpus {
            gpu.wait()?;
        }
        let compute = started.elapsed() - exchange;
        let updating = Instant::now();
        for (gpu, optimizer) in self.gpus.iter().zip(&mut self.optimizers) {
            optimizer.begin_step(gpu);
            optimizer.program().run(gpu)?;
        }
        for gpu in self.gpus {
            gpu.wait()?;
        }
        Ok(StepTimes {
            compute,
            exchange,
            update: updating.elapsed(),
        })
    }

    /// Runs `work`; for a meeting point (`meets`), first waits for both devices (their work
    /// so far is compute) and returns how long the meeting took.
    fn timed_meeting(&self, meets: bool, work: impl FnOnce() -> Result<()>) -> Result<Duration> {
        if !meets {
            work()?;
            return Ok(Duration::ZERO);
        }
        self.gpus.iter().try_for_each(|g| g.wait())?;
        let started = Instant::now();
        work()?;
        Ok(started.elapsed())
    }

    /// The batch-mean loss of the last step.
    pub fn loss(&self) -> Result<f64> {
        let t = self.totals.read_f32(self.gpus[0])?;
        Ok(f64::from(t[totals::LOSS_SUM]) / f64::from(t[totals::SAMPLES]).max(1.0))
    }

    /// Bytes moved through host memory per step, both ways, at every meeting point.
    pub fn exchange_bytes(&self) -> u64 {
        let bytes = |t: &Tensor| (4 * t.numel()) as u64;
        let forward: u64 = self
            .forward
            .iter()
            .map(|s| match s {
                Forward::Run(_) => 0,
                Forward::Meet { parts, wholes } => parts.iter().chain(wholes).map(bytes).sum(),
                Forward::Part { wholes, parts } => wholes.iter().chain(parts).map(bytes).sum(),
            })
            .sum();
        let backward: u64 = self
            .backward
            .iter()
            .map(|s| match s {
                Backward::Run(_) => 0,
                Backward::Sum { wholes, parts } => {
                    wholes.iter().flatten().chain(parts).map(bytes).sum()
                }
                Backward::Embed { parts, wholes } => parts.iter().chain(wholes).map(bytes).sum(),
            })
            .sum();
        forward + backward
    }
}

fn run_both(gpus: [&Gpu; 2], programs: &[Program; 2]) -> Result<()> {
    for (gpu, program) in gpus.iter().zip(programs) {
        if !program.is_empty() {
            program.run(gpu)?;
        }
    }
    Ok(())
}

/// The forward step that changes `x` (lying as the other spread) to `to`, before `what`.
fn respread(gpus: [&Gpu; 2], x: &[Tensor; 2], to: Spread, what: &str) -> Result<Forward> {
    let shape = x[0].shape().to_vec();
    Ok(match to {
        Spread::Whole => {
            let mut whole = shape.clone();
            whole[1] = x[0].shape()[1] + x[1].shape()[1];
            let name = format!("{what}.input (whole)");
            let wholes = pair(|d| Tensor::zeros(gpus[d], &name, &whole))?;
            Forward::Meet {
                parts: x.clone(),
                wholes,
            }
        }
        Spread::Halves => {
            let name = format!("{what}.input (half)");
            let parts = pair(|d| {
                let mut part = shape.clone();
                part[1] = half(shape[1], d).len();
                Tensor::zeros(gpus[d], &name, &part)
            })?;
            Forward::Part {
                wholes: x.clone(),
                parts,
            }
        }
    })
}

/// The backward step of `step` for the gradients `dy` of what it produced; returns it and
/// the gradients of what it read.
fn turn_around(
    gpus: [&Gpu; 2],
    step: &Forward,
    dy: [Option<Tensor>; 2],
) -> Result<(Backward, [Option<Tensor>; 2])> {
    let zeros_like = |ts: &[Tensor; 2], suffix: &str| {
        pair(|d| Tensor::zeros(gpus[d], &format!("{}{suffix}", ts[d].name()), ts[d].shape()))
    };
    match step {
        Forward::Meet { parts, .. } => {
            let grads = zeros_like(parts, ".grad")?;
            let back = Backward::Sum {
                wholes: dy,
                parts: grads.clone(),
            };
            Ok((back, grads.map(Some)))
        }
        Forward::Part { wholes, .. } => {
            let [Some(g0), Some(g1)] = dy else {
                return Err(Error::Config(
                    "--split groups: a half without a gradient".into(),
                ));
            };
            let grads = zeros_like(wholes, ".grad")?;
            let back = Backward::Embed {
                parts: [g0, g1],
                wholes: grads.clone(),
            };
            Ok((back, grads.map(Some)))
        }
        Forward::Run(_) => unreachable!("only meeting points are turned around"),
    }
}

/// Samples, and device `d`'s span of columns in each sample's row of a whole tensor.
fn columns(whole: &Tensor, d: usize) -> (usize, Range<usize>) {
    let shape = whole.shape();
    let inner: usize = shape[2..].iter().product();
    let h = half(shape[1], d);
    (shape[0], h.start * inner..h.end * inner)
}

/// Device `d`'s half of `values`, which lie as the tensor `whole`.
fn half_of(values: &[f32], whole: &Tensor, d: usize) -> Vec<f32> {
    let (n, span) = columns(whole, d);
    let row = values.len() / n.max(1);
    (0..n)
        .flat_map(|i| {
            values[i * row + span.start..i * row + span.end]
                .iter()
                .copied()
        })
        .collect()
}

/// Reads both devices' tensors with their copies running at the same time.
fn read_both(gpus: [&Gpu; 2], tensors: [Option<&Tensor>; 2]) -> Result<[Option<Vec<f32>>; 2]> {
    let started = pair(|d| {
        tensors[d]
            .map(|t| Readback::start(gpus[d], &[t]))
            .transpose()
    })?;
    let [a, b] = started;
    let finish = |r: Option<Readback>, gpu: &Gpu| -> Result<Option<Vec<f32>>> {
        r.map(|r| Ok(bytemuck::cast_slice(&r.finish(gpu)?).to_vec()))
            .transpose()
    };
    Ok([finish(a, gpus[0])?, finish(b, gpus[1])?])
}

fn meet(gpus: [&Gpu; 2], parts: &[Tensor; 2], wholes: &[Tensor; 2]) -> Result<()> {
    let [Some(a), Some(b)] = read_both(gpus, [Some(&parts[0]), Some(&parts[1])])? else {
        return Err(unreachable_read());
    };
    let n = wholes[0].shape()[0];
    let (ra, rb) = (a.len() / n, b.len() / n);
    let mut whole = Vec::with_capacity(a.len() + b.len());
    for i in 0..n {
        whole.extend_from_slice(&a[i * ra..(i + 1) * ra]);
        whole.extend_from_slice(&b[i * rb..(i + 1) * rb]);
    }
    for (gpu, t) in gpus.iter().zip(wholes) {
        t.write_f32(gpu, &whole)?;
    }
    Ok(())
}

fn take_parts(gpus: [&Gpu; 2], wholes: &[Tensor; 2], parts: &[Tensor; 2]) -> Result<()> {
    let values = read_both(gpus, [Some(&wholes[0]), Some(&wholes[1])])?;
    for d in 0..2 {
        let whole = values[d].as_ref().ok_or_else(unreachable_read)?;
        parts[d].write_f32(gpus[d], &half_of(whole, &wholes[d], d))?;
    }
    Ok(())
}

fn sum_halves(gpus: [&Gpu; 2], wholes: &[Option<Tensor>; 2], parts: &[Tensor; 2]) -> Result<()> {
    let [a, b] = read_both(gpus, [wholes[0].as_ref(), wholes[1].as_ref()])?;
    let sum = match (a, b) {
        (Some(mut a), Some(b)) => {
            for (x, y) in a.iter_mut().zip(&b) {
                *x += y;
            }
            a
        }
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Err(unreachable_read()),
    };
    let shape_of = wholes
        .iter()
        .flatten()
        .next()
        .ok_or_else(unreachable_read)?;
    for d in 0..2 {
        parts[d].write_f32(gpus[d], &half_of(&sum, shape_of, d))?;
    }
    Ok(())
}

fn embed(gpus: [&Gpu; 2], parts: &[Tensor; 2], wholes: &[Tensor; 2]) -> Result<()> {
    let values = read_both(gpus, [Some(&parts[0]), Some(&parts[1])])?;
    for d in 0..2 {
        let part = values[d].as_ref().ok_or_else(unreachable_read)?;
        let (n, span) = columns(&wholes[d], d);
        let row = wholes[d].numel() / n;
        let mut whole = vec![0.0; wholes[d].numel()];
        let width = span.len();
        for i in 0..n {
            whole[i * row + span.start..i * row + span.end]
                .copy_from_slice(&part[i * width..(i + 1) * width]);
        }
        wholes[d].write_f32(gpus[d], &whole)?;
    }
    Ok(())
}

fn unreachable_read() -> Error {
    Error::Config("--split groups: a meeting point without the tensor it reads".into())
}
