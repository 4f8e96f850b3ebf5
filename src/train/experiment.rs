//! Experiments: several training variants on the same data and seed, one after another, and
//! one report comparing them — a table (final and best top-1, top-5, loss, images/s, wall
//! time) and curves of every variant on the same axes (`loss.png`, `train_loss.png`,
//! `top1.png`, `top5.png`), embedded in `report.md` and `report.html`.
//!
//! The configuration is TOML: a `[data]` table (dataset, sizes, seed, output folder), a
//! `[train]` table of settings every variant shares, and `[[variant]]` tables, each a `name`
//! and the settings it overrides. Every table holds [`TrainOptions`], the options of
//! `alexnet train` by the same names with `_` for `-` (`weight_decay`, `activation`, `pool`,
//! `norm`, `augment`, …; `path` for `data`), merged key by key in that order.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Deserialize;

use crate::data::source::Splits;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::runtime::Gpu;
use crate::train::metrics::EpochMetrics;
use crate::train::options::TrainOptions;
use crate::train::plot::{render_png, Chart, Series};
use crate::train::trainer::{train, TrainConfig};

/// The network input side when no table sets `image_size`: the embedded set's.
const DEFAULT_IMAGE_SIZE: usize = 64;

/// A whole experiment file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Heading of the report.
    #[serde(default)]
    pub title: Option<String>,
    /// Free text put under the heading (what is compared, and why).
    #[serde(default)]
    pub description: Option<String>,
    /// The data every variant trains on, and in `out` where the report goes.
    pub data: TrainOptions,
    #[serde(default)]
    pub train: TrainOptions,
    #[serde(rename = "variant")]
    pub variants: Vec<TrainOptions>,
    /// Each variant's options: `[data]`, `[train]` and its own table merged (see [`Self::parse`]).
    #[serde(skip)]
    merged: Vec<TrainOptions>,
}

impl Experiment {
    /// Reads and checks an experiment file. Errors name the file and, for TOML errors, the
    /// line, column and key, with what was expected.
    pub fn load(path: &Path) -> Result<Experiment> {
        let fail = |message: String| Error::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::parse(&text).map_err(fail)
    }

    /// Parses and checks the TOML text of an experiment; the error is a message.
    pub fn parse(text: &str) -> std::result::Result<Experiment, String> {
        // Typed first, so that a bad key or value is reported with its line; then the tables
        // are merged key by key, so a variant overrides only what it names.
        let mut experiment: Experiment = toml::from_str(text).map_err(|e| e.to_string())?;
        let raw: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let table = |key: &str| match raw.get(key) {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => toml::Table::new(),
        };
        if !table("data").contains_key("out") {
            return Err("[data]: 'out' (the report's folder) is required".into());
        }
        experiment.check()?;
        let mut shared = table("data");
        shared.extend(table("train"));
        let variants = match raw.get("variant") {
            Some(toml::Value::Array(v)) => v.clone(),
            _ => Vec::new(),
        };
        for variant in variants {
            let mut merged = shared.clone();
            if let toml::Value::Table(own) = variant {
                merged.extend(own);
            }
            let mut options: TrainOptions = toml::Value::Table(merged)
                .try_into()
                .map_err(|e| e.to_string())?;
            let name = options.name.clone().unwrap_or_default();
            options.out = experiment.data.out.join(&name);
            options.image_size = options.image_size.or(Some(DEFAULT_IMAGE_SIZE));
            experiment.merged.push(options);
        }
        Ok(experiment)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.train.name.is_some() || self.data.name.is_some() {
            return Err("[data], [train]: 'name' belongs in a [[variant]] table".into());
        }
        if self.variants.is_empty() {
            return Err("no [[variant]] tables: an experiment needs at least one".into());
        }
        let mut seen = Vec::new();
        for (i, v) in self.variants.iter().enumerate() {
            let name = v
                .name
                .as_deref()
                .ok_or_else(|| format!("[[variant]] number {} has no 'name'", i + 1))?;
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
            if !ok {
                return Err(format!(
                    "[[variant]] name '{name}': expected letters, digits and - _ . + only (it names a folder)"
                ));
            }
            if seen.contains(&name) {
                return Err(format!("[[variant]] name '{name}' is used twice"));
            }
            seen.push(name);
        }
        Ok(())
    }

    /// Each variant's options: `[data]`, then `[train]`, then the variant's own, with `out`
    /// set to the variant's folder inside the report's.
    pub fn variant_options(&self) -> &[TrainOptions] {
        &self.merged
    }

    /// The data every variant trains on ([`TrainOptions::open_data`] of `[data]`).
    pub fn open_data(&self) -> Result<Splits> {
        let mut data = self.data.clone();
        data.image_size = data.image_size.or(Some(DEFAULT_IMAGE_SIZE));
        data.open_data()
    }

    /// Each variant's name, one-line summary and training configuration, for data with
    /// `classes` classes. Errors name the variant.
    pub fn configs(&self, classes: usize) -> Result<Vec<(String, String, TrainConfig)>> {
        self.merged
            .iter()
            .map(|options| {
                let name = options.name.clone().unwrap_or_default();
                let in_variant = |e: Error| Error::Config(format!("variant '{name}': {e}"));
                let mut config = options.config(classes).map_err(in_variant)?;
                // Many variants in one terminal: one log line per epoch instead of bars.
                config.show_progress = false;
                config.validate().map_err(in_variant)?;
                let summary = describe(&config);
                Ok((name, summary, config))
            })
            .collect()
    }
}

/// The settings a reader compares, in one line.
pub fn describe(c: &TrainConfig) -> String {
    let m = &c.model;
    let norm = format!("{:?}", m.resolved_norm()).to_lowercase();
    let augment = match (
        &c.augment.color_jitter,
        c.augment.lighting_std > 0.0,
        c.augment.flip,
    ) {
        (Some(_), _, _) => "crop+flip+lighting+jitter",
        (None, true, true) => "crop+flip+lighting",
        (None, false, true) => "crop+flip",
        (None, true, false) => "crop+lighting",
        (None, false, false) => "crop only",
    };
    format!(
        "{:?} activation, {:?} pool, norm {norm}, dropout {}, {:?} lr {} weight decay {}, {:?} schedule, augment {augment}, {} epochs, batch {}",
        m.activation,
        m.pool,
        m.dropout,
        c.optimizer.kind,
        c.optimizer.lr,
        c.optimizer.weight_decay,
        c.schedule,
        c.epochs,
        c.batch_size
    )
}

/// What one variant produced.
#[derive(Clone, Debug)]
pub struct VariantResult {
    pub name: String,
    /// A one-line description of its settings, for the report.
    pub summary: String,
    pub epochs: Vec<EpochMetrics>,
    /// Training and validation time of all epochs.
    pub wall_secs: f64,
}

impl VariantResult {
    /// The result of a variant's epochs; its wall time is the sum of their times (training
    /// and validation), which a report rebuilt from `metrics.jsonl` gives identically.
    pub fn new(name: &str, summary: &str, epochs: Vec<EpochMetrics>) -> Self {
        Self {
            name: name.to_string(),
            summary: summary.to_string(),
            wall_secs: epochs.iter().map(|m| m.epoch_secs).sum(),
            epochs,
        }
    }

    fn last(&self) -> Option<&EpochMetrics> {
        self.epochs.last()
    }

    fn best_top1(&self) -> f64 {
        self.epochs
            .iter()
            .map(|m| m.val_top1)
            .fold(f64::NAN, f64::max)
    }

    /// Training images per second over the whole run's epochs (validation excluded).
    fn images_per_sec(&self) -> f64 {
        let n = self.epochs.len().max(1) as f64;
        self.epochs.iter().map(|m| m.images_per_sec).sum::<f64>() / n
    }
}

/// Trains every variant in turn on the same data (each into `out/<name>/`), writing the
/// report after each so a long experiment can be read while it runs. `configs` are the
/// variants' training configurations with their names, in order.
pub fn run(
    gpu: &Gpu,
    experiment: &Experiment,
    configs: &[(String, String, TrainConfig)],
    train_set: Arc<dyn Dataset>,
    val_set: Arc<dyn Dataset>,
    stop: Arc<AtomicBool>,
) -> Result<Vec<VariantResult>> {
    let mut results = Vec::new();
    for (index, (name, summary, config)) in configs.iter().enumerate() {
        log::info!(
            "variant {}/{} '{name}': {summary}",
            index + 1,
            configs.len()
        );
        let outcome = train(
            gpu,
            config,
            train_set.clone(),
            val_set.clone(),
            None,
            stop.clone(),
        )?;
        results.push(VariantResult::new(name, summary, outcome.epochs));
        write_report(experiment, &results)?;
        if outcome.interrupted {
            log::warn!("interrupted during '{name}': the report holds the variants so far");
            break;
        }
    }
    Ok(results)
}

/// Writes `report.md`, `report.html` and the plots into the experiment's output folder.
pub fn write_report(experiment: &Experiment, results: &[VariantResult]) -> Result<()> {
    let dir = &experiment.data.out;
    std::fs::create_dir_all(dir).map_err(|e| Error::File {
        path: dir.display().to_string(),
        message: format!("cannot create directory: {e}"),
    })?;
    for (file, chart) in charts(results) {
        render_png(&chart, &dir.join(file), 960, 720)?;
    }
    let md = markdown(experiment, results);
    write_text(&dir.join("report.md"), &md)?;
    write_text(&dir.join("report.html"), &html(experiment, results))
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    crate::model::weights::write_atomic(path, text.as_bytes())
}

/// The plot files and their charts: every variant's curve on the same axes.
fn charts(results: &[VariantResult]) -> Vec<(&'static str, Chart)> {
    let chart = |title: &str, y: &str, percent: bool, value: fn(&EpochMetrics) -> f64| Chart {
        title: title.into(),
        x_label: "epoch".into(),
        y_label: y.into(),
        series: results
            .iter()
            .map(|r| Series {
                name: r.name.clone(),
                points: r
                    .epochs
                    .iter()
                    .map(|m| (m.epoch as f64, value(m)))
                    .collect(),
            })
            .collect(),
        y_percent: percent,
        log_y: false,
    };
    vec![
        (
            "loss.png",
            chart("Validation loss", "cross-entropy loss", false, |m| {
                m.val_loss
            }),
        ),
        (
            "train_loss.png",
            chart("Training loss", "cross-entropy loss", false, |m| {
                m.train_loss
            }),
        ),
        (
            "top1.png",
            chart("Validation top-1", "top-1 accuracy", true, |m| m.val_top1),
        ),
        (
            "top5.png",
            chart("Validation top-5", "top-5 accuracy", true, |m| m.val_top5),
        ),
    ]
}

const PLOTS: [(&str, &str); 4] = [
    ("Validation loss", "loss.png"),
    ("Training loss", "train_loss.png"),
    ("Validation top-1", "top1.png"),
    ("Validation top-5", "top5.png"),
];

const HEADER: [&str; 8] = [
    "variant",
    "final top-1",
    "best top-1",
    "final top-5",
    "final val loss",
    "final train loss",
    "images/s",
    "wall time (epochs)",
];

/// The table's cells, one row per variant.
fn rows(results: &[VariantResult]) -> Vec<[String; 8]> {
    let pct = |v: f64| format!("{:.1}%", 100.0 * v);
    results
        .iter()
        .map(|r| {
            let (top1, top5, val, train) = r
                .last()
                .map_or((f64::NAN, f64::NAN, f64::NAN, f64::NAN), |m| {
                    (m.val_top1, m.val_top5, m.val_loss, m.train_loss)
                });
            [
                r.name.clone(),
                pct(top1),
                pct(r.best_top1()),
                pct(top5),
                format!("{val:.4}"),
                format!("{train:.4}"),
                format!("{:.1}", r.images_per_sec()),
                format!("{:.0} s", r.wall_secs),
            ]
        })
        .collect()
}

fn markdown(experiment: &Experiment, results: &[VariantResult]) -> String {
    let mut s = format!(
        "# {}\n\n",
        experiment.title.as_deref().unwrap_or("Experiment")
    );
    if let Some(d) = &experiment.description {
        s += d.trim();
        s += "\n\n";
    }
    s += &format!("| {} |\n|", HEADER.join(" | "));
    s += &"---|".repeat(HEADER.len());
    s += "\n";
    for row in rows(results) {
        s += &format!("| {} |\n", row.join(" | "));
    }
    s += "\nTop-1/top-5 and losses are on the validation set after each epoch; images/s is \
          training throughput averaged over epochs; wall time sums the epochs' training and validation \
          (model set-up and pipeline compilation excluded).\n\n";
    for (title, file) in PLOTS {
        s += &format!("## {title}\n\n![{title}]({file})\n\n");
    }
    s += "## Variants\n\n";
    for r in results {
        let _ = writeln!(s, "- **{}**: {}", r.name, r.summary);
    }
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn html(experiment: &Experiment, results: &[VariantResult]) -> String {
    let title = escape(experiment.title.as_deref().unwrap_or("Experiment"));
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>body{{font-family:sans-serif;max-width:960px;margin:auto}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}}\
         td:first-child{{text-align:left}}</style></head><body>\n<h1>{title}</h1>\n"
    );
    if let Some(d) = &experiment.description {
        s += &format!("<p>{}</p>\n", escape(d.trim()));
    }
    s += "<table>\n<tr>";
    for h in HEADER {
        s += &format!("<th>{h}</th>");
    }
    s += "</tr>\n";
    for row in rows(results) {
        s += "<tr>";
        for cell in row {
            s += &format!("<td>{}</td>", escape(&cell));
        }
        s += "</tr>\n";
    }
    s += "</table>\n";
    for (title, file) in PLOTS {
        s += &format!("<h2>{title}</h2>\n<img src=\"{file}\" alt=\"{title}\" width=\"960\">\n");
    }
    s += "<h2>Variants</h2>\n<ul>\n";
    for r in results {
        s += &format!(
            "<li><b>{}</b>: {}</li>\n",
            escape(&r.name),
            escape(&r.summary)
        );
    }
    s + "</ul>\n</body></html>\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Pool;

    const GOOD: &str = r#"
[data]
out = "x"
[train]
epochs = 2
pool = "avg3"
[[variant]]
name = "a"
[[variant]]
name = "b"
pool = "max2"
"#;

    #[test]
    fn variants_override_the_shared_settings() {
        let exp = Experiment::parse(GOOD).unwrap();
        let v = exp.variant_options();
        assert_eq!((v[0].pool, v[0].epochs), (Some(Pool::Avg3), Some(2)));
        assert_eq!((v[1].pool, v[1].epochs), (Some(Pool::Max2), Some(2)));
    }

    #[test]
    fn a_bad_file_names_the_line_and_the_key() {
        let typo = GOOD.replace("pool = \"max2\"", "pooling = \"max2\"");
        let err = Experiment::parse(&typo).unwrap_err();
        assert!(err.contains("line 11") && err.contains("pooling"), "{err}");
        let wrong_type = GOOD.replace("epochs = 2", "epochs = \"two\"");
        let err = Experiment::parse(&wrong_type).unwrap_err();
        assert!(
            err.contains("line 5") && err.contains("expected usize"),
            "{err}"
        );
        let twice = GOOD.replace("name = \"b\"", "name = \"a\"");
        assert!(Experiment::parse(&twice)
            .unwrap_err()
            .contains("used twice"));
        let none = "[data]\nout = \"x\"\n";
        assert!(Experiment::parse(none).unwrap_err().contains("variant"));
    }
}
