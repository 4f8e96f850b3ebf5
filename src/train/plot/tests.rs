//! The plots' tests: edge-case charts, ticks, legends and guides.

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
            let lr = 0.01 * [1.0, 0.1, 0.01][usize::from(epoch > 10) + usize::from(epoch > 16)];
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

/// Decodes the PNG and checks its size, that it is not one flat colour and that some
/// coloured line or marker is drawn.
fn check_png(path: &Path, width: u32, height: u32) {
    let name = path.display();
    let img = image::open(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let img = img.to_rgb8();
    assert_eq!(img.dimensions(), (width, height), "{name}");
    let first = img.get_pixel(0, 0);
    assert!(img.pixels().any(|p| p != first), "{name} is one colour");
    let spread = |p: &&image::Rgb<u8>| p.0.iter().max().unwrap() - p.0.iter().min().unwrap();
    let colored = img.pixels().filter(|p| spread(p) > 60).count();
    assert!(colored > 100, "{name}: no coloured line or marker");
}

fn check_training(metrics: &[EpochMetrics], name: &str) {
    let dir = scratch_dir(name);
    let paths = plot_training(metrics, &dir).unwrap();
    let names: Vec<_> = paths.iter().map(|p| p.file_name().unwrap()).collect();
    assert_eq!(names, ["loss.png", "top1.png", "top5.png", "lr.png"]);
    for p in &paths {
        check_png(p, DEFAULT_WIDTH, DEFAULT_HEIGHT);
    }
    let files = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name());
    let leftovers: Vec<_> = files
        .filter(|n| n.to_string_lossy().contains(".tmp"))
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

/// An untitled chart, in percent unless `log_y`.
fn chart(series: Vec<Series>, log_y: bool) -> Chart {
    let (title, x_label, y_label) = Default::default();
    let y_percent = !log_y;
    Chart {
        title,
        x_label,
        y_label,
        series,
        y_percent,
        log_y,
        guides: Vec::new(),
    }
}

fn series(name: &str, points: &[(f64, f64)]) -> Series {
    let (name, points) = (name.into(), points.to_vec());
    Series {
        name,
        points,
        style: None,
    }
}

/// How many pixels of `chart`, drawn at 640x480, are exactly `color`.
fn pixels_of(chart: &Chart, color: RGBColor) -> usize {
    let (w, h) = (640, 480);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    draw(chart, &mut rgb, w, h).unwrap();
    rgb.chunks(3)
        .filter(|p| *p == [color.0, color.1, color.2])
        .count()
}

/// A guide is a dashed line across the plot at its level, drawn even where no curve
/// reaches it; one a log axis cannot show is left out, not an error.
#[test]
fn guides_draw_across_the_plot() {
    let guide_pixels = |c: &Chart| pixels_of(c, GUIDE);
    // (A few pixels of antialiased text share the guide's grey.)
    let low = vec![series("s", &[(1.0, 0.1), (2.0, 0.2)])];
    let mut c = chart(low.clone(), false);
    let without = guide_pixels(&c);
    c.guides = vec![("level".into(), 0.75)];
    // Dashes over most of a plot about 500 pixels wide, 2 pixels thick, and the legend's.
    let with = guide_pixels(&c);
    assert!(with > without + 300, "{without} -> {with}");
    let mut log = chart(low, true);
    let without = guide_pixels(&log);
    log.guides = vec![("below zero".into(), -1.0)];
    assert_eq!(guide_pixels(&log), without);
}

/// A series drawn in the palette slot its `style` names, not its index: a chart that leaves
/// some series out keeps the others' colours.
#[test]
fn a_series_style_picks_its_colour() {
    let mut c = chart(vec![series("s", &[(1.0, 0.1), (2.0, 0.2)])], false);
    let (first, third) = (COLORS[0], COLORS[2]);
    assert!(pixels_of(&c, first) > 100);
    assert_eq!(pixels_of(&c, third), 0);
    c.series[0].style = Some(2);
    assert_eq!(pixels_of(&c, first), 0);
    assert!(pixels_of(&c, third) > 100);
}

#[test]
fn all_nan_constant_and_empty_charts_render() {
    let dir = scratch_dir("edge");
    let one = |points: &[(f64, f64)], log_y| chart(vec![series("s", points)], log_y);
    let flat: Vec<_> = (1..=5).map(|x| (f64::from(x), 0.3)).collect();
    let tiny = [(1.0, 1e-320), (2.0, 3e-320)];
    let cases = [
        ("flat.png", one(&flat, false)),
        ("flat_log.png", one(&flat, true)),
        ("zero.png", one(&[(1.0, 0.0), (2.0, 0.0)], false)),
        (
            "all_nan.png",
            one(&[(1.0, f64::NAN), (f64::INFINITY, 1.0)], false),
        ),
        ("nonpositive_log.png", one(&[(1.0, -1.0), (2.0, 0.0)], true)),
        ("empty.png", chart(vec![], false)),
        ("huge.png", one(&[(-1e308, 1e308), (1e308, -1e308)], false)),
        ("tiny.png", one(&tiny, false)),
        ("tiny_log.png", one(&tiny, true)),
        ("narrow.png", one(&[(1.0, 1e15), (2.0, 1e15 + 0.5)], false)),
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
    let points = [
        (1.0, 1.0),
        (2.0, f64::NAN),
        (3.0, 3.0),
        (4.0, 4.0),
        (5.0, -1.0),
        (6.0, 6.0),
    ];
    let cleaned = clean(&chart(vec![series("s", &points)], true));
    let runs: Vec<Vec<f64>> = cleaned[0]
        .runs
        .iter()
        .map(|r| r.iter().map(|p| p.0).collect())
        .collect();
    assert_eq!(runs, vec![vec![1.0], vec![3.0, 4.0], vec![6.0]]);
    assert_eq!(cleaned[0].points.len(), 4);
    assert_eq!(cleaned[0].points[1], (3.0, 3.0));
}

#[test]
fn too_small_is_refused() {
    let small = render_png(&chart(vec![], false), Path::new("/tmp/never.png"), 10, 10);
    assert!(matches!(small, Err(Error::Config(_))));
}

#[test]
fn tick_labels() {
    assert_eq!(tick_label(0.25, 1e-9, true), "25%");
    assert_eq!(tick_label(0.255, 1e-9, true), "25.5%");
    assert_eq!(tick_label(2.5, 1e-9, false), "2.5");
    assert_eq!(tick_label(-1e-17, 1e-9, false), "0");
    assert_eq!(tick_label(20.0, 1e-9, false), "20");
    assert_eq!(tick_label(0.002, 0.0, false), "0.002");
    assert_eq!(tick_label(1e-5, 0.0, false), "1e-5");
    assert_eq!(tick_label(5e-5, 0.0, false), "5e-5");
    assert_eq!(tick_label(1.0, 0.0, false), "1");
}

/// Plotters' ticks on an epoch axis are whole numbers for any run length, and its log axis
/// labels at least two powers of ten.
#[test]
fn epoch_and_log_ticks() {
    let ticks = |epochs: u32| {
        let (range, labels) = x_axis(&(1..=epochs).map(f64::from).collect::<Vec<_>>());
        RangedCoordf64::from(range).key_points(labels)
    };
    for epochs in [1, 2, 3, 7, 20, 90] {
        let t = ticks(epochs);
        assert!(
            !t.is_empty() && t.iter().all(|t| t.fract() == 0.0),
            "{epochs}: {t:?}"
        );
    }
    assert_eq!(
        ticks(20),
        (1..=10).map(|k| f64::from(2 * k)).collect::<Vec<_>>()
    );
    for lr in [[0.01, 0.01], [1e-4, 0.01], [3e-4, 5e-4]] {
        let t = LogCoord::from(y_log(&lr).log_scale()).key_points(Y_LABELS);
        assert!(t.len() >= 2, "{lr:?}: {t:?}");
    }
}

/// The legend goes where the curves leave room: below curves that end high, above falling
/// ones, between two bands, to the left of curves crowding the right.
#[test]
fn the_legend_avoids_the_curves() {
    use SeriesLabelPosition::*;
    let area = (0, 0, 800, 600);
    let size = (200, 150);
    let line = |y: i32, xs: std::ops::Range<i32>| xs.map(move |x| (x, y));
    let high: Vec<_> = line(50, 0..800).collect();
    let low: Vec<_> = line(550, 0..800).collect();
    let bands: Vec<_> = high.iter().chain(&low).copied().collect();
    let mut right: Vec<_> = (0..600).map(|y| (700, y)).collect();
    right.extend((0..600).map(|y| (500, y)));
    let place = |curve: &[(i32, i32)]| legend_position(curve, area, size);
    assert!(matches!(place(&high), LowerRight));
    assert!(matches!(place(&low), UpperRight));
    assert!(matches!(place(&bands), MiddleRight));
    assert!(matches!(place(&right), LowerLeft | UpperLeft | MiddleLeft));
    assert!(matches!(place(&[]), LowerRight));
}

/// Writes the example plots to /tmp/plot_check/ for a person to look at:
/// `cargo test --lib plot::tests::example_plots -- --ignored`.
#[test]
#[ignore]
fn example_plots() {
    let dir = Path::new("/tmp/plot_check");
    for n in [20, 1, 2, 100] {
        plot_training(&run(n), &dir.join(n.to_string())).unwrap();
    }
    let mut nan = run(8);
    nan[3].train_loss = f64::NAN;
    nan[5].val_top1 = f64::NAN;
    plot_training(&nan, &dir.join("nan")).unwrap();
    plot_training(&[], &dir.join("empty")).unwrap();
    let flat: Vec<_> = (0..=10).map(|x| (f64::from(x) * 0.5, 0.3)).collect();
    let mut c = chart(
        vec![series("flat", &flat), series("lone point", &[(2.25, 0.31)])],
        false,
    );
    c.title = "A flat line and a lone point".into();
    render_png(&c, &dir.join("flat.png"), DEFAULT_WIDTH, DEFAULT_HEIGHT).unwrap();
}
