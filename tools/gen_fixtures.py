#!/usr/bin/env python3
"""Generate the PyTorch reference fixtures used by the Rust tests.

Writes small safetensors files into ``tests/fixtures/`` (relative to the
repository root, found from this script's own location):

* per-op cases (conv2d, relu, local response norm, max pool, adaptive average
  pool, linear, cross-entropy, SGD) with forward outputs and, where the op has
  a backward pass, the gradients for a random upstream gradient ``dy``;
* ``alexnet_small.safetensors``: a narrow AlexNet (the original two-group
  topology with LRN) with its initial parameters, logits, loss, all gradients
  and the parameters after two SGD steps;
* ``finetune_pretrained.safetensors`` / ``finetune_small.safetensors``: PyTorch-written
  torchvision-layout weights, and two SGD steps of fine-tuning them with a new 7-class head,
  frozen features and a backbone learning rate below the head's.

Run it with::

    pip install -r tools/requirements.txt && python3 tools/gen_fixtures.py

Conventions:

* Inputs (activations, weights, biases, upstream gradients, SGD gradients) are
  generated in float32 and stored as F32; integer labels are stored as I64.
* Every reference output is computed in **float64** from those exact float32
  values (cast up) and then rounded to F32 for storage.
* The same computation is also run entirely in float32; for every output
  ``name`` the metadata key ``f32_err.<name>`` holds the normwise relative
  error ``||t32 - t64||_2 / ||t64||_2`` (``%.3e``).  This is how accurate
  PyTorch's own float32 is, and it is what the test tolerances are based on.
  ``f32_element_err.<name>`` holds the farthest element's error,
  ``max_i |t32_i - t64_i| / (rms(t64) + |t64_i|)``: the tests let no element be
  more than twice that far (or their own per-element bound, if wider).  In mixed
  precision PyTorch's float32 rounds an operand to the other float16 neighbour
  where its sum lands across a rounding midpoint from the float64 one, and so
  may any float32 implementation.
* Op hyper-parameters are stored in the metadata as strings.

Output is deterministic: each case reseeds the RNG, and running the script
twice produces byte-identical files.
"""

from __future__ import annotations

import torch

from fixtures.common import MAX_TOTAL_BYTES, OUT_DIR, ROOT, WRITTEN
from fixtures.models import alexnet_case, alexnet_mixed_case, finetune_case, state_dict_case
from fixtures.ops import (
    activation_cases,
    adaptive_avg_pool_cases,
    avg_pool_cases,
    batch_norm_case,
    conv2d_cases,
    cross_entropy_case,
    linear_case,
    lrn_cases,
    max_pool_cases,
    optimizer_cases,
    relu_case,
)


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    conv2d_cases()
    relu_case()
    lrn_cases()
    max_pool_cases()
    activation_cases()
    avg_pool_cases()
    batch_norm_case()
    adaptive_avg_pool_cases()
    linear_case()
    cross_entropy_case()
    optimizer_cases()
    alexnet_case()
    alexnet_mixed_case()
    state_dict_case()
    finetune_case()

    print()
    print(f"fixtures in {OUT_DIR.relative_to(ROOT)}  (f32_err = ||t32 - t64|| / ||t64||)")
    total = 0
    for fname, size, errs in WRITTEN:
        total += size
        print(f"{fname:40s} {size:>10,d} B")
        for k, e in errs.items():
            print(f"    f32_err.{k:34s} {e:.3e}")
    print(f"{'total':40s} {total:>10,d} B")
    assert total < MAX_TOTAL_BYTES, f"fixtures total {total} B exceeds {MAX_TOTAL_BYTES} B"


if __name__ == "__main__":
    main()
