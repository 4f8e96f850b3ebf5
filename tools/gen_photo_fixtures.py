#!/usr/bin/env python3
"""Generate the ImageNet class list, the photo fixtures and the torchvision-variant fixtures.

Writes (paths relative to the repository root, found from this script's location):

* ``src/data/imagenet_classes.txt``: the 1000 ImageNet-1k class names in index order, one per
  line, exactly as torchvision ships them (``AlexNet_Weights.IMAGENET1K_V1.meta["categories"]``;
  no download needed).
* ``tests/fixtures/photos/<name>.<jpg|png>``: three small, non-square photos made from
  scikit-image's sample data (``skimage.data``; public domain / CC0, see ``PHOTOS`` below and
  ``tests/fixtures/photos/LICENSE.md``), downscaled with PIL (Lanczos). JPEGs are saved at
  quality 90 with 4:4:4 chroma (no subsampling, so decoders need not agree on chroma
  upsampling), PNGs losslessly.
* ``tests/fixtures/photos/<name>.crop.png``: torchvision's classic eval preprocessing applied to
  the committed file as PIL loads it (``Image.open(path).convert("RGB")``):
  ``transforms.Resize(256)`` (bilinear, antialiased on PIL images) then
  ``transforms.CenterCrop(224)``; the 224×224 RGB uint8 result, stored losslessly. This is the
  image before ``ToTensor``/``Normalize``.
* ``tests/fixtures/torchvision_small.safetensors``: torchvision's AlexNet topology
  (``torchvision.models.alexnet``: no LRN, no groups, the same ``state_dict`` names
  features.0/3/6/8/10 and classifier.1/4/6) with the widths cut (``TV_SMALL``) but still
  1000 classes; random seeded weights: the default init with the weights of every conv/linear
  layer but the last scaled by √6, so the logits are O(1). Byte-for-byte what
  ``safetensors.torch.save_file(model.state_dict(), path, metadata={"config": ...})`` writes.
* ``tests/fixtures/torchvision_small_logits.safetensors``: for each photo ``<name>``, the logits
  ``logits.<name>`` [1, 1000] of that model (``eval()``) on
  ``Normalize(ImageNet mean, std)(ToTensor()(crop))``, computed in float64 and rounded to F32.
  Metadata: ``photos`` (comma-separated names, each also the file stem), ``file.<name>`` (the
  photo's file name), ``f32_err.logits.<name>`` = ``||l32 - l64|| / ||l64||`` (``%.3e``) for
  the same computation done entirely in float32 (input normalization included),
  ``f32_element_err.logits.<name>`` its farthest element (see ``gen_fixtures.py``),
  ``resized.<name>`` (``WxH`` after Resize(256)), ``crop_origin.<name>`` (``left,top`` of the
  center crop in the resized image), ``top5.<name>`` (class indices, best first),
  ``mean``/``std`` and the model ``config``.

Run it with::

    pip install -r tools/requirements.txt torchvision scikit-image pillow
    python3 tools/gen_photo_fixtures.py

(torchvision must be the release that matches the installed torch.) Output is deterministic:
running it twice on the same machine gives byte-identical files. The JPEG/PNG encoders are
Pillow's, so another Pillow/libjpeg version may write different photo bytes; the crops and the
logits are always derived from the photos as written.
"""

from __future__ import annotations

import io
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from skimage import data as skdata
from torchvision import transforms
from torchvision.models import AlexNet_Weights

sys.dont_write_bytecode = True  # no __pycache__ from importing tools/fixtures
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures.common import element_err, rel_err, serialize  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PHOTO_DIR = FIXTURES / "photos"
CLASSES_TXT = ROOT / "src" / "data" / "imagenet_classes.txt"
MAX_PHOTO_DIR_BYTES = 600 * 1000
MAX_FIXTURES_BYTES = 8 * 1000 * 1000  # the whole folder: 7.08 MB with the mixed and fine-tuning cases

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# name: (skimage.data function, crop box (left, top, right, bottom) of the original or None,
#        saved size (w, h), format, credit, licence as skimage's docstring gives it)
PHOTOS = {
    # Landscape 400×267: Resize(256) gives 383×256, so the crop's left is round(79.5) = 80.
    "coffee": ("coffee", None, (400, 267), "JPEG",
               "Rachel Michetti (photograph courtesy of Pikolo Espresso Bar)",
               "CC0: \"No copyright restrictions. CC0 by the photographer (Rachel Michetti).\""),
    # Portrait 300×400 (a 384×512 window of the square original): Resize(256) gives 256×341,
    # so the crop's top is round(58.5) = 58 (Python rounds half to even).
    "astronaut": ("astronaut", (64, 0, 448, 512), (300, 400), "JPEG",
                  "NASA (Eileen Collins; NASA Great Images database)",
                  "Public domain: \"No known copyright restrictions, released into the public "
                  "domain.\""),
    # Small landscape 300×200: the shorter side is below 256, so Resize(256) upscales (384×256).
    "chelsea": ("chelsea", None, (300, 200), "PNG",
                "Stefan van der Walt (Chelsea the cat)",
                "CC0: \"No copyright restrictions. CC0 by the photographer (Stefan van der "
                "Walt).\""),
}

# torchvision's AlexNet with the widths cut (torchvision's own: 64/192/384/256/256, fc 4096).
TV_SMALL = {"channels": [8, 24, 48, 32, 32], "fc": 16, "classes": 1000}
# Gain on the default (kaiming_uniform a=sqrt(5)) weights of every conv/linear layer but the
# last, as tools/fixtures/models.py does for AlexNetSmall: He-like variance so the activations do not
# shrink layer by layer. The last Linear keeps the default init, which keeps the logits' std at
# 3-5 on the photos (with √6 there too it reaches 11).
WEIGHT_GAIN = 6 ** 0.5


def seed_for(name: str) -> None:
    torch.manual_seed(zlib.crc32(name.encode()))


# --------------------------------------------------------------------------
# Class names
# --------------------------------------------------------------------------


def write_classes() -> None:
    names = AlexNet_Weights.IMAGENET1K_V1.meta["categories"]
    assert len(names) == 1000
    assert all(n and "\n" not in n and n == n.strip() for n in names)
    for i, want in [(0, "tench"), (1, "goldfish"), (207, "golden retriever"),
                    (999, "toilet tissue")]:
        assert names[i] == want, (i, names[i], want)
    CLASSES_TXT.write_text("".join(n + "\n" for n in names), encoding="utf-8")
    print(f"{CLASSES_TXT.relative_to(ROOT)}: {len(names)} classes")


# --------------------------------------------------------------------------
# Photos and torchvision's preprocessing
# --------------------------------------------------------------------------


def encode_photo(name: str) -> tuple[str, bytes]:
    func, box, size, fmt, _, _ = PHOTOS[name]
    img = Image.fromarray(getattr(skdata, func)()).convert("RGB")
    if box is not None:
        img = img.crop(box)
    assert max(size) <= 400 and size[0] != size[1]
    img = img.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=90, subsampling=0)
        fname = f"{name}.jpg"
    else:
        img.save(buf, "PNG", optimize=True)
        fname = f"{name}.png"
    return fname, buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def preprocess(path: Path) -> tuple[Image.Image, dict[str, str]]:
    """torchvision's Resize(256) + CenterCrop(224) on the file as PIL loads it."""
    img = Image.open(path).convert("RGB")
    resized = transforms.Resize(256)(img)
    crop = transforms.CenterCrop(224)(resized)
    assert crop.size == (224, 224) and crop.mode == "RGB"
    w, h = resized.size
    info = {
        "resized": f"{w}x{h}",
        "crop_origin": f"{int(round((w - 224) / 2.0))},{int(round((h - 224) / 2.0))}",
    }
    return crop, info


def write_photos() -> dict[str, tuple[str, Image.Image, dict[str, str]]]:
    PHOTO_DIR.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in PHOTOS:
        fname, raw = encode_photo(name)
        path = PHOTO_DIR / fname
        path.write_bytes(raw)
        crop, info = preprocess(path)
        (PHOTO_DIR / f"{name}.crop.png").write_bytes(png_bytes(crop))
        # The crop must survive the PNG round trip exactly.
        back = Image.open(PHOTO_DIR / f"{name}.crop.png").convert("RGB")
        assert np.array_equal(np.asarray(back), np.asarray(crop))
        out[name] = (fname, crop, info)
        print(f"photos/{fname}: {Image.open(path).size} -> resized {info['resized']}, "
              f"crop at {info['crop_origin']}")
    write_license()
    return out


def write_license() -> None:
    lines = [
        "# Test photos",
        "",
        "Small copies of sample photographs shipped with scikit-image (`skimage.data`,",
        "https://scikit-image.org), made by `tools/gen_photo_fixtures.py`: downscaled with Pillow",
        "(Lanczos); JPEGs saved at quality 90 without chroma subsampling. The licence of each is as",
        "stated in the docstring of its `skimage.data` function.",
        "",
        "`<name>.crop.png` is derived from `<name>.<ext>` by torchvision's",
        "`Resize(256)` + `CenterCrop(224)` and carries the same licence.",
        "",
        "| file | `skimage.data` | changes | author / source | licence |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, (func, box, size, fmt, credit, licence) in PHOTOS.items():
        ext = "jpg" if fmt == "JPEG" else "png"
        change = f"cropped to the box {box} (left, top, right, bottom), " if box else ""
        change += f"resized to {size[0]}×{size[1]}"
        lines.append(f"| `{name}.{ext}` | `{func}()` | {change} | {credit} | {licence} |")
    lines.append("")
    (PHOTO_DIR / "LICENSE.md").write_text("\n".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------
# torchvision-variant model and its logits on the photos
# --------------------------------------------------------------------------


class AlexNetTV(nn.Module):
    """``torchvision.models.AlexNet`` with configurable widths (same layer indices)."""

    def __init__(self, channels: list[int], fc: int, classes: int) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = channels
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Linear(c5 * 6 * 6, fc),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(fc, fc),
            nn.ReLU(inplace=True),
            nn.Linear(fc, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def check_topology() -> None:
    """Same state_dict names as torchvision's alexnet, and the same shapes at full width."""
    from torchvision.models import alexnet

    ours = AlexNetTV([64, 192, 384, 256, 256], 4096, 1000).state_dict()
    theirs = alexnet(weights=None).state_dict()
    assert list(ours) == list(theirs), (list(ours), list(theirs))
    for k in ours:
        assert ours[k].shape == theirs[k].shape, k


def write_model(photos: dict[str, tuple[str, Image.Image, dict[str, str]]]) -> None:
    name = "torchvision_small"
    seed_for(name)
    cfg = TV_SMALL
    model = AlexNetTV(cfg["channels"], cfg["fc"], cfg["classes"])
    with torch.no_grad():
        layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert len(layers) == 8
        for m in layers[:-1]:
            m.weight.mul_(WEIGHT_GAIN)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps(cfg, sort_keys=True)}
    raw = serialize(state, meta)
    from safetensors.torch import save as st_save
    assert raw == st_save(state, metadata=meta), "differs from safetensors' save_file"
    (FIXTURES / f"{name}.safetensors").write_bytes(raw)
    n_params = sum(v.numel() for v in state.values())
    print(f"{name}.safetensors: {len(state)} tensors, {n_params:,d} parameters")

    def net_in(dtype: torch.dtype) -> nn.Module:
        net = AlexNetTV(cfg["channels"], cfg["fc"], cfg["classes"]).to(dtype)
        net.load_state_dict({k: v.to(dtype) for k, v in state.items()})
        return net.eval()

    net64, net32 = net_in(torch.float64), net_in(torch.float32)
    to_input32 = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    mean64 = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(3, 1, 1)
    std64 = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(3, 1, 1)

    tensors: dict[str, torch.Tensor] = {}
    lmeta = {
        "config": json.dumps(cfg, sort_keys=True),
        "photos": ",".join(photos),
        "mean": ",".join(map(str, IMAGENET_MEAN)),
        "std": ",".join(map(str, IMAGENET_STD)),
        "preprocess": "Resize(256) CenterCrop(224) ToTensor Normalize(mean, std)",
    }
    for pname, (fname, crop, info) in photos.items():
        u8 = torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1)  # [3, 224, 224]
        x64 = ((u8.double() / 255.0 - mean64) / std64).unsqueeze(0)
        x32 = to_input32(crop).unsqueeze(0)
        assert x32.dtype == torch.float32
        with torch.no_grad():
            l64, l32 = net64(x64), net32(x32)
        err = rel_err(l32, l64)
        tensors[f"logits.{pname}"] = l64.to(torch.float32).contiguous()
        lmeta[f"f32_err.logits.{pname}"] = f"{err:.3e}"
        lmeta[f"f32_element_err.logits.{pname}"] = f"{element_err(l32, l64):.3e}"
        lmeta[f"file.{pname}"] = fname
        lmeta[f"resized.{pname}"] = info["resized"]
        lmeta[f"crop_origin.{pname}"] = info["crop_origin"]
        std = l64.std().item()
        top = l64[0].topk(6)
        top5 = top.indices[:5].tolist()
        gap = (top.values[:-1] - top.values[1:]).min().item()  # ranks 1..6 apart by at least
        lmeta[f"top5.{pname}"] = ",".join(map(str, top5))
        print(f"logits.{pname}: std {std:.3f}, f32_err {err:.3e}, top-5 {top5}, "
              f"smallest gap between ranks 1-6 {gap:.3e}")
        assert 0.1 <= std <= 10.0, f"{pname}: logit std {std} out of range"
    (FIXTURES / f"{name}_logits.safetensors").write_bytes(serialize(tensors, lmeta))


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    write_classes()
    check_topology()
    photos = write_photos()
    write_model(photos)

    print()
    photo_total = 0
    for p in sorted(PHOTO_DIR.iterdir()):
        photo_total += p.stat().st_size
        print(f"photos/{p.name:34s} {p.stat().st_size:>10,d} B")
    for p in [FIXTURES / "torchvision_small.safetensors",
              FIXTURES / "torchvision_small_logits.safetensors"]:
        print(f"{p.name:41s} {p.stat().st_size:>10,d} B")
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    print(f"{'photos/ total':41s} {photo_total:>10,d} B")
    print(f"{'tests/fixtures total':41s} {total:>10,d} B")
    assert photo_total < MAX_PHOTO_DIR_BYTES, f"photos/ is {photo_total} B"
    assert total < MAX_FIXTURES_BYTES, f"tests/fixtures is {total} B"


if __name__ == "__main__":
    main()
