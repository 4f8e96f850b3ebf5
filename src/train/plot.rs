//! PNG line charts of a training run: loss, accuracy and learning rate against the epoch.
//!
//! Drawn with plotters into an RGB buffer (its bitmap backend without its image encoder) and
//! encoded with the `image` crate. Text uses DejaVu Sans, embedded in the binary
//! (`src/train/fonts/`, licence beside it), so the plots look the same on every machine and
//! need no system fonts.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use image::ImageEncoder;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::data::fitting_range;
use plotters::data::float::pretty_print_float;
use plotters::element::DashedPathElement;
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
    /// Its colour and marker, as a slot of the palette: its index in the chart unless given, so
    /// that a series keeps its look in a chart that leaves others out.
    pub style: Option<usize>,
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
    /// Horizontal reference lines, dashed and grey, each with its legend label: a level the
    /// curves are read against (the paper's Figure 1 reads when training error reaches 25 %).
    pub guides: Vec<(String, f64)>,
}

const FONT: &str = "sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
const TITLE_PX: u32 = 26;
const AXIS_LABEL_PX: u32 = 21;
const TICK_PX: u32 = 18;
const LEGEND_PX: u32 = 18;

/// The Tableau 10 palette (an experiment of ten variants gets ten colours); the marker shapes
/// tell the series apart where colours do not (grey-scale print, colour blindness).
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const GRID: RGBColor = RGBColor(225, 225, 225);
const GUIDE: RGBColor = RGBColor(110, 110, 110);
const AXIS: RGBColor = RGBColor(60, 60, 60);

/// At most this many labelled ticks per axis (plotters picks 1-2-5 steps under the cap).
const X_LABELS: usize = 12;
const Y_LABELS: usize = 7;

/// Renders `chart` as a line chart to a PNG of `width` x `height` pixels: each series in its own
/// colour with a marker at each point, a legend in the right-hand corner the curves leave free,
/// axis labels, tick labels and the title. With no drawable point the axes are drawn
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
    draw(chart, &mut rgb, width, height).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: format!("cannot draw the chart: {e}"),
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
    let line = |name: &str, value: fn(&EpochMetrics) -> f64| Series {
        name: name.to_string(),
        points: metrics.iter().map(|m| (m.epoch as f64, value(m))).collect(),
        style: None,
    };
    // An accuracy plot's title names the best validation epoch.
    let accuracy = |top: &str, value: fn(&EpochMetrics) -> f64| {
        let finite = metrics.iter().filter(|m| value(m).is_finite());
        let best = finite.max_by(|a, b| value(a).total_cmp(&value(b)));
        let best = best.map(|m| (100.0 * value(m), m.epoch));
        let best = best.map(|(v, e)| format!(" (best validation {v:.1}%, epoch {e})"));
        format!("{top} accuracy{}", best.unwrap_or_default())
    };
    let chart = |title: String, y_label: &str, series, y_percent, log_y| Chart {
        title,
        x_label: "epoch".into(),
        y_label: y_label.into(),
        series,
        y_percent,
        log_y,
        guides: Vec::new(),
    };
    let loss = vec![
        line("train", |m| m.train_loss),
        line("validation", |m| m.val_loss),
    ];
    let top1 = vec![
        line("validation", |m| m.val_top1),
        line("train", |m| m.train_top1),
    ];
    let top5 = vec![line("validation", |m| m.val_top5)];
    let lr = vec![line("learning rate", |m| m.lr)];
    let charts = [
        (
            "loss.png",
            chart("Loss".into(), "cross-entropy loss", loss, false, false),
        ),
        (
            "top1.png",
            chart(
                accuracy("Top-1", |m| m.val_top1),
                "top-1 accuracy",
                top1,
                true,
                false,
            ),
        ),
        (
            "top5.png",
            chart(
                accuracy("Top-5", |m| m.val_top5),
                "top-5 accuracy",
                top5,
                true,
                false,
            ),
        ),
        (
            "lr.png",
            chart(
                "Learning rate".into(),
                "learning rate (log scale)",
                lr,
                false,
                true,
            ),
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

/// A series' drawable points.
struct Cleaned {
    name: String,
    points: Vec<(f64, f64)>,
    /// The runs of consecutive drawable points: the line breaks where a point was skipped, so a
    /// NaN epoch shows as a gap instead of being bridged.
    runs: Vec<Vec<(f64, f64)>>,
    /// [`Series::style`], resolved.
    style: usize,
}

fn clean(chart: &Chart) -> Vec<Cleaned> {
    let drawable =
        |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!chart.log_y || y > 0.0);
    let cleaned = |(i, s): (usize, &Series)| {
        let runs: Vec<_> = s
            .points
            .split(|p| !drawable(p))
            .filter(|r| !r.is_empty())
            .map(<[_]>::to_vec)
            .collect();
        let name = s.name.clone();
        Cleaned {
            name,
            points: runs.concat(),
            runs,
            style: s.style.unwrap_or(i),
        }
    };
    chart.series.iter().enumerate().map(cleaned).collect()
}

/// The range of `values` (0..1 if none), widened by `frac` of the span each side (halved
/// first, so +-1e308 does not overflow), or by `flat(lo)` when the span is zero.
fn padded(values: &[f64], frac: f64, flat: impl Fn(f64) -> f64) -> Range<f64> {
    let Range { start: lo, end: hi } = fitting_range(values);
    let pad = if hi > lo {
        (hi / 2.0 - lo / 2.0) * 2.0 * frac
    } else {
        flat(lo)
    };
    lo - pad..hi + pad
}

/// The x range and how many labels to ask plotters for. Whole-number x (epochs) gets at most
/// one label per integer in the range, which rules out plotters' fractional steps: a step under
/// 1 would need more ticks than that.
fn x_axis(xs: &[f64]) -> (Range<f64>, usize) {
    let whole = xs.iter().all(|x| x.fract() == 0.0);
    // A lone epoch gets 0..2, another lone value +-10%.
    let flat = |lo: f64| {
        if whole {
            1.0
        } else {
            (lo.abs() * 0.1).max(1e-3)
        }
    };
    let range = padded(xs, 0.04, flat);
    let integers = (range.end.floor() - range.start.ceil() + 1.0).clamp(1.0, X_LABELS as f64);
    let labels = if whole { integers as usize } else { X_LABELS };
    (range, labels)
}

/// The log y range (`ys` > 0): at least two decades, so plotters' log axis labels two or more
/// powers of ten. Clamped to f64's range: a range reaching infinity would never finish ticking.
fn y_log(ys: &[f64]) -> Range<f64> {
    let logs: Vec<f64> = ys.iter().map(|y| y.log10()).collect();
    let logs = padded(&logs, 0.0, |_| 0.0);
    let span = logs.end - logs.start;
    let pad = ((2.1 - span) / 2.0).max(span * 0.06);
    let pow = |e: f64| 10f64.powf(e.clamp(-323.0, 308.0));
    pow(logs.start - pad)..pow(logs.end + pad)
}

/// A tick label: the shortest decimal or scientific form ("0.002", "1e-5"), or a fraction as a
/// percentage ("25.5%"). Values nearer 0 than `zero_below` print as "0", not "-0" or "1e-17".
fn tick_label(v: f64, zero_below: f64, percent: bool) -> String {
    let v = if v.abs() < zero_below { 0.0 } else { v };
    if percent {
        format!("{}%", pretty_print_float(v * 100.0, false))
    } else {
        pretty_print_float(v, true)
    }
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Draws the chart into `rgb` (width * height * 3 bytes).
fn draw(chart: &Chart, rgb: &mut [u8], width: u32, height: u32) -> DrawResult {
    register_embedded_font();
    let series = clean(chart);
    let points = || series.iter().flat_map(|s| &s.points);
    let x = x_axis(&points().map(|p| p.0).collect::<Vec<_>>());
    // The axis holds the guides too, where the scale can show them.
    let guides = chart.guides.iter().map(|g| g.1);
    let guides = guides.filter(|y| y.is_finite() && (!chart.log_y || *y > 0.0));
    let ys: Vec<f64> = points().map(|p| p.1).chain(guides).collect();
    let root = BitMapBackend::with_buffer(rgb, (width, height)).into_drawing_area();
    if chart.log_y {
        let y = LogCoord::from(y_log(&ys).log_scale());
        draw_on(chart, &series, &root, x, y)
    } else {
        let flat = |lo: f64| match (lo == 0.0, chart.y_percent) {
            (true, true) => 0.05,
            (true, false) => 1.0,
            (false, _) => lo.abs() * 0.1,
        };
        let y = padded(&ys, 0.08, flat);
        draw_on(chart, &series, &root, x, RangedCoordf64::from(y))
    }
}

/// Draws on a linear or a log y axis: `y` is plotters' coordinate for it.
fn draw_on<Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    chart: &Chart,
    series: &[Cleaned],
    root: &DrawingArea<BitMapBackend, Shift>,
    (x, x_labels): (Range<f64>, usize),
    y: Y,
) -> DrawResult {
    root.fill(&WHITE)?;
    let (x_span, y_span) = (x.clone(), y.range());
    // A span that overflows f64 gets no ticks: plotters' tick search would never end.
    let labels = |n, r: &Range<f64>| if (r.end - r.start).is_finite() { n } else { 0 };
    let (x_labels, y_labels) = (labels(x_labels, &x_span), labels(Y_LABELS, &y_span));
    // Snaps float noise at 0 (a log axis never reaches 0).
    let zero = |r: &Range<f64>| (r.end - r.start) * 1e-9;
    let y_zero = if chart.log_y { 0.0 } else { zero(&y_span) };
    let x_zero = zero(&x_span);
    let x_fmt = |v: &f64| tick_label(*v, x_zero, false);
    let y_fmt = |v: &f64| tick_label(*v, y_zero, chart.y_percent);

    // Room left of the plot for the widest tick label, the tick marks and the rotated axis label.
    let tick_font: TextStyle = (FONT, TICK_PX).into_font().into();
    let mut widest = 0;
    for v in y.key_points(y_labels) {
        widest = widest.max(root.estimate_text_size(&y_fmt(&v), &tick_font)?.0);
    }
    let mut plot = ChartBuilder::on(root)
        .caption(&chart.title, (FONT, TITLE_PX).into_font().color(&BLACK))
        .margin_top(12)
        .margin_bottom(8)
        .margin_left(12)
        .margin_right(28)
        .x_label_area_size(TICK_PX + AXIS_LABEL_PX + 30)
        .y_label_area_size(widest + 20 + AXIS_LABEL_PX + 16)
        .build_cartesian_2d(RangedCoordf64::from(x), y)?;
    plot.configure_mesh()
        .x_labels(x_labels)
        .y_labels(y_labels)
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
        .draw()?;

    let area = plot.plotting_area().strip_coord_spec();
    let ((left, top), (w, h)) = (area.get_base_pixel(), area.dim_in_pixel());
    let (w, h) = (w as i32, h as i32);
    if series.iter().all(|s| s.points.is_empty()) {
        let note = (FONT, 24).into_font().color(&RGBColor(120, 120, 120));
        let note = note.pos(Pos::new(HPos::Center, VPos::Center));
        area.draw(&Text::new("no data", (w / 2, h / 2), note))?;
    }

    let guides: Vec<&(String, f64)> = chart
        .guides
        .iter()
        .filter(|g| y_span.contains(&g.1))
        .collect();
    for &(label, level) in &guides {
        let ends = [(x_span.start, *level), (x_span.end, *level)];
        let dashed = DashedPathElement::new(ends, 8, 6, GUIDE.stroke_width(2));
        plot.draw_series(std::iter::once(dashed))?
            .label(label.as_str())
            .legend(|(x, y)| {
                DashedPathElement::new([(x, y - 2), (x + 28, y - 2)], 6, 4, GUIDE.stroke_width(2))
            });
    }

    // Smaller markers where they crowd.
    let most = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    let r = 4 - i32::from(most > 30) - i32::from(most > 80);
    for s in series {
        let i = s.style;
        let color = COLORS[i % COLORS.len()];
        // The shape cycle shifts once per round of colours, so slots i and i + 10 (same
        // colour) still differ in shape: distinct up to 40 series.
        let shape = i + i / COLORS.len();
        let lines = s
            .runs
            .iter()
            .map(|run| PathElement::new(run.clone(), color.stroke_width(2)));
        plot.draw_series(lines)?
            .label(legend_label(s))
            .legend(move |(x, y)| {
                // Two pixels up: the embedded font's text sits a little above its layout box.
                EmptyElement::at((x, y - 2))
                    + PathElement::new(vec![(0, 0), (28, 0)], color.stroke_width(3))
                    + marker(shape, (14, 0), 5, color)
            });
        let markers = s
            .points
            .iter()
            .map(|&p| EmptyElement::at(p) + marker(shape, (0, 0), r, color));
        plot.draw_series(markers)?;
    }

    if !series.is_empty() {
        // Every curve's pixels, sampled along its segments, against the legend's box.
        let mut curve = Vec::new();
        let guide_lines = guides
            .iter()
            .map(|g| vec![(x_span.start, g.1), (x_span.end, g.1)]);
        for run in series
            .iter()
            .flat_map(|s| s.runs.iter().cloned())
            .chain(guide_lines)
        {
            let pixels: Vec<(i32, i32)> = run.iter().map(|p| plot.backend_coord(p)).collect();
            curve.extend(pixels.first());
            for w in pixels.windows(2) {
                let steps = (w[1].0 - w[0].0).abs().max((w[1].1 - w[0].1).abs()) / 4 + 1;
                curve.extend((1..=steps).map(|k| {
                    let at = |a: i32, b: i32| a + (b - a) * k / steps;
                    (at(w[0].0, w[1].0), at(w[0].1, w[1].1))
                }));
            }
        }
        let font: TextStyle = (FONT, LEGEND_PX).into_font().into();
        let mut label = (0, 0);
        for s in series {
            let (lw, lh) = root.estimate_text_size(&legend_label(s), &font)?;
            label = (label.0.max(lw as i32), label.1.max(lh as i32));
        }
        // The legend's size as plotters lays it out: the sample line, the widest label and
        // padding across; a row per series.
        let size = (
            LEGEND_SAMPLE + label.0 + 20,
            series.len() as i32 * (label.1 + 6) + 10,
        );
        let position = legend_position(&curve, (left, top, w, h), size);
        plot.configure_series_labels()
            .position(position)
            .margin(LEGEND_MARGIN)
            .legend_area_size(LEGEND_SAMPLE as u32)
            .label_font((FONT, LEGEND_PX).into_font().color(&BLACK))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
    }
    Ok(root.present()?)
}

/// A series' line in the legend.
fn legend_label(s: &Cleaned) -> String {
    match s.points.is_empty() {
        true => format!("{} (no data)", s.name),
        false => s.name.clone(),
    }
}

/// The legend's distance from the plot's edges, and the width of its sample line and marker.
const LEGEND_MARGIN: u32 = 10;
const LEGEND_SAMPLE: i32 = 36;

/// Where in the plot area `(left, top, width, height)` the legend box of `size` pixels covers
/// the fewest of the `curve`'s pixels: a corner, the middle of a side or the centre. On a tie
/// the first of lower right (curves that end high, as accuracy does, leave it free), upper
/// right (falling ones: loss, learning rate), the right side's middle, then the left's places,
/// then the middle column's.
fn legend_position(
    curve: &[(i32, i32)],
    (left, top, w, h): (i32, i32, i32, i32),
    (bw, bh): (i32, i32),
) -> SeriesLabelPosition {
    use SeriesLabelPosition::*;
    let m = LEGEND_MARGIN as i32;
    let (x_left, x_middle, x_right) = (left + m, left + (w - bw) / 2, left + w - m - bw);
    let (y_upper, y_middle, y_lower) = (top + m, top + (h - bh) / 2, top + h - m - bh);
    let places = [
        (LowerRight, x_right, y_lower),
        (UpperRight, x_right, y_upper),
        (MiddleRight, x_right, y_middle),
        (UpperLeft, x_left, y_upper),
        (LowerLeft, x_left, y_lower),
        (MiddleLeft, x_left, y_middle),
        (UpperMiddle, x_middle, y_upper),
        (LowerMiddle, x_middle, y_lower),
        (MiddleMiddle, x_middle, y_middle),
    ];
    let covered = |x0: i32, y0: i32| {
        curve
            .iter()
            .filter(|&&(x, y)| (x0..=x0 + bw).contains(&x) && (y0..=y0 + bh).contains(&y))
            .count()
    };
    places
        .into_iter()
        .min_by_key(|&(_, x0, y0)| covered(x0, y0))
        .map_or(UpperRight, |(position, ..)| position)
}

/// Marker `shape` (circle, triangle, square, cross, cycling) of radius `r` at pixel offset `at`.
/// Boxed, so a series picks its shape at run time; `'static`, because plotters adds a boxed
/// element to `EmptyElement` only if it outlives every borrow (a higher-ranked bound).
fn marker<DB: DrawingBackend>(
    shape: usize,
    at: (i32, i32),
    r: i32,
    color: RGBColor,
) -> DynElement<'static, DB, (i32, i32)> {
    let (fill, (x, y)) = (color.filled(), at);
    match shape % 4 {
        0 => Circle::new(at, r, fill).into_dyn(),
        1 => TriangleMarker::new(at, r + 1, fill).into_dyn(),
        2 => Rectangle::new([(x - r + 1, y - r + 1), (x + r - 1, y + r - 1)], fill).into_dyn(),
        _ => Cross::new(at, r, color.stroke_width(2)).into_dyn(),
    }
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
mod tests;
