#!/usr/bin/env python3
"""Pillow's reduced-scale JPEG decodes (``Image.draft``) of the JPEG fixtures, for the fast
decode mode's test.

``alexnet train --decode fast`` decodes large JPEGs at 1/2, 1/4 or 1/8 scale with libjpeg's
reduced-size IDCTs, as libjpeg-turbo does when Pillow's ``draft()`` sets ``scale_denom``.
For every ``tests/fixtures/jpeg/<case>.jpg`` the decoder supports and every scale at which
Pillow actually reduces it, this writes ``tests/fixtures/jpeg_draft/<case>_d<denom>.png``
(Pillow's RGB pixels) and a ``manifest.txt`` line ``<case>.jpg <denom> <width> <height>``;
``tests/jpeg.rs`` decodes the same file at the same scale and compares byte for byte.

Run from anywhere (needs only Pillow)::

    python3 tools/gen_draft_fixtures.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "tests" / "fixtures" / "jpeg"
OUT = ROOT / "tests" / "fixtures" / "jpeg_draft"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    exact = [
        line.split()[0]
        for line in (SRC / "manifest.txt").read_text().splitlines()
        if line.endswith(" exact") and not line.startswith("corrupt")
    ]
    lines = []
    for name in exact:
        for denom in (2, 4, 8):
            im = Image.open(SRC / name)
            w, h = im.size
            if w < denom or h < denom:
                continue
            # draft picks the largest scale s with s <= min(w // rw, h // rh).
            im.draft(im.mode if im.mode in ("L", "RGB") else "RGB", (w // denom, h // denom))
            want = (-(-w // denom), -(-h // denom))
            if im.size != want:
                continue
            rgb = im.convert("RGB")
            case = name.removesuffix(".jpg")
            rgb.save(OUT / f"{case}_d{denom}.png")
            lines.append(f"{name} {denom} {rgb.size[0]} {rgb.size[1]}")
    (OUT / "manifest.txt").write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} reduced-scale decodes written to {OUT}")


if __name__ == "__main__":
    main()
