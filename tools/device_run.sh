#!/usr/bin/env bash
# The one script a lent GPU machine runs, from the repository's root, with the kit that
# tools/device_kit.sh packed here (carried as .device):
#
#   bash tools/device_run.sh .device "$OUT" ours    # tools/device_bench.sh with our binaries
#   bash tools/device_run.sh .device "$OUT" burn    # tools/burn_compare.py: Burn beside ours
#
# Each part fits one device call (under 10 minutes on an H100); run `ours` first. It installs
# the carried Vulkan loader, unpacks the binaries into /tmp/kit, points the test binaries'
# compiled-in fixture path at this checkout, and finds NVIDIA's Vulkan driver.
set -uo pipefail
kit=$1
out=$2
part=${3:-ours}
# A device call brings back at most 8 files from $OUT, so the part's files are written here
# and come back as one archive, $OUT/PART.tar.gz (its log is also the call's output).
results=/tmp/results-$part
mkdir -p "$out" "$results"
trap 'tar czf "$out/$part.tar.gz" -C /tmp "results-$part"' EXIT
# A device call is killed at 600 s, and a killed script packs nothing: stop the part's work
# earlier (PART_LIMIT seconds) so that what it measured still comes back.
limit=${PART_LIMIT:-540}

if ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in "$kit"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
if [ -z "${VK_DRIVER_FILES:-}" ]; then
    for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
        /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
        if [ -e "$f" ]; then export VK_DRIVER_FILES=$f; break; fi
    done
fi
bin=/tmp/kit
mkdir -p "$bin"
for f in "$kit"/*.gz; do
    name=$(basename "$f" .gz)
    gunzip -c "$f" > "$bin/$name"
    chmod +x "$bin/$name"
done
manifest=$(cat "$kit/manifest_dir")
if [ ! -e "$manifest/tests/fixtures" ]; then
    mkdir -p "$(dirname "$manifest")"
    ln -sfn "$PWD" "$manifest"
fi

case "$part" in
ours)
    # Arguments after the part go to `alexnet bench`.
    OPS_TESTS=$bin/ops-tests MIXED_TESTS=$bin/mixed-tests timeout "$limit" \
        bash tools/device_bench.sh "$bin/alexnet" "$results" "${@:4}"
    ;;
burn)
    if [ ! -x "$bin/burn-bench" ]; then
        echo "the kit has no burn-bench (tools/device_kit.sh with BURN_BENCH set)"
        exit 1
    fi
    # The full-size original AlexNet at 224x224, inference at batch 1 to 128 and training at
    # 32 and 128 (Burn's first training calls take 70-100 s each on an H100), with the
    # sanity rule that refuses a figure above the card's fp32 peak (67 TFLOP/s for an H100
    # or H200 SXM; FP32_PEAK_TFLOPS for others).
    # Arguments after the part replace these sizes (a smoke test on a CPU driver, say).
    sizes=(--arch original --inference-batches 1,8,32,128 --training-batches 32,128 --iterations 5)
    [ $# -gt 3 ] && sizes=("${@:4}")
    timeout "$limit" python3 tools/burn_compare.py "${sizes[@]}" --alexnet "$bin/alexnet" \
        --burn-bench "$bin/burn-bench" --fp32-peak-tflops "${FP32_PEAK_TFLOPS:-67}" \
        --out-dir "$results" --json "$results/ratios.json" --timeout 500 2>&1 | tee "$results/burn.log"
    ;;
*)
    echo "part '$part': expected 'ours' or 'burn'"
    exit 2
    ;;
esac
