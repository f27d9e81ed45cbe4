"""Pointwise regions fused into single kernels by `torch.compile` (inductor), for the GPU's hot loops.

Both hot loops are captured as CUDA graphs (engine_core/thinker/glm_fast.py, engine_core/actor/graphs.py), so
the host no longer sets their pace; what is left is the GPU's own cost of ~40 kernels per Thinker layer and ~100
per Actor block, most of them small elementwise ones (norms, RoPE, adaLN modulation, gates) that each take a few
microseconds whatever their size. Each loop names its regions in a NamedTuple of plain functions (its eager
path, the reference); `fused(ops)` is the same tuple with every function compiled, so the two paths compute the
same numbers (the tests compare them) and a region compiles once per process, not once per layer. The matrix
products and attention stay the library's (cuBLAS, SDPA): only the glue between them is fused.

Compilation happens at a region's first call, which both loops make before any capture (warm-up passes).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, TypeVar

import torch

Ops = TypeVar("Ops", bound=NamedTuple)


RECOMPILE_LIMIT = 64      # specialisations a region may compile (torch's default, 8, is too few for the Actor's rope
                          # at the paper's shape with the token stream: q- and k-like strides x pass widths x heads;
                          # a region past its limit fails hard under fullgraph, as it did on an H100)


@functools.cache
def compiled(fn: Callable) -> Callable:
    """`fn` compiled by inductor, one per function for the whole process (each new shape compiles once, at warm-up)."""
    import torch._dynamo

    cfg = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(cfg, name) and getattr(cfg, name) < RECOMPILE_LIMIT:
            setattr(cfg, name, RECOMPILE_LIMIT)
    return torch.compile(fn, fullgraph=True)


@functools.cache
def fused(ops: Ops) -> Ops:
    """The same regions, each compiled (one tuple per `ops`: asked for on every Actor pass)."""
    return type(ops)(*(compiled(f) for f in ops))


def wanted(fuse: bool | None, device: torch.device) -> bool:
    """Whether to use the fused regions: `fuse` if given, else on CUDA only (inductor's CPU code needs a C++
    compiler and gains little next to the CPU's matrix products)."""
    return device.type == "cuda" if fuse is None else bool(fuse)


__all__ = ["compiled", "fused", "wanted"]
