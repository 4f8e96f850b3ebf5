//! The data pipeline: where images come from, how they are transformed, and how batches reach
//! the training loop.
//!
//! - [`dataset`]: the [`Dataset`] trait and its sources: [`ImageFolder`] (torchvision's
//!   layout, one sub-folder per class), [`Cifar10`] (the binary batches), [`Cifar100`], [`Idx`] (MNIST and
//!   relatives), [`Subset`] and a stratified [`dataset::split`].
//! - [`source`]: which of those a `--data` folder holds, and its train/validation splits.
//! - [`synthetic`]: [`Synthetic`], generated coloured shapes: the default dataset, no download.
//! - [`transforms`]: torchvision's resize (bit-exact with Pillow's bilinear), crops, flips,
//!   normalisation, PCA lighting, colour jitter, and the [`Augment`] pipeline.
//! - [`loader`]: [`Loader`], worker threads with a bounded prefetch window, batches in order,
//!   every random choice a pure function of `(seed, epoch, position)` so resuming reproduces.
//! - [`batch`]: what a [`Batch`] carries: f32 tensors, or decoded images and their random
//!   draws ([`GpuSample`]) when the GPU augments ([`AugmentOn`]).

pub mod batch;
pub mod cifar100;
pub mod dataset;
pub mod jpeg;
pub mod loader;
pub mod source;
pub mod synthetic;
pub mod transforms;

pub use cifar100::{Cifar100, Cifar100Labels};
pub use dataset::{split, Cifar10, Dataset, DecodeMode, Idx, ImageFolder, Subset};
pub use loader::{default_workers, AugmentOn, Batch, GpuSample, Loader, LoaderConfig, OnBadSample};
pub use synthetic::Synthetic;
pub use transforms::{Augment, ColorDraws, ColorJitter, Placement};
