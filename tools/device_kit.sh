#!/usr/bin/env bash
# Packs what a lent GPU machine needs into .device/ (git-ignored), so that the device run
# builds nothing: the GPU machine starts bare and its minutes are few.
#
#   tools/device_kit.sh            # here, before asking for the machine
#   # then, on the machine, carry [".device"] and run:
#   #   bash tools/device_run.sh .device "$OUT" ours     # our checks and benchmarks
#   #   bash tools/device_run.sh .device "$OUT" burn     # Burn beside ours (tools/burn_compare.py)
#
# .device/ gets, stripped and gzipped: the release `alexnet`, the `ops` and `mixed` test
# binaries (the cooperative-matrix and mixed-precision tests), and `burn-bench` where
# BURN_BENCH names a built one (tools/burn-bench; its build takes long, so it is not built
# here); the Vulkan loader's .debs for x86-64 (a bare machine has no libvulkan.so.1),
# downloaded with this machine's own apt sources; and the path the test binaries look for
# their fixtures under (CARGO_MANIFEST_DIR, compiled in). About 40 MiB with burn-bench, under
# the 64 MiB a device call carries with the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
kit=.device
rm -rf "$kit"
mkdir -p "$kit/debs"

pack() { # pack NAME PATH: strip a copy of PATH into the kit as NAME.gz
    cp "$2" "$kit/$1"
    strip "$kit/$1"
    gzip -9 "$kit/$1"
}

cargo build --release
target=${CARGO_TARGET_DIR:-target}
pack alexnet "$target/release/alexnet"
for t in ops mixed; do
    exe=$(cargo test --release --test "$t" --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])')
    pack "$t-tests" "$exe"
done
if [ -n "${BURN_BENCH:-}" ]; then
    pack burn-bench "$BURN_BENCH"
else
    echo "BURN_BENCH not set: the kit has no burn-bench (the 'burn' part will be skipped)"
fi
pwd > "$kit/manifest_dir"

# The Vulkan loader and its EGL/GL neighbours, as the device tool's notes advise.
lists=$(mktemp -d)
mkdir -p "$lists/partial"
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$lists")
apt-get "${o[@]}" update >/dev/null
(cd "$kit/debs" && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
rm -rf "$lists"

du -sh "$kit"
ls -la "$kit" "$kit/debs"
