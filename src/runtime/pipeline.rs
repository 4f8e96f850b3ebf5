//! The pipeline cache: every `(shader, entry point, override constants)` becomes a compute
//! pipeline at most once per device. Bind-group layouts are explicit, built from the access
//! pattern a launcher declares. Where the adapter has `PIPELINE_CACHE`, the driver's own cache
//! is loaded from and saved to disk so a second run compiles faster.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::runtime::device::ShaderChecks;

/// A WGSL module as the runtime compiles it: its name (labels, errors, cache keys) and its text.
/// Which files exist is the ops' business (`ops::Shader`); two sources are the same module
/// when their names are.
#[derive(Clone, Copy, Debug)]
pub struct ShaderSource {
    pub name: &'static str,
    pub wgsl: &'static str,
}

impl PartialEq for ShaderSource {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for ShaderSource {}

impl std::hash::Hash for ShaderSource {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

/// How a kernel uses one binding. Binding `i` of group 0 is the `i`-th access in the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Uniform,
    Read,
    ReadWrite,
    /// A non-filtered 2-D float texture (`texture_2d<f32>` read with `textureLoad`).
    Texture,
}

/// What identifies a compiled pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PipelineKey {
    shader: ShaderSource,
    entry: &'static str,
    /// Override constants as `(name, value bits)`, sorted, so equal sets hash equally.
    constants: Vec<(&'static str, u64)>,
    accesses: Vec<Access>,
}

/// Counters that show whether pipelines are being reused.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub compile_time: Duration,
}

/// A compiled pipeline and the layout its bind groups must follow.
#[derive(Clone)]
pub struct CompiledKernel {
    pub pipeline: Arc<wgpu::ComputePipeline>,
    pub layout: Arc<wgpu::BindGroupLayout>,
}

/// A bind-group layout and the pipeline layout made of it, shared by every kernel with the
/// same access pattern.
type Layouts = (Arc<wgpu::BindGroupLayout>, wgpu::PipelineLayout);

pub struct PipelineCache {
    modules: Mutex<HashMap<&'static str, Arc<wgpu::ShaderModule>>>,
    layouts: Mutex<HashMap<Vec<Access>, Layouts>>,
    pipelines: Mutex<HashMap<PipelineKey, CompiledKernel>>,
    stats: Mutex<CacheStats>,
    driver_cache: Option<(wgpu::PipelineCache, PathBuf)>,
    checks: ShaderChecks,
}

impl PipelineCache {
    pub(crate) fn new(
        device: &wgpu::Device,
        cache_file: Option<PathBuf>,
        checks: ShaderChecks,
    ) -> Self {
        let driver_cache = cache_file
            .filter(|_| device.features().contains(wgpu::Features::PIPELINE_CACHE))
            .map(|path| {
                let data = std::fs::read(&path).ok();
                log::debug!(
                    "driver pipeline cache {} ({} bytes loaded)",
                    path.display(),
                    data.as_ref().map_or(0, Vec::len)
                );
                // SAFETY: the data was written by `PipelineCache::get_data` for an adapter
                // with the same cache key; `fallback: true` makes the driver ignore data it
                // cannot use instead of failing.
                let cache = unsafe {
                    device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                        label: Some("alexnet-wgpu driver cache"),
                        data: data.as_deref(),
                        fallback: true,
                    })
                };
                (cache, path)
            });
        Self {
            modules: Mutex::default(),
            layouts: Mutex::default(),
            pipelines: Mutex::default(),
            stats: Mutex::default(),
            driver_cache,
            checks,
        }
    }

    pub fn stats(&self) -> CacheStats {
        *self.stats.lock().unwrap()
    }

    /// True when the driver's pipeline cache is persisted on disk for this device.
    pub fn has_driver_cache(&self) -> bool {
        self.driver_cache.is_some()
    }

    /// Returns the pipeline for this kernel, compiling it on first use.
    pub fn get(
        &self,
        device: &wgpu::Device,
        shader: ShaderSource,
        entry: &'static str,
        constants: &[(&'static str, f64)],
        accesses: &[Access],
    ) -> Result<CompiledKernel> {
        let mut sorted: Vec<(&'static str, u64)> =
            constants.iter().map(|&(k, v)| (k, v.to_bits())).collect();
        sorted.sort_unstable();
        let key = PipelineKey {
            shader,
            entry,
            constants: sorted,
            accesses: accesses.to_vec(),
        };
        // One lock at a time: a guard held while taking the other lock deadlocked two threads
        // sharing the cache, one finding a pipeline and one inserting another.
        let found = self.pipelines.lock().unwrap().get(&key).cloned();
        if let Some(found) = found {
            self.stats.lock().unwrap().hits += 1;
            return Ok(found);
        }
        let start = Instant::now();
        let compiled = self.compile(device, &key, constants)?;
        {
            let mut stats = self.stats.lock().unwrap();
            stats.misses += 1;
            stats.compile_time += start.elapsed();
        }
        self.pipelines.lock().unwrap().insert(key, compiled.clone());
        Ok(compiled)
    }

    fn compile(
        &self,
        device: &wgpu::Device,
        key: &PipelineKey,
        constants: &[(&'static str, f64)],
    ) -> Result<CompiledKernel> {
        let module = self.module(device, key.shader)?;
        let (bind_layout, pipeline_layout) = self.layout(device, &key.accesses);
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(key.entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(key.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                // Our kernels write workgroup memory before reading it (`finite.wgsl` clears
                // its flag itself), so wgpu's zero-initialisation would only cost: on GL naga
                // emits it as shader code that took llvmpipe minutes per GEMM pipeline to
                // compile (a cold selftest: over 10 minutes with it, 40 s without).
                zero_initialize_workgroup_memory: false,
            },
            cache: self.driver_cache.as_ref().map(|(c, _)| c),
        });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(Error::Pipeline {
                shader: key.shader.name,
                entry: key.entry,
                message: err.to_string(),
            });
        }
        Ok(CompiledKernel {
            pipeline: Arc::new(pipeline),
            layout: bind_layout,
        })
    }

    fn module(
        &self,
        device: &wgpu::Device,
        shader: ShaderSource,
    ) -> Result<Arc<wgpu::ShaderModule>> {
        let mut modules = self.modules.lock().unwrap();
        if let Some(m) = modules.get(shader.name) {
            return Ok(m.clone());
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let descriptor = wgpu::ShaderModuleDescriptor {
            label: Some(shader.name),
            source: wgpu::ShaderSource::Wgsl(shader.wgsl.into()),
        };
        let module = match self.checks {
            ShaderChecks::Full => device.create_shader_module(descriptor),
            // SAFETY: see `ShaderChecks`: every kernel bounds its indices by the extents in
            // its parameters, divides only by validated non-zero sizes and loops over them.
            reduced => unsafe {
                device.create_shader_module_trusted(descriptor, reduced.runtime_checks())
            },
        };
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(Error::Pipeline {
                shader: shader.name,
                entry: "(module)",
                message: err.to_string(),
            });
        }
        let module = Arc::new(module);
        modules.insert(shader.name, module.clone());
        Ok(module)
    }

    fn layout(&self, device: &wgpu::Device, accesses: &[Access]) -> Layouts {
        let mut layouts = self.layouts.lock().unwrap();
        let (bind, pipeline) = layouts.entry(accesses.to_vec()).or_insert_with(|| {
            let entries: Vec<wgpu::BindGroupLayoutEntry> = accesses
                .iter()
                .enumerate()
                .map(|(i, access)| wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: binding_type(*access),
                    count: None,
                })
                .collect();
            let bind = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: None,
                entries: &entries,
            });
            let pipeline = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: None,
                bind_group_layouts: &[Some(&bind)],
                immediate_size: 0,
            });
            (Arc::new(bind), pipeline)
        });
        (bind.clone(), pipeline.clone())
    }

    /// Writes the driver's cache to disk atomically, so a crash never leaves half a file that
    /// the driver would then have to reject.
    pub fn save(&self) {
        let Some((cache, path)) = &self.driver_cache else {
            return;
        };
        let Some(data) = cache.get_data() else {
            return;
        };
        let written = crate::atomic_file::write(path, &data);
        match written {
            Ok(()) => log::debug!(
                "saved {} bytes of pipeline cache to {}",
                data.len(),
                path.display()
            ),
            Err(e) => log::warn!(
                "could not save the pipeline cache to {}: {e}",
                path.display()
            ),
        }
    }
}

fn binding_type(access: Access) -> wgpu::BindingType {
    let buffer = |ty| wgpu::BindingType::Buffer {
        ty,
        has_dynamic_offset: false,
        min_binding_size: None,
    };
    match access {
        Access::Uniform => buffer(wgpu::BufferBindingType::Uniform),
        Access::Read => buffer(wgpu::BufferBindingType::Storage { read_only: true }),
        Access::ReadWrite => buffer(wgpu::BufferBindingType::Storage { read_only: false }),
        Access::Texture => wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: false },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
    }
}
