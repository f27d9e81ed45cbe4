"""Loss curve PNG from a training run's loss.jsonl (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import json
from pathlib import Path


def read_log(path: str | Path) -> list[dict]:
    """The JSON records of a loss.jsonl (blank/corrupt lines skipped)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def plot_loss(log_path: str | Path, png_path: str | Path | None = None, key: str = "loss",
              title: str = "training loss") -> Path:
    """Plot `key` against step (log scale, with a moving average) -> the PNG written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in read_log(log_path) if key in r and "step" in r]
    if not rows:
        raise ValueError(f"{log_path}: no '{key}' records to plot")
    steps = np.array([r["step"] for r in rows])
    vals = np.array([r[key] for r in rows], dtype=float)
    png = Path(png_path) if png_path else Path(log_path).with_name("loss.png")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(steps, vals, lw=0.8, alpha=0.5, label=key)
    if len(vals) >= 5:
        w = max(2, len(vals) // 20)
        smooth = np.convolve(vals, np.ones(w) / w, mode="valid")
        ax.plot(steps[w - 1:], smooth, lw=1.8, label=f"{key} (mean of {w})")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png
