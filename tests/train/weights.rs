//! Weights written by PyTorch and read back by it, weight-file errors, initialisation.

use std::path::{Path, PathBuf};

use alexnet_wgpu::model::{AlexNet, AlexNetConfig, Init};

use crate::common::{gpu, Fixture, Rng};
use crate::{eval_logits, fixture_path, scratch_dir, state_dict_config};

#[test]
fn weights_written_by_pytorch_load_and_give_pytorchs_logits() {
    let gpu = gpu();
    let model = AlexNet::new(gpu, state_dict_config()).unwrap();
    model
        .load_weights(gpu, &fixture_path("pytorch_state_dict.safetensors"))
        .unwrap();
    let io = Fixture::load("pytorch_state_dict_logits");
    let logits = eval_logits(gpu, &model, &io.f32("input"), 2, 67);
    io.assert_matches("logits", &logits, 10.0, 1e-6);
}

#[test]
fn weights_written_here_load_in_pytorch() {
    let gpu = gpu();
    let model = AlexNet::new(gpu, state_dict_config()).unwrap();
    model.initialize(gpu, Init::PyTorch, 7).unwrap();
    let dir = scratch_dir("export");
    let weights = dir.join("weights.safetensors");
    model.save_weights(gpu, &weights).unwrap();

    // Reloading our own file gives the same parameters, bit for bit.
    let again = AlexNet::new(gpu, state_dict_config()).unwrap();
    again.load_weights(gpu, &weights).unwrap();
    for (a, b) in model.params.iter().zip(&again.params) {
        assert_eq!(
            a.value.read_f32(gpu).unwrap(),
            b.value.read_f32(gpu).unwrap(),
            "{}",
            a.name
        );
    }

    // PyTorch loads it with strict=True and computes the same logits (when PyTorch is
    // installed; CI has no PyTorch, so there this half reports itself skipped).
    let input = Rng::new(5).normals(2 * 3 * 67 * 67, 1.0);
    let logits = eval_logits(gpu, &model, &input, 2, 67);
    let io = dir.join("io.safetensors");
    write_io(&io, &input, &logits);
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools");
    let has_torch = std::process::Command::new("python3")
        .args(["-c", "import torch, safetensors"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_torch {
        eprintln!("skipped the PyTorch half: python3 with torch and safetensors is not installed");
        return;
    }
    let out = std::process::Command::new("python3")
        .arg(tools.join("check_weights.py"))
        .args([&weights, &io])
        .current_dir(&tools)
        .output()
        .unwrap();
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "PyTorch rejected or disagreed with our weights file"
    );
}

fn write_io(path: &Path, input: &[f32], logits: &[f32]) {
    use safetensors::tensor::{Dtype, TensorView};
    let cfg = state_dict_config();
    let config = format!(
        r#"{{"channels": {:?}, "fc": {}, "classes": {}}}"#,
        cfg.channels, cfg.fc_width, cfg.classes
    );
    let input_bytes: Vec<u8> = bytemuck::cast_slice(input).to_vec();
    let logit_bytes: Vec<u8> = bytemuck::cast_slice(logits).to_vec();
    let views = vec![
        (
            "input",
            TensorView::new(Dtype::F32, vec![2, 3, 67, 67], &input_bytes).unwrap(),
        ),
        (
            "logits",
            TensorView::new(Dtype::F32, vec![2, 10], &logit_bytes).unwrap(),
        ),
    ];
    let meta = std::collections::HashMap::from([("config".to_string(), config)]);
    safetensors::serialize_to_file(views, Some(meta), path).unwrap();
}

#[test]
fn weight_file_errors_name_the_tensor_and_both_shapes() {
    let gpu = gpu();
    let dir = scratch_dir("bad-weights");
    let small = AlexNet::new(gpu, state_dict_config()).unwrap();
    let path = dir.join("w.safetensors");
    small.save_weights(gpu, &path).unwrap();

    let wider = AlexNet::new(
        gpu,
        AlexNetConfig {
            fc_width: 32,
            ..state_dict_config()
        },
    )
    .unwrap();
    let text = wider.load_weights(gpu, &path).err().unwrap().to_string();
    assert!(
        text.contains("classifier.1.weight")
            && text.contains("[64, 576]")
            && text.contains("[32, 576]"),
        "{text}"
    );

    let tv = AlexNet::new(
        gpu,
        AlexNetConfig {
            channels: [8, 16, 24, 24, 16],
            fc_width: 64,
            ..AlexNetConfig::torchvision(10)
        },
    )
    .unwrap();
    let text = tv.load_weights(gpu, &path).err().unwrap().to_string();
    assert!(
        text.contains("features.") && text.contains("not parameters of this model"),
        "{text}"
    );

    let text = small.load_weights(gpu, &dir).err().unwrap().to_string();
    assert!(text.contains("is a folder"), "{text}");

    let bytes = std::fs::read(&path).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let text = small
        .load_weights(gpu, &truncated)
        .err()
        .unwrap()
        .to_string();
    assert!(
        text.contains("truncated.safetensors") && text.contains("not a valid safetensors"),
        "{text}"
    );

    let text = small
        .load_weights(gpu, &dir.join("missing.safetensors"))
        .err()
        .unwrap()
        .to_string();
    assert!(text.contains("missing.safetensors"), "{text}");
}

#[test]
fn initialisation_follows_pytorch_and_the_paper_and_is_reproducible() {
    let gpu = gpu();
    let model = AlexNet::new(gpu, state_dict_config()).unwrap();
    model.initialize(gpu, Init::Paper, 3).unwrap();
    let ones = [
        "features.4.bias",
        "features.10.bias",
        "features.12.bias",
        "classifier.1.bias",
        "classifier.4.bias",
    ];
    for p in &model.params {
        let v = p.value.read_f32(gpu).unwrap();
        if p.name.ends_with("bias") {
            let want = if ones.contains(&p.name.as_str()) {
                1.0
            } else {
                0.0
            };
            assert!(
                v.iter().all(|&b| b == want),
                "{}: paper bias should be {want}",
                p.name
            );
        } else {
            let std =
                (v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            assert!(
                (std - 0.01).abs() < 0.002,
                "{}: paper weight std {std}",
                p.name
            );
        }
    }
    model.initialize(gpu, Init::PyTorch, 3).unwrap();
    let w = model
        .param("classifier.1.weight")
        .unwrap()
        .value
        .read_f32(gpu)
        .unwrap();
    let bound = 1.0 / (576f32).sqrt();
    assert!(w.iter().all(|v| v.abs() <= bound) && w.iter().any(|v| v.abs() > 0.9 * bound));
    let again = AlexNet::new(gpu, state_dict_config()).unwrap();
    again.initialize(gpu, Init::PyTorch, 3).unwrap();
    assert_eq!(
        w,
        again
            .param("classifier.1.weight")
            .unwrap()
            .value
            .read_f32(gpu)
            .unwrap()
    );
}
