//! Per-adapter autotuning: the first time a convolution or linear shape is planned on a device
//! whose policy asks for it, each phase (forward, input gradient, weight gradient) is timed on
//! scratch tensors with the plain and the tiled kernels ([`Autotune::Quick`]), and with
//! [`Autotune::Full`] also with the GEMM kernels and tile shapes worth trying on the adapter
//! ([`GemmChoice::candidates`]), within a time budget per shape. A candidate replaces the
//! policy's choice only when clearly (20%) faster. The choice is kept on the device and on
//! disk per adapter and driver, so later runs plan at once. Which kernels win depends on the
//! adapter: on lavapipe the plain kernels beat the tiled ones for a few shapes. Under mixed
//! precision, which only the tiled kernels compute, `full` times the GEMM kernels alone: the
//! matrix units' against the SIMT ones (on Mesa 26's lavapipe, whose emulated matrix units
//! run slower, it picks the SIMT ones).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ops::{GemmChoice, KernelPolicy, Kernels, Precision};
use crate::runtime::{Dispatch, Gpu, Program};

/// Whether plans time the kernel families per shape before choosing (`--autotune`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Autotune {
    /// The policy's kernels everywhere.
    #[default]
    Off,
    /// Plain against tiled per shape and phase: a warm-up and five timed runs of each (a few
    /// seconds for AlexNet on lavapipe, well under one on a GPU), remembered per adapter.
    Quick,
    /// As quick, then the tiled kernels with each GEMM kernel and tile shape worth trying on
    /// the adapter, until the shape's budget ([`FULL_BUDGET`]) is spent.
    Full,
}

impl std::str::FromStr for Autotune {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "off" => Ok(Self::Off),
            "quick" => Ok(Self::Quick),
            "full" => Ok(Self::Full),
            _ => Err(Error::Config(format!(
                "--autotune '{s}': expected 'off', 'quick' or 'full'"
            ))),
        }
    }
}

/// What autotuning chose for one shape and phase: the kernel family and, for the tiled one
/// under `--autotune full`, the GEMM kernel and tiles (`None`: the policy's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuned {
    pub kernels: Kernels,
    pub gemm: Option<GemmChoice>,
}

impl Tuned {
    fn family(kernels: Kernels) -> Self {
        Self {
            kernels,
            gemm: None,
        }
    }
}

impl std::fmt::Display for Tuned {
    /// `plain`, `tiled`, or `tiled <GEMM choice>` (the file's format).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.kernels, self.gemm) {
            (Kernels::Plain, _) => write!(f, "plain"),
            (Kernels::Tiled, None) => write!(f, "tiled"),
            (Kernels::Tiled, Some(gemm)) => write!(f, "tiled {gemm}"),
        }
    }
}

impl std::str::FromStr for Tuned {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once(' ') {
            None if s == "plain" => Ok(Self::family(Kernels::Plain)),
            None if s == "tiled" => Ok(Self::family(Kernels::Tiled)),
            Some(("tiled", gemm)) => Ok(Self {
                kernels: Kernels::Tiled,
                gemm: Some(gemm.parse()?),
            }),
            _ => Err(Error::Config(format!(
                "autotune choice '{s}': expected plain, tiled or tiled <kernel> <tiles>"
            ))),
        }
    }
}

/// The file's format: kernels by shape key.
#[derive(Default, Serialize, Deserialize)]
struct TunedFile {
    kernels: HashMap<String, String>,
}

/// The kernels chosen so far on one device, by shape key (a device setting).
#[derive(Clone, Default)]
pub struct TunedKernels(Arc<Mutex<HashMap<String, Tuned>>>);

impl TunedKernels {
    /// The device's table, read from its adapter's file the first time.
    pub fn of(gpu: &Gpu) -> Self {
        if let Some(table) = gpu.setting::<Self>() {
            return table;
        }
        let table = Self::default();
        if let Some(saved) = file(gpu).and_then(|f| std::fs::read(f).ok()) {
            match serde_json::from_slice::<TunedFile>(&saved) {
                Ok(saved) => {
                    let mut map = table.lock();
                    // An entry this version cannot read is tuned again.
                    for (key, choice) in saved.kernels {
                        if let Ok(choice) = choice.parse::<Tuned>() {
                            map.insert(key, choice);
                        }
                    }
                }
                Err(e) => log::warn!(
                    "ignoring the autotune file of '{}': {e}",
                    gpu.adapter_name()
                ),
            }
        }
        gpu.set_setting(table.clone());
        table
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tuned>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The choice for `key`, if it was tuned.
    pub fn get(&self, key: &str) -> Option<Tuned> {
        self.lock().get(key).copied()
    }

    /// Every tuned key and its choice, sorted (reports, tests).
    pub fn entries(&self) -> Vec<(String, Tuned)> {
        let mut all: Vec<_> = self.lock().iter().map(|(k, v)| (k.clone(), *v)).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn save(&self, gpu: &Gpu) {
        let Some(path) = file(gpu) else { return };
        let saved = TunedFile {
            kernels: self
                .lock()
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        };
        let written = serde_json::to_vec_pretty(&saved)
            .map_err(|e| Error::Config(e.to_string()))
            .and_then(|bytes| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| Error::File {
                        path: dir.display().to_string(),
                        message: e.to_string(),
                    })?;
                }
                crate::atomic_file::write(&path, &bytes)
            });
        // Losing the file only costs the next run its tuning time.
        if let Err(e) = written {
            log::warn!(
                "could not save the autotune results to {}: {e}",
                path.display()
            );
        }
    }
}

fn file(gpu: &Gpu) -> Option<std::path::PathBuf> {
    gpu.adapter_cache_file("kernels")
}

/// The kernels for the shape and phase `key` on `gpu`, a GEMM of `m` rows per group: the
/// policy's unless it autotunes; then the tuned choice, timing each candidate with `run_with`
/// (which prepares the phase's dispatches on scratch tensors; the ops it calls see the
/// candidate being timed) the first time the key is seen.
pub(crate) fn choose(
    gpu: &Gpu,
    key: &str,
    m: usize,
    run_with: impl Fn() -> Result<Vec<Dispatch>>,
) -> Result<Tuned> {
    let policy = KernelPolicy::of(gpu);
    if let Some(kernels) = policy.fixed_kernels() {
        return Ok(Tuned::family(kernels));
    }
    // Mixed precision lives in the tiled kernels alone, so it chooses among their GEMMs (the
    // matrix units' included), under keys of its own.
    let mixed = policy.precision == Precision::Mixed;
    let key = &if mixed {
        format!("{key} mixed")
    } else {
        key.to_string()
    };
    let runs = |choice: &Tuned| !mixed || choice.kernels == Kernels::Tiled;
    let table = TunedKernels::of(gpu);
    if let Some(choice) = table.get(key).filter(runs) {
        return Ok(choice);
    }
    // The policy's family first, then (in f32) the other one.
    let mut candidates = if mixed {
        vec![Tuned::family(Kernels::Tiled)]
    } else {
        let other = match policy.kernels {
            Kernels::Plain => Kernels::Tiled,
            Kernels::Tiled => Kernels::Plain,
        };
        vec![Tuned::family(policy.kernels), Tuned::family(other)]
    };
    let families = candidates.len();
    if policy.autotune == Autotune::Full {
        candidates.extend(
            GemmChoice::candidates(gpu, m)
                .into_iter()
                .map(|gemm| Tuned {
                    kernels: Kernels::Tiled,
                    gemm: Some(gemm),
                }),
        );
    }
    let started = Instant::now();
    let mut times = Vec::with_capacity(candidates.len());
    for (i, &candidate) in candidates.iter().enumerate() {
        // Past the budget, only the policy's choice and the other family are timed.
        if i >= families && started.elapsed() > FULL_BUDGET {
            log::info!("autotune {key}: budget spent after {i} candidates");
            break;
        }
        table.lock().insert(key.to_string(), candidate);
        let mut program = Program::new();
        program.extend(run_with()?);
        let time = time_program(gpu, &program)?;
        log::debug!(
            "autotune {key}: {candidate} {:.3} ms",
            time.as_secs_f64() * 1e3
        );
        times.push((time, candidate));
    }
    // Another candidate only when clearly faster: a layer timed alone is a noisy guess at
    // the layer in a step (on lavapipe, a plain choice that won alone made steps slower).
    let (default_time, _) = times[0];
    let (time, chosen) = times
        .iter()
        .copied()
        .filter(|(t, _)| t.as_secs_f64() < MARGIN * default_time.as_secs_f64())
        .min_by_key(|(t, _)| *t)
        .unwrap_or(times[0]);
    log::info!(
        "autotune {key}: {chosen} ({:.3} ms)",
        time.as_secs_f64() * 1e3
    );
    table.lock().insert(key.to_string(), chosen);
    table.save(gpu);
    Ok(chosen)
}

/// How long `--autotune full` keeps timing candidates for one shape and phase.
const FULL_BUDGET: Duration = Duration::from_secs(3);

/// How much faster another candidate must be, timed alone, to replace the policy's choice.
const MARGIN: f64 = 0.8;

/// The fastest of five runs of `program` after a warm-up (which compiles its pipelines).
fn time_program(gpu: &Gpu, program: &Program) -> Result<Duration> {
    program.run(gpu)?;
    gpu.wait()?;
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        program.run(gpu)?;
        gpu.wait()?;
        best = best.min(started.elapsed());
    }
    Ok(best)
}
