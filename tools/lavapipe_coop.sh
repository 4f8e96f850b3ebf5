#!/usr/bin/env bash
# Runs test binaries on a lavapipe that has cooperative matrices, on a machine without a GPU.
#
#   tools/lavapipe_coop.sh setup            # build the root (once; about 2 minutes)
#   tools/lavapipe_coop.sh run CMD [ARGS]   # run CMD in it, in this repository's folder
#
# Mesa 26's lavapipe lists 8x8x8 f16 x f16 -> f32 (and -> f16) cooperative matrices on CPUs
# with 256-bit vectors (AVX2): the configuration `gemm_coop_f16x8.wgsl` runs, as on Apple GPUs
# under --precision mixed. Debian bookworm's Mesa (25.0) has none, so this builds a Debian
# trixie root with trixie-backports' Mesa beside the machine's own system (debootstrap) and
# runs in it what `cargo` built here: binaries linked against bookworm's glibc run on trixie's.
# The repository is bind-mounted at its own path, so the tests find their fixtures.
# .ci/run uses it to run the cooperative-matrix and mixed-precision suites on CPU.
#
# Needs root (debootstrap, chroot, mount) and a Debian apt source. No mirror host is written
# here: the root uses the URI the machine's apt sources already use.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${ALEXNET_COOP_ROOT:-/var/cache/alexnet-wgpu/trixie-root}
suite=trixie

# Whether this machine lets us bind-mount (a container may not): `run` needs it.
can_bind_mount() {
    local probe
    probe=$(mktemp -d)
    mount --bind "$repo" "$probe" 2>/dev/null && umount "$probe"
    local ok=$?
    rmdir "$probe"
    return $ok
}

setup() {
    can_bind_mount || { echo "lavapipe_coop: bind mounts are not allowed here" >&2; return 1; }
    if [ -x "$root/usr/bin/apt-get" ] && [ -e "$root/.alexnet-mesa-ready" ]; then
        return 0
    fi
    local uri
    uri=$("$repo/tools/debian_uri.sh")
    command -v debootstrap >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    rm -rf "$root"
    mkdir -p "$root"
    echo "lavapipe_coop: debootstrap $suite into $root"
    debootstrap --variant=minbase "$suite" "$root" "$uri" >"$root.log" 2>&1 ||
        { tail -20 "$root.log" >&2; return 1; }
    echo "deb $uri $suite-backports main" >"$root/etc/apt/sources.list.d/backports.list"
    chroot "$root" apt-get update -qq
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -t "$suite-backports" mesa-vulkan-drivers libvulkan1 >/dev/null
    touch "$root/.alexnet-mesa-ready"
    chroot "$root" dpkg-query -W -f='lavapipe_coop: ${Package} ${Version}\n' mesa-vulkan-drivers
}

# What `run` mounted, newest first: global, since the EXIT trap runs after `run` returns.
mounts=()
unmount_all() {
    local m
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
}

# Runs "$@" inside the root with the repository, /dev, /proc and /sys mounted, unmounting them
# however it ends. A binary outside the repository is copied in first.
run() {
    trap unmount_all EXIT
    local dir
    for dir in /dev /proc /sys "$repo"; do
        mkdir -p "$root$dir"
        mount --bind "$dir" "$root$dir"
        mounts=("$root$dir" "${mounts[@]}")
    done
    local cmd=$1
    shift
    case $(realpath "$cmd") in
    "$repo"/*) cmd=$(realpath "$cmd") ;;
    *)
        mkdir -p "$root/opt/alexnet-bin"
        cp "$cmd" "$root/opt/alexnet-bin/"
        cmd=/opt/alexnet-bin/$(basename "$cmd")
        ;;
    esac
    chroot "$root" env -C "$repo" "$cmd" "$@"
}

case ${1:-} in
setup) setup ;;
run)
    shift
    [ $# -ge 1 ] || { echo "usage: $0 run CMD [ARGS]" >&2; exit 2; }
    run "$@"
    ;;
*)
    echo "usage: $0 setup | run CMD [ARGS]" >&2
    exit 2
    ;;
esac
