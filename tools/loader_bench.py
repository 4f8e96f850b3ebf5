#!/usr/bin/env python3
"""Our data loader against torchvision's DataLoader, on the same JPEG files, per core.

Both run the AlexNet training pipeline on an image folder: decode, Resize(256),
RandomCrop(224), RandomHorizontalFlip, ToTensor, PCA lighting (sigma 0.1), Normalize, in
batches of 32. Ours is ``alexnet bench --data DIR --loader-only`` (no GPU work), twice: with
``--augment-on cpu`` the loader makes the finished f32 batch, as torchvision does; with
``--augment-on gpu`` it does the CPU's share of the GPU path (decode, random draws; the GPU
then resizes, crops and colours). torchvision's is ``datasets.ImageFolder`` with
``transforms`` and a ``DataLoader`` with persistent workers (one warm-up epoch first, so
worker start-up is not counted). The machine may be shared and noisy, so the two run
alternately, several rounds, for each worker count, and the figure to read is the ratio of
the medians. Prints images/s and images/s per worker for both, and writes JSON with --json.

Without --data, a set of ImageNet-sized JPEGs (400x300 to 500x400, quality 90, 4:2:0, smooth
gradients plus noise, 10 classes) is generated in a temporary folder and removed at the end.

    pip install torch torchvision pillow numpy
    cargo build --release
    python3 tools/loader_bench.py --workers 1,2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def make_set(root: Path, count: int, seed: int = 0, scale: int = 1) -> None:
    """`count` photo-like JPEGs of 400x300..500x400 (times `scale`) at quality 90 in 10 class
    folders."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        w, h = scale * int(rng.integers(400, 501)), scale * int(rng.integers(300, 401))
        if rng.random() < 0.3:
            w, h = h, w  # some portrait images
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.empty((h, w, 3), np.float32)
        for c in range(3):
            fx, fy = (rng.uniform(0.005, 0.05, 2) / scale).tolist()
            ph = rng.uniform(0, 6.3)
            img[..., c] = 128 + 90 * np.sin(fx * x + ph) * np.cos(fy * y)
        img += rng.normal(0, 12, img.shape)
        cls = root / f"class_{i % 10}"
        cls.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            cls / f"img_{i:04}.jpg", quality=90
        )


def ours(binary: Path, data: Path, workers: int, batch: int, on: str) -> float:
    out = subprocess.run(
        [str(binary), "bench", "--data", str(data), "--loader-only", "--workers", str(workers),
         "--training-batches", str(batch), "--image-size", "224", "--epochs", "2",
         "--augment-on", on, "--quiet"],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["loader_images_per_sec"]


def torchvision_loader(data: Path, workers: int, batch: int) -> float:
    import torch
    from torchvision import datasets, transforms

    eigval = torch.tensor([0.2175, 0.0188, 0.0045])
    eigvec = torch.tensor(
        [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
    )

    def lighting(t: torch.Tensor) -> torch.Tensor:
        alpha = torch.randn(3) * 0.1
        return t + (eigvec @ (alpha * eigval)).view(3, 1, 1)

    tf = transforms.Compose([
        transforms.Resize(256),
        transforms.RandomCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Lambda(lighting),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    ds = datasets.ImageFolder(str(data), transform=tf)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=True
    )
    for _ in loader:  # warm-up epoch: worker start-up and file cache
        pass
    t0 = time.perf_counter()
    n = sum(len(y) for _, y in loader)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, help="image folder (default: generate one)")
    ap.add_argument("--count", type=int, default=400, help="images to generate")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "alexnet")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--make", type=Path, help="only generate the JPEG set here, then exit")
    ap.add_argument("--scale", type=int, default=1, help="generated sizes times this")
    args = ap.parse_args()
    if args.make:
        make_set(args.make, args.count, scale=args.scale)
        print(f"generated {args.count} JPEGs in {args.make}")
        return

    import torch

    torch.set_num_threads(1)  # the main process only collates; workers use one thread each
    tmp = None
    data = args.data
    if data is None:
        tmp = Path(tempfile.mkdtemp(prefix="alexnet-loader-bench-"))
        data = tmp / "images"
        make_set(data, args.count, scale=args.scale)
        print(f"generated {args.count} JPEGs in {data}")
    try:
        results = []
        for workers in [int(w) for w in args.workers.split(",")]:
            a, g, b = [], [], []
            for r in range(args.rounds):
                a.append(ours(args.binary, data, workers, args.batch_size, "cpu"))
                b.append(torchvision_loader(data, workers, args.batch_size))
                g.append(ours(args.binary, data, workers, args.batch_size, "gpu"))
                print(f"workers {workers} round {r + 1}: ours (cpu augment) {a[-1]:.0f} img/s, "
                      f"torchvision {b[-1]:.0f} img/s, ours (gpu augment) {g[-1]:.0f} img/s",
                      flush=True)
            ma, mg, mb = statistics.median(a), statistics.median(g), statistics.median(b)
            row = {
                "workers": workers,
                "ours_cpu_augment_images_per_sec": ma,
                "ours_gpu_augment_images_per_sec": mg,
                "torchvision_images_per_sec": mb,
                "ratio_cpu_augment": ma / mb,
                "ratio_gpu_augment": mg / mb,
                "rounds": {"ours_cpu": a, "ours_gpu": g, "torchvision": b},
            }
            results.append(row)
            print(f"workers {workers}: per core: ours (cpu augment) {ma / workers:.0f}, "
                  f"ours (gpu augment) {mg / workers:.0f}, torchvision {mb / workers:.0f} "
                  f"img/s: ratios {ma / mb:.2f}x and {mg / mb:.2f}x")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
