//! The per-layer table `alexnet info` prints: what each layer is, its output shape, its
//! parameters and its multiply-adds per image.

use crate::error::Result;
use crate::model::alexnet::AlexNetConfig;
use crate::model::layers::LayerKind;
use crate::ops::activation::Nonlinearity;

pub struct LayerRow {
    pub name: String,
    pub kind: String,
    pub detail: String,
    /// Per-image output shape (no batch dimension).
    pub output: Vec<usize>,
    pub parameters: usize,
    pub multiply_adds: u64,
}

/// One row per layer for an `image_size`×`image_size` input.
pub fn summarize(config: &AlexNetConfig, image_size: usize) -> Result<Vec<LayerRow>> {
    let mut shape = vec![1, 3, image_size, image_size];
    let mut rows = Vec::new();
    for layer in config.layers()? {
        let output = layer.output_shape(&shape)?;
        let (kind, detail) = match &layer.kind {
            LayerKind::Conv(c) => (
                "Conv2d",
                format!(
                    "{0}x{0}/{1} pad {2} groups {3}",
                    c.kernel, c.stride, c.padding, c.groups
                ),
            ),
            LayerKind::Relu => ("ReLU", String::new()),
            LayerKind::Nonlinearity(f) => (
                f.torch_name(),
                match f {
                    Nonlinearity::LeakyRelu { slope } => format!("slope {slope}"),
                    Nonlinearity::Elu { alpha } => format!("alpha {alpha}"),
                    Nonlinearity::Sigmoid | Nonlinearity::Tanh => String::new(),
                },
            ),
            LayerKind::BatchNorm { channels, cfg } => (
                "BatchNorm2d",
                format!("{channels} eps {} momentum {}", cfg.eps, cfg.momentum),
            ),
            LayerKind::AvgPool(p) => (
                "AvgPool2d",
                format!("{0}x{0}/{1} pad {2}", p.kernel, p.stride, p.padding),
            ),
            LayerKind::Lrn(l) => (
                "LocalResponseNorm",
                format!("size {} a {} b {} k {}", l.size, l.alpha, l.beta, l.k),
            ),
            LayerKind::MaxPool(p) => ("MaxPool2d", format!("{0}x{0}/{1}", p.kernel, p.stride)),
            LayerKind::AdaptiveAvgPool { out_h, out_w } => {
                ("AdaptiveAvgPool2d", format!("{out_h}x{out_w}"))
            }
            LayerKind::Flatten => ("Flatten", String::new()),
            LayerKind::Dropout { p } => ("Dropout", format!("p {p}")),
            LayerKind::Linear {
                in_features,
                out_features,
            } => ("Linear", format!("{in_features} -> {out_features}")),
        };
        rows.push(LayerRow {
            name: layer.name.clone(),
            kind: kind.to_string(),
            detail,
            parameters: layer
                .parameter_shapes()
                .iter()
                .map(|(_, s)| s.iter().product::<usize>())
                .sum(),
            multiply_adds: layer.multiply_adds(&output),
            output: output[1..].to_vec(),
        });
        shape = output;
    }
    Ok(rows)
}

/// The table as text, with totals.
pub fn format_table(rows: &[LayerRow]) -> String {
    let mut out = format!(
        "{:<14} {:<18} {:<28} {:>16} {:>12} {:>15}\n",
        "layer", "type", "kernel/stride/pad/groups", "output", "parameters", "mult-adds"
    );
    for r in rows {
        let shape = r
            .output
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("x");
        out += &format!(
            "{:<14} {:<18} {:<28} {:>16} {:>12} {:>15}\n",
            r.name, r.kind, r.detail, shape, r.parameters, r.multiply_adds
        );
    }
    let params: usize = rows.iter().map(|r| r.parameters).sum();
    let macs: u64 = rows.iter().map(|r| r.multiply_adds).sum();
    out += &format!(
        "total: {params} parameters, {macs} multiply-adds per image forward ({:.2} GFLOP; a training step is about 3x)\n",
        2.0 * macs as f64 / 1e9
    );
    out
}

/// The smallest square input the architecture accepts (every pool window must fit).
pub fn smallest_input(config: &AlexNetConfig) -> Result<usize> {
    let layers = config.layers()?;
    (1..=1024)
        .find(|&s| {
            layers
                .iter()
                .try_fold(vec![1, 3, s, s], |shape, l| l.output_shape(&shape))
                .is_ok()
        })
        .ok_or_else(|| {
            crate::error::Error::Config("no input size up to 1024 fits this architecture".into())
        })
}
