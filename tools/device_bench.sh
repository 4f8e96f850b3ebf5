#!/usr/bin/env bash
# Runs `alexnet bench` on a machine with a real GPU and keeps everything it prints.
#
#   tools/device_bench.sh BINARY OUTDIR [extra `alexnet bench` arguments]
#
# Writes OUTDIR/devices.txt, OUTDIR/bench.json and OUTDIR/bench.log (and the files of the
# optional parts below, each with its switch). OPS_TESTS=the ops test binary (its path is what
# `cargo test --release --test ops --no-run` prints) runs the cooperative-matrix GEMM's and mixed
# precision's tests first. The Vulkan loader must be
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
