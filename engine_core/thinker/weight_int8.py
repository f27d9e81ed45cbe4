"""Weight-only int8 for the Thinker's decode step: half the bytes a step reads, the activations left in bf16.

A decode step multiplies one row by every weight of the model, so its time is the time to read the weights
(docs/performance.md: 19 GB a token at the paper's shape). Stored as int8 with one scale per output row, they are
half as many bytes; the product dequantises them on the fly: `F.linear(x, q.to(x.dtype)) * scale`. That is only
faster if the conversion happens inside the product's kernel, never as a bf16 copy of the weight in memory. On CUDA
inductor does that for one row: with `coordinate_descent_tuning` it writes a one-row product as a reduction
(`x[:, :, None] * w.T` summed), into which the int8 load and conversion fuse, one kernel per product
(`compiled_linear`; timed against cuBLAS bf16 and FP8 `_scaled_mm` by `python -m engine_core.bench.fp8_linears`).
Wider inputs (a prefill) would not fuse, so the decoder keeps the bf16 weights for them.

Rounding to 255 levels per row costs accuracy: the relative error of one product against float32 is ~0.9 % where
bf16's own is ~0.2 % (one 27,392 x 4,096 product; the benchmark prints both), and `tests/test_weight_int8.py`
bounds it.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
import torch.nn.functional as F

LEVELS = 127     # symmetric: int8 values in [-127, 127]


class Int8Weight(NamedTuple):
    """A linear layer's weight [N, K] as int8 with one scale per output row [N] (in the activations' dtype), and
    its bias [N] or None."""

    q: torch.Tensor
    scale: torch.Tensor
    bias: torch.Tensor | None = None


@torch.no_grad()
def quantise(weight: torch.Tensor, bias: torch.Tensor | None = None) -> Int8Weight:
    """Round each output row of `weight` to int8 by its own absolute maximum."""
    w = weight.float()
    scale = w.abs().amax(1, keepdim=True).clamp(min=1e-12) / LEVELS
    q = torch.round(w / scale).clamp_(-LEVELS, LEVELS).to(torch.int8)
    return Int8Weight(q, scale[:, 0].to(weight.dtype), bias)


def dequantised(w: Int8Weight) -> torch.Tensor:
    """The weight the int8 one stands for, [N, K] in the scale's dtype."""
    return w.q.to(w.scale.dtype) * w.scale[:, None]


def _linear(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    y = F.linear(x, q.to(x.dtype)) * scale
    return y if bias is None else y + bias


@functools.cache
def compiled_linear():
    """`_linear` compiled by inductor with one-row products written as reductions (one kernel per product shape;
    `dynamic=False`: a shape generalised to symbols would no longer be known to have one row)."""
    return torch.compile(_linear, fullgraph=True, dynamic=False, options={"coordinate_descent_tuning": True})


def linear(x: torch.Tensor, w: Int8Weight, compiled: bool) -> torch.Tensor:
    """x [..., K] times the int8 weight: compiled on CUDA (see the module's docstring), eager elsewhere (which
    converts the weight whole each call: correct, for the CPU's tests, not fast)."""
    return (compiled_linear() if compiled else _linear)(x, *w)


__all__ = ["Int8Weight", "quantise", "dequantised", "linear", "compiled_linear", "LEVELS"]
