#!/usr/bin/env bash
# Runs `alexnet bench` on a machine with a real GPU and keeps everything it prints.
#
#   tools/device_bench.sh BINARY OUTDIR [extra `alexnet bench` arguments]
#
# Writes OUTDIR/devices.txt, OUTDIR/bench.json and OUTDIR/bench.log (and the files of the
# optional parts below, each with its switch). OPS_TESTS=the ops test binary (its path is what
# `cargo test --release --test ops --no-run` prints) runs the cooperative-matrix GEMM's and mixed
# precision's tests first, MIXED_TESTS=the `mixed` test binary the mixed-precision training
# tests. tools/device_kit.sh packs all of these for a lent machine and tools/device_run.sh
# runs this script there. The Vulkan loader must be
# installed (libvulkan1); on NVIDIA machines whose ICD file is not in the loader's search path,
# set VK_DRIVER_FILES to the driver's nvidia_icd.json first.
set -uo pipefail
bin=$1
out=$2
shift 2
mkdir -p "$out"
if [ -z "${VK_DRIVER_FILES:-}" ]; then
    for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
        /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
        if [ -e "$f" ]; then export VK_DRIVER_FILES=$f; break; fi
    done
fi
export WGPU_BACKEND=${WGPU_BACKEND:-vulkan}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.txt"
"$bin" devices 2>&1 | tee "$out/devices.txt"
# Correctness first: the cooperative-matrix kernel against the CPU reference and the SIMT
# kernel where the adapter offers a configuration (they print SKIPPED where it does not), and
# the mixed-precision tests, which run it too where it is offered.
if [ -n "${OPS_TESTS:-}" ]; then
    "$OPS_TESTS" coop mixed 2>&1 | tee "$out/coop-tests.log"
fi
# The kernels mixed precision runs (matrix units where offered) against the f16-rounded
# reference, from the binary alone.
"$bin" selftest --precision mixed 2>&1 | tee "$out/selftest-mixed.log"
if [ -n "${MIXED_TESTS:-}" ]; then
    "$MIXED_TESTS" 2>&1 | tee "$out/mixed-tests.log"
fi
# 200 training steps in mixed precision against the same 200 in f32 (same seed) and in f32
# with three other seeds: the full-size original AlexNet at 224x224, batch 128, on the
# generated dataset (10 epochs of 20 steps). tools/compare_runs.py passes when the mixed run's
# training loss is no farther from f32's than the farthest other seed's is: within run-to-run
# noise (MIXED_TRAIN=0 skips it).
if [ "${MIXED_TRAIN:-1}" != 0 ]; then
    for run in "f32 0" "mixed 0" "f32 1" "f32 2" "f32 3"; do
        read -r precision seed <<< "$run"
        dir=$out/train-$precision-seed$seed
        # MIXED_TRAIN_ARGS: another size (a smoke test on a CPU driver, say)
        # shellcheck disable=SC2086
        "$bin" train ${MIXED_TRAIN_ARGS:---width 1 --image-size 224 --batch-size 128 \
            --train-size 2560 --val-size 512 --epochs 10} \
            --precision "$precision" --seed "$seed" --out "$dir" 2>&1 |
            tail -3 | tee -a "$out/mixed-train.log"
        rm -f "$dir/checkpoint.safetensors" # hundreds of MB; the metrics are what counts
    done
    python3 "$(dirname "$0")/compare_runs.py" "$out/train-f32-seed0" "$out/train-mixed-seed0" \
        "$out"/train-f32-seed{1,2,3} 2>&1 | tee -a "$out/mixed-train.log"
fi
RUST_LOG=${RUST_LOG:-alexnet_wgpu=info} "$bin" bench --json "$out/bench.json" "$@" 2>&1 | tee "$out/bench.log"
# With the kernels chosen per layer shape beside the plain and tiled ones, at one inference
# and one training batch: `--autotune quick` (plain or tiled) and `full` (also the GEMM
# kernel and tile shape per layer; the log's "autotune ..." lines say what each chose), each
# from an empty cache (AUTOTUNE=0 skips both).
if [ "${AUTOTUNE:-1}" != 0 ]; then
    for level in quick full; do
        XDG_CACHE_HOME=$(mktemp -d) RUST_LOG=${RUST_LOG:-alexnet_wgpu=info} "$bin" bench \
            --autotune "$level" --inference-batches 32 --training-batches 32 --no-profile \
            --json "$out/bench-autotune-$level.json" 2>&1 | tee "$out/bench-autotune-$level.log"
    done
fi
# Data parallelism and the paper's split with the adapter opened twice (two devices on one
# GPU): what the gradient and activation exchanges cost through host memory on a real bus
# (PARALLEL=0 skips it).
if [ "${PARALLEL:-1}" != 0 ]; then
    "$bin" bench --devices 0,0 --split groups --training-batches 128 \
        --json "$out/parallel.json" 2>&1 | tee "$out/parallel.log"
fi
# Matrix units (`--matrix`, ops::gemm_coop): bench with --precision mixed has a 'tiled' (f32)
# and a 'mixed' row; run once with the matrix units where the adapter offers them and once with
# the SIMT kernel everywhere, at one inference and one training batch (MATRIX=0 skips it). Each
# report's matrix_units says which configuration each row ran on ("off": the SIMT kernel).
if [ "${MATRIX:-1}" != 0 ]; then
    for matrix in auto off; do
        name="bench-mixed-matrix-$matrix"
        RUST_LOG=${RUST_LOG:-alexnet_wgpu=info} "$bin" bench --precision mixed --matrix "$matrix" \
            --inference-batches 32 --training-batches 32 --no-profile \
            --json "$out/$name.json" 2>&1 | tee "$out/$name.log"
    done
fi
