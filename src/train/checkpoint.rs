//! Checkpoints: one safetensors file holding the weights (PyTorch names, so it loads as a
//! plain weight file too), the optimizer state (`optimizer.<param>.<state>`), and in its
//! metadata the position (epoch, batch, step), the seed, the schedule's state and the whole
//! configuration. All randomness (data order, augmentation, dropout) is a pure function of
//! (seed, epoch, position, step), so the seed and the position are the RNG state.
//! Written atomically: a crash at any instant leaves the previous checkpoint intact.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::weights::{self, OPTIMIZER_PREFIX};
use crate::model::AlexNet;
use crate::runtime::{Gpu, Tensor};
use crate::train::optim::Optimizer;

const METADATA_KEY: &str = "alexnet_wgpu.checkpoint";

/// Everything besides tensors that a resumed run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Epoch (0-based) the run is in.
    pub epoch: usize,
    /// Next batch to train within that epoch (0 at an epoch boundary).
    pub batch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// Partial sums of the current epoch (loss sum, top-1 hits, samples) so its metrics
    /// continue across a resume.
    pub epoch_loss_sum: f64,
    pub epoch_top1: f64,
    pub epoch_samples: f64,
    /// Factor on the scheduled learning rate; each NaN rollback multiplies it by 0.1.
    /// Checkpoints written before it existed read as 1.
    #[serde(default = "one")]
    pub lr_scale: f64,
    /// The training configuration, as the trainer serialises it.
    pub config: serde_json::Value,
}

fn one() -> f64 {
    1.0
}

/// Saves weights, optimizer state and `state` to `path` atomically.
pub fn save(
    gpu: &Gpu,
    path: &Path,
    model: &AlexNet,
    optimizer: &Optimizer,
    state: &CheckpointState,
) -> Result<()> {
    let mut tensors: Vec<(String, &Tensor)> = model.state_tensors();
    for s in &optimizer.state {
        for (name, t) in &s.tensors {
            tensors.push((format!("{OPTIMIZER_PREFIX}{}.{name}", s.param), t));
        }
    }
    let json = serde_json::to_string(state).map_err(|e| Error::Config(e.to_string()))?;
    let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
    weights::write_tensors(gpu, path, &tensors, metadata)
}

/// Loads a checkpoint into `model` and `optimizer` (which must have the same architecture
/// and optimizer kind) and returns its state.
pub fn load(
    gpu: &Gpu,
    path: &Path,
    model: &AlexNet,
    optimizer: &mut Optimizer,
) -> Result<CheckpointState> {
    let fail = |message: String| Error::Safetensors {
        path: path.display().to_string(),
        message,
    };
    let bytes = weights::read_file(path)?;
    let (tensors, metadata) = weights::parse(path, &bytes)?;
    let json = metadata.get(METADATA_KEY).ok_or_else(|| {
        fail("has no training state: it is a weights file, not a checkpoint".into())
    })?;
    let state: CheckpointState =
        serde_json::from_str(json).map_err(|e| fail(format!("training state: {e}")))?;
    model.load_tensors(gpu, path, &tensors)?;
    for s in &optimizer.state {
        for (name, t) in &s.tensors {
            let key = format!("{OPTIMIZER_PREFIX}{}.{name}", s.param);
            let (shape, values) = tensors.get(&key).ok_or_else(|| {
                fail(format!(
                    "missing optimizer state '{key}': was the checkpoint written with another optimizer than {:?}?",
                    optimizer.config.kind
                ))
            })?;
            if shape.as_slice() != t.shape() {
                return Err(fail(format!(
                    "'{key}' has shape {shape:?}, the model needs {:?}",
                    t.shape()
                )));
            }
            t.write_f32(gpu, values)?;
        }
    }
    optimizer.step = state.step;
    Ok(state)
}
