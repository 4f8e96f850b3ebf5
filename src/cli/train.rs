//! `alexnet train`: flags, data-source detection and the run, over `train::trainer`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use alexnet_wgpu::data::{
    dataset, default_workers, Augment, AugmentOn, Cifar10, ColorJitter, Dataset, DecodeMode, Idx,
    ImageFolder, OnBadSample, Synthetic,
};
use alexnet_wgpu::model::{Activation, AlexNetConfig, Init, Norm, Pool};
use alexnet_wgpu::train::trainer::{train, TrainConfig};
use alexnet_wgpu::train::{OnNonFinite, OptimizerConfig, Schedule};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use crate::cli::DeviceArgs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    /// The paper's: 96/256/384/384/256, LRN, groups 2.
    Original,
    /// torchvision's: 64/192/384/256/256, no LRN, no groups.
    Torchvision,
}

impl ArchArg {
    pub fn config(self, classes: usize) -> AlexNetConfig {
        match self {
            ArchArg::Original => AlexNetConfig::original(classes),
            ArchArg::Torchvision => AlexNetConfig::torchvision(classes),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    Constant,
    /// ×gamma every --step-every epochs.
    Step,
    Cosine,
    /// ×0.1 when validation error stops improving (the paper's manual rule).
    Plateau,
}

#[derive(Args, Debug, Default)]
pub struct TrainArgs {
    /// Training data: an image folder (root/<class>/*.jpg, or root/train + root/val), a CIFAR-10
    /// binary folder, or an MNIST-style IDX folder. Without it: the embedded synthetic set.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Validation image folder with the same classes (default: root/val, else a split).
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Fraction of an image folder held out for validation when there is no val folder.
    #[arg(long, default_value_t = 0.1)]
    pub val_split: f64,
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,
    /// Channel and FC-width multiplier (default 1; 0.25 for the embedded demo).
    #[arg(long)]
    pub width: Option<f64>,
    /// Network input side (default 224; 64 for the embedded demo).
    #[arg(long)]
    pub image_size: Option<usize>,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub momentum: Option<f64>,
    #[arg(long)]
    pub weight_decay: Option<f64>,
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,
    /// Epochs between ×gamma steps of the step schedule.
    #[arg(long, default_value_t = 30)]
    pub step_every: usize,
    #[arg(long, default_value_t = 0.1)]
    pub gamma: f64,
    #[arg(long, default_value_t = 0.5)]
    pub dropout: f32,
    /// Non-linearity after every conv and hidden FC layer (default: relu, the paper's).
    #[arg(long, value_enum)]
    pub activation: Option<ActivationArg>,
    /// LeakyReLU's negative slope.
    #[arg(long, default_value_t = 0.01)]
    pub leaky_slope: f32,
    /// ELU's alpha.
    #[arg(long, default_value_t = 1.0)]
    pub elu_alpha: f32,
    /// The three pools of `features` (default: overlapping, max 3x3 stride 2, the paper's).
    #[arg(long, value_enum)]
    pub pool: Option<PoolArg>,
    /// What follows conv1 and conv2 (default: the architecture's: lrn for original, none
    /// for torchvision).
    #[arg(long, value_enum)]
    pub norm: Option<NormArg>,
    /// Augmentation preset; replaces --no-flip, --lighting and --color-jitter.
    #[arg(long, value_enum)]
    pub augment: Option<AugmentArg>,
    /// Initialisation (default: pytorch; kaiming for the embedded demo).
    #[arg(long, value_enum)]
    pub init: Option<InitArg>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Decoding threads (default: every core but one, at least 1).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Where augmentation runs: cpu (default) or gpu (the CPU decodes and draws the random
    /// numbers; resize, crop, flip, ColorJitter, lighting and normalisation run in a shader
    /// on the decoded u8 image; the same batches as cpu, within 1e-6).
    #[arg(long)]
    pub augment_on: Option<String>,
    /// JPEG decoding: exact (default; Pillow's pixels) or fast (large JPEGs decode at 1/2,
    /// 1/4 or 1/8 scale, as Pillow's draft(); faster, not Pillow-exact).
    #[arg(long)]
    pub decode: Option<String>,
    /// PCA colour lighting standard deviation (the paper's 0.1; 0 disables).
    #[arg(long, default_value_t = 0.1)]
    pub lighting: f32,
    #[arg(long)]
    pub no_flip: bool,
    /// ColorJitter strengths "brightness,contrast,saturation", e.g. 0.4,0.4,0.4.
    #[arg(long)]
    pub color_jitter: Option<String>,
    /// What to do with an unreadable image: stop (default) or skip (counted and logged).
    #[arg(long, default_value = "stop")]
    pub on_bad_image: String,
    /// What to do when the loss or a gradient turns NaN/Inf: stop (default; the last good
    /// checkpoint is kept) or rollback (reload it with a 10x lower learning rate, up to 3 times).
    #[arg(long, default_value = "stop")]
    pub on_nan: String,
    /// Embedded demo: training and validation images.
    #[arg(long, default_value_t = 2000)]
    pub train_size: usize,
    #[arg(long, default_value_t = 500)]
    pub val_size: usize,
    /// Where checkpoint, metrics and plots go.
    #[arg(long, default_value = "runs/alexnet")]
    pub out: PathBuf,
    /// Continue from a checkpoint (default: <out>/checkpoint.safetensors).
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    pub resume: Option<PathBuf>,
    /// Steps between reads of the loss from the GPU.
    #[arg(long, default_value_t = 10)]
    pub log_every: usize,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ActivationArg {
    Relu,
    LeakyRelu,
    Elu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PoolArg {
    /// Max 3x3 stride 2 (the paper's overlapping pool).
    Overlapping,
    /// Max 2x2 stride 2 (non-overlapping).
    Max2,
    /// Average 3x3 stride 2.
    Avg3,
    /// Average 2x2 stride 2.
    Avg2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NormArg {
    Lrn,
    Batchnorm,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AugmentArg {
    /// Random crop only: no flip, no lighting.
    None,
    /// Random crop and horizontal flip.
    Flip,
    /// The paper's: crop, flip and PCA lighting (σ 0.1).
    Paper,
    /// The paper's plus ColorJitter 0.4 (brightness, contrast, saturation).
    Jitter,
}

impl AugmentArg {
    /// Sets flip, lighting and colour jitter for this preset.
    pub fn apply(self, augment: &mut Augment) {
        let jitter = ColorJitter {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
        };
        augment.flip = self != AugmentArg::None;
        augment.lighting_std = if matches!(self, AugmentArg::Paper | AugmentArg::Jitter) {
            0.1
        } else {
            0.0
        };
        augment.color_jitter = (self == AugmentArg::Jitter).then_some(jitter);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    /// PyTorch's default (kaiming-uniform, a = √5) initialisation.
    Pytorch,
    /// He normal: N(0, 2/fan_in), biases 0.
    Kaiming,
    /// The paper's: N(0, 0.01), biases 1 in conv2/4/5 and the hidden FC layers.
    Paper,
}

/// The training and validation sets and a line describing them.
pub(crate) struct Data {
    pub train: Arc<dyn Dataset>,
    pub val: Arc<dyn Dataset>,
    pub description: String,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let demo = args.data.is_none();
    let image_size = args.image_size.unwrap_or(if demo { 64 } else { 224 });
    let data = open_data(&args, image_size)?;
    let classes = data.train.classes().len();
    let mut config = build_config(&args, demo, image_size, classes)?;
    let resume = resume_path(&args);
    if let Some(path) = &resume {
        config = resumed_config(path, config)?;
    }
    // Bad flags fail here, before minutes of adapter start-up and data loading.
    config.validate()?;
    println!(
        "{}; {} training / {} validation images; {:?} AlexNet at width {:.2}, {}x{} input; {} epochs, batch {}, {:?} lr {}",
        data.description,
        data.train.len(),
        data.val.len(),
        config.model.arch,
        config.model.channels[0] as f64 / config.model.arch_default_channels()[0] as f64,
        image_size,
        image_size,
        config.epochs,
        config.batch_size,
        config.optimizer.kind,
        config.optimizer.lr
    );
    let gpu = args.device.open()?;
    if gpu.is_cpu() {
        println!("note: the adapter is a CPU (software) driver; this runs at about 1 GFLOP/s");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("second interrupt: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!(
            "interrupt: finishing this step and writing a checkpoint (Ctrl-C again to abort)"
        );
    })
    .context("installing the Ctrl-C handler")?;
    let outcome = train(&gpu, &config, data.train, data.val, resume.as_deref(), stop)?;
    if outcome.interrupted {
        println!(
            "stopped; checkpoint in {}. Resume with: alexnet train --resume {} {}",
            outcome.checkpoint.display(),
            outcome.checkpoint.display(),
            data_flags(&args)
        );
        return Ok(());
    }
    if let Some(last) = outcome.epochs.last() {
        println!(
            "done: validation top-1 {:.1}%, top-5 {:.1}%, loss {:.4}. Checkpoint, metrics.jsonl/csv and loss/top1/top5/lr plots in {}",
            100.0 * last.val_top1,
            100.0 * last.val_top5,
            last.val_loss,
            config.out_dir.display()
        );
    }
    if !outcome.skipped.is_empty() {
        println!(
            "skipped {} unreadable images (listed in the log)",
            outcome.skipped.len()
        );
        for s in &outcome.skipped {
            log::warn!("skipped: {s}");
        }
    }
    Ok(())
}

fn resume_path(args: &TrainArgs) -> Option<PathBuf> {
    args.resume.as_ref().map(|p| {
        if p.as_os_str().is_empty() {
            args.out.join("checkpoint.safetensors")
        } else {
            p.clone()
        }
    })
}

/// On resume the checkpoint's configuration wins (the model and optimizer must match it);
/// only the epoch count, output folder and worker count may change.
fn resumed_config(path: &Path, requested: TrainConfig) -> Result<TrainConfig> {
    let bytes = alexnet_wgpu::model::weights::read_file(path)?;
    let (_, metadata) = alexnet_wgpu::model::weights::parse(path, &bytes)?;
    let state = metadata
        .get("alexnet_wgpu.checkpoint")
        .with_context(|| format!("{}: not a checkpoint (no training state)", path.display()))?;
    let state: serde_json::Value = serde_json::from_str(state)?;
    let mut saved: TrainConfig = serde_json::from_value(state["config"]["train"].clone())
        .with_context(|| format!("{}: training configuration", path.display()))?;
    if saved.model.classes != requested.model.classes {
        bail!(
            "{}: the checkpoint has {} classes but the data has {}",
            path.display(),
            saved.model.classes,
            requested.model.classes
        );
    }
    saved.epochs = requested.epochs.max(saved.epochs);
    saved.out_dir = requested.out_dir;
    saved.workers = requested.workers;
    saved.show_progress = requested.show_progress;
    Ok(saved)
}

pub(crate) fn build_config(
    args: &TrainArgs,
    demo: bool,
    image_size: usize,
    classes: usize,
) -> Result<TrainConfig> {
    let arch = args.arch.unwrap_or(ArchArg::Original);
    let width = args.width.unwrap_or(if demo { 0.25 } else { 1.0 });
    if !(width > 0.0 && width.is_finite()) {
        bail!("--width {width}: expected a positive multiplier");
    }
    let mut model = arch.config(classes).scaled(width);
    model.dropout = args.dropout;
    model.activation = match args.activation.unwrap_or(ActivationArg::Relu) {
        ActivationArg::Relu => Activation::Relu,
        ActivationArg::LeakyRelu => Activation::LeakyRelu {
            slope: args.leaky_slope,
        },
        ActivationArg::Elu => Activation::Elu {
            alpha: args.elu_alpha,
        },
    };
    model.pool = match args.pool.unwrap_or(PoolArg::Overlapping) {
        PoolArg::Overlapping => Pool::Overlapping,
        PoolArg::Max2 => Pool::Max2,
        PoolArg::Avg3 => Pool::Avg3,
        PoolArg::Avg2 => Pool::Avg2,
    };
    model.norm = args.norm.map(|n| match n {
        NormArg::Lrn => Norm::Lrn,
        NormArg::Batchnorm => Norm::BatchNorm,
        NormArg::None => Norm::None,
    });
    let default_optimizer = if demo {
        OptimizerArg::Adam
    } else {
        OptimizerArg::Sgd
    };
    let mut optimizer = match args.optimizer.unwrap_or(default_optimizer) {
        OptimizerArg::Sgd => OptimizerConfig::sgd(),
        OptimizerArg::Adam => OptimizerConfig::adam(),
        OptimizerArg::Adamw => OptimizerConfig::adamw(),
    };
    if let Some(lr) = args.lr {
        optimizer.lr = lr;
    }
    if let Some(m) = args.momentum {
        optimizer.momentum = m;
    }
    if let Some(wd) = args.weight_decay {
        optimizer.weight_decay = wd;
    }
    let epochs = args.epochs.unwrap_or(if demo { 6 } else { 90 });
    let schedule = match args.schedule.unwrap_or(if demo {
        ScheduleArg::Cosine
    } else {
        ScheduleArg::Plateau
    }) {
        ScheduleArg::Constant => Schedule::Constant,
        ScheduleArg::Step => Schedule::Step {
            every: args.step_every,
            gamma: args.gamma,
        },
        ScheduleArg::Cosine => Schedule::Cosine {
            epochs,
            min_lr: 0.0,
        },
        ScheduleArg::Plateau => Schedule::Plateau {
            factor: 0.1,
            patience: 3,
            threshold: 1e-4,
            min_lr: 1e-6,
        },
    };
    let mut augment = Augment::imagenet(image_size);
    augment.flip = !args.no_flip;
    augment.lighting_std = args.lighting;
    augment.color_jitter = args.color_jitter.as_deref().map(parse_jitter).transpose()?;
    if let Some(preset) = args.augment {
        preset.apply(&mut augment);
    }
    let workers = args.workers.unwrap_or_else(default_workers);
    Ok(TrainConfig {
        model,
        init: match args.init.unwrap_or(if demo {
            InitArg::Kaiming
        } else {
            InitArg::Pytorch
        }) {
            InitArg::Pytorch => Init::PyTorch,
            InitArg::Kaiming => Init::Kaiming,
            InitArg::Paper => Init::Paper,
        },
        image_size,
        epochs,
        batch_size: args.batch_size.unwrap_or(if demo { 32 } else { 128 }),
        optimizer,
        schedule,
        augment,
        seed: args.seed,
        workers,
        on_bad_sample: args.on_bad_image.parse::<OnBadSample>()?,
        augment_on: args
            .augment_on
            .as_deref()
            .map(str::parse::<AugmentOn>)
            .transpose()?
            .unwrap_or_default(),
        decode: args
            .decode
            .as_deref()
            .map(str::parse::<DecodeMode>)
            .transpose()?
            .unwrap_or_default(),
        on_nan: args.on_nan.parse::<OnNonFinite>()?,
        log_every: args.log_every,
        out_dir: args.out.clone(),
        max_steps: None,
        show_progress: true,
    })
}

fn parse_jitter(text: &str) -> Result<ColorJitter> {
    let v: Vec<f32> = text
        .split(',')
        .map(|s| s.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!("--color-jitter '{text}': expected three numbers like 0.4,0.4,0.4")
        })?;
    let [brightness, contrast, saturation] = v[..] else {
        bail!("--color-jitter '{text}': expected three numbers: brightness,contrast,saturation");
    };
    Ok(ColorJitter {
        brightness,
        contrast,
        saturation,
    })
}

/// The data flags to repeat when resuming.
fn data_flags(args: &TrainArgs) -> String {
    let mut flags = String::new();
    if let Some(d) = &args.data {
        flags += &format!("--data {}", d.display());
    }
    if let Some(v) = &args.val {
        flags += &format!(" --val {}", v.display());
    }
    if args.out != Path::new("runs/alexnet") {
        flags += &format!(" --out {}", args.out.display());
    }
    flags
}

pub(crate) fn open_data(args: &TrainArgs, image_size: usize) -> Result<Data> {
    let Some(root) = &args.data else {
        return Ok(Data {
            train: Arc::new(Synthetic::new(args.train_size, image_size, args.seed, 0)),
            val: Arc::new(Synthetic::new(args.val_size, image_size, args.seed, 1)),
            description: "embedded synthetic shapes (no download)".into(),
        });
    };
    if !root.is_dir() {
        bail!("--data {}: not a folder", root.display());
    }
    if looks_like_cifar(root) {
        return Ok(Data {
            train: Arc::new(Cifar10::open(root, true)?),
            val: Arc::new(Cifar10::open(root, false)?),
            description: format!("CIFAR-10 from {}", root.display()),
        });
    }
    if looks_like_idx(root) {
        return Ok(Data {
            train: Arc::new(Idx::open_dir(root, true)?),
            val: Arc::new(Idx::open_dir(root, false)?),
            description: format!("IDX (MNIST family) from {}", root.display()),
        });
    }
    let (train_root, val_root) = match (
        &args.val,
        root.join("train").is_dir() && root.join("val").is_dir(),
    ) {
        (Some(val), _) => (root.clone(), Some(val.clone())),
        (None, true) => (root.join("train"), Some(root.join("val"))),
        (None, false) => (root.clone(), None),
    };
    let train = Arc::new(ImageFolder::open(&train_root)?);
    match val_root {
        Some(val_root) => {
            let val = ImageFolder::with_classes(&val_root, train.classes())?;
            Ok(Data {
                description: format!(
                    "image folders {} and {}",
                    train_root.display(),
                    val_root.display()
                ),
                train,
                val: Arc::new(val),
            })
        }
        None => {
            let (t, v) = dataset::split(train, args.val_split, args.seed)?;
            Ok(Data {
                train: Arc::new(t),
                val: Arc::new(v),
                description: format!(
                    "image folder {} ({:.0}% held out)",
                    train_root.display(),
                    100.0 * args.val_split
                ),
            })
        }
    }
}

/// The evaluation split of a labelled set: CIFAR-10's test batch, IDX's t10k files, an image
/// folder's `val/` (or the folder itself).
pub fn open_eval_data(root: &Path) -> Result<Arc<dyn Dataset>> {
    if !root.is_dir() {
        bail!("--data {}: not a folder", root.display());
    }
    Ok(if looks_like_cifar(root) {
        Arc::new(Cifar10::open(root, false)?)
    } else if looks_like_idx(root) {
        Arc::new(Idx::open_dir(root, false)?)
    } else if root.join("val").is_dir() {
        Arc::new(ImageFolder::open(&root.join("val"))?)
    } else {
        Arc::new(ImageFolder::open(root)?)
    })
}

fn looks_like_cifar(root: &Path) -> bool {
    ["", "cifar-10-batches-bin"].iter().any(|sub| {
        root.join(sub).join("data_batch_1.bin").is_file()
            || root.join(sub).join("test_batch.bin").is_file()
    })
}

fn looks_like_idx(root: &Path) -> bool {
    ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
        .iter()
        .any(|f| root.join(f).is_file())
}
