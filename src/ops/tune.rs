//! Per-adapter autotuning: the first time a convolution or linear shape is planned on a device
//! whose policy asks for it ([`Autotune::Quick`]), each phase (forward, input gradient,
//! weight gradient) is timed with the plain and the tiled kernels on scratch tensors; the
//! other family replaces the policy's only when clearly (20%) faster. The choice is kept on
//! the device and on disk per adapter and driver, so later runs plan at once. Which kernels
//! win depends on the adapter: on lavapipe the plain kernels beat the tiled ones for a few
//! shapes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ops::{KernelPolicy, Kernels};
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
}

impl std::str::FromStr for Autotune {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "off" => Ok(Self::Off),
            "quick" => Ok(Self::Quick),
            _ => Err(Error::Config(format!(
                "--autotune '{s}': expected 'off' or 'quick'"
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
pub struct TunedKernels(Arc<Mutex<HashMap<String, Kernels>>>);

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
                    for (key, kernels) in saved.kernels {
                        let kernels = match kernels.as_str() {
                            "plain" => Kernels::Plain,
                            "tiled" => Kernels::Tiled,
                            _ => continue,
                        };
                        map.insert(key, kernels);
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Kernels>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kernels chosen for `key`, if it was tuned.
    pub fn get(&self, key: &str) -> Option<Kernels> {
        self.lock().get(key).copied()
    }

    /// Every tuned key and its kernels, sorted (reports, tests).
    pub fn entries(&self) -> Vec<(String, Kernels)> {
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
                .map(|(k, v)| {
                    let name = if *v == Kernels::Plain {
                        "plain"
                    } else {
                        "tiled"
                    };
                    (k.clone(), name.to_string())
                })
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

/// The kernels for the shape and phase `key` on `gpu`: the policy's unless it autotunes;
/// then the tuned choice, timing each family with `run_with` (which prepares the phase's
/// dispatches on scratch tensors; the ops it calls see the candidate being timed) the first
/// time the key is seen.
pub(crate) fn kernels_for(
    gpu: &Gpu,
    key: &str,
    run_with: impl Fn() -> Result<Vec<Dispatch>>,
) -> Result<Kernels> {
    let policy = KernelPolicy::of(gpu);
    if let Some(kernels) = policy.fixed_kernels() {
        return Ok(kernels);
    }
    let table = TunedKernels::of(gpu);
    if let Some(kernels) = table.get(key) {
        return Ok(kernels);
    }
    let default = policy.kernels;
    let other = match default {
        Kernels::Plain => Kernels::Tiled,
        Kernels::Tiled => Kernels::Plain,
    };
    let mut times = Vec::with_capacity(2);
    for candidate in [default, other] {
        table.lock().insert(key.to_string(), candidate);
        let mut program = Program::new();
        program.extend(run_with()?);
        let time = time_program(gpu, &program)?;
        log::debug!(
            "autotune {key}: {candidate:?} {:.3} ms",
            time.as_secs_f64() * 1e3
        );
        times.push(time);
    }
    // The other family only when clearly faster: a layer timed alone is a noisy guess at
    // the layer in a step (on lavapipe, a plain choice that won alone made steps slower).
    let (time, chosen) = if times[1].as_secs_f64() < MARGIN * times[0].as_secs_f64() {
        (times[1], other)
    } else {
        (times[0], default)
    };
    log::info!(
        "autotune {key}: {chosen:?} ({:.3} ms)",
        time.as_secs_f64() * 1e3
    );
    table.lock().insert(key.to_string(), chosen);
    table.save(gpu);
    Ok(chosen)
}

/// How much faster the other kernel family must be, timed alone, to replace the policy's.
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
