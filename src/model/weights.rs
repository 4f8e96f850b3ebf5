//! Weights in and out as safetensors with PyTorch `state_dict` names, so a file moves between
//! this project and PyTorch both ways (`safetensors.torch.load_file` / `save_file`).
//! Files are written atomically: temp file, fsync, rename.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use crate::error::{Error, Result};
use crate::model::alexnet::{AlexNet, AlexNetConfig};
use crate::runtime::{Gpu, Tensor};

/// Prefix of optimizer-state tensors inside a checkpoint; weight loading skips them.
pub const OPTIMIZER_PREFIX: &str = "optimizer.";

/// Tensors by name, each as (shape, values converted to f32).
pub type HostTensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Reads a safetensors file, with errors that name it.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let fail = |message: String| Error::File {
        path: path.display().to_string(),
        message,
    };
    if path.is_dir() {
        return Err(fail("is a folder; expected a .safetensors file".into()));
    }
    std::fs::read(path).map_err(|e| fail(e.to_string()))
}

/// The tensors of a safetensors buffer as f32 (F32, F64, F16 and BF16 are converted).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<(HostTensors, HashMap<String, String>)> {
    let fail = |message: String| Error::Safetensors {
        path: path.display().to_string(),
        message,
    };
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| fail(format!("not a valid safetensors file ({e})")))?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| fail(e.to_string()))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let values = to_f32(&view).ok_or_else(|| {
            fail(format!(
                "tensor '{name}' has dtype {:?}; expected F32 (F64, F16 and BF16 are converted)",
                view.dtype()
            ))
        })?;
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    Ok((tensors, header.metadata().clone().unwrap_or_default()))
}

fn to_f32(view: &TensorView<'_>) -> Option<Vec<f32>> {
    let data = view.data();
    Some(match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        // PyTorch's `num_batches_tracked` counters.
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32)
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
            .collect(),
        _ => return None,
    })
}

/// IEEE 754 binary16 to f32, subnormals and infinities included.
fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        _ => (1.0 + frac / 1024.0) * 2f32.powi(exp - 15),
    }
}

impl AlexNetConfig {
    /// Reads the architecture off a weight file's tensors: which variant (torchvision's has a
    /// convolution at `features.3`, the paper's a pool), the channel counts, the FC width and
    /// the number of classes.
    pub fn from_weights(path: &Path, tensors: &HostTensors) -> Result<Self> {
        let shape = |name: &str| {
            tensors
                .get(name)
                .map(|(s, _)| s.clone())
                .ok_or_else(|| Error::Safetensors {
                    path: path.display().to_string(),
                    message: format!("missing tensor '{name}': not an AlexNet weight file?"),
                })
        };
        let torchvision = tensors.contains_key("features.3.weight");
        let convs: [&str; 5] = if torchvision {
            [
                "features.0",
                "features.3",
                "features.6",
                "features.8",
                "features.10",
            ]
        } else {
            [
                "features.0",
                "features.4",
                "features.8",
                "features.10",
                "features.12",
            ]
        };
        let mut channels = [0; 5];
        for (c, name) in channels.iter_mut().zip(convs) {
            *c = shape(&format!("{name}.weight"))?[0];
        }
        let base = if torchvision {
            AlexNetConfig::torchvision(1)
        } else {
            AlexNetConfig::original(1)
        };
        Ok(AlexNetConfig {
            channels,
            fc_width: shape("classifier.1.weight")?[0],
            classes: shape("classifier.6.weight")?[0],
            ..base
        })
    }
}

impl AlexNet {
    /// Loads every parameter (and buffer: BatchNorm's running statistics) from a safetensors
    /// file with PyTorch names. A missing, extra or
    /// mis-shaped tensor is an error naming it (and both shapes); optimizer state inside a
    /// checkpoint is ignored.
    pub fn load_weights(&self, gpu: &Gpu, path: &Path) -> Result<()> {
        let bytes = read_file(path)?;
        let (tensors, _) = parse(path, &bytes)?;
        self.load_tensors(gpu, path, &tensors)
    }

    pub(crate) fn load_tensors(&self, gpu: &Gpu, path: &Path, tensors: &HostTensors) -> Result<()> {
        let fail = |message: String| Error::Safetensors {
            path: path.display().to_string(),
            message,
        };
        let state = self.state_tensors();
        let mut extra: Vec<&String> = tensors
            .keys()
            .filter(|k| !k.starts_with(OPTIMIZER_PREFIX) && !state.iter().any(|(n, _)| n == *k))
            .collect();
        if !extra.is_empty() {
            extra.sort();
            return Err(fail(format!(
                "tensors {extra:?} are not parameters of this model ({:?}, {} classes); is the file for another architecture?",
                self.config.arch, self.config.classes
            )));
        }
        for (name, value) in state {
            let (shape, values) = tensors.get(&name).ok_or_else(|| {
                fail(format!(
                    "missing tensor '{name}' (shape {:?})",
                    value.shape()
                ))
            })?;
            // PyTorch writes a 0-d counter where we keep one element.
            let scalar = shape.is_empty() && value.shape() == [1];
            if shape.as_slice() != value.shape() && !scalar {
                return Err(fail(format!(
                    "tensor '{name}' has shape {shape:?} in the file but {:?} in the model",
                    value.shape()
                )));
            }
            value.write_f32(gpu, values)?;
        }
        Ok(())
    }

    /// Saves every parameter and buffer under its PyTorch name.
    pub fn save_weights(&self, gpu: &Gpu, path: &Path) -> Result<()> {
        write_tensors(gpu, path, &self.state_tensors(), HashMap::new())
    }
}

/// Writes GPU tensors to a safetensors file atomically (temp file, fsync, rename), so a crash
/// at any instant leaves either the old file or the new one, never a torn one.
pub fn write_tensors(
    gpu: &Gpu,
    path: &Path,
    tensors: &[(String, &Tensor)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let fail = |message: String| Error::File {
        path: path.display().to_string(),
        message,
    };
    let host: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            Ok((
                name.clone(),
                t.shape().to_vec(),
                bytemuck::cast_slice(&t.read_f32(gpu)?).to_vec(),
            ))
        })
        .collect::<Result<_>>()?;
    let views = host
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| fail(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = if metadata.is_empty() {
        None
    } else {
        Some(metadata)
    };
    let bytes = safetensors::serialize(views, meta).map_err(|e| fail(e.to_string()))?;
    crate::atomic_file::write(path, &bytes)
}
