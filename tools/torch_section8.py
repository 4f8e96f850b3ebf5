#!/usr/bin/env python3
"""Train one variant of docs/experiments/section8.toml's recipe in PyTorch, as a cross-check.

    torch_section8.py [--activation relu|tanh|sigmoid] [--epochs N] [--seed S]
                      [--train-size N] [--data /usr/share/datasets/fashion-mnist]

The recipe is the experiment's baseline, built from PyTorch's own layers: the original
(two-group) AlexNet with LRN at width 0.125 (12/32/48/48/32 channels, FC 512), the activation
after every convolution and hidden fully connected layer, dropout 0.5, Kaiming-normal weights
(N(0, 2/fan_in)) and zero biases, Fashion-MNIST as RGB resized to 73 and randomly cropped to
64 with flips and PCA lighting (sigma 0.1), ImageNet mean/std, batch 64, Adam lr 3e-3 with
weight decay 5e-4 and a per-epoch cosine schedule to 0 over the epochs. Prints, per epoch,
the training loss and top-1 (averaged over the epoch's batches, as `alexnet` logs them) and
the validation loss and top-1 on the 10,000 test images.

What it is for: telling whether a variant's result in the report is the recipe's or ours. A
sigmoid network that stays at chance in both is the recipe's. It does not reproduce our runs
number for number (other random streams, other resampling). Needs torch; the data is read
from the IDX files Debian's dataset-fashion-mnist installs.
"""

from __future__ import annotations

import argparse
import gzip
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
EIGVEC = torch.tensor(
    [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
)
RESIZE, CROP = 73, 64


def read_idx(path: Path) -> torch.Tensor:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return torch.frombuffer(bytearray(data[4 + 4 * dims :]), dtype=torch.uint8).view(shape)


def load(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    def find(stem: str) -> Path:
        for name in (stem, stem + ".gz"):
            if (root / name).is_file():
                return root / name
        sys.exit(f"torch_section8: {root}: no {stem}[.gz]; apt-get install dataset-fashion-mnist")

    images = read_idx(find(f"{split}-images-idx3-ubyte")).float().div(255)
    labels = read_idx(find(f"{split}-labels-idx1-ubyte")).long()
    # Grey to RGB, resized once to the pipeline's first size (bilinear, antialiased).
    images = images.unsqueeze(1).expand(-1, 3, -1, -1)
    images = F.interpolate(images, size=(RESIZE, RESIZE), mode="bilinear", antialias=True)
    return images.contiguous(), labels


def augment(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n = batch.shape[0]
    out = torch.empty(n, 3, CROP, CROP)
    offsets = torch.randint(0, RESIZE - CROP + 1, (n, 2), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5
    for i in range(n):
        y, x = offsets[i].tolist()
        crop = batch[i, :, y : y + CROP, x : x + CROP]
        out[i] = crop.flip(2) if flips[i] else crop
    alphas = torch.randn(n, 3, generator=gen) * 0.1
    shift = (alphas * EIGVAL) @ EIGVEC.T
    return out + shift.view(n, 3, 1, 1)


def centre(batch: torch.Tensor) -> torch.Tensor:
    o = (RESIZE - CROP) // 2
    return batch[:, :, o : o + CROP, o : o + CROP]


def alexnet(activation: str, classes: int = 10) -> nn.Module:
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[activation]
    c1, c2, c3, c4, c5, fc = 12, 32, 48, 48, 32, 512
    lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)  # noqa: E731
    net = nn.Sequential(
        nn.Conv2d(3, c1, 11, stride=4, padding=2), act(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c1, c2, 5, padding=2, groups=2), act(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c2, c3, 3, padding=1), act(),
        nn.Conv2d(c3, c4, 3, padding=1, groups=2), act(),
        nn.Conv2d(c4, c5, 3, padding=1, groups=2), act(), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(c5 * 36, fc), act(),
        nn.Dropout(0.5), nn.Linear(fc, fc), act(),
        nn.Linear(fc, classes),
    )
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--activation", default="relu", choices=["relu", "tanh", "sigmoid"])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-size", type=int, default=60000)
    ap.add_argument("--data", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    args = ap.parse_args()
    if args.epochs < 1 or not 1 <= args.train_size <= 60000:
        sys.exit("torch_section8: --epochs >= 1 and --train-size 1..60000 expected")

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train_x, train_y = load(args.data, "train")
    val_x, val_y = load(args.data, "t10k")
    train_x, train_y = train_x[: args.train_size], train_y[: args.train_size]
    val_x = (centre(val_x) - MEAN) / STD

    net = alexnet(args.activation)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=5e-4)
    batch = 64
    for epoch in range(args.epochs):
        lr = 3e-3 * (1 + math.cos(math.pi * epoch / args.epochs)) / 2
        for group in opt.param_groups:
            group["lr"] = lr
        started = time.time()
        net.train()
        order = torch.randperm(len(train_y), generator=gen)
        loss_sum = correct = seen = 0.0
        for first in range(0, len(order), batch):
            idx = order[first : first + batch]
            x = (augment(train_x[idx], gen) - MEAN) / STD
            logits = net(x)
            loss = F.cross_entropy(logits, train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == train_y[idx]).sum().item()
            seen += len(idx)
        net.eval()
        with torch.no_grad():
            val_loss = val_correct = 0.0
            for first in range(0, len(val_y), 500):
                logits = net(val_x[first : first + 500])
                y = val_y[first : first + 500]
                val_loss += F.cross_entropy(logits, y, reduction="sum").item()
                val_correct += (logits.argmax(1) == y).sum().item()
        print(
            f"{args.activation} seed {args.seed} epoch {epoch + 1}: lr {lr:.5f}, "
            f"train loss {loss_sum / seen:.4f}, train top-1 {100 * correct / seen:.2f}%, "
            f"val loss {val_loss / len(val_y):.4f}, val top-1 {100 * val_correct / len(val_y):.2f}% "
            f"({time.time() - started:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
