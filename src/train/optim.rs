//! Optimizers on the GPU: SGD with momentum (the paper's), Adam and AdamW, with PyTorch's
//! semantics and PyTorch's state names (`momentum_buffer`, `exp_avg`, `exp_avg_sq`).
//! Frozen parameters are left out, as PyTorch leaves out parameters without `requires_grad`;
//! with `lr_backbone`, the parameters form PyTorch's two parameter groups: the head
//! (`classifier.6`) at `lr`, the rest at `lr_backbone`.
//!
//! A step is a few dispatches, not one per parameter tensor. WGSL binds a fixed set of
//! buffers, so a kernel cannot walk a table of tensors in buffers of their own; instead the
//! model keeps its parameters in one arena and their gradients in another laid out alike
//! (`AlexNet::with_layers`), and the optimizer's state lives in arenas laid out as the
//! trained parameters. Parameters of one group that lie back to back in every one of these
//! (the same gap from the first in each) update as one span: one dispatch per binding-sized
//! chunk of it (the whole original AlexNet, 244 MB, in two at a 128 MiB binding limit). The
//! zeros between tensors (binding alignment) stay zero under SGD and Adam alike. Frozen
//! parameters break a span, as does a change of group or of buffer, so every parameter gets
//! exactly its own update. `KernelPolicy::unfused` dispatches per tensor, the baseline.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::finetune::HEAD;
use crate::model::{AlexNet, Param};
use crate::ops::adam::{adam_step, AdamHyper};
use crate::ops::sgd::{sgd_step, SgdHyper};
use crate::ops::KernelPolicy;
use crate::runtime::{Gpu, Program, Tensor, Uniform};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    AdamW,
}

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OptimizerKind::Sgd => "SGD",
            OptimizerKind::Adam => "Adam",
            OptimizerKind::AdamW => "AdamW",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// SGD only.
    pub momentum: f64,
    pub weight_decay: f64,
    /// Adam/AdamW only.
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// The learning rate of every parameter but the head's (`--lr-backbone`); a schedule
    /// scales both groups alike, as PyTorch's schedulers scale every group's rate.
    #[serde(default)]
    pub lr_backbone: Option<f64>,
}

impl OptimizerConfig {
    /// The paper's: SGD, lr 0.01, momentum 0.9, weight decay 5e-4.
    pub fn sgd() -> Self {
        Self {
            kind: OptimizerKind::Sgd,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            lr_backbone: None,
        }
    }

    /// PyTorch's Adam defaults, lr 1e-3, with the paper's weight decay as an L2 penalty.
    pub fn adam() -> Self {
        Self {
            kind: OptimizerKind::Adam,
            lr: 1e-3,
            ..Self::sgd()
        }
    }

    /// PyTorch's AdamW defaults: lr 1e-3, decoupled weight decay 1e-2.
    pub fn adamw() -> Self {
        Self {
            kind: OptimizerKind::AdamW,
            lr: 1e-3,
            weight_decay: 1e-2,
            ..Self::sgd()
        }
    }

    pub fn validate(&self) -> Result<()> {
        let backbone = self.lr_backbone.map(|lr| ("--lr-backbone", lr));
        for (flag, value) in [("--lr", self.lr), ("--weight-decay", self.weight_decay)]
            .into_iter()
            .chain(backbone)
        {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::Config(format!(
                    "{flag} {value}: expected a finite, non-negative number"
                )));
            }
        }
        if !(0.0..1.0).contains(&self.momentum)
            || !(0.0..1.0).contains(&self.beta1)
            || !(0.0..1.0).contains(&self.beta2)
        {
            return Err(Error::Config(format!(
                "momentum ({}) and betas ({}, {}) must lie in [0, 1)",
                self.momentum, self.beta1, self.beta2
            )));
        }
        Ok(())
    }
}

enum Hyper {
    Sgd(Uniform<SgdHyper>),
    Adam(Uniform<AdamHyper>),
}

/// The state tensors of one parameter, named as in PyTorch's optimizer `state_dict`.
pub struct ParamState {
    pub param: String,
    pub tensors: Vec<(&'static str, Tensor)>,
}

pub struct Optimizer {
    pub config: OptimizerConfig,
    /// Steps taken so far (Adam's t after the step being recorded).
    pub step: u64,
    /// The state of every trained parameter (frozen ones have none).
    pub state: Vec<ParamState>,
    /// The head's hyper-parameters, and the backbone's when it has its own rate.
    head: Hyper,
    backbone: Option<Hyper>,
    /// `lr_backbone / lr` at construction: the backbone's rate follows the scheduled `lr`.
    backbone_ratio: f64,
    program: Program,
}

impl Optimizer {
    /// Allocates zeroed state for every trained parameter of `model` and prepares the update.
    pub fn new(gpu: &Gpu, model: &AlexNet, config: OptimizerConfig) -> Result<Self> {
        config.validate()?;
        gpu.check()?;
        let names: &[&'static str] = match config.kind {
            OptimizerKind::Sgd => &["momentum_buffer"],
            OptimizerKind::Adam | OptimizerKind::AdamW => &["exp_avg", "exp_avg_sq"],
        };
        let hyper = |name: &str| match config.kind {
            OptimizerKind::Sgd => Hyper::Sgd(Uniform::new(gpu, name, &SgdHyper::default())),
            _ => Hyper::Adam(Uniform::new(gpu, name, &adam_hyper(&config, config.lr, 1))),
        };
        let head = hyper("head hyper-parameters");
        let backbone = config
            .lr_backbone
            .map(|_| hyper("backbone hyper-parameters"));
        let backbone_ratio = match config.lr_backbone {
            Some(b) if config.lr > 0.0 => b / config.lr,
            _ => 1.0,
        };
        let head_prefix = format!("{HEAD}.");
        let trained: Vec<&Param> = model.params.iter().filter(|p| !p.frozen).collect();
        // Per state name, one tensor per trained parameter, in an arena laid out as they are.
        let arenas = names
            .iter()
            .map(|&n| {
                let shapes: Vec<_> = trained
                    .iter()
                    .map(|p| (format!("{}.{n}", p.name), p.value.shape().to_vec()))
                    .collect();
                Tensor::arena(gpu, &format!("optimizer {n}"), &shapes)
            })
            .collect::<Result<Vec<_>>>()?;
        // Each parameter's tensors: value, gradient, then its state.
        let tensors = |i: usize| {
            let p = trained[i];
            [&p.value, &p.grad]
                .into_iter()
                .chain(arenas.iter().map(move |a| &a[i]))
        };
        // PyTorch's two parameter groups: the head, and with `lr_backbone` every other one.
        let in_backbone =
            |i: usize| backbone.is_some() && !trained[i].name.starts_with(&head_prefix);
        let fuse = !KernelPolicy::of(gpu).unfused;
        let mut program = Program::new();
        for run in spans(trained.len(), fuse, in_backbone, tensors) {
            let views = tensors(run.start)
                .zip(tensors(run.end - 1))
                .map(|(first, last)| first.span_to(last))
                .collect::<Result<Vec<_>>>()?;
            let hyper = match &backbone {
                Some(b) if in_backbone(run.start) => b,
                _ => &head,
            };
            program.extend(match (hyper, views.as_slice()) {
                (Hyper::Sgd(h), [value, grad, buf]) => sgd_step(gpu, h, grad, value, buf)?,
                (Hyper::Adam(h), [value, grad, m, v]) => adam_step(gpu, h, grad, value, m, v)?,
                _ => unreachable!("the optimizer's kind decides its state"),
            });
        }
        let state = trained
            .iter()
            .enumerate()
            .map(|(i, p)| ParamState {
                param: p.name.clone(),
                tensors: names
                    .iter()
                    .zip(&arenas)
                    .map(|(&n, a)| (n, a[i].clone()))
                    .collect(),
            })
            .collect();
        Ok(Self {
            config,
            step: 0,
            state,
            head,
            backbone,
            backbone_ratio,
            program,
        })
    }

    /// Counts a step and writes its hyper-parameters (learning rates, bias corrections);
    /// call it before recording [`Optimizer::program`] for that step.
    pub fn begin_step(&mut self, gpu: &Gpu) {
        self.step += 1;
        let backbone_lr = self.config.lr * self.backbone_ratio;
        let groups = [(&self.head, self.config.lr)]
            .into_iter()
            .chain(self.backbone.as_ref().map(|b| (b, backbone_lr)));
        for (hyper, lr) in groups {
            match hyper {
                Hyper::Sgd(h) => h.write(
                    gpu,
                    &SgdHyper {
                        lr: lr as f32,
                        momentum: self.config.momentum as f32,
                        weight_decay: self.config.weight_decay as f32,
                    },
                ),
                Hyper::Adam(h) => h.write(gpu, &adam_hyper(&self.config, lr, self.step)),
            }
        }
    }

    /// The update of every parameter from its gradient.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Replaces the update program with what `wrap` makes of it (the loss scaler's gate
    /// around it).
    pub fn wrap_program(&mut self, wrap: impl FnOnce(Program) -> Result<Program>) -> Result<()> {
        self.program = wrap(std::mem::take(&mut self.program))?;
        Ok(())
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}

/// Splits `count` parameters into runs that update as one span each: consecutive parameters
/// of one group whose tensors (`tensors(i)`: value, gradient, state) each lie the same number
/// of elements after the run's first. Without `fuse`, one run per parameter.
fn spans<'t, G: PartialEq, T: Iterator<Item = &'t Tensor>>(
    count: usize,
    fuse: bool,
    group: impl Fn(usize) -> G,
    tensors: impl Fn(usize) -> T,
) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for i in 0..count {
        let joins = |run: &std::ops::Range<usize>| {
            let gaps: Vec<Option<usize>> = tensors(i)
                .zip(tensors(run.start))
                .map(|(t, first)| t.offset_after(first))
                .collect();
            group(i) == group(run.start) && gaps[0].is_some() && gaps.iter().all(|g| *g == gaps[0])
        };
        match runs.last_mut() {
            Some(run) if fuse && joins(run) => run.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

fn adam_hyper(c: &OptimizerConfig, lr: f64, step: u64) -> AdamHyper {
    AdamHyper::at_step(
        lr,
        c.beta1,
        c.beta2,
        c.eps,
        c.weight_decay,
        c.kind == OptimizerKind::AdamW,
        step,
    )
}
