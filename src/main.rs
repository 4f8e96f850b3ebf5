//! The `alexnet` command-line tool: a thin layer over the library.

mod cli;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "alexnet",
    version,
    about = "AlexNet in WGSL compute shaders on wgpu"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every GPU adapter wgpu finds, with the limits and features that matter here.
    Devices {
        /// Only this backend: vulkan, metal, dx12 or gl.
        #[arg(long)]
        backend: Option<String>,
    },
    /// Print the per-layer table: kernel/stride/pad/groups, output shape, parameters, multiply-adds.
    Info(cli::info::InfoArgs),
    /// Train AlexNet. With no --data, trains a reduced-width model on the embedded synthetic
    /// dataset (no download) so the whole loop runs in minutes even on a software driver.
    Train(Box<cli::train::TrainArgs>),
    /// Train several variants (activation, pooling, normalisation, regularisation,
    /// augmentation, optimizer and schedule) on the same data and seed, and write one report
    /// with a table and every variant's curves on the same axes.
    Experiment(cli::experiment::ExperimentArgs),
    /// Print the top-5 classes of images (torchvision's preprocessing; ImageNet names built in).
    Classify(cli::classify::ClassifyArgs),
    /// Top-1/top-5 accuracy of weights on a labelled set, optionally with the ten-crop test.
    Eval(cli::classify::EvalArgs),
    /// One layer's output (an embedding) for each image, batched, into a safetensors file
    /// with labels (for class folders) and file names: for linear probes and retrieval.
    Features(cli::features::FeaturesArgs),
    /// Inference and training speed, plain vs tiled kernels, per-layer times, peak memory.
    Bench(cli::bench::BenchArgs),
    /// Check every kernel this adapter would use against the CPU reference (forward,
    /// backward, one SGD step of a reduced AlexNet): pass/fail per op, its error and speed.
    /// Every adapter found, unless --backend or --device picks one.
    Selftest(cli::selftest::SelftestArgs),
}

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Command::Devices { backend } => cli::devices::run(backend.as_deref()),
        Command::Info(args) => cli::info::run(&args),
        Command::Train(args) => cli::train::run(*args),
        Command::Experiment(args) => cli::experiment::run(&args),
        Command::Classify(args) => cli::classify::run_classify(&args),
        Command::Eval(args) => cli::classify::run_eval(&args),
        Command::Features(args) => cli::features::run(&args),
        Command::Bench(args) => cli::bench::run_bench(&args),
        Command::Selftest(args) => cli::selftest::run(&args),
    }
}
