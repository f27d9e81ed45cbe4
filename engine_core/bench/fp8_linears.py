"""The Thinker's linear layers in bf16, FP8 and weight-only int8: `python -m engine_core.bench.fp8_linears`.

    python -m engine_core.bench.fp8_linears [--rows 1 192] [--layers 40] [--kinds bf16 int8 ...]

The four matrix products of a GLM-4-9B layer (q/k/v fused, output, gate/up fused, down) for `--layers` layers,
replayed from one CUDA graph, at a decode step's 1 row and a padded prefill's 192, each kind of product:
- bf16: `F.linear` (cuBLAS; what the fast decoder runs by default);
- bf16-gemv: the same product compiled by inductor as a one-row reduction (1 row only);
- int8: weight-only int8, dequantised inside inductor's one-row reduction (engine_core/thinker/weight_int8.py; 1 row
  only);
- rowwise / tensorwise: FP8 e4m3 weights with the activations quantised on the fly (`torch._scaled_mm`), scaled per
  row (weights per output row, activations per token) or per tensor.
Random weights; prints ms per pass over the layers and each kind's relative error on one product against float32.
It found FP8 slower than bf16 for the one-row decode step and int8 faster (docs/performance.md).
"""

from __future__ import annotations

import argparse
import functools

import torch
import torch.nn.functional as F

from engine_core.thinker import weight_int8

from .probes import mean_ms_per_call

SHAPES = ((4608, 4096), (4096, 4096), (27392, 4096), (4096, 13696))   # (out, in) of one layer's products
FP8_MAX = 448.0                                                          # the largest float8_e4m3fn
KINDS = ("bf16", "bf16-gemv", "int8", "rowwise", "tensorwise")
ONE_ROW = {"bf16-gemv", "int8"}                                          # kinds made for a single row


def quantise_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w [N, K] -> (FP8 [N, K], scales [1, N] float32), one scale per output row."""
    scale = w.float().abs().amax(1, keepdim=True).clamp(min=1e-12) / FP8_MAX
    return (w.float() / scale).to(torch.float8_e4m3fn), scale.t().contiguous()


def fp8_linear(x: torch.Tensor, wq: torch.Tensor, w_scale: torch.Tensor, rowwise: bool) -> torch.Tensor:
    """x [M, K] bf16 quantised (per row, or per tensor) and multiplied by an FP8 weight; bf16 out."""
    if rowwise:
        x_scale = x.abs().amax(1, keepdim=True).float().clamp(min=1e-12) / FP8_MAX
    else:
        x_scale, w_scale = x.abs().amax().float().clamp(min=1e-12) / FP8_MAX, w_scale.amax()
    xq = (x / x_scale).to(torch.float8_e4m3fn)
    return torch._scaled_mm(xq, wq.t(), scale_a=x_scale, scale_b=w_scale, out_dtype=torch.bfloat16)


@functools.cache
def _gemv():
    return torch.compile(F.linear, fullgraph=True, dynamic=False, options={"coordinate_descent_tuning": True})


def product(kind: str, w: torch.Tensor):
    """The weight `w` [N, K] prepared for `kind`, as a function of x [M, K]."""
    if kind == "bf16":
        return lambda x: F.linear(x, w)
    if kind == "bf16-gemv":
        return lambda x: _gemv()(x, w)
    if kind == "int8":
        q = weight_int8.quantise(w)
        return lambda x: weight_int8.linear(x, q, compiled=True)
    wq, scale = quantise_rows(w)
    return lambda x: fp8_linear(x, wq, scale, rowwise=kind == "rowwise")


def graphed_ms(rows: int, layers: int, kind: str) -> float:
    """ms per replay of one CUDA graph of `layers` x the four products of `kind` (KINDS)."""
    weights = [[product(kind, torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02) for n, k in SHAPES]
               for _ in range(layers)]
    xs = [torch.randn(rows, k, device="cuda", dtype=torch.bfloat16) for _, k in SHAPES]

    def products() -> None:
        for layer in weights:
            for x, f in zip(xs, layer):
                f(x)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        for _ in range(3):
            products()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        products()
    return mean_ms_per_call(graph.replay, 20, cuda=True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 192])
    ap.add_argument("--layers", type=int, default=40)
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    args = ap.parse_args(argv)
    result = {}
    for rows in args.rows:
        for kind in args.kinds:
            if rows > 1 and kind in ONE_ROW:
                continue
            result[f"{rows} rows, {kind}"] = ms = graphed_ms(rows, args.layers, kind)
            print(f"{rows:>4} rows  {kind:<10} {ms:7.2f} ms for {args.layers} layers x 4 products", flush=True)
            torch.cuda.empty_cache()
    w = torch.randn(27392, 4096, device="cuda", dtype=torch.bfloat16) * 0.02
    x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
    ref = x.float() @ w.float().t()
    for kind in args.kinds:
        err = ((product(kind, w)(x).float() - ref).norm() / ref.norm()).item()
        result[f"relative error, {kind}"] = err
        print(f"relative error of one {kind} product (27392 x 4096, against float32): {err:.4f}")
    return result


if __name__ == "__main__":
    main()
