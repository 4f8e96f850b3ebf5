#!/usr/bin/env python3
"""Side by side: `alexnet bench` and `burn-bench` (Burn's wgpu backend) on the same AlexNet,
image size, width, batch sizes and adapter; prints our/Burn ratios per (mode, batch) and the
first-call (compile + autotune) times. Python 3 standard library only.

    cargo build --release
    cargo build --release --manifest-path tools/burn-bench/Cargo.toml
    python3 tools/burn_compare.py --width 0.25 --image-size 128 \
        --inference-batches 1 --training-batches 8 --iterations 2

Either side can be given as an existing JSON report instead of being run (--ours-json,
--burn-json): e.g. reports measured on another machine. See tools/burn-bench/README.md.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_binary(name, explicit, candidates):
    if explicit:
        return explicit
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    sys.exit(f"no {name} binary found (tried {', '.join(c for c in candidates if c)}); "
             f"build it or pass its path")


def run(cmd, timeout, log, env=None):
    print("$ " + " ".join(cmd), flush=True)
    start = time.monotonic()
    with open(log, "w") as out:
        try:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                                  env=env)
        except subprocess.TimeoutExpired:
            sys.exit(f"timed out after {timeout} s (log: {log})")
    took = time.monotonic() - start
    with open(log) as f:
        text = f.read()
    print(text, end="" if text.endswith("\n") else "\n")
    if proc.returncode != 0:
        sys.exit(f"exit status {proc.returncode} (log: {log})")
    print(f"({took:.1f} s wall)\n", flush=True)


def batches(s):
    return ",".join(str(int(b)) for b in s.split(",") if b.strip())


def burn_best(b):
    """Burn's images/s and how it was timed: the faster of its median iteration (each ending
    in a full sync) and its queued iterations (one sync at the end, as ours are timed), so a
    sync that returns early or one that stalls the queue cannot lower Burn's figure."""
    median = b.get("images_per_sec")
    queued = b.get("pipelined_seconds_per_iteration")
    queued_ips = queued and b["batch"] / queued
    if median and queued_ips and queued_ips > median:
        return queued_ips, "queued"
    return median, "median"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="original", choices=["original", "torchvision"])
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--inference-batches", type=batches, default="1,8,32")
    p.add_argument("--training-batches", type=batches, default="8,32")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--backend", default="vulkan", help="both sides (default: vulkan)")
    p.add_argument("--device", help="case-insensitive part of the adapter name, both sides")
    p.add_argument("--alexnet", help="our binary (default: $CARGO_TARGET_DIR or target/release)")
    p.add_argument("--burn-bench", help="burn-bench binary (default: $CARGO_TARGET_DIR or "
                   "tools/burn-bench/target/release)")
    p.add_argument("--burn-args", default="", help="extra arguments for burn-bench, "
                   "e.g. '--autotune-level minimal'")
    p.add_argument("--ours-json", help="use this `alexnet bench --json` report, don't run ours")
    p.add_argument("--burn-json", help="use this `burn-bench --json` report, don't run Burn")
    p.add_argument("--warm-cache", action="store_true",
                   help="let ours use its on-disk driver pipeline cache (default: a fresh, "
                   "empty XDG_CACHE_HOME, so that both first calls are cold)")
    p.add_argument("--out-dir", default=".", help="where the two reports and logs go")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    p.add_argument("--json", help="also write the ratios as JSON here")
    p.add_argument("--fp32-peak-tflops", type=float,
                   help="the adapter's fp32 peak (e.g. 67 for an H100 SXM): a row where either "
                   "side's FLOP count over its time exceeds it is refused, its ratio left out")
    a = p.parse_args()

    target = os.environ.get("CARGO_TARGET_DIR")
    common = ["--arch", a.arch, "--image-size", str(a.image_size), "--width", str(a.width),
              "--inference-batches", a.inference_batches,
              "--training-batches", a.training_batches,
              "--iterations", str(a.iterations), "--backend", a.backend]
    if a.device:
        common += ["--device", a.device]
    os.makedirs(a.out_dir, exist_ok=True)

    ours_json = a.ours_json
    if not ours_json:
        exe = find_binary("alexnet", a.alexnet, [
            target and os.path.join(target, "release", "alexnet"),
            os.path.join(ROOT, "target", "release", "alexnet")])
        ours_json = os.path.join(a.out_dir, "ours.json")
        env = None
        if not a.warm_cache:
            env = dict(os.environ, XDG_CACHE_HOME=tempfile.mkdtemp(prefix="alexnet-cold-"))
        run([exe, "bench", *common, "--no-profile", "--json", ours_json], a.timeout,
            os.path.join(a.out_dir, "ours.log"), env)
        if env:
            shutil.rmtree(env["XDG_CACHE_HOME"], ignore_errors=True)
    burn_json = a.burn_json
    if not burn_json:
        exe = find_binary("burn-bench", a.burn_bench, [
            target and os.path.join(target, "release", "burn-bench"),
            os.path.join(ROOT, "tools", "burn-bench", "target", "release", "burn-bench")])
        burn_json = os.path.join(a.out_dir, "burn.json")
        run([exe, *common, *a.burn_args.split(), "--json", burn_json], a.timeout,
            os.path.join(a.out_dir, "burn.log"))

    with open(ours_json) as f:
        ours = json.load(f)
    with open(burn_json) as f:
        burn = json.load(f)
    if ours.get("adapter") != burn.get("adapter"):
        print(f"warning: different adapters: ours '{ours.get('adapter')}', "
              f"Burn '{burn.get('adapter')}'")
    if ours.get("image_size") != burn.get("image_size"):
        print(f"warning: different image sizes: ours {ours.get('image_size')}, "
              f"Burn {burn.get('image_size')}")

    def ours_at(model, mode, batch, kernels):
        for m in ours["measurements"]:
            if (m["model"], m["mode"], m["batch"], m["kernels"]) == (model, mode, batch, kernels):
                return m
        return None

    print(f"adapter: {burn.get('adapter')} ({burn.get('backend')}), "
          f"{burn.get('image_size')}x{burn.get('image_size')}, width {burn.get('width')}; "
          f"Burn {burn.get('burn_version')}, autotune {burn.get('autotune_level')}")
    head = (f"{'model':<18} {'mode':<9} {'batch':>5} {'ours img/s':>11} {'Burn img/s':>11} "
            f"{'ours/Burn':>9} {'plain/Burn':>10} {'Burn 1st s':>10} {'ours TF/s':>9} "
            f"{'Burn TF/s':>9}")
    print(head)
    rows = []
    for b in burn["measurements"]:
        t = ours_at(b["model"], b["mode"], b["batch"], "tiled")
        pl = ours_at(b["model"], b["mode"], b["batch"], "plain")
        burn_ips, burn_by = burn_best(b)
        row = {"model": b["model"], "mode": b["mode"], "batch": b["batch"],
               "burn_images_per_sec": burn_ips, "burn_timing": burn_by,
               "burn_median_images_per_sec": b.get("images_per_sec"),
               "burn_first_call_seconds": b.get("first_call_seconds"),
               "ours_images_per_sec": t and t["images_per_sec"],
               "ours_plain_images_per_sec": pl and pl["images_per_sec"]}
        ok = burn_ips
        # Both sides' TFLOP/s from the same FLOP count (the reports' GFLOP/s): a figure above
        # the adapter's fp32 peak is a timing bug until explained, so the row is refused.
        row["ours_tflops"] = t and t.get("gflops") and t["gflops"] / 1e3
        row["burn_tflops"] = (b.get("gflops") and ok
                              and b["gflops"] * ok / b["images_per_sec"] / 1e3)
        suspect = [side for side, tf in (("ours", row["ours_tflops"]), ("Burn", row["burn_tflops"]))
                   if a.fp32_peak_tflops and tf and tf > a.fp32_peak_tflops]
        row["refused"] = suspect and (f"{' and '.join(suspect)} above the fp32 peak of "
                                      f"{a.fp32_peak_tflops} TFLOP/s")
        row["ours_over_burn"] = None if suspect else t and ok and t["images_per_sec"] / ok
        row["plain_over_burn"] = None if suspect else pl and ok and pl["images_per_sec"] / ok
        rows.append(row)

        def f(x, spec):
            return format(x, spec) if x is not None else "-"
        print(f"{b['model']:<18} {b['mode']:<9} {b['batch']:>5} "
              f"{f(row['ours_images_per_sec'], '11.2f')} "
              f"{f(ok, '10.2f') + ('q' if burn_by == 'queued' else ' '):>11} "
              f"{f(row['ours_over_burn'], '8.2f') + ('x' if row['ours_over_burn'] else ''):>9} "
              f"{f(row['plain_over_burn'], '9.2f') + ('x' if row['plain_over_burn'] else ''):>10} "
              f"{f(b.get('first_call_seconds'), '10.2f')} "
              f"{f(row['ours_tflops'], '9.2f')} {f(row['burn_tflops'], '9.2f')}"
              + (f"  Burn failed: {b['error']}" if "error" in b else "")
              + (f"  REFUSED: {row['refused']}" if row["refused"] else ""))

    first = next((b for b in burn["measurements"] if "first_call_seconds" in b), None)
    ours_first = ours.get("first_plan_seconds")
    burn_first_total = sum(b.get("first_call_seconds", 0.0) for b in burn["measurements"])
    print()
    if first and ours_first is not None:
        print(f"first call ({first['mode']} batch {first['batch']}, the first case: pipeline "
              f"compiles{', autotune' if burn.get('autotune_level') else ''}): "
              f"ours {ours_first:.2f} s, Burn {first['first_call_seconds']:.2f} s, "
              f"ours/Burn {ours_first / first['first_call_seconds']:.3f}")
    print(f"Burn's first calls, all cases together: {burn_first_total:.2f} s (each new batch "
          f"size compiles and autotunes again); ours compiles {ours.get('pipelines_compiled')} "
          f"pipelines once per device, in {ours.get('pipeline_compile_seconds', 0):.2f} s")
    print("(ours: mean of the timed iterations, one sync at the end; Burn: the faster of the "
          "median of iterations each ending in a full sync and, where burn-bench measured it, "
          "the mean of as many iterations queued with one sync at the end, marked q)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"adapter": burn.get("adapter"), "image_size": burn.get("image_size"),
                       "width": burn.get("width"), "burn_version": burn.get("burn_version"),
                       "ours_first_plan_seconds": ours_first,
                       "burn_first_call_seconds": first and first["first_call_seconds"],
                       "burn_first_calls_total_seconds": burn_first_total,
                       "rows": rows}, f, indent=2)
        print(f"JSON: {a.json}")


if __name__ == "__main__":
    main()
