//! Bad flags: each refused value names the flag and what was expected, through the library
//! and through the `alexnet` binary's exit status and stderr.

use std::path::PathBuf;

use alexnet_wgpu::data::OnBadSample;
use alexnet_wgpu::ops::GemmTiles;
use alexnet_wgpu::runtime::{parse_backend, ShaderChecks};
use alexnet_wgpu::train::trainer::TrainConfig;
use alexnet_wgpu::train::{OnNonFinite, OptimizerConfig};

use crate::support::{assert_mentions, err_text, tiny_config, tmpdir};

#[test]
fn batch_size_zero_names_the_flag() {
    let c = TrainConfig {
        batch_size: 0,
        ..tiny_config(PathBuf::from("x"))
    };
    assert_mentions(
        &err_text(c.validate()),
        &["--batch-size must be at least 1"],
    );
}

#[test]
fn image_size_below_the_smallest_says_the_number() {
    let c = TrainConfig {
        image_size: 40,
        ..tiny_config(PathBuf::from("x"))
    };
    assert_mentions(
        &err_text(c.validate()),
        &[
            "--image-size 40 is below 63",
            "smallest input this architecture accepts",
        ],
    );
}

#[test]
fn learning_rate_nan_or_negative_names_the_flag() {
    for (lr, shown) in [
        (f64::NAN, "--lr NaN"),
        (-0.1, "--lr -0.1"),
        (f64::INFINITY, "--lr inf"),
    ] {
        let c = OptimizerConfig {
            lr,
            ..OptimizerConfig::sgd()
        };
        assert_mentions(
            &err_text(c.validate()),
            &[shown, "expected a finite, non-negative number"],
        );
    }
    let c = OptimizerConfig {
        momentum: 1.5,
        ..OptimizerConfig::sgd()
    };
    assert_mentions(&err_text(c.validate()), &["momentum (1.5)", "[0, 1)"]);
}

#[test]
fn unknown_backend_and_policy_names_list_the_choices() {
    assert_mentions(
        &err_text(parse_backend("cuda")),
        &["unknown backend 'cuda'", "vulkan, metal, dx12, gl"],
    );
    let text = "sometimes".parse::<OnBadSample>().unwrap_err().to_string();
    assert_mentions(&text, &["--on-bad-image 'sometimes'", "'stop' or 'skip'"]);
    let text = "retry".parse::<OnNonFinite>().unwrap_err().to_string();
    assert_mentions(&text, &["--on-nan 'retry'", "'stop' or 'rollback'"]);
    let text = "some".parse::<ShaderChecks>().unwrap_err().to_string();
    assert_mentions(&text, &["--shader-checks 'some'", "full, bounds or off"]);
    let text = "64x64".parse::<GemmTiles>().unwrap_err().to_string();
    assert_mentions(&text, &["--gemm-tiles '64x64'", "BMxBNxBK/TMxTN"]);
    // Well formed, but 5 outputs per invocation is not a shape the shader can take.
    let text = "80x64x16/5x4".parse::<GemmTiles>().unwrap_err().to_string();
    assert_mentions(&text, &["--gemm-tiles 80x64x16/5x4", "TM, TN of 4 or 8"]);
    for good in ["64", "128", "128x64x16/8x4", "64x64x8/4x4"] {
        good.parse::<GemmTiles>().unwrap();
    }
}

/// Runs the `alexnet` binary; returns (success, stderr).
fn alexnet(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_alexnet"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn the_cli_refuses_bad_flags_with_a_nonzero_exit_and_the_flag_named() {
    let out = tmpdir("cli");
    let out = out.to_str().unwrap();
    for (args, want) in [
        (vec!["--batch-size", "0"], "--batch-size must be at least 1"),
        (vec!["--image-size", "32"], "--image-size 32 is below 63"),
        (vec!["--lr", "NaN"], "--lr NaN"),
        (vec!["--lr=-1"], "--lr -1"),
        (vec!["--backend", "cuda"], "unknown backend 'cuda'"),
        (vec!["--on-nan", "maybe"], "--on-nan 'maybe'"),
        (vec!["--freeze", "featurez"], "--freeze 'featurez'"),
        (
            vec!["--freeze", "features,classifier"],
            "every parameter would be frozen and nothing would train",
        ),
        (vec!["--lr-backbone=-1"], "--lr-backbone -1"),
        (
            vec!["--weights", "/nonexistent/w.safetensors"],
            "/nonexistent/w.safetensors",
        ),
        (vec!["--shader-checks", "most"], "--shader-checks 'most'"),
        (
            vec!["--gemm-tiles", "32x32x16/4x4"],
            "--gemm-tiles 32x32x16/4x4",
        ),
        (
            vec!["--data", "/nonexistent/photos"],
            "--data /nonexistent/photos: not a folder",
        ),
    ] {
        let mut all = vec!["train", "--out", out];
        all.extend(&args);
        let (ok, stderr) = alexnet(&all);
        eprintln!("alexnet {}: {}", args.join(" "), stderr.trim());
        assert!(!ok, "alexnet {args:?} succeeded");
        assert!(stderr.contains(want), "alexnet {args:?}: {stderr}");
    }
}
