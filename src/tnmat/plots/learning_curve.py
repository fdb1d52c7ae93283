"""Learning-curve figure (paper Fig. 12): test RMSE and MAE versus training-set size, log-log."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tnmat.plots._save import save_figure

__all__ = ["plot_learning_curve"]


def plot_learning_curve(rows: Sequence[Mapping[str, Any]], path: str | Path, *, units: str = "meV/cation",
                        title: str | None = None, splits: str = "random", official: bool = True) -> Path:
    """Two panels (RMSE, MAE) with one line per model, error bars = std over splits; returns the PNG path.

    ``rows`` are :func:`tnmat.experiments.learning_curve.summarise` rows (model, n_train, splits,
    rmse_mean, rmse_std, mae_mean, mae_std).  Lines show the ``splits`` family (mean over the random splits);
    with ``official`` the official-split rows are drawn dashed in the same colour."""
    families = [splits] + (["official"] if official and splits != "official" else [])
    by_model: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        fam = r.get("splits", splits)
        if fam in families:
            by_model[(r["model"], fam)].append(r)
    models = sorted({m for m, _ in by_model})
    colour = {m: f"C{k % 10}" for k, m in enumerate(models)}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    for ax, metric in zip(axes, ("rmse", "mae"), strict=True):
        for (model, fam), rs in sorted(by_model.items()):
            rs = sorted(rs, key=lambda r: r["n_train"])
            n = [r["n_train"] for r in rs]
            mean = [r[f"{metric}_mean"] for r in rs]
            if fam == splits:
                std = [r.get(f"{metric}_std") or 0.0 for r in rs]
                k = max(int(r.get("n_splits") or 1) for r in rs)
                ax.errorbar(n, mean, yerr=std, marker="o", ms=4, capsize=3, color=colour[model],
                            label=f"{model} ({fam}, {k} splits)" if fam == "random" else f"{model} ({fam})")
            else:
                ax.plot(n, mean, ls="--", marker="o", ms=4, mfc="none", lw=1, color=colour[model],
                        label=f"{model} (official)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training structures")
        ax.set_ylabel(f"test {metric.upper()} ({units})")
        ax.grid(True, which="both", alpha=0.3)
    if by_model:
        axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=130)
