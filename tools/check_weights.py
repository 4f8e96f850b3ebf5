"""Loads a weights file written by alexnet-wgpu into the same AlexNet in PyTorch
(`load_state_dict(strict=True)`), runs it on the input stored beside it, and compares the
logits with the ones alexnet-wgpu computed.

    python3 tools/check_weights.py WEIGHTS.safetensors IO.safetensors

IO.safetensors holds `input` and `logits`; its metadata `config` gives channels, fc and
classes. Exits 0 when the logits agree to float32 precision, 1 otherwise.
"""
from __future__ import annotations

import json
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from fixtures.models import AlexNetSmall


def main(weights_path: str, io_path: str) -> int:
    with safe_open(io_path, "pt") as f:
        cfg = json.loads(f.metadata()["config"])
    io = load_file(io_path)
    net = AlexNetSmall(cfg["channels"], cfg["fc"], cfg["classes"]).double()
    state = {k: v.double() for k, v in load_file(weights_path).items()}
    net.load_state_dict(state, strict=True)
    net.eval()
    with torch.no_grad():
        want = net(io["input"].double())
    got = io["logits"].double()
    err = ((got - want).norm() / want.norm()).item()
    print(f"PyTorch loaded {len(state)} tensors strictly; logits relative error {err:.3e}")
    return 0 if err < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
