//! Bad weights and checkpoints: truncated files, wrong dtypes, missing, extra and misshaped
//! tensors, another architecture or class count, and a folder given as a weights path.

use std::path::{Path, PathBuf};

use alexnet_wgpu::model::{AlexNet, AlexNetConfig};
use alexnet_wgpu::train::{checkpoint, Optimizer, OptimizerConfig, TrainOptions};

use crate::common::gpu;
use crate::support::{assert_mentions, err_text, rewrite_safetensors, tiny_model, tmpdir};

/// A weights file of the tiny model, saved once per test that asks.
fn saved_weights(dir: &Path) -> (AlexNet, PathBuf) {
    let model = AlexNet::new(gpu(), tiny_model()).unwrap();
    let path = dir.join("w.safetensors");
    model.save_weights(gpu(), &path).unwrap();
    (model, path)
}

#[test]
fn truncated_safetensors_names_the_file() {
    let dir = tmpdir("w-trunc");
    let (model, path) = saved_weights(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.join("cut.safetensors");
    for len in [0, 5, 100, bytes.len() - 1] {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let text = err_text(model.load_weights(gpu(), &cut));
        assert_mentions(&text, &["cut.safetensors", "not a valid safetensors file"]);
    }
}

#[test]
fn wrong_dtype_names_the_tensor_and_the_accepted_dtypes() {
    let dir = tmpdir("w-dtype");
    let (model, path) = saved_weights(&dir);
    let out = dir.join("int.safetensors");
    rewrite_safetensors(&path, &out, |t| {
        let bias = t.iter_mut().find(|x| x.0 == "features.0.bias").unwrap();
        bias.1 = safetensors::Dtype::I32;
    });
    let text = err_text(model.load_weights(gpu(), &out));
    assert_mentions(
        &text,
        &[
            "int.safetensors",
            "'features.0.bias'",
            "I32",
            "expected F32",
        ],
    );
}

#[test]
fn missing_extra_and_misshaped_tensors_are_named() {
    let dir = tmpdir("w-names");
    let (model, path) = saved_weights(&dir);
    let out = dir.join("edited.safetensors");

    rewrite_safetensors(&path, &out, |t| t.retain(|x| x.0 != "classifier.6.bias"));
    let text = err_text(model.load_weights(gpu(), &out));
    assert_mentions(&text, &["missing tensor 'classifier.6.bias'", "[10]"]);

    rewrite_safetensors(&path, &out, |t| {
        t.push((
            "features.99.weight".into(),
            safetensors::Dtype::F32,
            vec![1],
            vec![0; 4],
        ))
    });
    let text = err_text(model.load_weights(gpu(), &out));
    assert_mentions(
        &text,
        &["features.99.weight", "not parameters of this model"],
    );

    rewrite_safetensors(&path, &out, |t| {
        let w = t.iter_mut().find(|x| x.0 == "features.4.weight").unwrap();
        w.2 = vec![w.2[0], w.2[1], w.2[2] * w.2[3], 1];
    });
    let text = err_text(model.load_weights(gpu(), &out));
    assert_mentions(
        &text,
        &[
            "'features.4.weight'",
            "[32, 6, 25, 1] in the file",
            "[32, 6, 5, 5] in the model",
        ],
    );
}

#[test]
fn checkpoint_of_another_architecture_or_class_count_is_refused_by_name() {
    let dir = tmpdir("w-arch");
    let (model, path) = saved_weights(&dir);
    let tv = AlexNet::new(gpu(), AlexNetConfig::torchvision(10).scaled(0.125)).unwrap();
    let text = err_text(tv.load_weights(gpu(), &path));
    assert_mentions(
        &text,
        &[
            "not parameters of this model",
            "TorchVision",
            "another architecture",
        ],
    );

    let five = AlexNet::new(gpu(), AlexNetConfig::original(5).scaled(0.125)).unwrap();
    let text = err_text(five.load_weights(gpu(), &path));
    assert_mentions(
        &text,
        &[
            "'classifier.6.weight'",
            "[10, 512] in the file",
            "[5, 512] in the model",
        ],
    );

    // A plain weights file is not a checkpoint.
    let mut optimizer = Optimizer::new(gpu(), &model, OptimizerConfig::sgd()).unwrap();
    let text = err_text(checkpoint::load(gpu(), &path, &model, &mut optimizer));
    assert_mentions(&text, &["w.safetensors", "weights file, not a checkpoint"]);
}

#[test]
fn fine_tuning_weights_of_the_wrong_shape_name_the_tensor_and_both_shapes() {
    let dir = tmpdir("finetune-shapes");
    let (_, path) = saved_weights(&dir);
    let options = |weights: &Path| TrainOptions {
        data: Some(dir.clone()),
        weights: Some(weights.to_path_buf()),
        ..Default::default()
    };
    // Another class count re-initialises the head: not an error.
    options(&path).config(7).unwrap();
    let narrow = dir.join("narrow.safetensors");
    rewrite_safetensors(&path, &narrow, |tensors| {
        let t = tensors
            .iter_mut()
            .find(|t| t.0 == "classifier.4.weight")
            .unwrap();
        t.2 = vec![t.2[0], t.2[1] / 2];
        t.3.truncate(t.3.len() / 2);
    });
    let text = err_text(options(&narrow).config(7));
    assert_mentions(
        &text,
        &[
            "narrow.safetensors",
            "'classifier.4.weight'",
            "[512, 256]",
            "[512, 512]",
        ],
    );
    // A head whose input width differs is no new class count: an error too.
    let head = dir.join("head.safetensors");
    rewrite_safetensors(&path, &head, |tensors| {
        let t = tensors
            .iter_mut()
            .find(|t| t.0 == "classifier.6.weight")
            .unwrap();
        t.2 = vec![10, 256];
        t.3.truncate(10 * 256 * 4);
    });
    let text = err_text(options(&head).config(7));
    assert_mentions(
        &text,
        &[
            "head.safetensors",
            "'classifier.6.weight'",
            "[10, 256]",
            "[7, 512]",
        ],
    );
    let text = err_text(
        TrainOptions {
            width: Some(0.5),
            ..options(&path)
        }
        .config(7),
    );
    assert_mentions(&text, &["--arch and --width do not go with --weights"]);
}

#[test]
fn a_weights_path_that_is_a_folder_says_so() {
    let dir = tmpdir("w-folder");
    let model = AlexNet::new(gpu(), tiny_model()).unwrap();
    let text = err_text(model.load_weights(gpu(), &dir));
    assert_mentions(
        &text,
        &["w-folder", "is a folder; expected a .safetensors file"],
    );
    let text = err_text(model.save_weights(gpu(), &dir));
    assert_mentions(&text, &["w-folder", "is a folder; expected a file path"]);
}
