//! Which limits a device is opened with: the adapter's own, or WebGPU's defaults (the floor
//! browsers and many integrated GPUs give), which everything must also work within.

use crate::error::{Error, Result};

/// Which limits the device is opened with.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum DeviceLimits {
    /// The adapter's own: wgpu's defaults cap storage bindings and workgroup sizes far below
    /// what real GPUs (and lavapipe) offer.
    #[default]
    Adapter,
    /// WebGPU's defaults (16 KiB of workgroup memory, 256 invocations per workgroup, 128 MiB
    /// per storage binding, 8 storage buffers per shader stage, …), or the adapter's where it
    /// offers less: what browsers, many Intel iGPUs and older Macs give. Everything must work
    /// here, which the suites check by running under it (`ALEXNET_LIMITS=webgpu`).
    WebGpu,
    /// These limits, or the adapter's where it offers less (tests of stricter devices).
    Custom(Box<wgpu::Limits>),
}

impl DeviceLimits {
    pub const NAMES: &'static str = "adapter or webgpu";
    /// The environment variable read when [`GpuOptions::limits`] is `None`.
    pub const ENV: &'static str = "ALEXNET_LIMITS";

    pub(crate) fn resolve(&self, adapter: &wgpu::Limits) -> wgpu::Limits {
        match self {
            Self::Adapter => adapter.clone(),
            Self::WebGpu => wgpu::Limits::defaults().or_worse_values_from(adapter),
            Self::Custom(limits) => limits.as_ref().clone().or_worse_values_from(adapter),
        }
    }

    /// `ALEXNET_LIMITS`, if set; an unknown value is an error naming the variable.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var(Self::ENV) {
            Ok(value) => value.parse().map(Some).map_err(|_| {
                Error::Config(format!("{}='{value}': expected {}", Self::ENV, Self::NAMES))
            }),
            Err(_) => Ok(None),
        }
    }
}

impl std::str::FromStr for DeviceLimits {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "adapter" => Ok(Self::Adapter),
            "webgpu" | "conservative" => Ok(Self::WebGpu),
            other => Err(Error::Config(format!(
                "--limits '{other}': expected {}",
                Self::NAMES
            ))),
        }
    }
}
