#!/usr/bin/env python3
"""Do the suites notice a wrong kernel? Mutation testing of the WGSL shaders.

    tools/shader_mutants.py [--per-file 6] [--seed 0] [--files conv2d,lrn]
                            [--suites shaders,ops,mixed,infer,model] [--backends default,gl]
                            [--report FILE]

Each mutant is a copy of shaders/ with one small change to one code line of one file: an
arithmetic or comparison operator swapped, `min` for `max`, `&&` for `||`, an accumulation
turned into an assignment, a 0/1 literal changed. The suites then run against it without a
rebuild: the library compiles the files in $ALEXNET_SHADER_DIR instead of its embedded ones
(`ops::SHADER_DIR_ENV`). A mutant is

- killed when a suite fails or hangs past the timeout (a mutated loop bound can spin);
- invalid when naga refuses it (the shaders suite's validation test): no kernel to test;
- a survivor when every suite passes: either a change that cannot alter results (an
  equivalent mutant; say why in the report) or a gap in the tests.

Each suite runs on every backend of --backends (`default`: wgpu's choice, Vulkan here; `gl`:
wgpu's GL backend through headless EGL, where the kernels without subgroups run; `coop`: Mesa
26's lavapipe in tools/lavapipe_coop.sh's root, where the cooperative-matrix GEMM runs), as CI
runs them; the shaders suite (naga only) runs once. The unmutated shaders go through the same runs
first: a suite that fails on them stops the sweep, so no mutant counts as killed by a missing
adapter.

The sites are drawn at random from every applicable position in each file, at most --per-file
of them, seeded by --seed and the file's name, so a run over some files draws the same mutants
as a run over all. The suites are built once (`cargo test --release --no-run`) and run in
order, each only while the mutant still lives. Needs a Vulkan or GL adapter, as the suites do.
Python 3 standard library only.
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHADERS = ROOT / "shaders"
# The shaders suite's own check that the embedded text equals shaders/ fails for every mutant by
# construction; its naga validation is what sorts out the invalid ones.
EMBEDDED_TEST = "every_shader_file_is_embedded_in_the_runtime_and_every_embedded_one_exists"
VALIDATION_TEST = "every_shader_validates_and_translates_to_spirv_msl_and_hlsl"

# (name, pattern, replacement): every match on a code line is one site.
OPERATORS = [
    ("+ to -", r"(?<=\s)\+(?=\s)", "-"),
    ("- to +", r"(?<=\s)-(?=\s)", "+"),
    ("* to +", r"(?<=\s)\*(?=\s)", "+"),
    ("/ to *", r"(?<=\s)/(?=\s)", "*"),
    ("< to <=", r"(?<=\s)<(?=\s)", "<="),
    ("<= to <", r"(?<=\s)<=(?=\s)", "<"),
    ("> to >=", r"(?<=\s)>(?=\s)", ">="),
    (">= to >", r"(?<=\s)>=(?=\s)", ">"),
    ("== to !=", r"(?<=\s)==(?=\s)", "!="),
    ("!= to ==", r"(?<=\s)!=(?=\s)", "=="),
    ("&& to ||", r"(?<=\s)&&(?=\s)", "||"),
    ("|| to &&", r"(?<=\s)\|\|(?=\s)", "&&"),
    ("min to max", r"\bmin\(", "max("),
    ("max to min", r"\bmax\(", "min("),
    ("+= to =", r"(?<=\s)\+=(?=\s)", "="),
    ("0u to 1u", r"\b0u\b", "1u"),
    ("1u to 0u", r"\b1u\b", "0u"),
    ("1u to 2u", r"\b1u\b", "2u"),
    ("0.0 to 1.0", r"(?<![\d.])0\.0\b", "1.0"),
    ("1.0 to 0.0", r"(?<![\d.])1\.0\b", "0.0"),
]


def code_part(line: str) -> str:
    """The line up to a `//` comment (WGSL has no strings to confuse it)."""
    return line.split("//", 1)[0]


def sites(text: str) -> list[tuple[int, int, int, str, str]]:
    """Every (line index, start, end, replacement, operator name) in a file's code."""
    found = []
    for index, line in enumerate(text.splitlines()):
        code = code_part(line)
        for name, pattern, replacement in OPERATORS:
            for m in re.finditer(pattern, code):
                found.append((index, m.start(), m.end(), replacement, name))
    return found


def build_suites(suites: list[str]) -> dict[str, str]:
    """Builds the suites' test binaries; returns suite name -> executable."""
    cmd = ["cargo", "test", "--release", "--no-run", "--message-format=json"]
    for suite in suites:
        cmd += ["--test", suite]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"shader_mutants: building the suites failed:\n{out.stderr[-4000:]}")
    binaries = {}
    for line in out.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            if "test" in msg["target"]["kind"] and msg["target"]["name"] in suites:
                binaries[msg["target"]["name"]] = msg["executable"]
    missing = [s for s in suites if s not in binaries]
    if missing:
        sys.exit(f"shader_mutants: no test executable for {missing}")
    return binaries


def run_suite(binary: str, suite: str, backend: str, env: dict,
              timeout: float) -> tuple[str, str]:
    """('pass' | 'fail' | 'timeout' | 'invalid', detail) for one suite on one mutant."""
    overlay, launcher = BACKENDS[backend]
    args = [*launcher, binary, "-q"]
    if suite == "shaders":
        args += ["--skip", EMBEDDED_TEST]
    try:
        out = subprocess.run(args, env=env | overlay, capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", f"{suite}: no result in {timeout:.0f} s"
    if out.returncode == 0:
        return "pass", ""
    failed = re.findall(r"^    (\S+)$", out.stdout, re.M)
    if suite == "shaders" and VALIDATION_TEST in failed:
        return "invalid", "naga refuses it"
    return "fail", f"{suite}: " + ", ".join(failed[:3]) + (" …" if len(failed) > 3 else "")


# Per backend: the environment overlay that selects it and the command a suite runs under.
BACKENDS = {
    "default": ({}, []),
    "gl": ({"EGL_PLATFORM": "surfaceless", "WGPU_BACKEND": "gl"}, []),
    # Mesa 26's lavapipe in tools/lavapipe_coop.sh's root (run `setup` first): the adapter
    # whose cooperative matrices run gemm_coop.wgsl (as gemm_coop_f16x8.wgsl configures it).
    "coop": ({}, [str(ROOT / "tools" / "lavapipe_coop.sh"), "run"]),
}


def run_all(binaries: dict, runs: list, env: dict, timeout: float) -> tuple[str, str]:
    """Runs (suite, backend) pairs in order until one does not pass; its status and detail."""
    for suite, backend in runs:
        status, detail = run_suite(binaries[suite], suite, backend, env, timeout)
        if status != "pass":
            return status, detail if backend == "default" else f"{backend} {detail}"
    return "pass", ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-file", type=int, default=6, help="mutants per shader file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--files", help="comma-separated shader stems (default: every file)")
    ap.add_argument("--suites", default="shaders,ops,mixed,infer,model",
                    help="cargo test targets, run in this order")
    ap.add_argument("--backends", default="default,gl",
                    help=f"comma-separated, of {', '.join(BACKENDS)}")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per suite run")
    ap.add_argument("--report", type=Path, help="write the markdown report here")
    args = ap.parse_args()

    stems = sorted(p.stem for p in SHADERS.glob("*.wgsl"))
    if args.files:
        wanted = args.files.split(",")
        unknown = [w for w in wanted if w not in stems]
        if unknown:
            sys.exit(f"shader_mutants: --files: no shaders/{unknown[0]}.wgsl")
        stems = wanted
    suites = args.suites.split(",")
    backends = args.backends.split(",")
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        sys.exit(f"shader_mutants: --backends: unknown '{unknown[0]}'")
    # Backend-major, so a mutant dies on the faster first backend before the others run.
    runs = [(suite, backend) for backend in backends for suite in suites
            if suite != "shaders" or backend == backends[0]]
    binaries = build_suites(suites)

    built = {suite: os.stat(binary).st_mtime for suite, binary in binaries.items()}
    results = []
    # Under target/, which the coop backend's root mounts with the repository.
    with tempfile.TemporaryDirectory(prefix="shader-mutants-", dir=ROOT / "target") as tmp:
        mutant_dir = Path(tmp)
        for stem in stems:
            shutil.copy(SHADERS / f"{stem}.wgsl", mutant_dir / f"{stem}.wgsl")
        env = dict(os.environ, ALEXNET_SHADER_DIR=str(mutant_dir))
        status, detail = run_all(binaries, runs, env, args.timeout)
        if status != "pass":
            sys.exit(f"shader_mutants: the unmutated shaders do not pass ({detail}); fix that "
                     "first, or drop the suite or backend")
        for stem in stems:
            original = (SHADERS / f"{stem}.wgsl").read_text()
            lines = original.splitlines(keepends=True)
            candidates = sites(original)
            rng = random.Random(f"{args.seed}:{stem}")
            chosen = rng.sample(candidates, min(args.per_file, len(candidates)))
            for index, start, end, replacement, name in sorted(chosen):
                line = lines[index]
                mutated_line = line[:start] + replacement + line[end:]
                text = "".join(lines[:index] + [mutated_line] + lines[index + 1:])
                (mutant_dir / f"{stem}.wgsl").write_text(text)
                for suite, binary in binaries.items():
                    if os.stat(binary).st_mtime != built[suite]:
                        sys.exit(f"shader_mutants: {binary} was rebuilt during the run; "
                                 "its verdicts from here on would be another build's")
                began = time.monotonic()
                status, detail = run_all(binaries, runs, env, args.timeout)
                verdict = {"pass": "survived", "invalid": "invalid"}.get(status, "killed")
                seconds = time.monotonic() - began
                where = f"{stem}.wgsl:{index + 1}"
                results.append((stem, where, name, mutated_line.strip(), verdict, detail))
                print(f"{verdict:8} {where:28} {name:12} {seconds:5.1f} s  {detail}",
                      flush=True)
            (mutant_dir / f"{stem}.wgsl").write_text(original)

    report = render(results, args)
    print(report)
    if args.report:
        args.report.write_text(report)


def render(results, args) -> str:
    valid = [r for r in results if r[4] != "invalid"]
    killed = sum(r[4] == "killed" for r in valid)
    lines = [
        "# Shader mutants",
        "",
        f"`tools/shader_mutants.py --per-file {args.per_file} --seed {args.seed} "
        f"--suites {args.suites} --backends {args.backends}`: {len(results)} mutants, {len(results) - len(valid)} "
        f"refused by naga, {killed} of the other {len(valid)} killed"
        + (f" ({100 * killed / len(valid):.0f} %)." if valid else "."),
        "",
        "| file | mutants | invalid | killed | survived |",
        "|---|---|---|---|---|",
    ]
    for stem in sorted({r[0] for r in results}):
        rows = [r for r in results if r[0] == stem]
        count = {v: sum(r[4] == v for r in rows) for v in ("invalid", "killed", "survived")}
        lines.append(f"| {stem} | {len(rows)} | {count['invalid']} | {count['killed']} | "
                     f"{count['survived']} |")
    survivors = [r for r in results if r[4] == "survived"]
    if survivors:
        lines += ["", "## Survivors", "", "| where | change | mutated line |", "|---|---|---|"]
        for _, where, name, text, _, _ in survivors:
            lines.append(f"| {where} | {name} | `{text}` |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
