"""Learning-curve figure (paper Fig. 12): test RMSE and MAE versus training-set size, log-log."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter, ScalarFormatter  # noqa: E402

from tnmat.plots._save import save_figure

__all__ = ["plot_learning_curve"]


def _one_two_three_five(value: float, _pos: int) -> str:
    """Minor log-tick label: the value where its leading digit is 2, 3 or 5, else nothing."""
    if value <= 0:
        return ""
    lead = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:g}" if any(abs(lead - d) < 1e-6 for d in (2, 3, 5)) else ""


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
    sizes = sorted({int(r["n_train"]) for rs in by_model.values() for r in rs})
    colour = {m: f"C{k % 10}" for k, m in enumerate(models)}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    for ax, metric in zip(axes, ("rmse", "mae"), strict=True):
        for (model, fam), rs in sorted(by_model.items()):
            rs = sorted(rs, key=lambda r: r["n_train"])
            n = [r["n_train"] for r in rs]
            mean = [r[f"{metric}_mean"] for r in rs]
            if fam == splits:
                std = [r.get(f"{metric}_std") or 0.0 for r in rs]
                ax.errorbar(n, mean, yerr=std, marker="o", ms=4, capsize=3, color=colour[model])
            else:
                ax.plot(n, mean, ls="--", marker="o", ms=4, mfc="none", lw=1, color=colour[model])
        ax.set_xscale("log")
        ax.set_yscale("log")
        # plain numbers instead of 6 x 10^1: the training sizes themselves on x, 1-2-3-5 steps on y
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(FuncFormatter(_one_two_three_five))
        ax.set_xlabel("training structures")
        ax.set_ylabel(f"test {metric.upper()} ({units})")
        ax.grid(True, which="both", alpha=0.3)
    if by_model:
        # two legends: colour = model, line style = split family (not one entry per model and family)
        handles = [Line2D([], [], color=colour[m], marker="o", ms=4, label=m) for m in models]
        axes[0].add_artist(axes[0].legend(handles=handles, fontsize=7, loc="upper right", title="model",
                                          title_fontsize=7))
        styles = []
        for fam in sorted({f for _, f in by_model}, key=families.index):
            if fam == splits:
                k = max(int(r.get("n_splits") or 1) for (_, f), rs in by_model.items() if f == fam for r in rs)
                text = f"mean +- std, {k} random splits" if fam == "random" else fam
                styles.append(Line2D([], [], color="0.3", marker="o", ms=4, label=text))
            else:
                styles.append(Line2D([], [], color="0.3", ls="--", marker="o", ms=4, mfc="none", lw=1,
                                     label="official split"))
        axes[0].legend(handles=styles, fontsize=7, loc="lower left")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=130)
