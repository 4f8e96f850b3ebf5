#!/usr/bin/env python3
"""Does one training run follow another within run-to-run noise?

    compare_runs.py REFERENCE CANDIDATE NOISE [--metric train_loss]

Each argument is a run's folder (or its metrics.jsonl) written by `alexnet train`:
REFERENCE and CANDIDATE differ in one thing (say `--precision f32` and `--precision mixed`,
same seed), NOISE is the reference again with another `--seed`. Prints the metric per epoch
for the three, then the candidate's mean relative distance from the reference over the epochs
beside the noise run's. Exit status 0 when the candidate is no farther from the reference
than the other seed is ("within noise"), 1 when it is, 2 on bad input. This is how
tools/device_bench.sh judges 200 mixed-precision training steps against f32 (issue 14).
Python 3 standard library only.
"""

import argparse
import json
import math
import sys
from pathlib import Path


def load(arg: str, metric: str) -> list[float]:
    path = Path(arg)
    if path.is_dir():
        path = path / "metrics.jsonl"
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        sys.exit(f"compare_runs: cannot read {path}: {e}")
    values = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            values.append(float(record[metric]))
        except (ValueError, KeyError, TypeError) as e:
            print(f"compare_runs: {path}:{n}: expected a JSON object with a number "
                  f"'{metric}' ({e})", file=sys.stderr)
            sys.exit(2)
    if not values:
        print(f"compare_runs: {path} holds no epochs", file=sys.stderr)
        sys.exit(2)
    return values


def relative_distance(a: list[float], b: list[float]) -> float:
    """Mean over epochs of |a − b| / |b|."""
    return sum(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b)) / len(b)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference")
    parser.add_argument("candidate")
    parser.add_argument("noise", help="the reference's recipe with another seed")
    parser.add_argument("--metric", default="train_loss")
    args = parser.parse_args()
    ref, cand, noise = (load(p, args.metric) for p in (args.reference, args.candidate, args.noise))
    if not len(ref) == len(cand) == len(noise):
        print(f"compare_runs: the runs have {len(ref)}, {len(cand)} and {len(noise)} epochs; "
              "expected the same number", file=sys.stderr)
        return 2
    if any(not math.isfinite(v) for v in ref + cand + noise):
        print(f"compare_runs: a run's {args.metric} is not finite", file=sys.stderr)
        return 1
    print(f"{'epoch':>5} {'reference':>12} {'candidate':>12} {'other seed':>12}")
    for i, (r, c, n) in enumerate(zip(ref, cand, noise), 1):
        print(f"{i:>5} {r:>12.5f} {c:>12.5f} {n:>12.5f}")
    d_cand = relative_distance(cand, ref)
    d_noise = relative_distance(noise, ref)
    within = d_cand <= d_noise
    print(f"{args.metric}: candidate's mean relative distance from the reference {d_cand:.2e}, "
          f"the other seed's {d_noise:.2e} (ratio {d_cand / max(d_noise, 1e-300):.2f}): "
          + ("within run-to-run noise" if within else "NOT within run-to-run noise"))
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
