"""The Thinker's linear layers in bf16 against FP8 (`torch._scaled_mm`): `python -m engine_core.bench.fp8_linears`.

    python -m engine_core.bench.fp8_linears [--rows 1 192] [--layers 40]

The four matrix products of a GLM-4-9B layer (q/k/v fused, output, gate/up fused, down) for `--layers` layers,
replayed from one CUDA graph, at a decode step's 1 row and a padded prefill's 192: bf16 `F.linear` (what the fast
decoder runs) and FP8 e4m3 weights with the activations quantised on the fly, scaled per row (weights per output
row, activations per token) or per tensor. Random weights; prints ms per pass over the layers and the relative
error of one FP8 product. Decided whether FP8 would speed the weight-bound decode step (docs/performance.md, v12).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from .probes import mean_ms_per_call

SHAPES = ((4608, 4096), (4096, 4096), (27392, 4096), (4096, 13696))   # (out, in) of one layer's products
FP8_MAX = 448.0                                                          # the largest float8_e4m3fn


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


def graphed_ms(rows: int, layers: int, kind: str) -> float:
    """ms per replay of one CUDA graph of `layers` x the four products, `kind` bf16 | rowwise | tensorwise."""
    weights = [[torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02 for n, k in SHAPES]
               for _ in range(layers)]
    if kind != "bf16":
        weights = [[quantise_rows(w) for w in layer] for layer in weights]
    xs = [torch.randn(rows, k, device="cuda", dtype=torch.bfloat16) for _, k in SHAPES]

    def products() -> None:
        for layer in weights:
            for x, w in zip(xs, layer):
                F.linear(x, w) if kind == "bf16" else fp8_linear(x, *w, rowwise=kind == "rowwise")
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
    args = ap.parse_args(argv)
    result = {}
    for rows in args.rows:
        for kind in ("bf16", "rowwise", "tensorwise"):
            result[f"{rows} rows, {kind}"] = ms = graphed_ms(rows, args.layers, kind)
            print(f"{rows:>4} rows  {kind:<10} {ms:7.2f} ms for {args.layers} layers x 4 products", flush=True)
            torch.cuda.empty_cache()
    w = torch.randn(27392, 4096, device="cuda", dtype=torch.bfloat16) * 0.02
    x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16)
    ref = F.linear(x, w).float()
    err = ((fp8_linear(x, *quantise_rows(w), rowwise=True).float() - ref).norm() / ref.norm()).item()
    print(f"relative error of one FP8 (rowwise) product: {err:.4f}")
    return result


if __name__ == "__main__":
    main()
