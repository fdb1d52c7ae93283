"""Parity plots of vector / tensor predictions (forces, stress) against reference values."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tnmat.metrics import rmse_mae
from tnmat.plots._save import save_figure

__all__ = ["parity_plot"]


def parity_plot(panels: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]], path: str | Path, *,
                units: Mapping[str, str] | None = None) -> Path:
    """One row per panel (e.g. "forces", "stress"), one column per model: predicted vs reference components.

    ``panels[panel][model] = (reference, prediction)`` (any shapes, flattened); ``units[panel]`` labels the
    axes.  Each axis shows the RMSE of its model and the line y = x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    units = units or {}
    n_rows = len(panels)
    n_cols = max(len(m) for m in panels.values())
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.1 * n_cols, 3.0 * n_rows), squeeze=False)
    for r, (panel, models) in enumerate(panels.items()):
        for c in range(n_cols):
            ax = axes[r, c]
            if c >= len(models):
                ax.axis("off")
                continue
            name, (ref, pred) = list(models.items())[c]
            ref, pred = np.ravel(ref), np.ravel(pred)
            lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
            ax.plot([lo, hi], [lo, hi], color="0.6", lw=0.8)
            ax.scatter(ref, pred, s=3, alpha=0.4, lw=0)
            rmse = rmse_mae(ref, pred, scale=1.0, what=f"{panel}: {name}")[0]
            ax.set_title(f"{panel}: {name}\nRMSE {rmse:.3g} {units.get(panel, '')}", fontsize=8)
            ax.set_xlabel(f"reference [{units.get(panel, '')}]", fontsize=7)
            ax.set_ylabel(f"predicted [{units.get(panel, '')}]", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    return save_figure(fig, path)
