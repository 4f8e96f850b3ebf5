//! Starting from pretrained weights: which tensors of a weight file a model takes, which it
//! re-initialises (a new head when the class count changes), and which parameters stay
//! frozen. Everything here is checked on the host, before any GPU work.

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::alexnet::{AlexNet, AlexNetConfig};
use crate::model::weights::{self, HostTensors, OPTIMIZER_PREFIX};
use crate::runtime::Gpu;

/// The last Linear: the layer a new class count replaces.
pub const HEAD: &str = "classifier.6";

/// A tensor of the model that keeps its fresh initialisation instead of the file's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reinitialized {
    pub name: String,
    pub model_shape: Vec<usize>,
    pub file_shape: Vec<usize>,
}

impl std::fmt::Display for Reinitialized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:?} (the file's is {:?})",
            self.name, self.model_shape, self.file_shape
        )
    }
}

/// Every state tensor of `config` by name, with its shape.
fn state_shapes(config: &AlexNetConfig) -> Result<Vec<(String, Vec<usize>)>> {
    let mut shapes = Vec::new();
    for layer in config.layers()? {
        shapes.extend(layer.parameter_shapes());
        shapes.extend(layer.buffer_shapes().into_iter().map(|(n, s, _)| (n, s)));
    }
    Ok(shapes)
}

/// Which tensors of `tensors` (read from `path`) a model of `config` takes: all of them,
/// except the head's when the class count differs, which are returned to be re-initialised.
///
/// # Errors
/// [`Error::Safetensors`] naming the file and the tensor for a tensor the model lacks, one
/// the file lacks, or any other shape mismatch (with both shapes).
pub fn match_pretrained(
    path: &Path,
    tensors: &HostTensors,
    config: &AlexNetConfig,
) -> Result<Vec<Reinitialized>> {
    let fail = |message: String| Error::Safetensors {
        path: path.display().to_string(),
        message,
    };
    let shapes = state_shapes(config)?;
    let mut extra: Vec<&String> = tensors
        .keys()
        .filter(|k| !k.starts_with(OPTIMIZER_PREFIX) && !shapes.iter().any(|(n, _)| n == *k))
        .collect();
    if !extra.is_empty() {
        extra.sort();
        return Err(fail(format!(
            "tensors {extra:?} are not parameters of a {:?} AlexNet with these widths",
            config.arch
        )));
    }
    let mut reinitialized = Vec::new();
    for (name, shape) in shapes {
        let (file_shape, _) = tensors
            .get(&name)
            .ok_or_else(|| fail(format!("missing tensor '{name}' (shape {shape:?})")))?;
        // PyTorch writes a 0-d counter where we keep one element.
        let scalar = file_shape.is_empty() && shape == [1];
        if *file_shape == shape || scalar {
            continue;
        }
        let new_head = name.starts_with(&format!("{HEAD}."))
            && file_shape.first() != Some(&config.classes)
            && file_shape.get(1..) == shape.get(1..);
        if !new_head {
            return Err(fail(format!(
                "tensor '{name}' has shape {file_shape:?} in the file but {shape:?} in the model"
            )));
        }
        reinitialized.push(Reinitialized {
            name,
            model_shape: shape,
            file_shape: file_shape.clone(),
        });
    }
    Ok(reinitialized)
}

impl AlexNetConfig {
    /// The names of the parameters `patterns` freeze, in model order. A pattern is a
    /// parameter's PyTorch name (`features.0.weight`) or a prefix of names that ends where a
    /// name's part does (`features`, `classifier.1`).
    ///
    /// # Errors
    /// [`Error::Config`] naming a pattern that matches nothing (with the names it could be),
    /// and when every parameter would be frozen (nothing would train).
    pub fn frozen_parameters(&self, patterns: &[String]) -> Result<Vec<String>> {
        let names: Vec<String> = self
            .layers()?
            .iter()
            .flat_map(|l| l.parameter_shapes().into_iter().map(|(n, _)| n))
            .collect();
        let matches = |pattern: &str, name: &str| {
            name == pattern
                || name
                    .strip_prefix(pattern)
                    .is_some_and(|rest| rest.starts_with('.'))
        };
        for pattern in patterns {
            if !names.iter().any(|n| matches(pattern, n)) {
                let mut layers: Vec<&str> = names
                    .iter()
                    .filter_map(|n| n.rsplit_once('.').map(|(layer, _)| layer))
                    .collect();
                layers.dedup();
                return Err(Error::Config(format!(
                    "--freeze '{pattern}': no parameter is named so or starts with it; expected \
                     features, classifier, a layer ({}) or a parameter name such as {}.weight",
                    layers.join(", "),
                    layers[0]
                )));
            }
        }
        let frozen: Vec<String> = names
            .iter()
            .filter(|n| patterns.iter().any(|p| matches(p, n)))
            .cloned()
            .collect();
        if !frozen.is_empty() && frozen.len() == names.len() {
            return Err(Error::Config(format!(
                "--freeze {}: every parameter would be frozen and nothing would train; leave at \
                 least the head ({HEAD}) trainable",
                patterns.join(",")
            )));
        }
        Ok(frozen)
    }
}

impl AlexNet {
    /// Loads every tensor of the weight file at `path` whose name and shape match, leaving
    /// the head as initialised when the file has another class count; returns the tensors
    /// left so. Errors as [`match_pretrained`].
    pub fn load_pretrained(&self, gpu: &Gpu, path: &Path) -> Result<Vec<Reinitialized>> {
        let bytes = weights::read_file(path)?;
        let (tensors, _) = weights::parse(path, &bytes)?;
        let reinitialized = match_pretrained(path, &tensors, &self.config)?;
        for (name, value) in self.state_tensors() {
            if reinitialized.iter().all(|r| r.name != name) {
                value.write_f32(gpu, &tensors[&name].1)?;
            }
        }
        Ok(reinitialized)
    }

    /// Freezes the parameters `patterns` name (see [`AlexNetConfig::frozen_parameters`]).
    /// Call before planning: plans and optimizers read the flags when they are built.
    pub fn freeze(&mut self, patterns: &[String]) -> Result<()> {
        let frozen = self.config.frozen_parameters(patterns)?;
        for p in &mut self.params {
            p.frozen = frozen.contains(&p.name);
        }
        Ok(())
    }

    /// True when `layer` has a parameter that trains.
    pub fn layer_trains(&self, layer: &str) -> bool {
        let prefix = format!("{layer}.");
        self.params
            .iter()
            .any(|p| !p.frozen && p.name.starts_with(&prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_name_parts() {
        let c = AlexNetConfig::torchvision(7).scaled(0.125);
        let f = c
            .frozen_parameters(&["features".into(), "classifier.1".into()])
            .unwrap();
        assert_eq!(f.len(), 12);
        assert!(f.contains(&"classifier.1.bias".to_string()));
        assert!(!f.iter().any(|n| n.starts_with("classifier.4")));
        let err = c.frozen_parameters(&["feature".into()]).unwrap_err();
        assert!(err.to_string().contains("--freeze 'feature'"), "{err}");
        let err = c
            .frozen_parameters(&["features".into(), "classifier".into()])
            .unwrap_err();
        assert!(err.to_string().contains("nothing would train"), "{err}");
    }
}
