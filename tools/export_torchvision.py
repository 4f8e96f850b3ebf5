#!/usr/bin/env python3
"""Export torchvision's pretrained AlexNet to a safetensors file alexnet-wgpu can load.

Loads ``torchvision.models.alexnet(weights=AlexNet_Weights.IMAGENET1K_V1)`` (on first use
torchvision downloads the weights, about 233 MB, from PyTorch's servers into its cache) and
saves its ``state_dict()`` (16 contiguous float32 tensors, torchvision's names: features.0/3/6/
8/10 and classifier.1/4/6, .weight and .bias) as safetensors, with the metadata
``{"arch": "torchvision", "classes": "1000", "source": "torchvision AlexNet_Weights.IMAGENET1K_V1"}``.

Usage::

    pip install torch torchvision safetensors pillow
    python3 tools/export_torchvision.py [--out alexnet-torchvision.safetensors]

Then, as a sanity check, it prints the top-5 classes of one of the committed test photos
(``tests/fixtures/photos/``) through torchvision's eval preprocessing (Resize(256),
CenterCrop(224), ToTensor, Normalize) — skipped if the photo is missing or ``--no-check``.

``--random`` saves randomly initialized weights instead (``weights=None``; no download), for
testing the export path only: its metadata says ``"source": "random (--random)"`` and its
predictions mean nothing. The file is about 244 MB either way; do not commit it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import save_file
from torchvision import transforms
from torchvision.models import AlexNet_Weights, alexnet

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "tests" / "fixtures" / "photos" / "chelsea.png"
SOURCE = "torchvision AlexNet_Weights.IMAGENET1K_V1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def export(out: Path, random: bool) -> torch.nn.Module:
    if random:
        torch.manual_seed(0)
        model = alexnet(weights=None)
        source = "random (--random)"
    else:
        model = alexnet(weights=AlexNet_Weights.IMAGENET1K_V1)
        source = SOURCE
    model.eval()
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    meta = {"arch": "torchvision", "classes": "1000", "source": source}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata=meta)
    n = sum(v.numel() for v in state.values())
    print(f"wrote {out} ({len(state)} tensors, {n:,d} parameters, "
          f"{out.stat().st_size / 1e6:.1f} MB; source: {source})")
    return model


def top5(model: torch.nn.Module, photo: Path) -> None:
    from PIL import Image

    names = AlexNet_Weights.IMAGENET1K_V1.meta["categories"]
    prep = transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    x = prep(Image.open(photo).convert("RGB")).unsqueeze(0)
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1)[0]
    p, idx = probs.topk(5)
    print(f"top-5 for {photo.relative_to(ROOT) if photo.is_relative_to(ROOT) else photo}:")
    for pi, i in zip(p.tolist(), idx.tolist()):
        print(f"  {pi * 100:6.2f}%  {i:4d}  {names[i]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("alexnet-torchvision.safetensors"),
                    help="output file (default: %(default)s)")
    ap.add_argument("--random", action="store_true",
                    help="random weights (weights=None), no download: for testing the export")
    ap.add_argument("--no-check", action="store_true",
                    help="skip the top-5 check on a committed test photo")
    ap.add_argument("--photo", type=Path, default=PHOTO,
                    help="image for the top-5 check (default: %(default)s)")
    args = ap.parse_args()

    model = export(args.out, args.random)
    if not args.no_check and args.photo.exists():
        try:
            top5(model, args.photo)
        except Exception as e:  # the check is optional; the export has succeeded
            print(f"top-5 check skipped: {e}")


if __name__ == "__main__":
    main()
