#!/usr/bin/env python3
"""Generate the JPEG decoder fixtures: small JPEGs and the pixels Pillow decodes from them.

Our JPEG decoder (``src/data/jpeg``) must give exactly the pixels Pillow's libjpeg-turbo gives
(``Image.open(p).convert("RGB")``), because torchvision's preprocessing starts from them. This
script writes, under ``tests/fixtures/jpeg/`` (relative to the repository root):

* ``<case>.jpg``: a small JPEG. Most are written by Pillow (4:4:4, 4:2:2 and 4:2:0 chroma,
  baseline and progressive, restart intervals in blocks and in rows, grayscale, quality 5 to
  100, odd sizes from 1x1 up); the rest by libjpeg-turbo's ``cjpeg`` (Debian package
  ``libjpeg-turbo-progs``), for what Pillow cannot write: 4:4:0, 4:1:1 and mixed sampling
  factors, RGB (no colour transform), optimized Huffman tables, 16-bit quantization tables,
  restart intervals with progressive scans, progressive scan scripts that stop before every
  coefficient is exact (so libjpeg smooths blocks), and an arithmetic-coded file
  (unsupported).
* ``corrupt_*.jpg``: damaged files libjpeg still decodes with warnings (entropy data cut
  short within a scan, restart markers renumbered or missing), which Pillow then shows.
* ``<case>.png``: Pillow's decoded RGB pixels of ``<case>.jpg``, stored losslessly.
* ``manifest.txt``: one line per case: ``<case>.jpg exact`` (the decoder must reproduce the
  PNG byte for byte) or ``<case>.jpg unsupported`` (the decoder must refuse it as
  unsupported); then, for the photos in ``tests/fixtures/photos``, ``photo <file> <w> <h>
  <fnv1a-64 of Pillow's RGB bytes, hex> <sum of R> <sum of G> <sum of B>``, since storing
  their pixels would be too big.

The source pixels are crops of ``tests/fixtures/photos/chelsea.png`` with seeded noise added
(so every file has high-frequency detail). Run with::

    apt-get install libjpeg-turbo-progs   # for cjpeg
    python3 tools/gen_jpeg_fixtures.py

Deterministic for a given Pillow/libjpeg-turbo; the PNGs are always derived from the JPEGs
as written. Pillow 13.0.0 (libjpeg-turbo 3.2.0) and cjpeg 2.1.5 wrote the committed files.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "jpeg"
PHOTOS = ROOT / "tests" / "fixtures" / "photos"
MAX_BYTES = 300 * 1000


def source(w: int, h: int, seed: int) -> Image.Image:
    """A w×h crop of chelsea.png with seeded noise and a hard edge."""
    base = np.asarray(Image.open(PHOTOS / "chelsea.png").convert("RGB"), dtype=np.int16)
    rng = np.random.default_rng(seed)
    y0 = int(rng.integers(0, base.shape[0] - h + 1))
    x0 = int(rng.integers(0, base.shape[1] - w + 1))
    crop = base[y0 : y0 + h, x0 : x0 + w].copy()
    crop += rng.integers(-24, 25, size=crop.shape, dtype=np.int16)
    crop[: h // 3, : w // 2] = (250, 20, 40)  # saturated red block: chroma edges
    return Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8), "RGB")


def pillow_cases() -> dict[str, tuple[Image.Image, dict]]:
    cases = {}
    sizes = [(1, 1), (7, 5), (17, 13), (33, 31), (48, 40)]
    seed = 0
    for w, h in sizes:
        for sub in (0, 1, 2):
            for prog in (False, True):
                seed += 1
                name = f"pil_{w}x{h}_s{sub}_{'prog' if prog else 'base'}"
                cases[name] = (source(w, h, seed), dict(quality=75, subsampling=sub, progressive=prog))
    for q in (5, 50, 95, 100):
        for sub in (0, 2):
            seed += 1
            cases[f"pil_q{q}_s{sub}"] = (source(29, 19, seed), dict(quality=q, subsampling=sub))
    seed += 1
    cases["pil_restart_blocks"] = (source(40, 24, seed), dict(quality=80, subsampling=2, restart_marker_blocks=3))
    seed += 1
    cases["pil_restart_rows_prog"] = (
        source(40, 24, seed),
        dict(quality=80, subsampling=1, restart_marker_rows=1, progressive=True),
    )
    seed += 1
    cases["pil_optimize_prog_q100"] = (source(25, 27, seed), dict(quality=100, optimize=True, progressive=True))
    for w, h in [(1, 1), (9, 7), (33, 31)]:
        for prog in (False, True):
            seed += 1
            name = f"pil_gray_{w}x{h}_{'prog' if prog else 'base'}"
            cases[name] = (source(w, h, seed).convert("L"), dict(quality=60, progressive=prog))
    return cases


def cjpeg_cases() -> dict[str, tuple[int, int, list[str], bool]]:
    """name: (w, h, cjpeg arguments, supported)."""
    return {
        "cj_440_17x13": (17, 13, ["-sample", "1x2"], True),
        "cj_440_32x32_prog": (32, 32, ["-sample", "1x2", "-progressive"], True),
        "cj_411_37x11": (37, 11, ["-sample", "4x1"], True),
        "cj_411_5x3": (5, 3, ["-sample", "4x1"], True),
        "cj_420_2x2": (2, 2, ["-sample", "2x2"], True),
        "cj_422_3x9": (3, 9, ["-sample", "2x1"], True),
        "cj_422_4x4": (4, 4, ["-sample", "2x1"], True),
        "cj_mixed_42_11_11": (23, 21, ["-sample", "4x2,1x1,1x1"], True),
        "cj_mixed_41_21_11": (29, 7, ["-sample", "4x1,2x1,1x1"], True),
        "cj_mixed_22_21_12": (19, 17, ["-sample", "2x2,2x1,1x2"], True),
        "cj_rgb": (21, 14, ["-rgb"], True),
        "cj_optimize_q97": (26, 18, ["-optimize", "-quality", "97"], True),
        "cj_q1_baseline": (26, 18, ["-quality", "1", "-baseline"], True),
        "cj_q1_16bit_qt_extended": (26, 18, ["-quality", "1"], True),
        "cj_restart_1row_420": (40, 33, ["-restart", "1", "-sample", "2x2"], True),
        "cj_restart_5b_prog": (40, 33, ["-restart", "5B", "-progressive", "-sample", "2x2"], True),
        "cj_gray_restart_prog": (35, 9, ["-grayscale", "-restart", "2B", "-progressive"], True),
        "cj_arithmetic": (16, 16, ["-arithmetic"], False),
        # Progressive scan scripts that stop before every coefficient is exact, so libjpeg
        # smooths blocks (its do_block_smoothing); 24 or 40 rows of 4:2:0 leave a partial
        # last iMCU row, where libjpeg's choice of neighbouring rows has a quirk.
        "cj_prog_stops_at_al1_420": (40, 40, ["-sample", "2x2", "-scans", SCAN_STOP_AL1], True),
        "cj_prog_stops_at_al1_420_h24": (31, 24, ["-sample", "2x2", "-scans", SCAN_STOP_AL1], True),
        "cj_prog_dc_only_420_h24": (26, 24, ["-sample", "2x2", "-scans", "0,1,2: 0-0, 0, 0;"], True),
        "cj_prog_dc_only_420": (37, 29, ["-sample", "2x2", "-scans", "0,1,2: 0-0, 0, 0;"], True),
        "cj_prog_dc_al2_gray": (30, 22, ["-grayscale", "-scans", "0: 0-0, 0, 2;"], True),
        "cj_prog_band_1_2_only": (33, 20, ["-scans", SCAN_BAND_1_2], True),
        "cj_prog_al1_411": (45, 17, ["-sample", "4x1", "-scans", SCAN_AL1_411], True),
    }


SCAN_STOP_AL1 = """
0,1,2: 0-0, 0, 1;
0: 1-5, 0, 2;
0: 6-63, 0, 2;
1: 1-63, 0, 1;
2: 1-63, 0, 1;
0,1,2: 0-0, 1, 0;
0: 1-63, 2, 1;
"""
SCAN_BAND_1_2 = """
0,1,2: 0-0, 0, 0;
0: 1-2, 0, 0;
1: 1-63, 0, 0;
2: 1-63, 0, 0;
"""
SCAN_AL1_411 = """
0,1,2: 0-0, 0, 1;
0: 1-9, 0, 1;
1: 1-63, 0, 0;
2: 1-63, 0, 0;
"""


def corrupt_cases() -> dict[str, bytes]:
    """Damaged files libjpeg still decodes (with warnings, which Pillow ignores): entropy data
    cut short within a scan, restart markers renumbered or missing."""

    def pil(img: Image.Image, **opts) -> bytes:
        buf = io.BytesIO()
        img.save(buf, "JPEG", **opts)
        return buf.getvalue()

    def cut(data: bytes, scan: int, frm: float, to: float) -> bytes:
        """Removes the [frm, to) fraction of scan number `scan`'s entropy-coded data."""
        sos = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA]
        start = sos[scan] + 2 + int.from_bytes(data[sos[scan] + 2 : sos[scan] + 4], "big")
        end = next(i for i in range(start, len(data) - 1) if data[i] == 0xFF and data[i + 1] not in (0, *range(0xD0, 0xD8)))
        a, b = start + int((end - start) * frm), start + int((end - start) * to)
        return data[:a] + data[b:]

    def rst_positions(data: bytes) -> list[int]:
        return [i for i in range(len(data) - 1) if data[i] == 0xFF and 0xD0 <= data[i + 1] <= 0xD7]

    cases = {}
    base = pil(source(64, 48, 501), quality=75, subsampling=2)
    cases["corrupt_cut_baseline_420"] = cut(base, 0, 0.4, 0.6)
    prog = pil(source(48, 40, 502), quality=85, subsampling=2, progressive=True)
    cases["corrupt_cut_progressive_ac"] = cut(prog, 3, 0.3, 0.7)
    rst = pil(source(64, 48, 503), quality=75, subsampling=1, restart_marker_blocks=2)
    pos = rst_positions(rst)
    for name, k, delta in [("corrupt_rst_prior", 4, -1), ("corrupt_rst_next", 4, 1), ("corrupt_rst_far", 4, 4)]:
        data = bytearray(rst)
        data[pos[k] + 1] = 0xD0 + (data[pos[k] + 1] - 0xD0 + delta) % 8
        cases[name] = bytes(data)
    cases["corrupt_rst_missing"] = rst[: pos[3]] + rst[pos[3] + 2 :]
    cases["corrupt_rst_cut_segment"] = rst[: pos[5] - 6] + rst[pos[5] :]
    return cases


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    lines = []
    for name, (img, opts) in pillow_cases().items():
        buf = io.BytesIO()
        img.save(buf, "JPEG", **opts)
        (OUT / f"{name}.jpg").write_bytes(buf.getvalue())
        lines.append(f"{name}.jpg exact")
    cjpeg = shutil.which("cjpeg")
    if cjpeg is None:
        raise SystemExit("cjpeg not found (apt-get install libjpeg-turbo-progs)")
    seed = 1000
    with tempfile.TemporaryDirectory() as tmp:
        for name, (w, h, args, supported) in cjpeg_cases().items():
            seed += 1
            ppm = Path(tmp) / f"{name}.ppm"
            src = source(w, h, seed)
            (src.convert("L") if "-grayscale" in args else src).save(ppm)
            jpg = OUT / f"{name}.jpg"
            if "-scans" in args:  # the script itself follows -scans: write it to a file
                i = args.index("-scans") + 1
                script = Path(tmp) / f"{name}.scans"
                script.write_text(args[i])
                args = [*args[:i], str(script), *args[i + 1 :]]
            subprocess.run([cjpeg, *args, "-outfile", str(jpg), str(ppm)], check=True)
            lines.append(f"{name}.jpg {'exact' if supported else 'unsupported'}")
    for name, data in corrupt_cases().items():
        (OUT / f"{name}.jpg").write_bytes(data)
        lines.append(f"{name}.jpg exact")
    for line in lines:
        name, kind = line.split()
        if kind == "exact":
            Image.open(OUT / name).convert("RGB").save(OUT / name.replace(".jpg", ".png"), optimize=True)
    for photo in ("astronaut.jpg", "coffee.jpg"):
        img = Image.open(PHOTOS / photo).convert("RGB")
        px = np.asarray(img)
        sums = " ".join(str(int(px[..., c].sum())) for c in range(3))
        lines.append(f"photo {photo} {img.width} {img.height} {fnv1a64(img.tobytes()):016x} {sums}")
    (OUT / "manifest.txt").write_text("\n".join(lines) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(lines)} manifest lines, {total} bytes in {OUT.relative_to(ROOT)}")
    if total > MAX_BYTES:
        raise SystemExit(f"fixtures take {total} bytes; keep them under {MAX_BYTES}")


if __name__ == "__main__":
    main()
