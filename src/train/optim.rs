//! Optimizers on the GPU: SGD with momentum (the paper's), Adam and AdamW, with PyTorch's
//! semantics and PyTorch's state names (`momentum_buffer`, `exp_avg`, `exp_avg_sq`).
//! Frozen parameters are left out, as PyTorch leaves out parameters without `requires_grad`;
//! with `lr_backbone`, the parameters form PyTorch's two parameter groups: the head
//! (`classifier.6`) at `lr`, the rest at `lr_backbone`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::finetune::HEAD;
use crate::model::AlexNet;
use crate::ops::adam::{adam_step, AdamHyper};
use crate::ops::sgd::{sgd_step, SgdHyper};
use crate::runtime::{Gpu, Program, Tensor, Uniform};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    AdamW,
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
        let mut program = Program::new();
        let mut state = Vec::with_capacity(model.params.len());
        for p in model.params.iter().filter(|p| !p.frozen) {
            let tensors = names
                .iter()
                .map(|&n| {
                    Ok((
                        n,
                        Tensor::zeros(gpu, &format!("{}.{n}", p.name), p.value.shape())?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let group = match &backbone {
                Some(b) if !p.name.starts_with(&head_prefix) => b,
                _ => &head,
            };
            program.extend(match group {
                Hyper::Sgd(h) => sgd_step(gpu, h, &p.grad, &p.value, &tensors[0].1)?,
                Hyper::Adam(h) => {
                    adam_step(gpu, h, &p.grad, &p.value, &tensors[0].1, &tensors[1].1)?
                }
            });
            state.push(ParamState {
                param: p.name.clone(),
                tensors,
            });
        }
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
