//! The runtime: device, pipeline cache, tensors and recorded programs — how shaders get
//! dispatched. Ops build on it; nothing here knows about AlexNet.

pub mod device;
pub mod dispatch;
pub mod gate;
pub mod limits;
pub mod pipeline;
pub mod tensor;
pub mod uniform;

pub use device::{
    list_adapters, parse_backend, DeviceLimits, Gpu, GpuOptions, ShaderChecks, OPTIONAL_FEATURES,
};
pub use dispatch::{Arg, Dispatch, KernelCall, Phase, Program, WORKGROUP_SIZE};
pub use gate::{DeviceGate, GateGuard, Gated};
pub use pipeline::{Access, CacheStats, ShaderSource};
pub use tensor::{binding_chunks, DType, MemoryCounter, Readback, Tensor, TensorSlice};
pub use uniform::Uniform;
