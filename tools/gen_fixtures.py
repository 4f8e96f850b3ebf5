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
* Op hyper-parameters are stored in the metadata as strings.

Output is deterministic: each case reseeds the RNG, and running the script
twice produces byte-identical files.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
import safetensors.torch
from safetensors.torch import save as st_serialize

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures"
MAX_TOTAL_BYTES = 5 * 1000 * 1000

Tensors = dict[str, torch.Tensor]
Compute = Callable[[Tensors], Tensors]

# (file name, size in bytes, {output name: f32 relative error}) for the summary.
_written: list[tuple[str, int, dict[str, float]]] = []


# --------------------------------------------------------------------------
# Generic helpers
# --------------------------------------------------------------------------


def seed_for(name: str) -> None:
    """Reseed the global RNG from the case name (stable across runs)."""
    torch.manual_seed(zlib.crc32(name.encode()))


def cast(tensors: Mapping[str, torch.Tensor], dtype: torch.dtype) -> Tensors:
    """Fresh copies of `tensors`, floating-point ones cast to `dtype`."""
    return {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).clone()
        for k, v in tensors.items()
    }


def rel_err(t32: torch.Tensor, t64: torch.Tensor) -> float:
    """Normwise relative error of a float32 result against the float64 one."""
    t32, t64 = t32.detach().double(), t64.detach().double()
    ref = t64.norm().item()
    diff = (t32 - t64).norm().item()
    return diff / ref if ref != 0.0 else diff


def save_case(
    fname: str,
    inputs: Tensors,
    compute: Compute,
    meta: Mapping[str, object] | None = None,
    store_inputs: bool = True,
) -> tuple[Tensors, Tensors]:
    """Run `compute` in float64 and float32, store inputs + f64 outputs.

    `inputs` are the stored inputs (float32 or int64; only the outputs are stored when
    `store_inputs` is false, for a case whose inputs another fixture holds).  `compute` receives
    fresh copies cast to the working dtype and returns named outputs.
    Returns (outputs in float64, outputs in float32).
    """
    out64 = compute(cast(inputs, torch.float64))
    out32 = compute(cast(inputs, torch.float32))
    assert out64.keys() == out32.keys()
    clash = inputs.keys() & out64.keys()
    assert not clash, f"{fname}: output names clash with inputs: {clash}"

    errs = {k: rel_err(out32[k], out64[k]) for k in out64}
    tensors = {k: v.contiguous() for k, v in inputs.items()} if store_inputs else {}
    for k, v in out64.items():
        assert v.dtype == torch.float64, f"{fname}: {k} is {v.dtype}"
        tensors[k] = v.detach().to(torch.float32).contiguous()
    for k, v in tensors.items():
        assert v.dtype in (torch.float32, torch.int64), f"{fname}: {k} is {v.dtype}"

    metadata = {k: str(v) for k, v in (meta or {}).items()}
    metadata.update({f"f32_err.{k}": f"{e:.3e}" for k, e in errs.items()})

    path = OUT_DIR / fname
    path.write_bytes(serialize(tensors, metadata))
    _written.append((fname, path.stat().st_size, errs))
    return out64, out32


def serialize(tensors: Tensors, metadata: dict[str, str]) -> bytes:
    """safetensors bytes with a canonical header.

    The safetensors library writes the metadata map in hash order, which
    changes between runs; re-emit the JSON header with sorted metadata keys
    (the tensor entries and data bytes are left as the library wrote them).
    """
    raw = st_serialize(tensors, metadata=metadata)
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # data must start 8-byte aligned
    return len(text).to_bytes(8, "little") + text + raw[8 + n:]


def input_grads(y: torch.Tensor, dy: torch.Tensor, leaves: Tensors) -> Tensors:
    """Gradients of sum(y * dy) w.r.t. `leaves`, named 'd<leaf name>'."""
    grads = torch.autograd.grad((y * dy).sum(), list(leaves.values()))
    return {f"d{name}": g for name, g in zip(leaves, grads)}


def op_case(
    fname: str,
    op: Callable[..., torch.Tensor],
    inputs: Tensors,
    meta: Mapping[str, object] | None = None,
) -> tuple[Tensors, Tensors]:
    """A forward op `y = op(**inputs)` plus its backward for a random `dy`.

    Gradients w.r.t. every (floating-point) input are stored as `d<name>`.
    The upstream gradient `dy` is drawn (float32) after the inputs, with the
    RNG state left by the caller.
    """
    with torch.no_grad():
        y_shape = op(**inputs).shape
    inputs = {**inputs, "dy": torch.randn(y_shape)}

    def compute(t: Tensors) -> Tensors:
        dy = t.pop("dy")
        leaves = {k: v.requires_grad_() for k, v in t.items()}
        y = op(**t)
        return {"y": y, **input_grads(y, dy, leaves)}

    return save_case(fname, inputs, compute, meta)


# --------------------------------------------------------------------------
# Per-op cases
# --------------------------------------------------------------------------


def conv2d_cases() -> None:
    cases = [
        # fname, x shape, weight shape, stride, padding, groups
        ("conv2d_conv1like", (2, 3, 23, 23), (8, 3, 11, 11), 4, 2, 1),
        ("conv2d_5x5_groups2", (2, 4, 9, 7), (6, 2, 5, 5), 1, 2, 2),
        ("conv2d_3x3_stride2_groups2", (3, 6, 7, 5), (4, 3, 3, 3), 2, 1, 2),
    ]
    for name, xs, ws, stride, padding, groups in cases:
        seed_for(name)
        inputs = {
            "x": torch.randn(xs),
            "weight": torch.randn(ws),
            "bias": torch.randn(ws[0]),
        }

        def op(x, weight, bias, stride=stride, padding=padding, groups=groups):
            return F.conv2d(x, weight, bias, stride=stride, padding=padding, groups=groups)

        op_case(f"{name}.safetensors", op, inputs,
                {"stride": stride, "padding": padding, "groups": groups})


def relu_case() -> None:
    name = "relu"
    seed_for(name)
    x = torch.randn(2, 3, 5, 7)
    # Keep every element clearly away from the kink at 0.
    x = torch.where(x >= 0, x + 1e-3, x - 1e-3)
    assert x.abs().min() >= 1e-3
    op_case(f"{name}.safetensors", lambda x: F.relu(x), {"x": x})


def lrn_cases() -> None:
    cases = [
        # fname, x shape, x scale, size, alpha, beta, k
        ("lrn_alexnet", (2, 7, 5, 3), 40.0, 5, 1e-4, 0.75, 2.0),
        ("lrn_even_size", (2, 6, 3, 4), 3.0, 4, 0.05, 0.6, 1.5),
    ]
    for name, xs, scale, size, alpha, beta, k in cases:
        seed_for(name)
        x = torch.randn(xs) * scale

        def op(x, size=size, alpha=alpha, beta=beta, k=k):
            return F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k)

        op_case(f"{name}.safetensors", op, {"x": x},
                {"size": size, "alpha": alpha, "beta": beta, "k": k})


def max_pool_cases() -> None:
    cases = [
        # fname, x shape, kernel, stride, integer-valued (many ties)
        ("max_pool_3x3s2_ties", (2, 3, 9, 11), 3, 2, True),
        ("max_pool_3x3s2", (2, 4, 13, 13), 3, 2, False),
        ("max_pool_2x2s2", (1, 2, 8, 7), 2, 2, False),
    ]
    for name, xs, kernel, stride, ties in cases:
        seed_for(name)
        x = torch.randint(0, 4, xs).float() if ties else torch.randn(xs)

        def op(x, kernel=kernel, stride=stride):
            return F.max_pool2d(x, kernel, stride)

        out64, out32 = op_case(f"{name}.safetensors", op, {"x": x},
                               {"kernel": kernel, "stride": stride})
        if ties:
            check_max_pool_ties(name, x, kernel, stride, out64, out32)


def check_max_pool_ties(name: str, x: torch.Tensor, kernel: int, stride: int,
                        out64: Tensors, out32: Tensors) -> None:
    """Ties go to the first maximum in scan order, identically in f32 and f64.

    The selected positions (and so y) must agree exactly between float32 and
    float64.  dx may differ in the last bit only, because a position can win
    several overlapping windows and the dy values are summed in the working
    precision.
    """
    _, idx64 = F.max_pool2d(x.double(), kernel, stride, return_indices=True)
    _, idx32 = F.max_pool2d(x, kernel, stride, return_indices=True)
    assert torch.equal(idx64, idx32), f"{name}: f32/f64 argmax differ"
    assert torch.equal(out32["y"].double(), out64["y"]), f"{name}: y f32 != f64"
    assert rel_err(out32["dx"], out64["dx"]) < 1e-6, f"{name}: dx f32 vs f64"

    # Independent check of the tie rule: first maximum in row-major window order.
    n, c, h, w = x.shape
    oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    assert idx64.shape == (n, c, oh, ow)
    ties = 0
    for b in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    win = x[b, ch, i * stride:i * stride + kernel, j * stride:j * stride + kernel]
                    flat = win.reshape(-1)
                    first = int((flat == flat.max()).nonzero()[0])
                    ties += int((flat == flat.max()).sum()) > 1
                    r, s = divmod(first, kernel)
                    expect = (i * stride + r) * w + (j * stride + s)
                    assert int(idx64[b, ch, i, j]) == expect, f"{name}: tie rule at {b, ch, i, j}"
    assert ties > 0, f"{name}: no ties"
    print(f"{name}: {ties}/{idx64.numel()} windows have tied maxima; first-max rule holds")


def activation_cases() -> None:
    """LeakyReLU, ELU, Sigmoid and Tanh, inputs kept 1e-3 away from the kink at 0 (of the
    first two; harmless for the smooth two)."""
    cases = [
        ("leaky_relu", lambda x: F.leaky_relu(x, 0.1), {"slope": 0.1}),
        ("elu", lambda x: F.elu(x, 0.7), {"alpha": 0.7}),
        ("sigmoid", torch.sigmoid, {}),
        ("tanh", torch.tanh, {}),
    ]
    for name, op, meta in cases:
        seed_for(name)
        x = torch.randn(2, 3, 5, 7) * 2
        x = torch.where(x >= 0, x + 1e-3, x - 1e-3)
        op_case(f"{name}.safetensors", op, {"x": x}, meta)


def avg_pool_cases() -> None:
    cases = [
        # fname, x shape, kernel, stride, padding (count_include_pad=True, PyTorch's default)
        ("avg_pool_3x3s2", (2, 3, 9, 11), 3, 2, 0),
        ("avg_pool_2x2s2", (1, 2, 8, 7), 2, 2, 0),
        ("avg_pool_3x3s2_pad1", (1, 3, 7, 6), 3, 2, 1),
    ]
    for name, xs, kernel, stride, padding in cases:
        seed_for(name)

        def op(x, kernel=kernel, stride=stride, padding=padding):
            return F.avg_pool2d(x, kernel, stride, padding, count_include_pad=True)

        op_case(f"{name}.safetensors", op, {"x": torch.randn(xs)},
                {"kernel": kernel, "stride": stride, "padding": padding})


def batch_norm_case() -> None:
    """BatchNorm2d in training mode (y, gradients, running statistics after one batch)
    and then in evaluation mode on a second input with the updated statistics."""
    name = "batch_norm"
    seed_for(name)
    c = 3
    inputs = {
        "x": torch.randn(2, c, 5, 4) * 3 + 1.5,
        "weight": torch.randn(c),
        "bias": torch.randn(c),
        "running_mean": torch.randn(c) * 0.5,
        "running_var": torch.rand(c) + 0.5,
        "x_eval": torch.randn(2, c, 5, 4) * 3 + 1.5,
    }
    inputs["dy"] = torch.randn(2, c, 5, 4)

    def compute(t: Tensors) -> Tensors:
        bn = nn.BatchNorm2d(c, eps=1e-5, momentum=0.1).to(t["x"].dtype)
        with torch.no_grad():
            bn.weight.copy_(t["weight"])
            bn.bias.copy_(t["bias"])
            bn.running_mean.copy_(t["running_mean"])
            bn.running_var.copy_(t["running_var"])
        x = t["x"].requires_grad_()
        bn.train()
        y = bn(x)
        dx, dw, db = torch.autograd.grad((y * t["dy"]).sum(), [x, bn.weight, bn.bias])
        bn.eval()
        with torch.no_grad():
            y_eval = bn(t["x_eval"])
        return {"y": y, "dx": dx, "dweight": dw, "dbias": db,
                "running_mean_after": bn.running_mean.clone(),
                "running_var_after": bn.running_var.clone(), "y_eval": y_eval}

    save_case(f"{name}.safetensors", inputs, compute, {"eps": 1e-5, "momentum": 0.1})


def adaptive_avg_pool_cases() -> None:
    out_hw = (6, 6)
    cases = [
        ("adaptive_avg_pool_13", (2, 3, 13, 13)),
        ("adaptive_avg_pool_9x7", (2, 2, 9, 7)),
        ("adaptive_avg_pool_4x5", (1, 3, 4, 5)),
        ("adaptive_avg_pool_6", (1, 2, 6, 6)),
    ]
    for name, xs in cases:
        seed_for(name)
        op_case(f"{name}.safetensors", lambda x: F.adaptive_avg_pool2d(x, out_hw),
                {"x": torch.randn(xs)}, {"out_h": out_hw[0], "out_w": out_hw[1]})


def linear_case() -> None:
    name = "linear"
    seed_for(name)
    inputs = {
        "x": torch.randn(3, 10),
        "weight": torch.randn(7, 10),
        "bias": torch.randn(7),
    }
    op_case(f"{name}.safetensors", F.linear, inputs)


def cross_entropy_case() -> None:
    name = "cross_entropy"
    seed_for(name)
    logits = torch.randn(5, 10) * 30
    # One row around +1000: a naive exp() overflows float32 there.
    logits[2] = 1000 + torch.randn(10)
    labels = torch.randint(0, 10, (5,))

    def compute(t: Tensors) -> Tensors:
        z = t["logits"].requires_grad_()
        loss = F.cross_entropy(z, t["labels"], reduction="mean")
        (dz,) = torch.autograd.grad(loss, z)
        return {"loss": loss.reshape(1), "dlogits": dz}

    save_case(f"{name}.safetensors", {"logits": logits, "labels": labels}, compute,
              {"reduction": "mean"})


SGD_HP = {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4}


def optimizer_case(name: str, make: Callable, hp: Mapping[str, object],
                   state_keys: Sequence[str], steps: int) -> None:
    """`steps` optimizer steps on one parameter from stored gradients; stores the
    parameter after each step and the optimizer state after the last."""
    seed_for(name)
    inputs = {"param": torch.randn(37)}
    inputs.update({f"grad{i + 1}": torch.randn(37) for i in range(steps)})

    def compute(t: Tensors) -> Tensors:
        p = nn.Parameter(t["param"])
        opt = make([p], **hp)
        out = {}
        for i in range(steps):
            p.grad = t[f"grad{i + 1}"]
            opt.step()
            out[f"param_step{i + 1}"] = p.detach().clone()
        for key in state_keys:
            out[f"{key}_step{steps}"] = opt.state[p][key].detach().clone()
        return out

    meta = {k: v for k, v in hp.items() if k != "betas"}
    if "betas" in hp:
        meta["beta1"], meta["beta2"] = hp["betas"]
    meta["steps"] = steps
    save_case(f"{name}.safetensors", inputs, compute, meta)


def optimizer_cases() -> None:
    optimizer_case("sgd", torch.optim.SGD, SGD_HP, ["momentum_buffer"], 2)
    adam_hp = {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 5e-4}
    optimizer_case("adam", torch.optim.Adam, adam_hp, ["exp_avg", "exp_avg_sq"], 3)
    adamw_hp = {**adam_hp, "weight_decay": 1e-2}
    optimizer_case("adamw", torch.optim.AdamW, adamw_hp, ["exp_avg", "exp_avg_sq"], 3)


# --------------------------------------------------------------------------
# Whole network
# --------------------------------------------------------------------------

ALEX = {
    "channels": [12, 32, 48, 48, 32],
    "fc": 128,
    "classes": 10,
    "input": 163,  # 40 -> pool 19 -> 19 -> pool 9 -> 9 -> pool 4, adaptive 4 -> 6
    "batch": 1,
}
# Extra gain on the default (kaiming_uniform a=sqrt(5)) conv/linear weights.
# The default init has variance 1/(3 fan_in), which shrinks activations at
# every layer; sqrt(6) gives He-like variance 2/fan_in so the logits are O(1).
ALEX_WEIGHT_GAIN = 6 ** 0.5


class AlexNetSmall(nn.Module):
    """Original AlexNet topology (two groups, LRN) with reduced widths."""

    def __init__(self, channels: list[int], fc: int, classes: int) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = channels
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 11, stride=4, padding=2),
            nn.ReLU(inplace=False),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c1, c2, 5, padding=2, groups=2),
            nn.ReLU(inplace=False),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(inplace=False),
            nn.Conv2d(c3, c4, 3, padding=1, groups=2),
            nn.ReLU(inplace=False),
            nn.Conv2d(c4, c5, 3, padding=1, groups=2),
            nn.ReLU(inplace=False),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(c5 * 6 * 6, fc),
            nn.ReLU(inplace=False),
            nn.Dropout(0.5),
            nn.Linear(fc, fc),
            nn.ReLU(inplace=False),
            nn.Linear(fc, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def alexnet_case() -> None:
    name = "alexnet_small"
    seed_for(name)
    model = AlexNetSmall(ALEX["channels"], ALEX["fc"], ALEX["classes"])
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(ALEX_WEIGHT_GAIN)
    param_names = [n for n, _ in model.named_parameters()]
    assert set(param_names) == set(model.state_dict()), "state_dict has buffers"

    inputs: Tensors = {
        f"param.{n}": p.detach().clone() for n, p in model.named_parameters()
    }
    inputs["input"] = torch.randn(ALEX["batch"], 3, ALEX["input"], ALEX["input"])
    inputs["labels"] = torch.randint(0, ALEX["classes"], (ALEX["batch"],))

    def compute(t: Tensors) -> Tensors:
        dtype = t["input"].dtype
        net = AlexNetSmall(ALEX["channels"], ALEX["fc"], ALEX["classes"]).to(dtype)
        net.load_state_dict({n: t[f"param.{n}"] for n in param_names})
        net.eval()  # dropout off; nothing else in the model depends on the mode
        params = dict(net.named_parameters())
        opt = torch.optim.SGD(params.values(), **SGD_HP)

        x = t["input"].requires_grad_()
        logits = net(x)
        loss = F.cross_entropy(logits, t["labels"])
        grads = torch.autograd.grad(loss, [x, *params.values()])
        out = {"logits": logits, "loss": loss.reshape(1), "grad.input": grads[0]}
        out.update({f"grad.{n}": g for n, g in zip(params, grads[1:])})

        for step in range(2):
            if step > 0:
                loss = F.cross_entropy(net(t["input"].detach()), t["labels"])
                grads = (None, *torch.autograd.grad(loss, list(params.values())))
            for p, g in zip(params.values(), grads[1:]):
                p.grad = g
            opt.step()
        out.update({f"step2.{n}": p.detach().clone() for n, p in params.items()})
        return {k: v.detach() for k, v in out.items()}

    config = {**ALEX, "sgd": SGD_HP, "steps": 2, "dropout": "off (eval)",
              "weight_gain": ALEX_WEIGHT_GAIN}
    out64, _ = save_case(f"{name}.safetensors", inputs, compute,
                         {"config": json.dumps(config, sort_keys=True), **SGD_HP})

    logits = out64["logits"]
    std = logits.std().item()
    print(f"alexnet_small: logits std {std:.3f}, loss {out64['loss'].item():.4f}")
    print(f"alexnet_small: logits {logits.tolist()}")
    assert 0.1 <= std <= 10.0, f"logit std {std} out of range"
    for n in param_names:
        g = out64[f"grad.{n}"]
        assert g.abs().max() > 0, f"gradient of {n} is all zero"


MIXED_LOSS_SCALE = 65536.0


def round_f16(t: torch.Tensor) -> torch.Tensor:
    """`t` rounded to float16 (nearest, ties to even; ±inf from 65520), kept in t's dtype."""
    return t.to(torch.float16).to(t.dtype)


class RoundGradient(torch.autograd.Function):
    """Identity forward; backward rounds the incoming gradient to float16 as the GPU's mixed
    GEMMs load it: scaled by the loss scale, rounded, unscaled (exact for a power of two
    unless it underflows)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        return round_f16(g * MIXED_LOSS_SCALE) / MIXED_LOSS_SCALE


class F16Gemm(nn.Module):
    """A Conv2d or Linear computed as `--precision mixed` computes it: input and weight
    rounded to float16, the output gradient rounded likewise before the backward GEMMs, sums
    in the working precision, the bias added (and its gradient summed) unrounded."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.layer.weight
        w = round_f16(weight.detach()) + (weight - weight.detach())
        x = round_f16(x.detach()) + (x - x.detach())
        if isinstance(self.layer, nn.Conv2d):
            c = self.layer
            y = F.conv2d(x, w, None, c.stride, c.padding, c.dilation, c.groups)
            bias = self.layer.bias.view(1, -1, 1, 1)
        else:
            y = F.linear(x, w)
            bias = self.layer.bias
        return RoundGradient.apply(y) + bias


def mixed_gemms(net: nn.Module) -> nn.Module:
    """`net` with every Conv2d and Linear wrapped in F16Gemm (parameter names unchanged
    but for the `.layer` level, which load_state_dict below handles)."""
    for name, child in net.named_children():
        if isinstance(child, (nn.Conv2d, nn.Linear)):
            setattr(net, name, F16Gemm(child))
        else:
            mixed_gemms(child)
    return net


def alexnet_mixed_case() -> None:
    """alexnet_small's model and inputs (read back from its fixture) through mixed precision:
    logits, loss and every gradient, in float64 (and float32 for PyTorch's own error)."""
    name = "alexnet_small_mixed"
    src = safetensors.torch.load_file(OUT_DIR / "alexnet_small.safetensors")
    inputs = {k: v for k, v in src.items() if k.startswith("param.")}
    inputs["input"], inputs["labels"] = src["input"], src["labels"]
    param_names = [k[len("param."):] for k in inputs if k.startswith("param.")]

    def compute(t: Tensors) -> Tensors:
        dtype = t["input"].dtype
        net = AlexNetSmall(ALEX["channels"], ALEX["fc"], ALEX["classes"]).to(dtype)
        net.load_state_dict({n: t[f"param.{n}"] for n in param_names})
        net = mixed_gemms(net)
        net.eval()
        params = dict(net.named_parameters())
        x = t["input"].requires_grad_()
        logits = net(x)
        loss = F.cross_entropy(logits, t["labels"])
        grads = torch.autograd.grad(loss, [x, *params.values()])
        out = {"logits": logits, "loss": loss.reshape(1), "grad.input": grads[0]}
        out.update({f"grad.{n.replace('.layer.', '.')}": g
                    for n, g in zip(params, grads[1:])})
        return {k: v.detach() for k, v in out.items()}

    # Only the outputs are stored: the test reads the inputs from alexnet_small.
    out64, out32 = save_case(f"{name}.safetensors", inputs, compute,
                             {"loss_scale": MIXED_LOSS_SCALE}, store_inputs=False)
    print(f"alexnet_small_mixed: loss {out64['loss'].item():.6f}")


# --------------------------------------------------------------------------


STATE_DICT = {"channels": [8, 16, 24, 24, 16], "fc": 64, "classes": 10, "input": 67, "batch": 2}


def state_dict_case() -> None:
    """A weights file as PyTorch users write it (`save_file(model.state_dict())`) and, in a
    second file, an input with the logits PyTorch computes from those weights."""
    name = "pytorch_state_dict"
    seed_for(name)
    cfg = STATE_DICT
    model = AlexNetSmall(cfg["channels"], cfg["fc"], cfg["classes"])
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps(cfg, sort_keys=True), "written_by": "safetensors.torch"}
    path = OUT_DIR / f"{name}.safetensors"
    path.write_bytes(serialize(state, meta))
    _written.append((path.name, path.stat().st_size, {}))

    inputs: Tensors = {"input": torch.randn(cfg["batch"], 3, cfg["input"], cfg["input"])}

    def compute(t: Tensors) -> Tensors:
        net = AlexNetSmall(cfg["channels"], cfg["fc"], cfg["classes"]).to(t["input"].dtype)
        net.load_state_dict({k: v.to(t["input"].dtype) for k, v in state.items()})
        net.eval()
        with torch.no_grad():
            return {"logits": net(t["input"])}

    save_case(f"{name}_logits.safetensors", inputs, compute, {"config": json.dumps(cfg, sort_keys=True)})


# --------------------------------------------------------------------------
# Fine-tuning: pretrained torchvision-layout weights, a new head, frozen features
# --------------------------------------------------------------------------

FINETUNE = {"channels": [16, 32, 48, 32, 32], "fc": 64, "classes": 10, "new_classes": 7,
            "input": 99, "batch": 2}
# Two PyTorch parameter groups: the new head at lr, the rest of the classifier at lr_backbone.
FINETUNE_SGD = {"lr": 0.01, "lr_backbone": 0.002, "momentum": 0.9, "weight_decay": 5e-4}


class TorchVisionSmall(nn.Module):
    """torchvision's AlexNet layout (no LRN, no groups) with reduced widths."""

    def __init__(self, channels: list[int], fc: int, classes: int) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = channels
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 11, stride=4, padding=2),
            nn.ReLU(inplace=False),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c1, c2, 5, padding=2),
            nn.ReLU(inplace=False),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(inplace=False),
            nn.Conv2d(c3, c4, 3, padding=1),
            nn.ReLU(inplace=False),
            nn.Conv2d(c4, c5, 3, padding=1),
            nn.ReLU(inplace=False),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5),
            nn.Linear(c5 * 6 * 6, fc),
            nn.ReLU(inplace=False),
            nn.Dropout(0.5),
            nn.Linear(fc, fc),
            nn.ReLU(inplace=False),
            nn.Linear(fc, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def finetune_case() -> None:
    """``finetune_pretrained.safetensors``: weights as PyTorch writes a state_dict (10
    classes). ``finetune_small.safetensors``: a new 7-class head's values, a batch, and the
    losses and every parameter after two SGD steps (momentum, weight decay) with the features
    frozen and the rest of the classifier at a lower learning rate than the head."""
    name = "finetune_small"
    seed_for(name)
    cfg = FINETUNE
    pretrained = TorchVisionSmall(cfg["channels"], cfg["fc"], cfg["classes"])
    with torch.no_grad():
        for m in pretrained.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(ALEX_WEIGHT_GAIN)
    state = {k: v.detach().clone().contiguous() for k, v in pretrained.state_dict().items()}
    path = OUT_DIR / "finetune_pretrained.safetensors"
    path.write_bytes(serialize(state, {"written_by": "safetensors.torch"}))
    _written.append((path.name, path.stat().st_size, {}))

    fc, new = cfg["fc"], cfg["new_classes"]
    bound = 1.0 / fc ** 0.5
    inputs: Tensors = {
        "head.weight": (torch.rand(new, fc) * 2 - 1) * bound,
        "head.bias": (torch.rand(new) * 2 - 1) * bound,
        "input": torch.randn(cfg["batch"], 3, cfg["input"], cfg["input"]),
        "labels": torch.randint(0, new, (cfg["batch"],)),
    }

    def compute(t: Tensors) -> Tensors:
        dtype = t["input"].dtype
        net = TorchVisionSmall(cfg["channels"], fc, cfg["classes"]).to(dtype)
        net.load_state_dict({k: v.to(dtype) for k, v in state.items()})
        net.classifier[6] = nn.Linear(fc, new).to(dtype)
        with torch.no_grad():
            net.classifier[6].weight.copy_(t["head.weight"])
            net.classifier[6].bias.copy_(t["head.bias"])
        net.eval()  # dropout off; nothing else in the model depends on the mode
        for p in net.features.parameters():
            p.requires_grad_(False)
        head = list(net.classifier[6].parameters())
        backbone = [p for n, p in net.classifier.named_parameters() if not n.startswith("6.")]
        hp = FINETUNE_SGD
        opt = torch.optim.SGD(
            [{"params": head}, {"params": backbone, "lr": hp["lr_backbone"]}],
            lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])
        out = {}
        for step in range(2):
            opt.zero_grad()
            loss = F.cross_entropy(net(t["input"]), t["labels"])
            loss.backward()
            opt.step()
            out[f"loss{step + 1}"] = loss.detach().reshape(1)
        out.update({f"step2.{n}": p.detach().clone() for n, p in net.named_parameters()})
        return out

    config = {**cfg, "sgd": FINETUNE_SGD, "steps": 2, "frozen": "features",
              "dropout": "off (eval)", "weight_gain": ALEX_WEIGHT_GAIN}
    out64, _ = save_case(f"{name}.safetensors", inputs, compute,
                         {"config": json.dumps(config, sort_keys=True)})
    for n, v in state.items():
        if n.startswith("features."):
            assert torch.equal(out64[f"step2.{n}"].float(), v), f"frozen {n} moved"
        elif not n.startswith("classifier.6."):
            assert not torch.equal(out64[f"step2.{n}"].float(), v), f"{n} did not train"
    print(f"finetune_small: losses {out64['loss1'].item():.4f} -> {out64['loss2'].item():.4f}")


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
    for fname, size, errs in _written:
        total += size
        print(f"{fname:40s} {size:>10,d} B")
        for k, e in errs.items():
            print(f"    f32_err.{k:34s} {e:.3e}")
    print(f"{'total':40s} {total:>10,d} B")
    assert total < MAX_TOTAL_BYTES, f"fixtures total {total} B exceeds {MAX_TOTAL_BYTES} B"


if __name__ == "__main__":
    main()
