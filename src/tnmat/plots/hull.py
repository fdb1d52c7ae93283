"""Figures of convex hulls: composition-energy for a binary, the ternary triangle coloured by the distance
above the hull for three elements (rows of :func:`tnmat.experiments.hull.hull_rows`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tnmat.plots._save import save_figure

__all__ = ["plot_hull"]


def _binary(ax: Any, rows: Sequence[Mapping[str, Any]], elements: Sequence[str], title: str) -> None:
    x = np.array([r[f"x_{elements[1]}"] for r in rows])
    e = np.array([r["energy_meV_per_atom"] for r in rows])
    on = np.array([r["on_hull"] for r in rows], dtype=bool)
    ax.scatter(x[~on], e[~on], s=10, c="0.6", label="structures")
    order = np.argsort(x[on])
    ax.plot(x[on][order], e[on][order], "-o", c="C3", ms=5, label="lower convex hull (ground states)")
    ax.axhline(0.0, c="0.3", lw=0.6)
    ax.set_xlabel(f"fraction of {elements[1]} (rest {elements[0]})")
    ax.set_ylabel("mixing energy (meV/atom)")
    ax.set_title(title)
    ax.legend(fontsize=8)


def _ternary(ax: Any, rows: Sequence[Mapping[str, Any]], elements: Sequence[str], title: str) -> None:
    b = np.array([r[f"x_{elements[1]}"] for r in rows])
    c = np.array([r[f"x_{elements[2]}"] for r in rows])
    px, py = b + 0.5 * c, np.sqrt(3) / 2 * c  # barycentric -> Cartesian
    d = np.array([r["hull_distance_meV_per_atom"] for r in rows])
    on = np.array([r["on_hull"] for r in rows], dtype=bool)
    ax.plot([0, 1, 0.5, 0], [0, 0, np.sqrt(3) / 2, 0], c="0.3", lw=0.8)
    top = max(float(np.percentile(d, 95)), 1.0)
    sc = ax.scatter(px[~on], py[~on], c=d[~on], s=12, cmap="viridis_r", vmin=0, vmax=top)
    ax.scatter(px[on], py[on], marker="*", s=90, c="C3", edgecolors="k", linewidths=0.4, label="ground states")
    for (tx, ty), el in zip(((0, 0), (1, 0), (0.5, np.sqrt(3) / 2)), elements, strict=True):
        ax.annotate(el, (tx, ty), textcoords="offset points", xytext=(0, 6 if ty else -14), ha="center")
    ax.figure.colorbar(sc, ax=ax, label="distance above the hull (meV/atom)")
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")


def plot_hull(rows: Sequence[Mapping[str, Any]], elements: Sequence[str], path: str | Path, *,
              title: str = "predicted convex hull") -> Path:
    """Save the hull figure of ``rows`` (2 elements: composition-energy; 3: ternary triangle) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(elements) not in (2, 3):
        raise ValueError(f"a hull figure needs 2 or 3 elements, got {len(elements)}")
    fig, ax = plt.subplots(figsize=(6.0, 4.5))
    (_binary if len(elements) == 2 else _ternary)(ax, rows, elements, title)
    fig.tight_layout()
    return save_figure(fig, path)
