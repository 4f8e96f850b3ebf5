#!/usr/bin/env bash
# Runs `alexnet bench` on a machine with a real GPU and keeps everything it prints.
#
#   tools/device_bench.sh BINARY OUTDIR [extra `alexnet bench` arguments]
#
# Writes OUTDIR/devices.txt, OUTDIR/bench.json and OUTDIR/bench.log. The Vulkan loader must be
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
RUST_LOG=${RUST_LOG:-alexnet_wgpu=info} "$bin" bench --json "$out/bench.json" "$@" 2>&1 | tee "$out/bench.log"
