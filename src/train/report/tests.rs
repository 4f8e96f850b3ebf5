use super::*;

fn run(name: &str, seed: u64, train_top1: &[f64], val_top1: f64) -> VariantResult {
    let epochs = train_top1
        .iter()
        .enumerate()
        .map(|(i, &t)| EpochMetrics {
            epoch: i + 1,
            step: 0,
            lr: 0.0,
            train_loss: 1.0 - t,
            val_loss: 1.0 - val_top1,
            val_top1,
            val_top5: 1.0,
            train_top1: t,
            images_per_sec: 1.0,
            gpu_wait_secs: 0.0,
            epoch_secs: 1.0,
            skipped_samples: 0,
        })
        .collect();
    VariantResult {
        name: name.into(),
        summary: String::new(),
        seed,
        device: None,
        epochs,
        wall_secs: 1.0,
        train_eval: None,
    }
}

fn claim(better: &str, worse: &str, metric: Metric) -> Claim {
    Claim {
        text: "claim".into(),
        metric,
        better: Some(better.into()),
        worse: Some(worse.into()),
        among: None,
    }
}

#[test]
fn a_claim_needs_a_gap_of_two_standard_deviations() {
    // a: 0.80, 0.82, 0.84 (σ 0.02); b: 0.70, 0.72, 0.74 (σ 0.02): gap 0.10 > 0.04.
    let mut results: Vec<VariantResult> = [0.80, 0.82, 0.84]
        .iter()
        .enumerate()
        .map(|(i, &v)| run("a", i as u64, &[0.5, 0.8], v))
        .collect();
    results.extend(
        [0.70, 0.72, 0.74]
            .iter()
            .enumerate()
            .map(|(i, &v)| run("b", i as u64, &[0.6, 0.7], v)),
    );
    // c: 0.81, 0.83, 0.85 — within 2σ of a.
    results.extend(
        [0.81, 0.83, 0.85]
            .iter()
            .enumerate()
            .map(|(i, &v)| run("c", i as u64, &[0.7, 0.9], v)),
    );
    let v = group(&results);
    let says = |c: Claim| verdict(&c, &v);
    assert!(says(claim("a", "b", Metric::FinalTop1)).ends_with("**supported**"));
    assert!(says(claim("b", "a", Metric::FinalTop1)).contains("**contradicted"));
    assert!(says(claim("a", "c", Metric::FinalTop1)).ends_with("**no clear difference**"));
    // Lower is better for losses: b's val loss is higher.
    assert!(says(claim("a", "b", Metric::FinalValLoss)).ends_with("**supported**"));
    // One run of a side has no spread: its gap is not judged, however large.
    let one = group(&results[2..4]);
    let says_one = |c: Claim| verdict(&c, &one);
    assert!(says_one(claim("a", "b", Metric::FinalTop1))
        .ends_with("**not judged: one run, no spread to judge the difference by**"));
    let among = Claim {
        better: None,
        worse: None,
        among: Some(vec!["a".into(), "b".into()]),
        ..claim("a", "b", Metric::FinalTop1)
    };
    assert!(says_one(among).contains("**not judged"));
    // Figure 1: a crosses 75 % train top-1 between epoch 1 (50 %) and 2 (80 %), at 1 +
    // 25/30; c between 70 % and 90 %, at 1.25; b never (counts 3); a run already there
    // after its first epoch at 1.
    let to_75 = |r: &VariantResult| Metric::EpochsTo25PctTrainError.value(r);
    assert!((to_75(&results[0]) - (1.0 + 0.25 / 0.30)).abs() < 1e-12);
    assert!((to_75(&results[6]) - 1.25).abs() < 1e-12);
    assert_eq!(to_75(&results[3]), 3.0);
    assert_eq!(to_75(&run("early", 0, &[0.8, 0.9], 0.8)), 1.0);
    // The curve's last step: only validation top-1 counts.
    let mut rising = run("d", 0, &[0.5, 0.6, 0.7], 0.80);
    rising.epochs[1].val_top1 = 0.75;
    assert!((Metric::LastEpochGain.value(&rising) - 0.05).abs() < 1e-12);
    assert!(Metric::LastEpochGain
        .value(&run("e", 0, &[0.5], 0.8))
        .is_nan());
    // Steadiness counts only falls: a flat curve has none, a zig-zag its drops.
    assert_eq!(Metric::ValTop1Drops.value(&results[0]), 0.0);
    assert!((Metric::ValTop1Drops.value(&rising) - 0.05).abs() < 1e-12);
    let mut zigzag = run("z", 0, &[0.5, 0.6, 0.7, 0.8], 0.80);
    for (m, v) in zigzag.epochs.iter_mut().zip([0.70, 0.65, 0.75, 0.72]) {
        m.val_top1 = v;
    }
    assert!((Metric::ValTop1Drops.value(&zigzag) - 0.08).abs() < 1e-12);
    // Training loss 1 − train top-1 here: the mean over 0.5, 0.4, 0.3.
    assert!((Metric::MeanTrainLoss.value(&rising) - 0.4).abs() < 1e-12);
    assert!(v[1]
        .cell(Metric::EpochsTo25PctTrainError)
        .contains("(0/3 reached)"));
    let among = Claim {
        among: Some(vec!["a".into(), "b".into(), "c".into()]),
        better: None,
        worse: None,
        ..claim("a", "b", Metric::FinalTop1)
    };
    let text = says(among);
    assert!(
        text.ends_with("**no clear difference between c and a**"),
        "{text}"
    );
    // Identical runs: no difference, not a "contradiction" at 2σ = 0.
    assert!(says(claim("a", "a", Metric::FinalTop1)).ends_with("**no clear difference**"));
    assert!(says(claim("b", "b", Metric::EpochsTo25PctTrainError)).contains("**not measured**"));
    // The generalization gap needs the final network's top-1 on training images, and
    // ignores the training batches' own top-1.
    let mut evaluated = run("f", 0, &[0.5, 0.99], 0.80);
    evaluated.train_eval = Some(crate::train::trainer::Evaluation {
        loss: 0.3,
        top1: 0.90,
        top5: 1.0,
        samples: 100,
    });
    assert!((Metric::Overfit.value(&evaluated) - 0.10).abs() < 1e-12);
    assert!(Metric::Overfit.value(&results[0]).is_nan());
    assert_eq!(v[0].cell(Metric::Overfit), "–");
    assert!(says(claim("a", "b", Metric::Overfit)).contains("not measured"));
    assert!(claim("a", "zz", Metric::FinalTop1)
        .check(&["a", "b"])
        .unwrap_err()
        .contains("'zz'"));
}

#[test]
fn a_variant_that_did_not_train_gets_a_validation_plot_without_it() {
    let results = vec![
        run("a", 0, &[0.5, 0.8], 0.85),
        run("flat", 0, &[0.1, 0.1], 0.10),
        run("b", 0, &[0.5, 0.7], 0.80),
    ];
    let with_flat = figures(&group(&results));
    let files: Vec<&str> = with_flat.iter().map(|f| f.file).collect();
    assert_eq!(
        files,
        [
            "loss.png",
            "train_loss.png",
            "train_loss_trained.png",
            "top1.png",
            "top1_trained.png",
            "top5.png",
            "train_top1.png"
        ]
    );
    let zoomed = &with_flat[4];
    assert_eq!(zoomed.title, "Validation top-1 without flat");
    let shown: Vec<&str> = zoomed
        .chart
        .series
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(shown, ["a", "b"]);
    // b keeps the colour and marker it has in the plots with every variant.
    assert_eq!(zoomed.chart.series[1].style, Some(2));
    assert_eq!(with_flat[0].chart.series[2].style, Some(2));
    // Every variant trained: the plots are the usual five.
    let all_trained = figures(&group(&results[..1]));
    assert_eq!(all_trained.len(), PLOTS.len());
    assert!(all_trained
        .iter()
        .all(|f| !f.file.ends_with("_trained.png")));
}

/// The file's description and conclusions are Markdown: the HTML report renders their lists,
/// links and emphasis, and escapes what would otherwise be markup.
#[test]
fn the_files_markdown_becomes_html() {
    let html =
        markdown_html("See [the check](../check.md).\n\n- **ReLU**: faster\n- tanh < ReLU\n");
    assert!(
        html.contains(r#"<a href="../check.md">the check</a>"#),
        "{html}"
    );
    assert!(
        html.contains("<li><strong>ReLU</strong>: faster</li>"),
        "{html}"
    );
    assert!(html.contains("<li>tanh &lt; ReLU</li>"), "{html}");
}
