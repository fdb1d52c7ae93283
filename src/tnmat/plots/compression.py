"""Figures of the compression experiments (paper Figs. 16-17)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tnmat.plots._save import save_figure

__all__ = ["plot_ttsvd", "plot_latent"]


def plot_ttsvd(rows: Sequence[Mapping[str, Any]], path: str | Path, dense_size: int, *,
               units: str = "meV/atom") -> Path:
    """Paper Fig. 17: test RMSE/MAE (in ``units``) of the MPO on TT-SVD-compressed inputs versus the input
    bond dimension chi_in (dense-input reference as horizontal lines), and the compressed input size
    N_in / dense_size on a second axis."""
    fact = [r for r in rows if r["chi_in"] is not None]
    dense = [r for r in rows if r["chi_in"] is None]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    x = [r["chi_in"] for r in fact]
    ax.plot(x, [r["rmse_mev"] for r in fact], "o-", label="test RMSE")
    ax.plot(x, [r["mae_mev"] for r in fact], "s-", label="test MAE")
    if dense:
        ax.axhline(dense[0]["rmse_mev"], ls="--", color="C0", lw=1, label="dense input RMSE")
        ax.axhline(dense[0]["mae_mev"], ls=":", color="C1", lw=1, label="dense input MAE")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(r"input bond dimension $\chi_{in}$")
    ax.set_ylabel(f"error ({units})")
    ax2 = ax.twinx()
    ax2.plot(x, [r["n_in"] / dense_size for r in fact], "k^--", ms=4, lw=0.8)
    ax2.set_yscale("log")
    ax2.set_ylabel(r"$N_{in}$ / $8^5$")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("MPO ($\\chi$=4) on TT-SVD inputs (EMT alloys)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=130)


def plot_latent(embeddings: dict[str, np.ndarray], comp: np.ndarray, sg: np.ndarray, energy: np.ndarray,
                path: str | Path) -> Path:
    """Latent spaces (paper Fig. 16): one row per encoder (2-D embeddings of the structures), coloured by
    composition (RGB = Al, Ga, In fractions), by space group and by formation energy."""
    names = sorted(embeddings, key=lambda n: (n != "input", n))
    fig, axes = plt.subplots(len(names), 3, figsize=(9.5, 3.0 * len(names)), squeeze=False)
    groups = sorted(set(sg.tolist()))
    cmap = plt.get_cmap("tab10")
    for r, name in enumerate(names):
        e = embeddings[name]
        ax = axes[r]
        ax[0].scatter(e[:, 0], e[:, 1], c=np.clip(comp, 0, 1), s=3)
        for j, g in enumerate(groups):
            m = sg == g
            ax[1].scatter(e[m, 0], e[m, 1], color=cmap(j % 10), s=3, label=str(g))
        sc = ax[2].scatter(e[:, 0], e[:, 1], c=energy, cmap="viridis", s=3)
        fig.colorbar(sc, ax=ax[2], fraction=0.046, pad=0.02, label="E_f (eV/cation)")
        ax[0].set_ylabel(name)
        for a in ax:
            a.set_xticks([])
            a.set_yticks([])
        if r == 0:
            ax[0].set_title("composition (RGB = Al, Ga, In)", fontsize=9)
            ax[1].set_title("spacegroup", fontsize=9)
            ax[2].set_title("formation energy", fontsize=9)
            ax[1].legend(fontsize=6, markerscale=3, loc="best")
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
