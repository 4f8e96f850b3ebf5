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
use crate::train::trainer::TrainConfig;

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

/// The training state in a checkpoint's safetensors metadata.
fn parse_state(path: &Path, metadata: &HashMap<String, String>) -> Result<CheckpointState> {
    let fail = |message: String| Error::Safetensors {
        path: path.display().to_string(),
        message,
    };
    let json = metadata.get(METADATA_KEY).ok_or_else(|| {
        fail("has no training state: it is a weights file, not a checkpoint".into())
    })?;
    serde_json::from_str(json).map_err(|e| fail(format!("training state: {e}")))
}

/// The training configuration a checkpoint was written with, read without a GPU.
pub fn read_config(path: &Path) -> Result<TrainConfig> {
    let bytes = weights::read_file(path)?;
    let (_, metadata) = weights::parse(path, &bytes)?;
    config_of(path, &parse_state(path, &metadata)?)
}

/// The `TrainConfig` inside a checkpoint's state (`config.train`).
pub fn config_of(path: &Path, state: &CheckpointState) -> Result<TrainConfig> {
    serde_json::from_value(state.config["train"].clone()).map_err(|e| Error::Safetensors {
        path: path.display().to_string(),
        message: format!("training configuration: {e}"),
    })
}

/// The configuration to resume `path` with: the checkpoint's (the model and optimizer must
/// match it), with only the epoch count (never fewer than saved), output folder, worker count,
/// progress display and step limit taken from `requested`.
///
/// # Errors
/// [`Error::Config`] when `requested` has another class count (the data changed).
pub fn resumed_config(path: &Path, requested: TrainConfig) -> Result<TrainConfig> {
    let mut saved = read_config(path)?;
    if saved.model.classes != requested.model.classes {
        return Err(Error::Config(format!(
            "{}: the checkpoint has {} classes but the data has {}",
            path.display(),
            saved.model.classes,
            requested.model.classes
        )));
    }
    saved.epochs = requested.epochs.max(saved.epochs);
    saved.out_dir = requested.out_dir;
    saved.workers = requested.workers;
    saved.show_progress = requested.show_progress;
    saved.max_steps = requested.max_steps;
    Ok(saved)
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
    let state = parse_state(path, &metadata)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint's state exactly as the format before `TrainOptions` wrote it (its
    /// `on_bad_sample` capitalised, no fields added since).
    const EARLIER_FORMAT: &str = r#"{"epoch":1,"batch":3,"step":9,"epoch_loss_sum":4.5,
        "epoch_top1":2.0,"epoch_samples":24.0,"lr_scale":1.0,"config":{"train":{
        "model":{"arch":"original","channels":[12,32,48,48,32],"fc_width":512,"classes":10,
        "dropout":0.5,"lrn":{"size":5,"alpha":0.0001,"beta":0.75,"k":2.0},
        "activation":"relu","pool":"overlapping","norm":null},
        "init":"kaiming","image_size":64,"epochs":2,"batch_size":16,
        "optimizer":{"kind":"adam","lr":0.001,"momentum":0.9,"weight_decay":0.0005,
        "beta1":0.9,"beta2":0.999,"eps":1e-8},
        "schedule":{"kind":"cosine","epochs":2,"min_lr":0.0},
        "augment":{"image_size":64,"resize":73,"train":true,"flip":true,"lighting_std":0.1,
        "color_jitter":null,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]},
        "seed":3,"workers":2,"on_bad_sample":"Stop","on_nan":"stop","log_every":1,
        "out_dir":"runs/x","max_steps":null,"show_progress":false},
        "scheduler":{"schedule":{"kind":"cosine","epochs":2,"min_lr":0.0},"base_lr":0.001,
        "plateau_lr":0.001,"best_error":1.7976931348623157e308,"bad_epochs":0}}}"#;

    #[test]
    fn checkpoints_of_the_earlier_format_still_read() {
        let path = Path::new("old.safetensors");
        let metadata = HashMap::from([(METADATA_KEY.to_string(), EARLIER_FORMAT.to_string())]);
        let state = parse_state(path, &metadata).unwrap();
        assert_eq!((state.epoch, state.batch, state.step), (1, 3, 9));
        let config = config_of(path, &state).unwrap();
        assert_eq!(config.model.channels, [12, 32, 48, 48, 32]);
        assert_eq!(config.on_bad_sample, crate::data::OnBadSample::Stop);
        assert_eq!(config.batch_size, 16);
        // Written again, it reads back the same.
        let again: TrainConfig =
            serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
        assert_eq!(again, config);
    }
}
