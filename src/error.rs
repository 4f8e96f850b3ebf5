//! The library's error type: every variant says what failed and with which values.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error(
        "no GPU adapter found (tried backends: {tried}{name_filter}).\n\
         Install a Vulkan, Metal or DX12 driver. On Linux without a GPU, Mesa's software \
         Vulkan driver works: `apt-get install mesa-vulkan-drivers`."
    )]
    NoAdapter { tried: String, name_filter: String },

    #[error("could not open a device on adapter '{adapter}': {source}")]
    RequestDevice {
        adapter: String,
        #[source]
        source: wgpu::RequestDeviceError,
    },

    #[error("unknown backend '{0}': expected one of vulkan, metal, dx12, gl")]
    UnknownBackend(String),

    #[error("shape mismatch in {op}: {what}")]
    Shape { op: &'static str, what: String },

    #[error("tensor '{tensor}': expected {expected} elements, got {got}")]
    Length {
        tensor: String,
        expected: usize,
        got: usize,
    },

    #[error(
        "tensor '{tensor}': a binding of {bytes} bytes exceeds this adapter's \
         max_storage_buffer_binding_size ({limit} bytes)"
    )]
    BindingTooLarge {
        tensor: String,
        bytes: u64,
        limit: u64,
    },

    #[error(
        "tensor '{tensor}': {bytes} bytes exceeds this adapter's max_buffer_size ({limit} bytes)"
    )]
    BufferTooLarge {
        tensor: String,
        bytes: u64,
        limit: u64,
    },

    #[error("shader '{shader}' entry '{entry}' failed to compile: {message}")]
    Pipeline {
        shader: &'static str,
        entry: &'static str,
        message: String,
    },

    #[error("GPU error while {context}: {message}")]
    Gpu { context: String, message: String },

    /// The driver could not allocate what an operation asked for.
    #[error("the GPU ran out of memory while {context}: {message}")]
    DeviceOutOfMemory { context: String, message: String },

    #[error("reading back tensor '{tensor}' failed: {message}")]
    Readback { tensor: String, message: String },

    #[error("{path}: {message}")]
    File { path: String, message: String },

    #[error("safetensors file {path}: {message}")]
    Safetensors { path: String, message: String },

    #[error("invalid configuration: {0}")]
    Config(String),

    /// MPI could not start, or the processes of a run disagree (feature `mpi`).
    #[error("MPI: {0}")]
    Mpi(String),

    /// The device was lost (driver reset, GPU removed, watchdog) or destroyed; every later
    /// call on this `Gpu` fails with this error. Checkpoints already written are intact.
    #[error("the GPU device was lost ({reason}); restart the program and resume from the last checkpoint")]
    DeviceLost { reason: String },

    /// A batch needs more GPU memory (or a larger buffer) than the device has.
    #[error(
        "batch size {batch} does not fit on this GPU: {detail}; the batch needs about \
         {:.1} GB in all. {hint}",
        *needed_bytes as f64 / 1e9
    )]
    OutOfMemory {
        batch: usize,
        needed_bytes: u64,
        detail: String,
        hint: String,
    },

    /// A NaN or infinity appeared in the loss or a gradient during training.
    #[error(
        "non-finite value (NaN or Inf) at step {step} in {}; {action}",
        tensors.join(", ")
    )]
    NonFinite {
        step: u64,
        /// `loss` and/or `<parameter>.grad`, in the order the check scans them.
        tensors: Vec<String>,
        /// What happened to the run and its checkpoint.
        action: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
