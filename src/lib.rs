//! AlexNet in WGSL compute shaders on wgpu: every layer and its backward pass is a shader,
//! dispatched through a small pipeline-cache runtime. Trains and infers on Vulkan, Metal and
//! DX12 without CUDA.
//!
//! - [`runtime`]: device, pipeline cache, tensors, recorded programs.
//! - [`ops`]: one module per shader file, forward and backward side by side.
//! - [`model`]: AlexNet — layers, parameters, forward/backward/update programs.

pub mod atomic_file;
pub mod bench;
pub mod data;
pub mod error;
pub mod infer;
pub mod model;
pub mod ops;
pub mod reference;
pub mod runtime;
pub mod selftest;
pub mod train;

pub use error::{Error, Result};
pub use runtime::{Gpu, GpuOptions, Program, Tensor};
