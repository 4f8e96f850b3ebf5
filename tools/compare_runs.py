#!/usr/bin/env python3
"""Does one training run follow another within run-to-run noise?

    compare_runs.py REFERENCE CANDIDATE NOISE [NOISE ...] [--metric train_loss]

Each argument is a run's folder (or its metrics.jsonl) written by `alexnet train`:
REFERENCE and CANDIDATE differ in one thing (say `--precision f32` and `--precision mixed`,
same seed), each NOISE is the reference's recipe again with another `--seed`. Prints the
metric per epoch for all of them, then each run's mean relative distance from the reference
over the epochs. Exit status 0 when the candidate is no farther from the reference than the
farthest other seed is ("within noise"), 1 when it is, 2 on bad input. A rank test: a
candidate that is just another seed's run lands beyond all N others with probability 1/(N+1),
so read a failure with few seeds as "run more", not as proof.

Give at least two other seeds: how far one seed lands from another varies a lot. On lavapipe
(the embedded demo, 200 steps) seeds 1, 2 and 3 landed 3.9e-3, 1.6e-2 and 2.4e-2 from seed 0;
judged against seed 1 alone, a mixed-precision run at 1.8e-2 looked like an outlier that
seeds 2 and 3 show it is not (docs/coop-on-lavapipe.md). This is how tools/device_bench.sh
judges 200 mixed-precision training steps against f32 (issue 14).
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
    parser.add_argument("noise", nargs="+", help="the reference's recipe with other seeds")
    parser.add_argument("--metric", default="train_loss")
    args = parser.parse_args()
    ref, cand = load(args.reference, args.metric), load(args.candidate, args.metric)
    noise = [load(p, args.metric) for p in args.noise]
    lengths = [len(ref), len(cand), *map(len, noise)]
    if len(set(lengths)) != 1:
        print(f"compare_runs: the runs have {lengths} epochs; expected the same number",
              file=sys.stderr)
        return 2
    if any(not math.isfinite(v) for run in [ref, cand, *noise] for v in run):
        print(f"compare_runs: a run's {args.metric} is not finite", file=sys.stderr)
        return 1
    header = ["reference", "candidate", *(f"seed run {i}" for i in range(1, len(noise) + 1))]
    print(f"{'epoch':>5} " + " ".join(f"{h:>12}" for h in header))
    for i, values in enumerate(zip(ref, cand, *noise), 1):
        print(f"{i:>5} " + " ".join(f"{v:>12.5f}" for v in values))
    d_cand = relative_distance(cand, ref)
    d_noise = [relative_distance(n, ref) for n in noise]
    within = d_cand <= max(d_noise)
    print(f"{args.metric}: candidate's mean relative distance from the reference {d_cand:.2e}, "
          f"the other seeds' {', '.join(f'{d:.2e}' for d in d_noise)} (candidate / farthest "
          f"{d_cand / max(max(d_noise), 1e-300):.2f}): "
          + ("within run-to-run noise" if within else "NOT within run-to-run noise"))
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
