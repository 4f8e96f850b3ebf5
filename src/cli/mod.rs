//! Subcommands of the `alexnet` tool, one module each.

pub mod bench;
pub mod classify;
pub mod devices;
pub mod experiment;
pub mod features;
pub mod info;
pub mod selftest;
pub mod train;

use alexnet_wgpu::ops::{Autotune, GemmTiles, KernelPolicy, Matrix, Precision};
use alexnet_wgpu::runtime::{
    list_adapters, parse_backend, DeviceLimits, Gpu, GpuOptions, ShaderChecks,
};
use anyhow::Context;
use clap::Args;

/// Adapter choice shared by every command that runs on a GPU.
#[derive(Args, Clone, Debug, Default)]
pub struct DeviceArgs {
    /// Backend: vulkan, metal, dx12 or gl (default: WGPU_BACKEND, else all).
    #[arg(long)]
    pub backend: Option<String>,
    /// Case-insensitive part of the adapter name (default: WGPU_ADAPTER_NAME).
    #[arg(long)]
    pub device: Option<String>,
    /// wgpu's runtime checks compiled into the shaders: full, bounds (memory safety only: the
    /// default) or off. Our kernels bound their own indices; full checks cost speed.
    #[arg(long, default_value = "bounds")]
    pub shader_checks: ShaderChecks,
    /// Tile shape of the tiled GEMM, BMxBNxBK/TMxTN, 64 or 128 (default: by problem,
    /// 64x64x16/4x4 or, for outputs of at most 32 rows, 32x128x16/4x4).
    #[arg(long)]
    pub gemm_tiles: Option<GemmTiles>,
    /// Device limits: adapter (its own, the default) or webgpu (WebGPU's defaults: 16 KiB of
    /// workgroup memory, 256 invocations, 128 MiB bindings, 8 storage buffers per stage),
    /// as browsers and many integrated GPUs give. Default: ALEXNET_LIMITS, else adapter.
    #[arg(long)]
    pub limits: Option<DeviceLimits>,
    /// Kernel choice per layer shape: off (the tiled kernels everywhere, the default), quick
    /// (time plain against tiled per convolution and linear shape and pass when first
    /// planned) or full (also each GEMM kernel and tile shape worth trying on the adapter,
    /// up to 3 s per shape); remembered per adapter and driver in the cache folder.
    #[arg(long, default_value = "off")]
    pub autotune: Autotune,
    /// Arithmetic of the convolution and linear layers: f32 (the default) or mixed (operands
    /// rounded to f16, sums in f32, as tensor cores compute; training adds dynamic loss
    /// scaling). Faster only where the adapter has f16 matrix hardware (`alexnet devices`).
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// Matrix units (cooperative matrices) for the GEMM: auto (where the adapter lists a
    /// configuration for the precision: f16 16x16 for mixed, f32 8x8 for f32), on (fail where
    /// it does not) or off (the SIMT kernel everywhere).
    #[arg(long, default_value = "auto")]
    pub matrix: Matrix,
    /// LRN's channel windows in workgroup memory with the tiled kernels: true or false
    /// (default: on GPUs, off on CPU drivers, where it only costs).
    #[arg(long)]
    pub workgroup_lrn: Option<bool>,
    /// The tiled GEMM reading its operands straight from the buffers (no workgroup memory):
    /// true or false (default: on CPU drivers, where it is faster, off on GPUs).
    #[arg(long)]
    pub direct_gemm: Option<bool>,
}

impl DeviceArgs {
    /// The device options these flags select.
    pub fn options(&self) -> anyhow::Result<GpuOptions> {
        Ok(GpuOptions {
            backends: self.backend.as_deref().map(parse_backend).transpose()?,
            adapter_name: self.device.clone(),
            shader_checks: self.shader_checks,
            limits: self.limits.clone(),
            ..Default::default()
        })
    }

    /// The kernel choice these flags select (tiles by problem unless --gemm-tiles).
    pub fn policy(&self) -> KernelPolicy {
        KernelPolicy {
            gemm_tiles: self.gemm_tiles,
            autotune: self.autotune,
            precision: self.precision,
            matrix: self.matrix,
            workgroup_lrn: self.workgroup_lrn,
            direct_gemm: self.direct_gemm,
            ..KernelPolicy::default()
        }
    }

    /// Opens the adapter whose name contains `name`, with the other flags as given (a name
    /// given twice opens the adapter twice).
    pub fn open_named(&self, name: &str) -> anyhow::Result<Gpu> {
        DeviceArgs {
            device: Some(name.to_string()),
            ..self.clone()
        }
        .open()
    }

    /// Opens the adapters a `--devices` list names: `all` (every hardware adapter of one
    /// backend: --backend's, else the preferred adapter's; the software ones only where there
    /// is no hardware), numbers as `alexnet devices` lists them, or parts of names (a name
    /// given twice opens that adapter twice, which lets one adapter stand in for two).
    pub fn open_many(&self, devices: &[String]) -> anyhow::Result<Vec<Gpu>> {
        if devices.len() == 1 && devices[0].eq_ignore_ascii_case("all") {
            let infos: Vec<_> = list_adapters(self.options()?.resolved_backends())
                .iter()
                .map(|a| a.get_info())
                .collect();
            let hardware = infos.iter().any(|i| i.device_type != wgpu::DeviceType::Cpu);
            let software = |i: &wgpu::AdapterInfo| i.device_type == wgpu::DeviceType::Cpu;
            let preferred = infos
                .iter()
                .filter(|i| software(i) != hardware)
                .min_by_key(|i| i.device_type != wgpu::DeviceType::DiscreteGpu)
                .map(|i| i.backend);
            let chosen: Vec<usize> = (0..infos.len())
                .filter(|&k| Some(infos[k].backend) == preferred && software(&infos[k]) != hardware)
                .collect();
            if chosen.is_empty() {
                anyhow::bail!("--devices all: no adapter found (see `alexnet devices`)");
            }
            return chosen.into_iter().map(|k| self.open_numbered(k)).collect();
        }
        devices
            .iter()
            .map(|d| {
                match d.parse::<usize>() {
                    Ok(k) => self.open_numbered(k),
                    Err(_) => self.open_named(d),
                }
                .with_context(|| format!("--devices: '{d}'"))
            })
            .collect()
    }

    /// Opens the `k`-th (modulo their count) of the adapters --device matches: the adapter of
    /// the `k`-th process on a machine (MPI's local rank).
    pub fn open_local(&self, k: usize) -> anyhow::Result<Gpu> {
        let mut options = self.options()?;
        options.adapter_index = Some(k % options.matching_adapters().max(1));
        self.open_with(options)
    }

    /// Opens adapter number `k` as `alexnet devices` lists them (on --backend's backends).
    fn open_numbered(&self, k: usize) -> anyhow::Result<Gpu> {
        let mut options = self.options()?;
        options.adapter_index = Some(k);
        options.adapter_name = None;
        self.open_with(options)
    }

    pub fn open(&self) -> anyhow::Result<Gpu> {
        self.open_with(self.options()?)
    }

    fn open_with(&self, options: GpuOptions) -> anyhow::Result<Gpu> {
        let gpu = Gpu::new(&options)?;
        self.policy().apply(&gpu)?;
        if gpu.is_cpu() {
            log::warn!(
                "adapter '{}' is a CPU (software) driver: expect about 1 GFLOP/s",
                gpu.adapter_name()
            );
        } else {
            log::info!("adapter: {}", gpu.adapter_name());
        }
        Ok(gpu)
    }
}
