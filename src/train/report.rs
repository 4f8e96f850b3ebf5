//! An experiment's report: each variant's runs (one per seed) as mean ± standard deviation,
//! the seed-mean curves of every variant on the same axes (`loss.png`, `train_loss.png`,
//! `top1.png`, `top5.png`, `train_top1.png`; `train_loss_trained.png` and `top1_trained.png`
//! without the variants that did not train), and the claims the experiment file lists, each
//! judged from the numbers: a difference smaller than two standard deviations is "no clear
//! difference". Written as `report.md` and `report.html`.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::train::claim::{median, Claim, Metric, Stat, FIGURE1_TRAIN_TOP1};
use crate::train::experiment::{Experiment, VariantResult};
use crate::train::metrics::EpochMetrics;
use crate::train::plot::{render_png, Chart, Series};

/// A variant's runs, in the order the experiment lists them.
struct Variant<'a> {
    name: &'a str,
    summary: &'a str,
    runs: Vec<&'a VariantResult>,
}

impl Variant<'_> {
    /// Over the runs that have the figure (a run without a training-image evaluation has no
    /// generalization gap; a run of one epoch has no last-epoch gain).
    fn stat(&self, metric: Metric) -> Stat {
        let values: Vec<f64> = self
            .runs
            .iter()
            .map(|r| metric.value(r))
            .filter(|v| !v.is_nan())
            .collect();
        Stat::of(&values)
    }

    /// How many runs reach the training accuracy of Figure 1.
    fn reached(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.epochs.iter().any(|m| m.train_top1 >= FIGURE1_TRAIN_TOP1))
            .count()
    }

    fn cell(&self, metric: Metric) -> String {
        let s = self.stat(metric);
        if s.n == 0 {
            return "–".into();
        }
        let reached = self.reached();
        let mut cell = format!("{} ± {}", metric.format(s.mean), metric.format(s.std));
        if metric == Metric::EpochsTo25PctTrainError && reached < self.runs.len() {
            cell += &format!(" ({reached}/{} reached)", self.runs.len());
        }
        cell
    }
}

fn group(results: &[VariantResult]) -> Vec<Variant<'_>> {
    let mut variants: Vec<Variant> = Vec::new();
    for r in results {
        match variants.iter_mut().find(|v| v.name == r.name) {
            Some(v) => v.runs.push(r),
            None => variants.push(Variant {
                name: &r.name,
                summary: &r.summary,
                runs: vec![r],
            }),
        }
    }
    for v in &mut variants {
        v.runs.sort_by_key(|r| r.seed);
    }
    variants
}

/// Writes `report.md`, `report.html` and the plots into the experiment's output folder.
pub fn write_report(experiment: &Experiment, results: &[VariantResult]) -> Result<()> {
    let dir = &experiment.data.out;
    std::fs::create_dir_all(dir).map_err(|e| Error::File {
        path: dir.display().to_string(),
        message: format!("cannot create directory: {e}"),
    })?;
    let variants = group(results);
    let figures = figures(&variants);
    for f in &figures {
        render_png(&f.chart, &dir.join(f.file), 960, 720)?;
    }
    let tables = tables(&variants);
    let verdicts = verdicts(experiment, &variants);
    write_text(
        &dir.join("report.md"),
        &markdown(experiment, &variants, &tables, &verdicts, &figures),
    )?;
    write_text(
        &dir.join("report.html"),
        &html(experiment, &variants, &tables, &verdicts, &figures),
    )
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    crate::atomic_file::write(path, text.as_bytes())
}

/// One plot of the report: its heading, its file in the report's folder, and the chart.
struct Figure {
    title: String,
    file: &'static str,
    chart: Chart,
}

/// The plots: every variant's seed-mean curve on the same axes; and, when some variants did
/// not train (their final validation top-1 under half the best's: a flat line at chance that
/// stretches the axis until the others' differences cannot be seen), the headline curves
/// again without them.
fn figures(variants: &[Variant]) -> Vec<Figure> {
    // Each variant travels with its index in `variants`, which picks its colour and marker,
    // so a variant looks the same in every plot, with or without the untrained ones.
    let chart = |plot: &Plot, title: &str, shown: &[(usize, &Variant)]| Chart {
        title: format!("{title} (mean over seeds)"),
        x_label: "epoch".into(),
        y_label: plot.y_label.into(),
        series: shown
            .iter()
            .map(|&(slot, v)| Series {
                name: v.name.to_string(),
                points: mean_curve(v, plot.value),
                style: Some(slot),
            })
            .collect(),
        y_percent: plot.percent,
        log_y: false,
        guides: plot
            .guides
            .iter()
            .map(|&(l, y)| (l.to_string(), y))
            .collect(),
    };
    let all: Vec<(usize, &Variant)> = variants.iter().enumerate().collect();
    let final_top1 = |v: &Variant| v.stat(Metric::FinalTop1).mean;
    let best = variants.iter().map(final_top1).fold(f64::NAN, f64::max);
    let (trained, untrained): (Vec<_>, Vec<_>) =
        all.iter().partition(|(_, v)| final_top1(v) >= best / 2.0);
    let left_out: Vec<&str> = untrained.iter().map(|(_, v)| v.name).collect();
    let mut figures = Vec::new();
    for plot in &PLOTS {
        figures.push(Figure {
            title: plot.title.into(),
            file: plot.file,
            chart: chart(plot, plot.title, &all),
        });
        match plot.trained_file {
            Some(file) if !untrained.is_empty() && !trained.is_empty() => {
                let title = format!("{} without {}", plot.title, left_out.join(", "));
                figures.push(Figure {
                    chart: chart(plot, &title, &trained),
                    title,
                    file,
                });
            }
            _ => {}
        }
    }
    figures
}

/// Per epoch, the mean over the runs that reached it.
fn mean_curve(v: &Variant, value: fn(&EpochMetrics) -> f64) -> Vec<(f64, f64)> {
    let epochs = v.runs.iter().map(|r| r.epochs.len()).max().unwrap_or(0);
    (0..epochs)
        .map(|i| {
            let ys: Vec<f64> = v
                .runs
                .iter()
                .filter_map(|r| r.epochs.get(i).map(value))
                .collect();
            ((i + 1) as f64, ys.iter().sum::<f64>() / ys.len() as f64)
        })
        .collect()
}

/// One of the report's plots: every variant's seed-mean curve of a figure per epoch.
struct Plot {
    title: &'static str,
    file: &'static str,
    y_label: &'static str,
    percent: bool,
    value: fn(&EpochMetrics) -> f64,
    /// Levels drawn across the plot, with their legend labels ([`Chart::guides`]).
    guides: &'static [(&'static str, f64)],
    /// The file of the plot again without the variants that did not train, for the headline
    /// curves (none for the others).
    trained_file: Option<&'static str>,
}

const PLOTS: [Plot; 5] = [
    Plot {
        title: "Validation loss",
        file: "loss.png",
        y_label: "cross-entropy loss",
        percent: false,
        value: |m| m.val_loss,
        guides: &[],
        trained_file: None,
    },
    Plot {
        title: "Training loss",
        file: "train_loss.png",
        y_label: "cross-entropy loss",
        percent: false,
        value: |m| m.train_loss,
        guides: &[],
        trained_file: Some("train_loss_trained.png"),
    },
    Plot {
        title: "Validation top-1",
        file: "top1.png",
        y_label: "top-1 accuracy",
        percent: true,
        value: |m| m.val_top1,
        guides: &[],
        trained_file: Some("top1_trained.png"),
    },
    Plot {
        title: "Validation top-5",
        file: "top5.png",
        y_label: "top-5 accuracy",
        percent: true,
        value: |m| m.val_top5,
        guides: &[],
        trained_file: None,
    },
    Plot {
        title: "Training top-1",
        file: "train_top1.png",
        y_label: "top-1 accuracy on training batches",
        percent: true,
        value: |m| m.train_top1,
        guides: &[(
            "25% training error (the paper's Figure 1)",
            FIGURE1_TRAIN_TOP1,
        )],
        trained_file: None,
    },
];

/// One table of the report: a heading, the header and one row per variant, and what its
/// columns mean.
struct Table {
    title: &'static str,
    rows: Vec<Vec<String>>,
    notes: &'static str,
}

/// The validation table's figures, between the per-seed top-1 and nothing else.
const VALIDATION_COLUMNS: [Metric; 4] = [
    Metric::BestTop1,
    Metric::LastEpochGain,
    Metric::FinalTop5,
    Metric::FinalValLoss,
];

const VALIDATION_NOTES: &str =
    "Each cell is the mean ± sample standard deviation over the seeds, on the validation set \
     after the last epoch. Best top-1 is the best epoch's; the last epoch's top-1 gain is \
     validation top-1 after the last epoch minus after the one before (near 0 where the curve \
     has flattened).";

/// The training table's figures, before the throughput columns.
const TRAINING_COLUMNS: [Metric; 5] = [
    Metric::FinalTrainLoss,
    Metric::MeanTrainLoss,
    Metric::EpochsTo25PctTrainError,
    Metric::Overfit,
    Metric::ValTop1Drops,
];

const TRAINING_NOTES: &str =
    "Mean ± sample standard deviation over the seeds. The final train loss is the last \
     epoch's, averaged over its batches (augmented, dropout on); the mean train loss averages \
     the epochs' (the area under the curve: lower for a network that got there sooner as well \
     as for one that ended lower). Epochs to 25% train error is when training top-1 first \
     reaches 75% (the paper's Figure 1), interpolated linearly between the epochs on either \
     side, a run that never does counting one more epoch than it ran. Train − val top-1 is the \
     final network's top-1 on as many training images as the validation set has, in \
     evaluation mode (no augmentation, no dropout), minus its validation top-1: the \
     generalization gap. Val top-1 drops sums how far validation top-1 fell back from one \
     epoch to the next (0 for a curve that never falls). Images/s is training throughput, the \
     median over a run's epochs (an epoch slowed by a shared or paused machine moves it \
     little) averaged over the seeds; wall time sums a run's epochs (training and validation; \
     model set-up and pipeline compilation excluded).";

/// A column's heading: the metric's label with its unit.
fn heading(m: Metric) -> String {
    let unit = if m.percent() { " (%)" } else { "" };
    format!("{}{unit}", m.label())
}

/// The report's two tables: the validation figures, then the training ones.
fn tables(variants: &[Variant]) -> [Table; 2] {
    let mut validation = vec![vec![
        "variant".to_string(),
        "seeds".into(),
        heading(Metric::FinalTop1),
        "final top-1 per seed (%)".into(),
    ]];
    validation[0].extend(VALIDATION_COLUMNS.map(heading));
    let mut training = vec![vec!["variant".to_string()]];
    training[0].extend(TRAINING_COLUMNS.map(heading));
    training[0].extend(["images/s".into(), "wall time per run".into()]);
    for v in variants {
        let per_seed: Vec<String> = v
            .runs
            .iter()
            .map(|r| Metric::FinalTop1.format(Metric::FinalTop1.value(r)))
            .collect();
        let mut row = vec![
            v.name.to_string(),
            v.runs.len().to_string(),
            v.cell(Metric::FinalTop1),
            per_seed.join(" / "),
        ];
        row.extend(VALIDATION_COLUMNS.map(|m| v.cell(m)));
        validation.push(row);

        let mut row = vec![v.name.to_string()];
        row.extend(TRAINING_COLUMNS.map(|m| v.cell(m)));
        let ips: Vec<f64> = v
            .runs
            .iter()
            .map(|r| median(r.epochs.iter().map(|m| m.images_per_sec).collect()))
            .collect();
        row.push(format!("{:.1}", Stat::of(&ips).mean));
        let wall: Vec<f64> = v.runs.iter().map(|r| r.wall_secs).collect();
        let w = Stat::of(&wall);
        row.push(format!("{:.0} ± {:.0} s", w.mean, w.std));
        training.push(row);
    }
    [
        Table {
            title: "Validation",
            rows: validation,
            notes: VALIDATION_NOTES,
        },
        Table {
            title: "Training",
            rows: training,
            notes: TRAINING_NOTES,
        },
    ]
}

/// Each claim of the experiment file with the numbers behind it and a verdict.
fn verdicts(experiment: &Experiment, variants: &[Variant]) -> Vec<String> {
    experiment
        .claims
        .iter()
        .map(|c| verdict(c, variants))
        .collect()
}

fn verdict(claim: &Claim, variants: &[Variant]) -> String {
    let m = claim.metric;
    // A variant counts once it has a finished run with the figure.
    let find = |name: &str| variants.iter().find(|v| v.name == name && v.stat(m).n > 0);
    let show = |v: &Variant| {
        let s = v.stat(m);
        format!(
            "{} {} ± {} (n = {})",
            v.name,
            m.format(s.mean),
            m.format(s.std),
            s.n
        )
    };
    // The gap between two variants, signed so that positive favours `a`, and two pooled
    // standard deviations (√((σa² + σb²)/2)) as the threshold of a clear difference; `None`
    // for the verdict while either has a single run (no spread to judge the gap by).
    let compare = |a: &Variant, b: &Variant| {
        let (sa, sb) = (a.stat(m), b.stat(m));
        let sign = if m.higher_is_better() { 1.0 } else { -1.0 };
        let d = sign * (sa.mean - sb.mean);
        let two_sigma = 2.0 * ((sa.std.powi(2) + sb.std.powi(2)) / 2.0).sqrt();
        let clear = (sa.n > 1 && sb.n > 1).then_some(d.abs() > two_sigma);
        (d, two_sigma, clear)
    };
    const UNJUDGED: &str = "not judged: one run, no spread to judge the difference by";
    let numbers = |d: f64, two_sigma: f64| {
        format!(
            "difference {}, 2σ = {}",
            m.format(d.abs()),
            m.format(two_sigma)
        )
    };
    let head = format!("**{}** — {}", claim.text, m.label());
    if let (Some(b), Some(w)) = (&claim.better, &claim.worse) {
        let (Some(b), Some(w)) = (find(b), find(w)) else {
            return format!(
                "{head}: not measured (a variant has no finished run with this figure)"
            );
        };
        if m == Metric::EpochsTo25PctTrainError && b.reached() + w.reached() == 0 {
            return format!(
                "{head}: **not measured**: no run of {} or {} reaches 25% training error \
                 in the epochs it ran",
                b.name, w.name
            );
        }
        let (d, two_sigma, clear) = compare(b, w);
        let call = match (clear, d > 0.0) {
            (None, _) => UNJUDGED,
            (Some(false), _) => "no clear difference",
            (Some(true), true) => "supported",
            (Some(true), false) => "contradicted (the opposite holds)",
        };
        return format!(
            "{head}: {} vs {} ({}): **{call}**",
            show(b),
            show(w),
            numbers(d, two_sigma)
        );
    }
    let mut ranked: Vec<&Variant> = claim
        .among
        .iter()
        .flatten()
        .filter_map(|n| find(n))
        .collect();
    if ranked.len() < 2 {
        return format!(
            "{head}: not measured (fewer than two variants have finished runs with this figure)"
        );
    }
    let sign = if m.higher_is_better() { -1.0 } else { 1.0 };
    ranked.sort_by(|a, b| (sign * a.stat(m).mean).total_cmp(&(sign * b.stat(m).mean)));
    let (d, two_sigma, clear) = compare(ranked[0], ranked[1]);
    let call = match clear {
        None => UNJUDGED.to_string(),
        Some(true) => format!("{} wins", ranked[0].name),
        Some(false) => format!(
            "no clear difference between {} and {}",
            ranked[0].name, ranked[1].name
        ),
    };
    let all: Vec<String> = ranked.iter().map(|v| show(v)).collect();
    format!(
        "{head}: {} (best two: {}): **{call}**",
        all.join("; "),
        numbers(d, two_sigma)
    )
}

/// How the claims are judged, under their heading.
const JUDGED: &str = "A claim's difference smaller than two pooled standard deviations, \
     √((σa² + σb²)/2), is \"no clear difference\"; one with a single run on either side is \
     not judged.";

/// The heading of the experiment file's `conclusions`.
const CONCLUSIONS: &str = "What the results say";

fn markdown(
    experiment: &Experiment,
    variants: &[Variant],
    tables: &[Table],
    verdicts: &[String],
    figures: &[Figure],
) -> String {
    let mut s = format!(
        "# {}\n\n",
        experiment.title.as_deref().unwrap_or("Experiment")
    );
    if let Some(d) = &experiment.description {
        s += d.trim();
        s += "\n\n";
    }
    for table in tables {
        s += &format!("## {}\n\n", table.title);
        for (i, row) in table.rows.iter().enumerate() {
            s += &format!("| {} |\n", row.join(" | "));
            if i == 0 {
                s += &format!("|{}\n", "---|".repeat(row.len()));
            }
        }
        s += &format!("\n{}\n\n", table.notes);
    }
    if !verdicts.is_empty() {
        s += &format!("## The claims, at this scale\n\n{JUDGED}\n\n");
        s += &verdict_list(verdicts);
        s += "\n";
    }
    if let Some(c) = &experiment.conclusions {
        s += &format!("## {CONCLUSIONS}\n\n{}\n\n", c.trim());
    }
    for Figure { title, file, .. } in figures {
        s += &format!("## {title}\n\n![{title}]({file})\n\n");
    }
    s += "## Variants\n\n";
    for v in variants {
        let _ = writeln!(s, "- **{}**: {}", v.name, v.summary);
    }
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The verdicts as a Markdown list: the report's Markdown, and its HTML through
/// `markdown_html`.
fn verdict_list(verdicts: &[String]) -> String {
    verdicts.iter().map(|v| format!("- {v}\n")).collect()
}

/// The experiment file's own Markdown (its description and conclusions) as HTML.
fn markdown_html(text: &str) -> String {
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, pulldown_cmark::Parser::new(text.trim()));
    out
}

fn html(
    experiment: &Experiment,
    variants: &[Variant],
    tables: &[Table],
    verdicts: &[String],
    figures: &[Figure],
) -> String {
    let title = escape(experiment.title.as_deref().unwrap_or("Experiment"));
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}}\
         td:first-child{{text-align:left}}</style></head><body>\n<h1>{title}</h1>\n"
    );
    if let Some(d) = &experiment.description {
        s += &markdown_html(d);
    }
    for table in tables {
        s += &format!("<h2>{}</h2>\n<table>\n", table.title);
        for (i, row) in table.rows.iter().enumerate() {
            let tag = if i == 0 { "th" } else { "td" };
            s += "<tr>";
            for cell in row {
                s += &format!("<{tag}>{}</{tag}>", escape(cell));
            }
            s += "</tr>\n";
        }
        s += &format!("</table>\n<p>{}</p>\n", escape(table.notes));
    }
    if !verdicts.is_empty() {
        s += &format!(
            "<h2>The claims, at this scale</h2>\n<p>{}</p>\n{}",
            escape(JUDGED),
            markdown_html(&verdict_list(verdicts))
        );
    }
    if let Some(c) = &experiment.conclusions {
        s += &format!("<h2>{CONCLUSIONS}</h2>\n{}", markdown_html(c));
    }
    for Figure { title, file, .. } in figures {
        let title = escape(title);
        s += &format!("<h2>{title}</h2>\n<img src=\"{file}\" alt=\"{title}\" width=\"960\">\n");
    }
    s += "<h2>Variants</h2>\n<ul>\n";
    for v in variants {
        s += &format!(
            "<li><b>{}</b>: {}</li>\n",
            escape(v.name),
            escape(v.summary)
        );
    }
    s + "</ul>\n</body></html>\n"
}

#[cfg(test)]
mod tests;
