//! The device context: choose an adapter, open a device with the adapter's own limits, and
//! keep the pipeline cache beside it. `Gpu::from_device` wraps a device an app already owns.
//!
//! wgpu's default reaction to an error nobody captured is a panic, which would take down a
//! host application (or a days-long training run) over one bad dispatch. The library's wgpu
//! calls run inside error scopes (`Gpu::scoped`), so their errors come back typed from the
//! call that caused them. A device the library opened also gets an uncaptured-error handler
//! and device-lost callback that log and record what happened, so the next [`Gpu::check`]
//! (called by `wait`, reads and every training step) returns it as a typed [`Error`]; a
//! device wrapped with `Gpu::from_device` keeps the app's own.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::runtime::gate::{DeviceGate, GateGuard, Gated};
pub use crate::runtime::limits::DeviceLimits;
use crate::runtime::pipeline::PipelineCache;
use crate::runtime::tensor::MemoryCounter;

/// Optional features we use where the adapter has them; never required. Cooperative matrices
/// (matrix units: tensor cores, Apple's simdgroup matrices) are wgpu's experimental feature.
pub const OPTIONAL_FEATURES: wgpu::Features = wgpu::Features::SHADER_F16
    .union(wgpu::Features::SUBGROUP)
    .union(wgpu::Features::TIMESTAMP_QUERY)
    .union(wgpu::Features::PIPELINE_CACHE)
    .union(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);

/// How to choose an adapter. `Default` honours `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and
/// `ALEXNET_LIMITS`.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Backends to try; `None` means `WGPU_BACKEND` or else every backend.
    pub backends: Option<wgpu::Backends>,
    /// Case-insensitive substring of the adapter name; `None` means `WGPU_ADAPTER_NAME`.
    pub adapter_name: Option<String>,
    /// The adapter's number among those found (and matching the name), in the order
    /// `alexnet devices` lists them; `None` prefers a discrete GPU, then an integrated one.
    pub adapter_index: Option<usize>,
    /// Where to keep the driver's pipeline cache; `None` means the user cache directory.
    pub pipeline_cache_dir: Option<PathBuf>,
    /// Which of wgpu's injected runtime checks the shaders are compiled with.
    pub shader_checks: ShaderChecks,
    /// The limits to open the device with; `None` means `ALEXNET_LIMITS` or else the adapter's.
    pub limits: Option<DeviceLimits>,
}

impl GpuOptions {
    /// The backends to try: as given, else `WGPU_BACKEND`, else all.
    pub fn resolved_backends(&self) -> wgpu::Backends {
        self.backends
            .or_else(wgpu::Backends::from_env)
            .unwrap_or(wgpu::Backends::all())
    }

    /// The adapter name filter: as given, else `WGPU_ADAPTER_NAME`.
    pub fn name_filter(&self) -> Option<String> {
        self.adapter_name
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
    }

    /// How many adapters these options can choose from (the numbers `adapter_index` takes).
    pub fn matching_adapters(&self) -> usize {
        let filter = self.name_filter().unwrap_or_default().to_lowercase();
        list_adapters(self.resolved_backends())
            .iter()
            .filter(|a| a.get_info().name.to_lowercase().contains(&filter))
            .count()
    }
}

/// The runtime checks wgpu injects into shaders. Our kernels bound every index by the extents
/// their parameters give (which the ops check against the bound tensors), divide only by
/// sizes validated as non-zero, and loop only over those sizes: the checks guard against
/// kernels we do not write. The op tests run with each setting.
///
/// The default keeps the bounds checks (memory safety) and drops the loop counters and
/// division guards, which cost a third of the convolution speed on an H100 (Vulkan) while
/// guarding against nothing our kernels do; bounds checks cost nothing measurable there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShaderChecks {
    /// Everything wgpu offers: bounds checks, loop bounding, guarded integer division.
    Full,
    /// Bounds checks only (memory safety kept; no loop counters or division guards).
    #[default]
    Bounds,
    /// None of them.
    Off,
}

impl ShaderChecks {
    pub const NAMES: &'static str = "full, bounds or off";

    pub fn runtime_checks(self) -> wgpu::ShaderRuntimeChecks {
        // SAFETY (for the settings below `Full`): see the type's documentation; the kernels
        // meet the conditions wgpu's unchecked settings require.
        let mut checks = unsafe { wgpu::ShaderRuntimeChecks::all(self == Self::Full) };
        checks.bounds_checks = self != Self::Off;
        checks
    }
}

impl std::str::FromStr for ShaderChecks {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "bounds" => Ok(Self::Bounds),
            "off" | "none" => Ok(Self::Off),
            other => Err(Error::Config(format!(
                "--shader-checks '{other}': expected {}",
                Self::NAMES
            ))),
        }
    }
}

/// Parses a backend name as the `--backend` flag spells it.
pub fn parse_backend(name: &str) -> Result<wgpu::Backends> {
    match name.trim().to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
        "metal" | "mtl" => Ok(wgpu::Backends::METAL),
        "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
        "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
        other => Err(Error::UnknownBackend(other.to_string())),
    }
}

type Settings = Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>;

/// A device, its queue, what the adapter offers, and the pipelines compiled on it.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    /// `None` for a wrapped device whose adapter we never saw.
    pub adapter_info: Option<wgpu::AdapterInfo>,
    pub pipelines: PipelineCache,
    /// Where this device keeps what it learns about its adapter (`None` for a wrapped device).
    cache_dir: Option<PathBuf>,
    /// Per-device settings of the layers above the runtime (the ops' kernel policy), kept by
    /// type so that the runtime need not know them.
    settings: Settings,
    /// Tensor storage alive on this device, and its peak.
    pub memory: Arc<MemoryCounter>,
    /// What the device's callbacks have reported; see [`Gpu::check`].
    health: Arc<Health>,
    /// Serialises the library's calls where the backend needs it (GL); see `runtime::gate`.
    pub(crate) gate: Arc<DeviceGate>,
    /// The cooperative-matrix configurations the adapter lists, where the device has the
    /// feature; see [`Gpu::cooperative_matrices`].
    cooperative_matrices: Vec<wgpu::CooperativeMatrixProperties>,
}

/// Errors wgpu reported through callbacks rather than return values.
#[derive(Default)]
struct Health {
    /// Why the device was lost, once it is.
    lost: Mutex<Option<String>>,
    /// Uncaptured errors not yet returned by [`Gpu::check`].
    errors: Mutex<Vec<String>>,
}

impl Health {
    /// Installs the handlers on a device this library opened (never on an app's).
    fn install(device: &wgpu::Device) -> Arc<Self> {
        let health = Arc::new(Health::default());
        let h = health.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("uncaptured GPU error: {e}");
            lock(&h.errors).push(e.to_string());
        }));
        let h = health.clone();
        device.set_device_lost_callback(move |reason, message| {
            // Dropping the device reports `Destroyed` too; only a real loss is worth a warning.
            if reason != wgpu::DeviceLostReason::Destroyed {
                log::error!("GPU device lost ({reason:?}): {message}");
            }
            let reason = if message.is_empty() {
                format!("{reason:?}")
            } else {
                format!("{reason:?}: {message}")
            };
            *lock(&h.lost) = Some(reason);
        });
        health
    }
}

/// A poisoned lock here only means a callback panicked mid-push; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gpu {
    /// Chooses an adapter and opens a device on it.
    pub fn new(options: &GpuOptions) -> Result<Self> {
        pollster::block_on(Self::new_async(options))
    }

    pub async fn new_async(options: &GpuOptions) -> Result<Self> {
        let (backends, name_filter) = (options.resolved_backends(), options.name_filter());
        let instance = new_instance(backends);
        let adapter = choose_adapter(
            &instance,
            backends,
            name_filter.as_deref(),
            options.adapter_index,
        )
        .await
        .ok_or_else(|| Error::NoAdapter {
            tried: backend_names(backends),
            name_filter: name_filter
                .map(|n| format!(", name containing '{n}'"))
                .into_iter()
                .chain(options.adapter_index.map(|i| format!(", number {i}")))
                .collect(),
        })?;
        let info = adapter.get_info();
        let features = adapter.features() & OPTIONAL_FEATURES;
        let limits = match &options.limits {
            Some(limits) => limits.clone(),
            None => DeviceLimits::from_env()?.unwrap_or_default(),
        };
        if limits != DeviceLimits::Adapter {
            log::info!("opening the device with {limits:?} limits");
        }
        log::info!(
            "adapter: {} ({:?}, {:?}, driver {} {}); optional features: {:?}",
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            info.driver_info,
            features
        );
        let coop = features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
        let experimental_features = if coop {
            // SAFETY: wgpu asks callers of its experimental features to accept that their
            // implementation may still have bugs, some of them undefined behaviour. Only the
            // cooperative-matrix GEMM uses one, and only where the adapter lists the exact
            // configuration it was written for (`ops::gemm_coop`); it can be turned off
            // (`KernelPolicy::matrix`), and every other kernel stays off experimental paths.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("alexnet-wgpu"),
                required_features: features,
                required_limits: limits.resolve(&adapter.limits()),
                experimental_features,
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|source| Error::RequestDevice {
                adapter: info.name.clone(),
                source,
            })?;
        let cache_dir = options
            .pipeline_cache_dir
            .clone()
            .or_else(default_cache_dir);
        let cache_file = wgpu::util::pipeline_cache_key(&info)
            .and_then(|key| Some(cache_dir.as_ref()?.join(key)));
        let pipelines = PipelineCache::new(&device, cache_file, options.shader_checks);
        let health = Health::install(&device);
        let cooperative_matrices = if coop {
            adapter.cooperative_matrix_properties()
        } else {
            Vec::new()
        };
        Ok(Self {
            gate: Arc::new(DeviceGate::for_backend(info.backend)),
            device,
            queue,
            adapter_info: Some(info),
            pipelines,
            cache_dir,
            settings: Settings::default(),
            memory: Arc::default(),
            health,
            cooperative_matrices,
        })
    }

    /// Wraps a device and queue the caller already owns (a graphics app's), so the network
    /// runs on the same GPU the app renders with. No driver pipeline cache is kept on disk,
    /// since we cannot tell which adapter the device came from.
    ///
    /// The app's uncaptured-error handler and device-lost callback stay as they are (wgpu keeps
    /// one of each, so installing ours would replace them): every wgpu call the library makes
    /// runs inside error scopes on the calling thread, so its own errors come back as typed
    /// [`Error`]s from the call that caused them and never reach the app's handler, while the
    /// app's errors still do. On GL, take [`Gpu::exclusive`] around the app's own wgpu calls
    /// from other threads (see `runtime::gate`).
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let gate = Arc::new(DeviceGate::for_backend(device.adapter_info().backend));
        let pipelines = PipelineCache::new(&device, None, ShaderChecks::Full);
        Self {
            device,
            queue,
            adapter_info: None,
            pipelines,
            cache_dir: None,
            settings: Settings::default(),
            memory: Arc::default(),
            health: Arc::default(),
            gate,
            cooperative_matrices: Vec::new(),
        }
    }

    /// The setting of type `T` made on this device with [`Gpu::set_setting`], if any.
    pub fn setting<T: Any + Clone>(&self) -> Option<T> {
        lock(&self.settings)
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<T>())
            .cloned()
    }

    /// Keeps `value` as this device's setting of its type, replacing an earlier one. Work
    /// prepared before keeps what it was prepared with.
    pub fn set_setting<T: Any + Send + Sync>(&self, value: T) {
        lock(&self.settings).insert(TypeId::of::<T>(), Box::new(value));
    }

    /// Returns the error the device's callbacks reported since the last call, if any:
    /// [`Error::DeviceLost`] once the device is lost (and for ever after), else the first
    /// uncaptured error as [`Error::Gpu`].
    /// [`Error::DeviceLost`] if the device-lost callback has fired (after one poll, since a
    /// destroyed device reports its loss only when polled).
    fn lost(&self) -> Option<Error> {
        if lock(&self.health.lost).is_none() {
            let _ = self.device.poll(wgpu::PollType::Poll);
        }
        lock(&self.health.lost)
            .clone()
            .map(|reason| Error::DeviceLost { reason })
    }

    pub fn check(&self) -> Result<()> {
        let _turn = self.gate.enter();
        if lock(&self.health.lost).is_none() && !lock(&self.health.errors).is_empty() {
            // A destroyed device reports its loss only when polled; poll once so the caller
            // sees the loss rather than the validation errors it caused.
            let _ = self.device.poll(wgpu::PollType::Poll);
        }
        if let Some(reason) = lock(&self.health.lost).clone() {
            return Err(Error::DeviceLost { reason });
        }
        let mut errors = lock(&self.health.errors);
        if errors.is_empty() {
            return Ok(());
        }
        let message = errors.join("; ");
        errors.clear();
        Err(Error::Gpu {
            context: "an earlier operation (reported asynchronously)".into(),
            message,
        })
    }

    /// Runs `f` (which creates buffers) and returns its result and, separately, the driver's
    /// out-of-memory message if it reported one, so the caller can say which batch size would
    /// fit.
    pub fn with_oom_scope<T>(&self, f: impl FnOnce() -> Result<T>) -> (Result<T>, Option<String>) {
        match f() {
            Err(Error::DeviceOutOfMemory { context, message }) => (
                Err(Error::DeviceOutOfMemory {
                    context,
                    message: message.clone(),
                }),
                Some(message),
            ),
            other => (other, None),
        }
    }

    /// Runs `f` on this device with every error it causes on this thread captured and
    /// returned typed: validation and internal errors as [`Error::Gpu`], allocation failures as
    /// [`Error::DeviceOutOfMemory`]. None of them reaches the device's uncaptured-error
    /// handler — which, for a device wrapped with [`Gpu::from_device`], is the app's own.
    /// Holds the gate throughout.
    pub(crate) fn scoped<T>(&self, context: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let _turn = self.gate.enter();
        let scopes = [
            wgpu::ErrorFilter::Validation,
            wgpu::ErrorFilter::OutOfMemory,
            wgpu::ErrorFilter::Internal,
        ]
        .map(|filter| (filter, self.device.push_error_scope(filter)));
        let result = f();
        // Scopes pop innermost first; the first error found is the one reported.
        let mut first = None;
        for (filter, scope) in scopes.into_iter().rev() {
            if let Some(e) = pollster::block_on(scope.pop()) {
                first.get_or_insert((filter, e.to_string()));
            }
        }
        let Some((filter, message)) = first else {
            return result;
        };
        // Every call on a destroyed or lost device fails validation; say what really happened.
        if let Some(lost) = self.lost() {
            return Err(lost);
        }
        let context = context.to_string();
        Err(match filter {
            wgpu::ErrorFilter::OutOfMemory => Error::DeviceOutOfMemory { context, message },
            _ => Error::Gpu { context, message },
        })
    }

    pub fn limits(&self) -> wgpu::Limits {
        self.device.limits()
    }

    /// The cooperative-matrix configurations (sizes and element types) this device can run:
    /// the adapter's list where the device has `EXPERIMENTAL_COOPERATIVE_MATRIX`, else none. A
    /// wrapped device ([`Gpu::from_device`]) has none, since its adapter is not known.
    pub fn cooperative_matrices(&self) -> &[wgpu::CooperativeMatrixProperties] {
        &self.cooperative_matrices
    }

    /// The adapter's range of subgroup sizes, `None` for a wrapped device.
    pub fn subgroup_sizes(&self) -> Option<(u32, u32)> {
        let info = self.adapter_info.as_ref()?;
        Some((info.subgroup_min_size, info.subgroup_max_size))
    }

    /// Largest number of bytes one storage binding may span on this device.
    pub fn max_binding_bytes(&self) -> u64 {
        self.device.limits().max_storage_buffer_binding_size
    }

    /// Required alignment of a storage binding's byte offset.
    pub fn binding_offset_alignment(&self) -> u64 {
        u64::from(self.device.limits().min_storage_buffer_offset_alignment)
    }

    pub fn adapter_name(&self) -> String {
        self.adapter_info
            .as_ref()
            .map(|i| i.name.clone())
            .unwrap_or_else(|| "external device".to_string())
    }

    /// True for software rasterisers such as lavapipe, so callers can warn about speed.
    pub fn is_cpu(&self) -> bool {
        self.adapter_info
            .as_ref()
            .is_some_and(|i| i.device_type == wgpu::DeviceType::Cpu)
    }

    /// Blocks until every submitted command has finished; surfaces device loss as an error.
    ///
    /// On GL, wgpu's "indefinite" wait gives up after about 2.1 s (the GL fence wait is capped
    /// at `i32::MAX` ns) and reports a timeout; work on a CPU driver can take far longer, so a
    /// timeout only means "not yet". Each round takes the gate anew, so other threads sharing
    /// the device take turns between rounds.
    pub fn wait(&self) -> Result<()> {
        let mut rounds = 0u64;
        loop {
            self.check()?;
            let polled = {
                let _turn = self.gate.enter();
                self.device.poll(wgpu::PollType::wait_indefinitely())
            };
            // A poll that fails because the device died reports the loss, not the poll.
            self.check()?;
            match polled {
                Ok(_) => return Ok(()),
                Err(wgpu::PollError::Timeout) => {
                    rounds += 1;
                    if rounds.is_multiple_of(30) {
                        log::info!("still waiting for the GPU queue (round {rounds})");
                    }
                }
                Err(e) => {
                    return Err(Error::Gpu {
                        context: "waiting for the queue".into(),
                        message: e.to_string(),
                    })
                }
            }
        }
    }

    /// Holds this device for the caller alone until the guard drops. On GL, an app that shares
    /// its device with the library and calls wgpu from other threads takes this first, as the
    /// library does; elsewhere it costs nothing and excludes nobody.
    pub fn exclusive(&self) -> GateGuard<'_> {
        self.gate.enter()
    }

    /// Wraps a wgpu resource the caller made on this device so that dropping it also waits
    /// its turn (destroying a GL buffer or texture takes the GL context).
    pub fn gated<T>(&self, resource: T) -> Gated<T> {
        Gated::new(resource, &self.gate)
    }

    /// Writes the driver's pipeline cache to disk, if the adapter keeps one.
    pub fn save_pipeline_cache(&self) {
        self.pipelines.save();
    }

    /// A file in the cache folder for what holds for this adapter and driver only (`stem`
    /// says what): `<cache>/<stem>-<backend>-<adapter>-<driver>.json`. `None` for a wrapped
    /// device or where there is no cache folder.
    pub fn adapter_cache_file(&self, stem: &str) -> Option<PathBuf> {
        let info = self.adapter_info.as_ref()?;
        let id = format!(
            "{stem}-{:?}-{}-{}-{}",
            info.backend, info.name, info.driver, info.driver_info
        );
        let safe: String = id
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
                _ => '_',
            })
            .take(180)
            .collect();
        Some(self.cache_dir.as_ref()?.join(safe + ".json"))
    }
}

async fn choose_adapter(
    instance: &wgpu::Instance,
    backends: wgpu::Backends,
    name_filter: Option<&str>,
    index: Option<usize>,
) -> Option<wgpu::Adapter> {
    let mut adapters = instance.enumerate_adapters(backends).await;
    if let Some(filter) = name_filter {
        let filter = filter.to_lowercase();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&filter));
    }
    if let Some(i) = index {
        return (i < adapters.len()).then(|| adapters.swap_remove(i));
    }
    // Prefer real GPUs over software ones, and discrete over integrated.
    adapters.sort_by_key(|a| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    });
    adapters.into_iter().next()
}

/// The platform's per-user cache directory: `$XDG_CACHE_HOME` or `~/.cache` on Linux,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows.
fn default_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|base| base.join("alexnet-wgpu"))
}

/// `vulkan, metal, …` for messages, without wgpu's internal no-op backend.
pub fn backend_names(backends: wgpu::Backends) -> String {
    [
        (wgpu::Backends::VULKAN, "vulkan"),
        (wgpu::Backends::METAL, "metal"),
        (wgpu::Backends::DX12, "dx12"),
        (wgpu::Backends::GL, "gl"),
        (wgpu::Backends::BROWSER_WEBGPU, "webgpu"),
    ]
    .iter()
    .filter(|(b, _)| backends.contains(*b))
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(", ")
}

/// Every adapter wgpu finds on the given backends, for `alexnet devices`.
pub fn list_adapters(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    pollster::block_on(new_instance(backends).enumerate_adapters(backends))
}

/// A headless instance on `backends`, honouring wgpu's debugging environment variables.
fn new_instance(backends: wgpu::Backends) -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        flags: wgpu::InstanceFlags::from_build_config().with_env(),
        backend_options: wgpu::BackendOptions::from_env_or_default(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}

/// Shared ownership for callers (tests, apps) that hand one `Gpu` to several owners.
pub type SharedGpu = Arc<Gpu>;
