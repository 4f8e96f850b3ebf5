//! Stopping a run: SIGTERM writes a checkpoint and says how to resume; SIGKILL at random
//! instants during checkpoint writes never leaves a torn file.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use alexnet_wgpu::atomic_file::write as write_atomic;
use alexnet_wgpu::model::weights;
use alexnet_wgpu::model::{AlexNet, AlexNetConfig};

use crate::common::{gpu, Rng};
use crate::support::{assert_mentions, tmpdir};

#[cfg(unix)]
#[test]
fn sigterm_writes_a_checkpoint_and_exits_0_saying_how_to_resume() {
    let out = tmpdir("sigterm");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_alexnet"))
        .args([
            "train",
            "--width",
            "0.125",
            "--batch-size",
            "4",
            "--train-size",
            "400",
        ])
        .args([
            "--val-size",
            "20",
            "--epochs",
            "50",
            "--workers",
            "1",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The metrics log is created once training (and so the signal handler) has started.
    let started = Instant::now();
    while !out.join("metrics.jsonl").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "training never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!(
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));
    assert_mentions(
        &stdout,
        &[
            "stopped; checkpoint in",
            "Resume with: alexnet train --resume",
        ],
    );
    let model = AlexNet::new(gpu(), AlexNetConfig::original(10).scaled(0.125)).unwrap();
    model
        .load_weights(gpu(), &out.join("checkpoint.safetensors"))
        .unwrap();
}

// =============================================================================================
// A crash during a checkpoint write
// =============================================================================================

const KILL_DIR: &str = "ALEXNET_KILL_TEST_DIR";

/// One "checkpoint" of generation `g`: a tensor of 2M copies of g, with g in the metadata, so
/// a torn file cannot parse or disagrees with itself.
fn generation_file(g: u32) -> Vec<u8> {
    let data: Vec<u8> = (0..2_000_000)
        .flat_map(|_| (g as f32).to_le_bytes())
        .collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2_000_000], &data)
            .unwrap();
    let meta = HashMap::from([("generation".to_string(), g.to_string())]);
    safetensors::serialize([("w", view)], Some(meta)).unwrap()
}

/// The generation in a checkpoint file, checking every value against it.
fn read_generation(path: &Path) -> Result<u32, String> {
    let bytes = weights::read_file(path).map_err(|e| e.to_string())?;
    let (tensors, meta) = weights::parse(path, &bytes).map_err(|e| e.to_string())?;
    let g: u32 = meta["generation"].parse().map_err(|_| "bad metadata")?;
    let (_, values) = &tensors["w"];
    if values.len() != 2_000_000 || values.iter().any(|&v| v != g as f32) {
        return Err(format!("generation {g}: values disagree"));
    }
    Ok(g)
}

/// The child side of the kill test: writes checkpoints in a loop until killed. A no-op unless
/// the parent test starts it with `ALEXNET_KILL_TEST_DIR` set.
#[test]
fn checkpoint_writer_child_process() {
    let Some(dir) = std::env::var_os(KILL_DIR) else {
        return;
    };
    let path = Path::new(&dir).join("checkpoint.safetensors");
    let mut g = read_generation(&path).map_or(0, |g| g + 1);
    loop {
        write_atomic(&path, &generation_file(g)).unwrap();
        g += 1;
    }
}

#[test]
fn killing_a_checkpoint_writer_at_random_instants_never_leaves_a_torn_file() {
    let dir = tmpdir("kill");
    let path = dir.join("checkpoint.safetensors");
    let mut rng = Rng::new(99);
    let kills = 40;
    let mut generations = Vec::new();
    for _ in 0..kills {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "interrupts::checkpoint_writer_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(KILL_DIR, &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + rng.next_u64() % 300));
        child.kill().unwrap(); // SIGKILL: no destructor, no flush, no cleanup
        child.wait().unwrap();
        if path.exists() {
            generations.push(read_generation(&path).unwrap());
        }
    }
    let temps = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count()
    };
    let stale = temps(&dir);
    eprintln!(
        "{kills} kills: every file read back whole; generations {generations:?}; {stale} temp files of killed writers"
    );
    assert!(
        generations.len() >= kills / 2,
        "the children barely wrote anything"
    );
    assert!(generations.windows(2).all(|w| w[0] <= w[1]));
    // The next successful write cleans up what killed writers left.
    write_atomic(&path, &generation_file(1_000_000)).unwrap();
    assert_eq!(read_generation(&path).unwrap(), 1_000_000);
    assert_eq!(temps(&dir), 0, "stale temp files remain");
}
