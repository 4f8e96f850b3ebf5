//! PNG line charts of a training run: loss, accuracy and learning rate against the epoch.
//!
//! Drawn with plotters into an RGB buffer (its bitmap backend without its image encoder) and
//! encoded with the `image` crate. Text uses DejaVu Sans, embedded in the binary
//! (`src/train/fonts/`, licence beside it), so the plots look the same on every machine and
//! need no system fonts.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;

use image::ImageEncoder;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle, RGBColor};

use crate::error::{Error, Result};
use crate::train::metrics::EpochMetrics;

/// Default width of the training plots, in pixels.
pub const DEFAULT_WIDTH: u32 = 900;
/// Default height of the training plots, in pixels.
pub const DEFAULT_HEIGHT: u32 = 600;

/// One named line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    /// (x, y) points, drawn in this order. Points with a NaN or infinite coordinate are skipped
    /// (and, on a log axis, those with y <= 0).
    pub points: Vec<(f64, f64)>,
}

/// A line chart: every series on the same axes.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Format the y tick labels as percentages (the values are fractions: 0.25 is "25%").
    pub y_percent: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
}

const FONT: &str = "sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
const TITLE_PX: u32 = 26;
const AXIS_LABEL_PX: u32 = 21;
const TICK_PX: u32 = 18;
const LEGEND_PX: u32 = 18;

/// The Tableau 10 palette; the marker shapes tell the series apart where colours do not
/// (grey-scale print, colour blindness).
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
const GRID: RGBColor = RGBColor(225, 225, 225);
const AXIS: RGBColor = RGBColor(60, 60, 60);

#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
}
const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
];

/// A linear axis over `lo..hi` with our own tick positions (plotters' choice of ticks cannot be
/// told "whole epochs only" or "1-2-5 per decade", and its custom-tick wrapper loses the label
/// formatter). No light grid lines: the chart stays quiet.
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.lo) / (self.hi - self.lo);
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

type Plot<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<Axis, Axis>>;

/// Renders `chart` as a line chart to a PNG of `width` x `height` pixels: each series in its own
/// colour with a marker at each point, a legend naming the series where it covers the fewest
/// points, axis labels, tick labels and the title. With no drawable point the axes are drawn
/// with a "no data" note.
///
/// The PNG is written to a temporary file in the same directory and renamed over `path`, so a
/// crash never leaves half an image.
///
/// # Errors
/// [`Error::Config`] if the size is under 200 x 150; [`Error::File`] naming `path` if drawing,
/// encoding or writing fails.
pub fn render_png(chart: &Chart, path: &Path, width: u32, height: u32) -> Result<()> {
    if width < 200 || height < 150 {
        return Err(Error::Config(format!(
            "plot {}: {width}x{height} pixels is too small (at least 200x150)",
            path.display()
        )));
    }
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    draw(chart, &mut rgb, width, height).map_err(|message| Error::File {
        path: path.display().to_string(),
        message: format!("cannot draw the chart: {message}"),
    })?;
    write_png(path, &rgb, width, height)
}

/// Writes the standard plots of a run into `dir` (created if needed), x = epoch:
/// `loss.png` (train and validation loss), `top1.png` (validation and train top-1),
/// `top5.png` (validation top-5) and `lr.png` (learning rate, log scale), at
/// [`DEFAULT_WIDTH`] x [`DEFAULT_HEIGHT`]. Returns the paths written, in that order.
///
/// # Errors
/// [`Error::File`] naming the directory or the plot that could not be written.
pub fn plot_training(metrics: &[EpochMetrics], dir: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).map_err(|e| Error::File {
        path: dir.display().to_string(),
        message: format!("cannot create directory: {e}"),
    })?;
    let series = |name: &str, value: fn(&EpochMetrics) -> f64| Series {
        name: name.to_string(),
        points: metrics.iter().map(|m| (m.epoch as f64, value(m))).collect(),
    };
    let best_top = |value: fn(&EpochMetrics) -> f64| {
        metrics
            .iter()
            .filter(|m| value(m).is_finite())
            .max_by(|a, b| value(a).total_cmp(&value(b)))
            .map(|m| {
                format!(
                    " (best validation {:.1}%, epoch {})",
                    100.0 * value(m),
                    m.epoch
                )
            })
            .unwrap_or_default()
    };
    let charts = [
        (
            "loss.png",
            Chart {
                title: "Loss".into(),
                x_label: "epoch".into(),
                y_label: "cross-entropy loss".into(),
                series: vec![
                    series("train", |m| m.train_loss),
                    series("validation", |m| m.val_loss),
                ],
                y_percent: false,
                log_y: false,
            },
        ),
        (
            "top1.png",
            Chart {
                title: format!("Top-1 accuracy{}", best_top(|m| m.val_top1)),
                x_label: "epoch".into(),
                y_label: "top-1 accuracy".into(),
                series: vec![
                    series("validation", |m| m.val_top1),
                    series("train", |m| m.train_top1),
                ],
                y_percent: true,
                log_y: false,
            },
        ),
        (
            "top5.png",
            Chart {
                title: format!("Top-5 accuracy{}", best_top(|m| m.val_top5)),
                x_label: "epoch".into(),
                y_label: "top-5 accuracy".into(),
                series: vec![series("validation", |m| m.val_top5)],
                y_percent: true,
                log_y: false,
            },
        ),
        (
            "lr.png",
            Chart {
                title: "Learning rate".into(),
                x_label: "epoch".into(),
                y_label: "learning rate (log scale)".into(),
                series: vec![series("learning rate", |m| m.lr)],
                y_percent: false,
                log_y: true,
            },
        ),
    ];
    let mut written = Vec::with_capacity(charts.len());
    for (name, chart) in &charts {
        let path = dir.join(name);
        render_png(chart, &path, DEFAULT_WIDTH, DEFAULT_HEIGHT)?;
        written.push(path);
    }
    Ok(written)
}

/// Registers the embedded font with plotters, once per process.
fn register_embedded_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if register_font(FONT, FontStyle::Normal, FONT_BYTES).is_err() {
            // Only a corrupt build could get here: the bytes are checked in by the tests.
            panic!("the embedded DejaVuSans.ttf is not a valid font");
        }
    });
}

/// A series' drawable points, in axis space (log10(y) on a log axis).
struct Cleaned {
    name: String,
    points: Vec<(f64, f64)>,
    /// The runs of consecutive drawable points: the line breaks where a point was skipped, so a
    /// NaN epoch shows as a gap instead of being bridged.
    runs: Vec<Vec<(f64, f64)>>,
}

fn clean(chart: &Chart) -> Vec<Cleaned> {
    let drawable =
        |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!chart.log_y || y > 0.0);
    let to_axis = |&(x, y): &(f64, f64)| (x, if chart.log_y { y.log10() } else { y });
    chart
        .series
        .iter()
        .map(|s| {
            let runs: Vec<Vec<(f64, f64)>> = s
                .points
                .split(|p| !drawable(p))
                .filter(|run| !run.is_empty())
                .map(|run| run.iter().map(to_axis).collect())
                .collect();
            Cleaned {
                name: s.name.clone(),
                points: runs.concat(),
                runs,
            }
        })
        .collect()
}

/// The x range: padded so the markers at the ends are not cut, and a single x value gets a
/// range around it (1 epoch: 0..2).
fn x_range(xs: &[f64]) -> (f64, f64) {
    let Some((lo, hi)) = min_max(xs) else {
        return (0.0, 1.0);
    };
    if hi - lo == 0.0 {
        let pad = if lo.fract() == 0.0 {
            1.0
        } else {
            (lo.abs() * 0.1).max(1e-3)
        };
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.04;
    (lo - pad, hi + pad)
}

/// The y range in axis space: padded, and never empty (a flat line gets room around it).
fn y_range(ys: &[f64], log: bool, percent: bool) -> (f64, f64) {
    let Some((lo, hi)) = min_max(ys) else {
        return (0.0, 1.0);
    };
    if log {
        // At least one decade, so there are always two or more 1-2-5 ticks.
        let pad = ((1.0 - (hi - lo)) / 2.0).max((hi - lo) * 0.06);
        return (lo - pad, hi + pad);
    }
    if hi - lo == 0.0 {
        let pad = if lo == 0.0 {
            if percent {
                0.05
            } else {
                1.0
            }
        } else {
            lo.abs() * 0.1
        };
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.08;
    (lo - pad, hi + pad)
}

fn min_max(values: &[f64]) -> Option<(f64, f64)> {
    values.iter().fold(None, |acc, &v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// The 1-2-5 step that puts at most `target` ticks on `span`.
fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// Linear ticks at multiples of a 1-2-5 step (whole numbers only when `integer`).
fn linear_ticks(lo: f64, hi: f64, target: usize, integer: bool) -> (Vec<f64>, f64) {
    let mut step = nice_step(hi - lo, target);
    if integer {
        step = step.max(1.0).round();
    }
    let (first, last) = ((lo / step).ceil(), (hi / step).floor());
    // Absurd ranges (overflowing, or too narrow for f64 to tell the ticks apart) get no ticks
    // rather than a billion of them.
    if !(first.is_finite() && last.is_finite() && last - first <= 100.0) {
        return (Vec::new(), step);
    }
    let ticks = (first as i64..=last as i64)
        .map(|k| k as f64 * step)
        .collect();
    (ticks, step)
}

/// Log ticks (in log10 space) at 1, 2 and 5 times the powers of ten over a short range, at
/// the powers of ten (every n-th one if many) over a long one.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = hi - lo;
    let first = lo.floor() as i64;
    let last = hi.floor() as i64;
    let inside = |v: &f64| *v >= lo - 1e-9 && *v <= hi + 1e-9;
    if decades <= 2.5 {
        (first..=last)
            .flat_map(|k| [1.0f64, 2.0, 5.0].map(|m| k as f64 + m.log10()))
            .filter(inside)
            .collect()
    } else {
        let every = (decades / 8.0).ceil().max(1.0) as i64;
        (first..=last)
            .filter(|k| k.rem_euclid(every) == 0)
            .map(|k| k as f64)
            .filter(inside)
            .collect()
    }
}

/// Tick label of a value on a linear axis whose ticks are `step` apart.
fn linear_label(v: f64, step: f64, percent: bool) -> String {
    let (v, step) = if percent {
        (v * 100.0, step * 100.0)
    } else {
        (v, step)
    };
    let v = if v.abs() < step * 1e-6 { 0.0 } else { v }; // no "-0"
    let suffix = if percent { "%" } else { "" };
    let big = v.abs() >= 1e6;
    let tiny = step < 1e-4;
    if big || tiny {
        let digits = ((v.abs().max(step)).log10().floor() - step.log10().floor()).clamp(0.0, 6.0);
        return format!("{v:.*e}{suffix}", digits as usize);
    }
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10() - 1e-9).ceil() as usize
    };
    format!("{v:.decimals$}{suffix}")
}

/// Tick label of a log10-space value on a log axis: 0.002, 5e-5.
fn log_label(l: f64, percent: bool) -> String {
    let mut k = (l + 1e-9).floor() as i32;
    let mut m = 10f64.powf(l - k as f64).round() as i64;
    if m >= 10 {
        m /= 10;
        k += 1;
    }
    if percent {
        k += 2;
    }
    let suffix = if percent { "%" } else { "" };
    if (-4..=5).contains(&k) {
        let v = m as f64 * 10f64.powi(k);
        let decimals = (-k).max(0) as usize;
        format!("{v:.decimals$}{suffix}")
    } else {
        format!("{m}e{k}{suffix}")
    }
}

/// Where the legend goes: the corner (or edge middle) whose box covers the fewest points of
/// the lines, sampled every few pixels. `area` is the plotting area's size in pixels and the
/// points are in pixels relative to its top-left corner.
fn legend_position(lines: &[Vec<(i32, i32)>], legend: (i32, i32), area: (i32, i32)) -> (i32, i32) {
    let (w, h) = legend;
    let inset = 8;
    let left = inset;
    let right = (area.0 - w - inset).max(0);
    let middle = ((area.0 - w) / 2).max(0);
    let top = inset;
    let bottom = (area.1 - h - inset).max(0);
    // In order of preference when equally empty.
    let candidates = [
        (right, top),
        (left, top),
        (right, bottom),
        (left, bottom),
        (middle, top),
        (middle, bottom),
    ];
    let mut samples = Vec::new();
    for line in lines {
        if let [only] = line.as_slice() {
            samples.push(*only);
        }
        for pair in line.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            let n = ((x1 - x0).abs().max((y1 - y0).abs()) / 3).max(1);
            for i in 0..=n {
                let t = i as f64 / n as f64;
                samples.push((
                    (x0 as f64 + t * (x1 - x0) as f64) as i32,
                    (y0 as f64 + t * (y1 - y0) as f64) as i32,
                ));
            }
        }
    }
    let margin = 8; // the markers' radius and a little air
    candidates
        .iter()
        .copied()
        .min_by_key(|&(x, y)| {
            samples
                .iter()
                .filter(|&&(px, py)| {
                    px >= x - margin
                        && px <= x + w + margin
                        && py >= y - margin
                        && py <= y + h + margin
                })
                .count()
        })
        .unwrap_or((right, top))
}

/// The outline of a marker of radius `r` around (0, 0), in pixels. Every shape is a polygon so
/// that markers and legend entries have one concrete element type: plotters' boxed elements
/// must be `'static`, and this backend borrows the pixel buffer.
fn marker_outline(shape: Marker, r: i32) -> Vec<(i32, i32)> {
    match shape {
        Marker::Circle => (0..16)
            .map(|i| {
                let a = f64::from(i) * std::f64::consts::TAU / 16.0;
                (
                    (f64::from(r) * a.cos()).round() as i32,
                    (f64::from(r) * a.sin()).round() as i32,
                )
            })
            .collect(),
        Marker::Square => {
            let s = r - 1;
            vec![(-s, -s), (s, -s), (s, s), (-s, s)]
        }
        Marker::Triangle => vec![(0, -r - 1), (r + 1, r), (-r - 1, r)],
        Marker::Diamond => vec![(0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0)],
    }
}

fn offset(outline: &[(i32, i32)], dx: i32) -> Vec<(i32, i32)> {
    outline.iter().map(|&(x, y)| (x + dx, y)).collect()
}

/// Draws the chart into `rgb` (width * height * 3 bytes). Errors are plotters' messages.
fn draw(chart: &Chart, rgb: &mut [u8], width: u32, height: u32) -> std::result::Result<(), String> {
    register_embedded_font();
    let series = clean(chart);
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    let has_data = !xs.is_empty();
    let (x_lo, x_hi) = x_range(&xs);
    let (y_lo, y_hi) = y_range(&ys, chart.log_y, chart.y_percent);

    let integer_x = has_data && xs.iter().all(|x| x.fract() == 0.0);
    let (x_ticks, x_step) = linear_ticks(x_lo, x_hi, 12, integer_x);
    let (y_ticks, y_step) = if chart.log_y {
        (log_ticks(y_lo, y_hi), 0.0)
    } else {
        linear_ticks(y_lo, y_hi, 7, false)
    };
    let x_fmt = |v: &f64| linear_label(*v, x_step, false);
    let y_fmt = |v: &f64| {
        if chart.log_y {
            log_label(*v, chart.y_percent)
        } else {
            linear_label(*v, y_step, chart.y_percent)
        }
    };

    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::with_buffer(rgb, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;

    // Room left of the plot for the widest tick label, the tick marks and the rotated axis label.
    let tick_font: TextStyle = (FONT, TICK_PX).into_font().into();
    let widest_tick = y_ticks
        .iter()
        .map(|v| {
            root.estimate_text_size(&y_fmt(v), &tick_font)
                .map(|(w, _)| w)
        })
        .try_fold(0u32, |acc, w| w.map(|w| acc.max(w)))
        .map_err(|e| err(&e))?;
    let y_area = widest_tick + 20 + AXIS_LABEL_PX + 16;

    let mut plot: Plot = ChartBuilder::on(&root)
        .caption(&chart.title, (FONT, TITLE_PX).into_font().color(&BLACK))
        .margin_top(12)
        .margin_bottom(8)
        .margin_left(12)
        .margin_right(28)
        .x_label_area_size(TICK_PX + AXIS_LABEL_PX + 30)
        .y_label_area_size(y_area)
        .build_cartesian_2d(
            Axis {
                lo: x_lo,
                hi: x_hi,
                ticks: x_ticks,
            },
            Axis {
                lo: y_lo,
                hi: y_hi,
                ticks: y_ticks,
            },
        )
        .map_err(|e| err(&e))?;

    plot.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .axis_desc_style((FONT, AXIS_LABEL_PX).into_font().color(&BLACK))
        .label_style((FONT, TICK_PX).into_font().color(&AXIS))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS.stroke_width(1))
        .set_all_tick_mark_size(6)
        .draw()
        .map_err(|e| err(&e))?;

    if !has_data {
        let note = (FONT, 24)
            .into_font()
            .color(&RGBColor(120, 120, 120))
            .pos(Pos::new(HPos::Center, VPos::Center));
        plot.plotting_area()
            .draw(&Text::new(
                "no data",
                ((x_lo + x_hi) / 2.0, (y_lo + y_hi) / 2.0),
                note,
            ))
            .map_err(|e| err(&e))?;
    }

    let max_points = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    let marker_size = match max_points {
        0..=30 => 4,
        31..=80 => 3,
        _ => 2,
    };
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        // Shift the marker cycle once per round of colours, so series i and i + 8 (same
        // colour) still differ in shape: distinct up to 32 series.
        let shape = MARKERS[(i + i / COLORS.len()) % MARKERS.len()];
        let label = if s.points.is_empty() {
            format!("{} (no data)", s.name)
        } else {
            s.name.clone()
        };
        plot.draw_series(
            s.runs
                .iter()
                .map(|run| PathElement::new(run.clone(), color.stroke_width(2))),
        )
        .map_err(|e| err(&e))?
        .label(label)
        .legend(move |(x, y)| {
            // Two pixels up: the embedded font's text sits a little above its layout box.
            EmptyElement::at((x, y - 2))
                + PathElement::new(vec![(0, 0), (28, 0)], color.stroke_width(3))
                + Polygon::new(offset(&marker_outline(shape, 5), 14), color.filled())
        });
        let outline = marker_outline(shape, marker_size);
        plot.draw_series(
            s.points
                .iter()
                .map(|&p| EmptyElement::at(p) + Polygon::new(outline.clone(), color.filled())),
        )
        .map_err(|e| err(&e))?;
    }

    if !series.is_empty() {
        // Place the legend by hand where it hides the least: plotters' own positions are fixed.
        let legend_font: TextStyle = (FONT, LEGEND_PX).into_font().into();
        let mut text_w = 0;
        for s in &series {
            let label = if s.points.is_empty() {
                format!("{} (no data)", s.name)
            } else {
                s.name.clone()
            };
            text_w = text_w.max(
                root.estimate_text_size(&label, &legend_font)
                    .map_err(|e| err(&e))?
                    .0,
            );
        }
        let (margin, symbol_w) = (10, 36);
        let line_h = (LEGEND_PX as f64 * 1.25).ceil() as i32;
        let legend_w = text_w as i32 + symbol_w + 2 * margin;
        let legend_h = line_h * series.len() as i32 + 2 * margin;
        let (px, py) = plot.plotting_area().get_pixel_range();
        let lines: Vec<Vec<(i32, i32)>> = series
            .iter()
            .flat_map(|s| &s.runs)
            .map(|run| {
                run.iter()
                    .map(|p| {
                        let (x, y) = plot.backend_coord(p);
                        (x - px.start, y - py.start)
                    })
                    .collect()
            })
            .collect();
        let area = (px.end - px.start, py.end - py.start);
        let (lx, ly) = legend_position(&lines, (legend_w, legend_h), area);
        plot.configure_series_labels()
            .position(SeriesLabelPosition::Coordinate(lx, ly))
            .margin(margin as u32)
            .legend_area_size(symbol_w as u32)
            .label_font((FONT, LEGEND_PX).into_font().color(&BLACK))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| err(&e))?;
    }

    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Encodes the RGB buffer as PNG and replaces `path` with it atomically.
fn write_png(path: &Path, rgb: &[u8], width: u32, height: u32) -> Result<()> {
    crate::atomic_file::write_with(path, |out| {
        image::codecs::png::PngEncoder::new(out)
            .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
            .map_err(std::io::Error::other)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("alexnet-plot-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A plausible AlexNet run: loss falling, accuracy rising, lr stepped down by 10x twice.
    fn run(epochs: usize) -> Vec<EpochMetrics> {
        (1..=epochs)
            .map(|epoch| {
                let t = epoch as f64;
                let lr = 0.01
                    * if epoch > 16 {
                        0.01
                    } else if epoch > 10 {
                        0.1
                    } else {
                        1.0
                    };
                let progress = 1.0 - (-t / 6.0).exp();
                EpochMetrics {
                    epoch,
                    step: 5000 * epoch as u64,
                    lr,
                    train_loss: 6.9 - 4.6 * progress + 0.05 * (t * 1.7).sin(),
                    val_loss: 6.9 - 4.0 * progress + 0.08 * (t * 1.3).cos(),
                    val_top1: 0.001 + 0.56 * progress,
                    val_top5: 0.005 + 0.79 * progress,
                    train_top1: 0.001 + 0.62 * progress,
                    images_per_sec: 1500.0,
                    gpu_wait_secs: 2.0,
                    epoch_secs: 600.0,
                    skipped_samples: 0,
                }
            })
            .collect()
    }

    /// Decodes the PNG and checks its size and that it is not one flat colour.
    fn check_png(path: &Path, width: u32, height: u32) {
        let img = image::open(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .to_rgb8();
        assert_eq!(img.dimensions(), (width, height), "{}", path.display());
        let first = img.get_pixel(0, 0);
        assert!(
            img.pixels().any(|p| p != first),
            "{} is a single colour",
            path.display()
        );
        let colored = img
            .pixels()
            .filter(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 60)
            .count();
        assert!(
            colored > 100,
            "{}: no coloured line or marker drawn",
            path.display()
        );
    }

    fn check_training(metrics: &[EpochMetrics], name: &str) {
        let dir = scratch_dir(name);
        let paths = plot_training(metrics, &dir).unwrap();
        let names: Vec<_> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["loss.png", "top1.png", "top5.png", "lr.png"]);
        for p in &paths {
            check_png(p, DEFAULT_WIDTH, DEFAULT_HEIGHT);
        }
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.contains(".tmp").then_some(name)
            })
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_epoch() {
        check_training(&run(1), "one");
    }

    #[test]
    fn two_epochs() {
        check_training(&run(2), "two");
    }

    #[test]
    fn twenty_epochs() {
        check_training(&run(20), "twenty");
    }

    #[test]
    fn nan_and_infinite_values_are_skipped() {
        let mut metrics = run(6);
        metrics[2].train_loss = f64::NAN;
        metrics[3].val_loss = f64::INFINITY;
        metrics[4].lr = 0.0; // not drawable on a log axis
        metrics[5].val_top1 = f64::NAN;
        check_training(&metrics, "nan");
    }

    #[test]
    fn all_nan_constant_and_empty_charts_render() {
        let dir = scratch_dir("edge");
        let chart = |series: Vec<Series>, log_y: bool| Chart {
            title: "edge".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series,
            y_percent: !log_y,
            log_y,
        };
        let flat = Series {
            name: "flat".into(),
            points: (1..=5).map(|x| (x as f64, 0.3)).collect(),
        };
        let zero = Series {
            name: "zero".into(),
            points: vec![(1.0, 0.0), (2.0, 0.0)],
        };
        let nan = Series {
            name: "nan".into(),
            points: vec![(1.0, f64::NAN), (f64::INFINITY, 1.0)],
        };
        let negative = Series {
            name: "neg".into(),
            points: vec![(1.0, -1.0), (2.0, 0.0)],
        };
        let huge = Series {
            name: "huge".into(),
            points: vec![(-1e308, 1e308), (1e308, -1e308)],
        };
        let tiny = Series {
            name: "tiny".into(),
            points: vec![(1.0, 1e-320), (2.0, 3e-320)],
        };
        let narrow = Series {
            name: "narrow".into(),
            points: vec![(1.0, 1e15), (2.0, 1e15 + 0.5)],
        };
        let cases = [
            ("flat.png", chart(vec![flat.clone()], false)),
            ("flat_log.png", chart(vec![flat], true)),
            ("zero.png", chart(vec![zero], false)),
            ("all_nan.png", chart(vec![nan], false)),
            ("nonpositive_log.png", chart(vec![negative], true)),
            ("empty.png", chart(vec![], false)),
            ("huge.png", chart(vec![huge], false)),
            ("tiny.png", chart(vec![tiny.clone()], false)),
            ("tiny_log.png", chart(vec![tiny], true)),
            ("narrow.png", chart(vec![narrow], false)),
        ];
        for (name, c) in &cases {
            let path = dir.join(name);
            render_png(c, &path, 640, 480).unwrap_or_else(|e| panic!("{name}: {e}"));
            let img = image::open(&path).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (640, 480));
            assert!(img.pixels().any(|p| p != img.get_pixel(0, 0)), "{name}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn skipped_points_break_the_line() {
        let points = vec![
            (1.0, 1.0),
            (2.0, f64::NAN),
            (3.0, 3.0),
            (4.0, 4.0),
            (5.0, -1.0),
            (6.0, 6.0),
        ];
        let chart = Chart {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            series: vec![Series {
                name: "s".into(),
                points,
            }],
            y_percent: false,
            log_y: true,
        };
        let cleaned = clean(&chart);
        let runs: Vec<Vec<f64>> = cleaned[0]
            .runs
            .iter()
            .map(|r| r.iter().map(|p| p.0).collect())
            .collect();
        assert_eq!(runs, vec![vec![1.0], vec![3.0, 4.0], vec![6.0]]);
        assert_eq!(cleaned[0].points.len(), 4);
        assert!((cleaned[0].points[1].1 - 3f64.log10()).abs() < 1e-12);
    }

    #[test]
    fn too_small_is_refused() {
        let c = Chart {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            series: vec![],
            y_percent: false,
            log_y: false,
        };
        assert!(matches!(
            render_png(&c, Path::new("/tmp/never.png"), 10, 10),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn tick_labels() {
        assert_eq!(linear_label(0.25, 0.05, true), "25%");
        assert_eq!(linear_label(0.255, 0.005, true), "25.5%");
        assert_eq!(linear_label(2.5, 0.5, false), "2.5");
        assert_eq!(linear_label(-1e-17, 0.5, false), "0.0");
        assert_eq!(linear_label(20.0, 5.0, false), "20");
        assert_eq!(log_label(0.002f64.log10(), false), "0.002");
        assert_eq!(log_label(1e-5f64.log10(), false), "1e-5");
        assert_eq!(log_label(5e-5f64.log10(), false), "5e-5");
        assert_eq!(log_label(0.0, false), "1");
        assert_eq!(linear_ticks(0.6, 1.4, 10, true).0, vec![1.0]);
        assert_eq!(
            linear_ticks(0.2, 20.8, 12, true).0,
            (1..=10).map(|k| 2.0 * k as f64).collect::<Vec<_>>()
        );
        assert!(log_ticks(-2.5, -1.5).len() >= 2);
    }

    /// Writes the example plots to /tmp/plot_check/ for a person to look at:
    /// `cargo test --lib plot::tests::example_plots -- --ignored`.
    #[test]
    #[ignore]
    fn example_plots() {
        let dir = Path::new("/tmp/plot_check");
        for (n, sub) in [(20, "20"), (1, "1"), (2, "2"), (100, "100")] {
            plot_training(&run(n), &dir.join(sub)).unwrap();
        }
        let mut nan = run(8);
        nan[3].train_loss = f64::NAN;
        nan[5].val_top1 = f64::NAN;
        plot_training(&nan, &dir.join("nan")).unwrap();
        plot_training(&[], &dir.join("empty")).unwrap();
        let flat = Chart {
            title: "A flat line and a lone point".into(),
            x_label: "step".into(),
            y_label: "value".into(),
            series: vec![
                Series {
                    name: "flat".into(),
                    points: (0..=10).map(|x| (x as f64 * 0.5, 0.3)).collect(),
                },
                Series {
                    name: "lone point".into(),
                    points: vec![(2.25, 0.31)],
                },
            ],
            y_percent: true,
            log_y: false,
        };
        render_png(&flat, &dir.join("flat.png"), DEFAULT_WIDTH, DEFAULT_HEIGHT).unwrap();
    }
}
