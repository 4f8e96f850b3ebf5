//! The options of a training run, defined once: `alexnet train` flattens [`TrainOptions`] into
//! its flags, an experiment file's tables are the same options by the same names (`_` for
//! `-`), and [`TrainOptions::config`] resolves them into the [`TrainConfig`] that a run (and
//! its checkpoint) holds. Every default lives in [`TrainOptions::default`] or, where it
//! depends on the data (the embedded demo trains a smaller, faster setup), in
//! [`TrainOptions::config`].

use std::path::PathBuf;
use std::sync::Arc;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::data::source::{open_splits, Splits};
use crate::data::{
    default_workers, Augment, AugmentOn, Cifar100Labels, ColorJitter, DecodeMode, OnBadSample,
    Synthetic,
};
use crate::error::{Error, Result};
use crate::model::finetune::match_pretrained;
use crate::model::{weights, Activation, AlexNetConfig, Init, Norm, Pool};
use crate::train::guard::OnNonFinite;
use crate::train::optim::OptimizerConfig;
use crate::train::schedule::Schedule;
use crate::train::trainer::TrainConfig;

/// Everything a user chooses about a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct TrainOptions {
    /// Training data: an image folder (root/<class>/*.jpg, or root/train + root/val), a
    /// CIFAR-10 or CIFAR-100 binary folder, or an MNIST-style IDX folder. Without it: the
    /// embedded synthetic set.
    #[arg(long)]
    #[serde(alias = "path")]
    pub data: Option<PathBuf>,
    /// Validation image folder with the same classes (default: root/val, else a split).
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Fraction of an image folder held out for validation when there is no val folder.
    #[arg(long, default_value_t = TrainOptions::default().val_split)]
    pub val_split: f64,
    /// CIFAR-100's labels: fine (100 classes) or coarse (20 superclasses).
    #[arg(long, value_enum, default_value_t = TrainOptions::default().labels)]
    pub labels: Cifar100Labels,
    /// Embedded demo: training images.
    #[arg(long, default_value_t = TrainOptions::default().train_size)]
    pub train_size: usize,
    /// Embedded demo: validation images.
    #[arg(long, default_value_t = TrainOptions::default().val_size)]
    pub val_size: usize,
    /// Architecture (default: original).
    #[arg(long, value_enum)]
    pub arch: Option<ArchChoice>,
    /// Channel and FC-width multiplier (default 1; 0.25 for the embedded demo).
    #[arg(long)]
    pub width: Option<f64>,
    /// Network input side (default 224; 64 for the embedded demo).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Epochs (default 90; 6 for the embedded demo).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size (default 128; 32 for the embedded demo).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Optimizer (default sgd; adam for the embedded demo).
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerChoice>,
    /// Learning rate (default: the optimizer's, 0.01 for SGD, 1e-3 for Adam/AdamW).
    #[arg(long)]
    pub lr: Option<f64>,
    /// SGD momentum (default 0.9).
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Weight decay (default 5e-4; 1e-2 for AdamW).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule (default plateau; cosine for the embedded demo).
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleChoice>,
    /// Epochs between ×gamma steps of the step schedule.
    #[arg(long, default_value_t = TrainOptions::default().step_every)]
    pub step_every: usize,
    /// Factor of the step schedule.
    #[arg(long, default_value_t = TrainOptions::default().gamma)]
    pub gamma: f64,
    /// Dropout probability before the first two fully connected layers.
    #[arg(long, default_value_t = TrainOptions::default().dropout)]
    pub dropout: f32,
    /// Non-linearity after every conv and hidden FC layer (default: relu, the paper's).
    #[arg(long, value_enum)]
    pub activation: Option<ActivationChoice>,
    /// LeakyReLU's negative slope.
    #[arg(long, default_value_t = TrainOptions::default().leaky_slope)]
    pub leaky_slope: f32,
    /// ELU's alpha.
    #[arg(long, default_value_t = TrainOptions::default().elu_alpha)]
    pub elu_alpha: f32,
    /// The three pools of `features` (default: overlapping, max 3x3 stride 2, the paper's).
    #[arg(long, value_enum)]
    pub pool: Option<Pool>,
    /// What follows conv1 and conv2 (default: the architecture's: lrn for original, none
    /// for torchvision).
    #[arg(long, value_enum)]
    pub norm: Option<NormChoice>,
    /// Augmentation preset; replaces --no-flip, --lighting and --color-jitter.
    #[arg(long, value_enum)]
    pub augment: Option<AugmentPreset>,
    /// Initialisation (default: pytorch; kaiming for the embedded demo).
    #[arg(long, value_enum)]
    pub init: Option<InitChoice>,
    /// Seed of the initialisation, data order, augmentation and dropout.
    #[arg(long, default_value_t = TrainOptions::default().seed)]
    pub seed: u64,
    /// Decoding threads (default: every core but one, at least 1).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Where augmentation runs: cpu, or gpu (the CPU decodes and draws the random numbers;
    /// resize, crop, flip, ColorJitter, lighting and normalisation run in a shader on the
    /// decoded u8 image; the same batches as cpu, within 1e-6).
    #[arg(long, default_value_t = TrainOptions::default().augment_on)]
    pub augment_on: AugmentOn,
    /// JPEG decoding: exact (Pillow's pixels) or fast (a JPEG at least twice the resize
    /// target decodes at 1/2, 1/4 or 1/8 scale, as Pillow's draft(); not Pillow-exact).
    #[arg(long, default_value_t = TrainOptions::default().decode)]
    pub decode: DecodeMode,
    /// PCA colour lighting standard deviation (the paper's 0.1; 0 disables).
    #[arg(long, default_value_t = TrainOptions::default().lighting)]
    pub lighting: f32,
    /// No random horizontal flips.
    #[arg(long)]
    pub no_flip: bool,
    /// ColorJitter strengths "brightness,contrast,saturation", e.g. 0.4,0.4,0.4.
    #[arg(long)]
    pub color_jitter: Option<String>,
    /// What to do with an unreadable image: stop, or skip (counted and logged).
    #[arg(long, default_value_t = TrainOptions::default().on_bad_image)]
    pub on_bad_image: OnBadSample,
    /// What to do when the loss or a gradient turns NaN/Inf: stop (the last good checkpoint
    /// is kept) or rollback (reload it with a 10x lower learning rate, up to 3 times).
    #[arg(long, default_value_t = TrainOptions::default().on_nan)]
    pub on_nan: OnNonFinite,
    /// Where checkpoint, metrics and plots go.
    #[arg(long, default_value_os_t = TrainOptions::default().out)]
    pub out: PathBuf,
    /// Steps between reads of the loss from the GPU.
    #[arg(long, default_value_t = TrainOptions::default().log_every)]
    pub log_every: usize,
    /// Start from these weights (safetensors, PyTorch names): architecture and width are
    /// read from the file, every tensor whose name and shape match is loaded, and the head
    /// (classifier.6) is re-initialised when the data has another class count.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Parameters to keep fixed: PyTorch names or prefixes, comma-separated, e.g.
    /// `features` or `features,classifier.1`.
    #[arg(long, value_delimiter = ',')]
    pub freeze: Vec<String>,
    /// Learning rate of every parameter but the head's (PyTorch parameter groups: the head
    /// at --lr, the rest at this).
    #[arg(long)]
    pub lr_backbone: Option<f64>,
    /// An experiment variant's name (it names the variant's folder); not a flag.
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            data: None,
            val: None,
            val_split: 0.1,
            labels: Cifar100Labels::Fine,
            train_size: 2000,
            val_size: 500,
            arch: None,
            width: None,
            image_size: None,
            epochs: None,
            batch_size: None,
            optimizer: None,
            lr: None,
            momentum: None,
            weight_decay: None,
            schedule: None,
            step_every: 30,
            gamma: 0.1,
            dropout: 0.5,
            activation: None,
            leaky_slope: 0.01,
            elu_alpha: 1.0,
            pool: None,
            norm: None,
            augment: None,
            init: None,
            seed: 0,
            workers: None,
            augment_on: AugmentOn::Cpu,
            decode: DecodeMode::Exact,
            lighting: 0.1,
            no_flip: false,
            color_jitter: None,
            on_bad_image: OnBadSample::Stop,
            on_nan: OnNonFinite::Stop,
            out: PathBuf::from("runs/alexnet"),
            log_every: 10,
            weights: None,
            freeze: Vec::new(),
            lr_backbone: None,
            name: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ArchChoice {
    /// The paper's: 96/256/384/384/256, LRN, groups 2.
    Original,
    /// torchvision's: 64/192/384/256/256, no LRN, no groups.
    Torchvision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerChoice {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleChoice {
    Constant,
    /// ×gamma every --step-every epochs.
    Step,
    Cosine,
    /// ×0.1 when validation error stops improving (the paper's manual rule).
    Plateau,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ActivationChoice {
    Relu,
    LeakyRelu,
    Elu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NormChoice {
    Lrn,
    Batchnorm,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AugmentPreset {
    /// Random crop only: no flip, no lighting.
    None,
    /// Random crop and horizontal flip.
    Flip,
    /// The paper's: crop, flip and PCA lighting (σ 0.1).
    Paper,
    /// The paper's plus ColorJitter 0.4 (brightness, contrast, saturation).
    Jitter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum InitChoice {
    /// PyTorch's default (kaiming-uniform, a = √5) initialisation.
    Pytorch,
    /// He normal: N(0, 2/fan_in), biases 0.
    Kaiming,
    /// The paper's: N(0, 0.01), biases 1 in conv2/4/5 and the hidden FC layers.
    Paper,
}

impl ArchChoice {
    /// This architecture at full width for `classes` classes.
    pub fn config(self, classes: usize) -> AlexNetConfig {
        match self {
            ArchChoice::Original => AlexNetConfig::original(classes),
            ArchChoice::Torchvision => AlexNetConfig::torchvision(classes),
        }
    }
}

impl AugmentPreset {
    /// Sets flip, lighting and colour jitter for this preset.
    pub fn apply(self, augment: &mut Augment) {
        let jitter = ColorJitter {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
        };
        augment.flip = self != AugmentPreset::None;
        augment.lighting_std = if matches!(self, AugmentPreset::Paper | AugmentPreset::Jitter) {
            0.1
        } else {
            0.0
        };
        augment.color_jitter = (self == AugmentPreset::Jitter).then_some(jitter);
    }
}

impl TrainOptions {
    /// True without `--data`: the embedded synthetic set, with the demo's defaults.
    pub fn demo(&self) -> bool {
        self.data.is_none()
    }

    /// The network input side: `--image-size`, else 224 (64 for the embedded demo).
    pub fn resolved_image_size(&self) -> usize {
        self.image_size
            .unwrap_or(if self.demo() { 64 } else { 224 })
    }

    /// The training and validation sets these options name (see [`open_splits`]); without
    /// `--data`, the embedded synthetic set at the run's image size.
    pub fn open_data(&self) -> Result<Splits> {
        let Some(root) = &self.data else {
            let size = self.resolved_image_size();
            return Ok(Splits {
                train: Arc::new(Synthetic::new(self.train_size, size, self.seed, 0)),
                val: Arc::new(Synthetic::new(self.val_size, size, self.seed, 1)),
                description: "embedded synthetic shapes (no download)".into(),
            });
        };
        open_splits(
            root,
            self.val.as_deref(),
            self.val_split,
            self.seed,
            self.labels,
        )
    }

    /// The run these options describe, for data with `classes` classes. Checks the values
    /// whose errors name a flag; [`TrainConfig::validate`] checks the rest.
    pub fn config(&self, classes: usize) -> Result<TrainConfig> {
        let demo = self.demo();
        let image_size = self.resolved_image_size();
        let arch = self.arch.unwrap_or(ArchChoice::Original);
        let width = self.width.unwrap_or(if demo { 0.25 } else { 1.0 });
        if !(width > 0.0 && width.is_finite()) {
            return Err(Error::Config(format!(
                "--width {width}: expected a positive multiplier"
            )));
        }
        let pretrained = match &self.weights {
            Some(_) if self.arch.is_some() || self.width.is_some() => {
                return Err(Error::Config(
                    "--arch and --width do not go with --weights: the architecture and width are \
                     read from the weights file"
                        .into(),
                ))
            }
            Some(path) => {
                let bytes = weights::read_file(path)?;
                Some((path, weights::parse(path, &bytes)?.0))
            }
            None => None,
        };
        let mut model = match &pretrained {
            Some((path, tensors)) => AlexNetConfig {
                classes,
                ..AlexNetConfig::from_weights(path, tensors)?
            },
            None => arch.config(classes).scaled(width),
        };
        model.dropout = self.dropout;
        model.activation = match self.activation.unwrap_or(ActivationChoice::Relu) {
            ActivationChoice::Relu => Activation::Relu,
            ActivationChoice::LeakyRelu => Activation::LeakyRelu {
                slope: self.leaky_slope,
            },
            ActivationChoice::Elu => Activation::Elu {
                alpha: self.elu_alpha,
            },
        };
        model.pool = self.pool.unwrap_or_default();
        model.norm = self.norm.map(|n| match n {
            NormChoice::Lrn => Norm::Lrn,
            NormChoice::Batchnorm => Norm::BatchNorm,
            NormChoice::None => Norm::None,
        });
        let default_optimizer = if demo {
            OptimizerChoice::Adam
        } else {
            OptimizerChoice::Sgd
        };
        let mut optimizer = match self.optimizer.unwrap_or(default_optimizer) {
            OptimizerChoice::Sgd => OptimizerConfig::sgd(),
            OptimizerChoice::Adam => OptimizerConfig::adam(),
            OptimizerChoice::Adamw => OptimizerConfig::adamw(),
        };
        optimizer.lr = self.lr.unwrap_or(optimizer.lr);
        optimizer.momentum = self.momentum.unwrap_or(optimizer.momentum);
        optimizer.weight_decay = self.weight_decay.unwrap_or(optimizer.weight_decay);
        optimizer.lr_backbone = self.lr_backbone;
        let epochs = self.epochs.unwrap_or(if demo { 6 } else { 90 });
        let default_schedule = if demo {
            ScheduleChoice::Cosine
        } else {
            ScheduleChoice::Plateau
        };
        let schedule = match self.schedule.unwrap_or(default_schedule) {
            ScheduleChoice::Constant => Schedule::Constant,
            ScheduleChoice::Step => Schedule::Step {
                every: self.step_every,
                gamma: self.gamma,
            },
            ScheduleChoice::Cosine => Schedule::Cosine {
                epochs,
                min_lr: 0.0,
            },
            ScheduleChoice::Plateau => Schedule::Plateau {
                factor: 0.1,
                patience: 3,
                threshold: 1e-4,
                min_lr: 1e-6,
            },
        };
        let mut augment = Augment::imagenet(image_size);
        augment.flip = !self.no_flip;
        augment.lighting_std = self.lighting;
        augment.color_jitter = self.color_jitter.as_deref().map(parse_jitter).transpose()?;
        if let Some(preset) = self.augment {
            preset.apply(&mut augment);
        }
        let default_init = if demo {
            InitChoice::Kaiming
        } else {
            InitChoice::Pytorch
        };
        let workers = self.workers.unwrap_or_else(default_workers);
        if let Some((path, tensors)) = &pretrained {
            // A file that does not fit fails here, naming the tensor, before any GPU work.
            match_pretrained(path, tensors, &model)?;
        }
        Ok(TrainConfig {
            model,
            init: match self.init.unwrap_or(default_init) {
                InitChoice::Pytorch => Init::PyTorch,
                InitChoice::Kaiming => Init::Kaiming,
                InitChoice::Paper => Init::Paper,
            },
            image_size,
            epochs,
            batch_size: self.batch_size.unwrap_or(if demo { 32 } else { 128 }),
            optimizer,
            schedule,
            augment,
            seed: self.seed,
            workers,
            on_bad_sample: self.on_bad_image,
            augment_on: self.augment_on,
            decode: self.decode,
            on_nan: self.on_nan,
            log_every: self.log_every,
            out_dir: self.out.clone(),
            max_steps: None,
            show_progress: true,
            weights: self.weights.clone(),
            freeze: self.freeze.clone(),
        })
    }
}

fn parse_jitter(text: &str) -> Result<ColorJitter> {
    let bad = |what: &str| {
        Error::Config(format!(
            "--color-jitter '{text}': expected three numbers {what}"
        ))
    };
    let v: Vec<f32> = text
        .split(',')
        .map(|s| s.trim().parse::<f32>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("like 0.4,0.4,0.4"))?;
    let [brightness, contrast, saturation] = v[..] else {
        return Err(bad(": brightness,contrast,saturation"));
    };
    Ok(ColorJitter {
        brightness,
        contrast,
        saturation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: TrainOptions,
    }

    #[test]
    fn the_flags_defaults_are_the_types_defaults() {
        let parsed = Cli::try_parse_from(["alexnet"]).unwrap().options;
        assert_eq!(parsed, TrainOptions::default());
        let from_toml: TrainOptions = toml::from_str("").unwrap();
        assert_eq!(from_toml, TrainOptions::default());
    }

    #[test]
    fn flags_and_toml_speak_the_same_names() {
        let flags = Cli::try_parse_from([
            "alexnet",
            "--activation",
            "leaky-relu",
            "--norm",
            "batchnorm",
            "--pool",
            "avg3",
            "--on-nan",
            "rollback",
            "--on-bad-image",
            "skip",
            "--weight-decay",
            "0",
        ])
        .unwrap()
        .options;
        let toml: TrainOptions = toml::from_str(
            "activation = \"leaky-relu\"\nnorm = \"batchnorm\"\npool = \"avg3\"\n\
             on_nan = \"rollback\"\non_bad_image = \"skip\"\nweight_decay = 0.0\n",
        )
        .unwrap();
        assert_eq!(flags, toml);
        let back: TrainOptions =
            serde_json::from_value(serde_json::to_value(&flags).unwrap()).unwrap();
        assert_eq!(back, flags);
    }

    #[test]
    fn a_bad_jitter_names_the_flag() {
        let options = TrainOptions {
            color_jitter: Some("0.4,x".into()),
            ..Default::default()
        };
        let err = options.config(10).unwrap_err().to_string();
        assert!(err.contains("--color-jitter '0.4,x'"), "{err}");
    }
}
