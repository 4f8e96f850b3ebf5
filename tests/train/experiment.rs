//! The experiment runner (`alexnet experiment`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alexnet_wgpu::data::{Dataset, Synthetic};
use alexnet_wgpu::model::AlexNetConfig;
use alexnet_wgpu::runtime::Gpu;
use alexnet_wgpu::train::trainer::{self, TrainConfig};

use crate::common::gpu;
use crate::{demo_config, never, run_train, scratch_dir};

/// The experiment runner: every variant at every seed, a killed experiment continued where it
/// stopped (finished runs read back, not retrained; the interrupted one resumed from its
/// checkpoint to the numbers of an uninterrupted run; the unstarted one trained), the runs
/// spread over two devices (two instances of the adapter), and the report aggregated over
/// seeds.
#[test]
fn an_experiment_resumes_where_it_stopped_and_spreads_runs_over_devices() {
    use alexnet_wgpu::runtime::GpuOptions;
    use alexnet_wgpu::train::experiment::{self, Experiment, Job};

    let out = scratch_dir("experiment");
    let toml = format!(
        "seeds = [3, 4]\nconclusions = \"Too small to tell.\"\n[data]\nout = {:?}\n[[variant]]\nname = \"relu\"\n\
         [[variant]]\nname = \"tanh\"\nactivation = \"tanh\"\n\
         [[claim]]\ntext = \"ReLU trains faster\"\nmetric = \"final_train_loss\"\n\
         better = \"relu\"\nworse = \"tanh\"\n",
        out.display().to_string()
    );
    let exp = Experiment::parse(&toml).unwrap();
    assert_eq!(exp.seeds(), vec![3, 4]);
    let train_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(32, 64, 3, 0));
    let val_set: Arc<dyn Dataset> = Arc::new(Synthetic::new(16, 64, 3, 1));
    let config = |name: &str, seed: u64, dir: PathBuf| {
        let mut model = AlexNetConfig::original(10).scaled(0.0625);
        if name == "tanh" {
            model.activation = alexnet_wgpu::model::Activation::Tanh;
        }
        TrainConfig {
            model,
            batch_size: 8,
            seed,
            log_every: 1,
            ..demo_config(dir, 2)
        }
    };
    let jobs = |max_steps_of_third: Option<u64>| -> Vec<Job> {
        let mut jobs = Vec::new();
        for v in exp.variant_options() {
            let name = v.name.clone().unwrap();
            for seed in exp.seeds() {
                let dir = out.join(&name).join(format!("seed-{seed}"));
                jobs.push(Job {
                    name: name.clone(),
                    summary: format!("{name} at seed {seed}"),
                    seed,
                    config: config(&name, seed, dir),
                });
            }
        }
        jobs[2].config.max_steps = max_steps_of_third;
        jobs
    };

    // "Killed" during the third run (tanh, seed 3), 6 of its 8 steps done: the fourth never
    // starts.
    let first = experiment::run(
        std::slice::from_ref(gpu()),
        &exp,
        &jobs(Some(6)),
        train_set.clone(),
        val_set.clone(),
        never(),
    )
    .unwrap();
    assert_eq!(first.len(), 3);
    assert!(experiment::finished(&jobs(None)[2]).is_none());
    assert!(!out.join("tanh/seed-4").exists());
    assert_eq!(
        first[2].train_eval, None,
        "a killed run has no final network"
    );
    let early = trainer::evaluate_checkpoint(gpu(), &jobs(None)[2].config, &val_set)
        .unwrap_err()
        .to_string();
    assert!(
        early.contains("tanh/seed-3/checkpoint.safetensors") && early.contains("epoch 2, batch 2"),
        "{early}"
    );

    // Continued on two devices.
    let second_gpu = Gpu::new(&GpuOptions::default()).unwrap();
    let gpus = [Gpu::new(&GpuOptions::default()).unwrap(), second_gpu];
    let second = experiment::run(
        &gpus,
        &exp,
        &jobs(None),
        train_set.clone(),
        val_set.clone(),
        never(),
    )
    .unwrap();
    assert_eq!(second.len(), 4);
    for (a, b) in first[..2].iter().zip(&second[..2]) {
        // Read back, not retrained: even the measured times are the same.
        assert_eq!(b.device, None, "'{}' seed {} was retrained", b.name, b.seed);
        assert_eq!(a.epochs, b.epochs);
    }
    let trained: Vec<usize> = second[2..].iter().map(|r| r.device.unwrap()).collect();
    assert!(
        trained.contains(&0) && trained.contains(&1),
        "the two remaining runs were not spread over both devices: {trained:?}"
    );
    for r in &second {
        assert_eq!(r.epochs.len(), 2, "'{}' seed {}", r.name, r.seed);
    }

    // Every finished run's final network is evaluated on as many training images as the
    // validation set has, once: the figure is saved with the run and read back after.
    let probe = experiment::train_probe(train_set.clone(), val_set.len(), 0).unwrap();
    for (r, job) in second.iter().zip(jobs(None)) {
        let e = r.train_eval.expect("every finished run is evaluated");
        assert_eq!(e.samples, probe.len());
        assert_eq!(
            experiment::saved_train_evaluation(&job, probe.len()),
            Some(e)
        );
        assert_eq!(experiment::saved_train_evaluation(&job, 99), None);
        assert!(!experiment::needs_train_evaluation(&job, probe.len()));
        assert_eq!(
            experiment::train_evaluation(None, &job, &probe).unwrap(),
            Some(e)
        );
    }
    // Evaluating a run's checkpoint on the validation set repeats its last validation.
    let again = trainer::evaluate_checkpoint(gpu(), &jobs(None)[3].config, &val_set).unwrap();
    let last = second[3].epochs.last().unwrap();
    assert_eq!(
        (again.loss, again.top1, again.top5, again.samples),
        (last.val_loss, last.val_top1, last.val_top5, 16)
    );

    // The resumed run ends where an uninterrupted one does.
    let whole = run_train(
        gpu(),
        &config("tanh", 3, scratch_dir("experiment-whole")),
        &train_set,
        &val_set,
        None,
    );
    let (a, b) = (
        whole.epochs.last().unwrap(),
        second[2].epochs.last().unwrap(),
    );
    assert_eq!(
        (a.train_loss, a.val_loss, a.val_top1),
        (b.train_loss, b.val_loss, b.val_top1)
    );

    // A run with only its metrics (as committed to a repository) is reported without the
    // figure instead of failing the report.
    let bare = &jobs(None)[0];
    std::fs::remove_file(bare.config.checkpoint_path()).unwrap();
    std::fs::remove_file(bare.config.out_dir.join("train-evaluation.json")).unwrap();
    assert!(!experiment::needs_train_evaluation(bare, probe.len()));
    assert_eq!(
        experiment::train_evaluation(Some(gpu()), bare, &probe).unwrap(),
        None
    );

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| relu | 2 |"), "{report}");
    assert!(report.contains("| tanh | 2 |"), "{report}");
    assert!(
        report.contains("**ReLU trains faster** — final train loss"),
        "{report}"
    );
    assert!(
        report.contains("## What the results say\n\nToo small to tell.\n"),
        "{report}"
    );
}

/// `alexnet experiment` with `runs_per_device = 2` trains two runs at once on the one adapter,
/// each on a device of its own; 0 is refused with the key named.
#[test]
fn the_cli_opens_each_adapter_once_per_concurrent_run() {
    let dir = scratch_dir("experiment-cli");
    let file = dir.join("experiment.toml");
    let toml = |runs: usize| {
        format!(
            "seeds = [0, 1]\nruns_per_device = {runs}\n[data]\nout = {:?}\ntrain_size = 16\n\
             val_size = 8\n[train]\nwidth = 0.0625\nepochs = 1\nbatch_size = 8\n\
             [[variant]]\nname = \"a\"\n",
            dir.join("out").display().to_string()
        )
    };
    let alexnet = |text: String| {
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_alexnet"))
            .args(["experiment", "--config", file.to_str().unwrap()])
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let (ok, stdout, stderr) = alexnet(toml(2));
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("1 variants x 2 seeds on 2 device(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("2/2 runs finished"), "{stdout}");
    let (ok, _, stderr) = alexnet(toml(0));
    assert!(!ok);
    assert!(
        stderr.contains("runs_per_device = 0: expected 1 or more"),
        "{stderr}"
    );
}

/// The experiment files the repository ships (docs/experiments/*.toml) load: their keys and
/// values are what the runner reads, every claim names variants the file has, and each
/// variant's options make a valid training configuration.
#[test]
fn the_committed_experiment_files_load() {
    use alexnet_wgpu::train::experiment::Experiment;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no experiment files in {}",
        dir.display()
    );
    for file in files {
        let exp = Experiment::load(&file).unwrap_or_else(|e| panic!("{e}"));
        // Fashion-MNIST's 10 classes: the jobs check every variant's configuration.
        let jobs = exp
            .jobs(10)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(jobs.len(), exp.variants.len() * exp.seeds().len());
    }
}
