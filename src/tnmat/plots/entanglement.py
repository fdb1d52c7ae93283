"""Entanglement figures: the bond-dimension sweep (paper Fig. 14) and the spectrum dynamics (Fig. 15).

Inputs are the summaries of :mod:`tnmat.experiments.entanglement` (plain dicts and lists), so the figures
can be redrawn from stored results without refitting.  Entropies in nats, errors in the summary's ``units``
(meV/cation for NMD18).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tnmat.plots._save import save_figure

__all__ = ["plot_bond_sweep", "plot_spectrum_dynamics", "plot_dynamics_spectrum", "plot_dynamics_ratios",
           "plot_dynamics_kl_capacity"]

_COLORS = {"mps": "C0", "mpo": "C1", "ttn": "C2", "dense": "C3", "mera": "C4"}


def _bipartitions(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({k[2:] for r in rows for k in r if k.startswith("S_") and not k.endswith("_std")})


def plot_bond_sweep(summary: Mapping[str, Any] | Sequence[Mapping[str, Any]], path: str | Path, *,
                    units: str | None = None, title: str | None = None) -> Path:
    """One row of panels per training size: test RMSE vs chi, then the entropy of each bipartition vs chi
    (mean +- std over splits) with the min-cut bound (dotted), the Page entropy (dashed, one per model:
    the MPO's Choi legs have squared dimensions) and chi_ct (vertical lines, where inside the chi range).
    The dense tensor has no chi: it is drawn as a horizontal band.  ``summary`` is a
    :func:`~tnmat.experiments.entanglement.run_bond_sweep` result or its ``rows``; ``units`` defaults to the
    summary's."""
    units = units or (summary.get("units") if isinstance(summary, Mapping) else None) or "meV/cation"
    rows = list(summary["rows"] if isinstance(summary, Mapping) else summary)
    if not rows:
        raise ValueError("plot_bond_sweep: no rows to plot")
    sizes = sorted({r["n_train"] for r in rows})
    bips = _bipartitions(rows)
    chis = [r["bond_dim"] for r in rows if r["bond_dim"] is not None]
    lo, hi = (min(chis), max(chis)) if chis else (1, 2)
    ncol = 1 + len(bips)
    fig, axes = plt.subplots(len(sizes), ncol, figsize=(4.4 * ncol, 3.6 * len(sizes)), squeeze=False,
                             constrained_layout=True)
    for i, n in enumerate(sizes):
        by_model: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for r in rows:
            if r["n_train"] == n:
                by_model[r["model"]].append(r)
        for j, what in enumerate(["rmse", *bips]):
            ax = axes[i, j]
            for model, rs in sorted(by_model.items()):
                c = _COLORS.get(model, None)
                key, sd = ("rmse_mean", "rmse_std") if what == "rmse" else (f"S_{what}", f"S_{what}_std")
                if model == "dense":
                    m, s = rs[0][key], rs[0][sd]
                    ax.axhline(m, color=c, label=model)
                    ax.axhspan(m - s, m + s, color=c, alpha=0.15)
                else:
                    rs = sorted(rs, key=lambda r: r["bond_dim"])
                    x = [r["bond_dim"] for r in rs]
                    ax.errorbar(x, [r[key] for r in rs], yerr=[r[sd] for r in rs], color=c, marker="o", ms=4,
                                capsize=3, label=model)
                    if what != "rmse":
                        ax.plot(x, [r[f"mincut_{what}"] for r in rs], ":", color=c, lw=1)
                    ct = rs[0].get("chi_ct")
                    if ct and lo <= ct <= hi:
                        ax.axvline(ct, color=c, ls="-.", lw=0.8, alpha=0.7)
                if what != "rmse":
                    ax.axhline(rs[0][f"page_{what}"], color=c, ls="--", lw=1)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("bond dimension chi")
            if what == "rmse":
                ax.set_yscale("log")
                ax.set_ylabel(f"test RMSE ({units})")
                ax.set_title(f"n_train = {n}")
                ax.legend(fontsize=8)
            else:
                part = next((r for r in rows if f"S_{what}" in r), {})
                ax.set_ylabel(f"S[{what}] (nats)")
                ax.set_title(f"n_train = {n}: S[{what}]; dotted min-cut, dashed Page"
                             if part else what, fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=120)


def _pick_steps(steps: Sequence[int], k: int) -> list[int]:
    """Up to ``k`` indices spread over the (log-spaced) steps, first and last included."""
    n = len(steps)
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, min(k, n))})


def plot_dynamics_spectrum(analysis: Mapping[int, Mapping[str, Any]], path: str | Path, *,
                           n_curves: int = 5) -> Path:
    """Mean entanglement spectrum p_k = lambda_k^2 (descending, log scale) at a few steps per chi, against
    the Marchenko-Pastur spectrum of a random state with the same rank m = min(exp(min-cut), d_A, d_B)
    and larger dimension n = max(d_A, d_B) (dashed)."""
    from tnmat.entanglement import marchenko_pastur_spectrum

    chis = sorted(analysis)
    fig, axes = plt.subplots(1, len(chis), figsize=(4.4 * len(chis), 3.8), squeeze=False, constrained_layout=True)
    for ax, chi in zip(axes[0], chis, strict=True):
        a = analysis[chi]
        cmap = plt.get_cmap("viridis")
        picks = _pick_steps(a["steps"], n_curves)
        m = int(min(round(np.exp(a["min_cut"])), a["d_a"], a["d_b"]))
        for q, i in enumerate(picks):
            p = np.asarray(a["mean_p"][i])[:m]  # beyond the min-cut rank only numerical zeros
            p = p[p > 0]
            ax.semilogy(np.arange(1, p.size + 1), p, color=cmap(q / max(1, len(picks) - 1)),
                        label=f"step {a['steps'][i]}")
        ref = marchenko_pastur_spectrum(m, max(a["d_a"], a["d_b"]))
        ax.semilogy(np.arange(1, ref.size + 1), ref, "k--", lw=1, label=f"MP (m={m})")
        ax.set_xlabel("k")
        ax.set_ylabel("mean lambda_k^2")
        ax.set_title(f"MPO chi = {chi} ({a['n_runs']} runs)")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    return save_figure(fig, path, dpi=120)


def plot_dynamics_ratios(analysis: Mapping[int, Mapping[str, Any]], path: str | Path, *, bins: int = 20) -> Path:
    """Histograms of r~ pooled over runs at the first recorded step after initialisation with enough
    ratios, at the middle step and at the last step, per chi, against P_GOE (beta = 1) and Poisson."""
    from tnmat.entanglement import poisson_r_tilde_pdf, wigner_dyson_r_tilde_pdf

    chis = sorted(analysis)
    fig, axes = plt.subplots(1, len(chis), figsize=(4.4 * len(chis), 3.8), squeeze=False, constrained_layout=True)
    x = np.linspace(0, 1, 201)
    edges = np.linspace(0, 1, bins + 1)
    for ax, chi in zip(axes[0], chis, strict=True):
        a = analysis[chi]
        n = len(a["steps"])
        for i, style in ((0, "step"), (n // 2, "step"), (n - 1, "stepfilled")):
            rt = np.asarray(a["r_tilde"][i])
            if rt.size == 0:
                continue
            ax.hist(rt, bins=edges, density=True, histtype=style, alpha=0.35 if style == "stepfilled" else 1.0,
                    label=f"step {a['steps'][i]} ({rt.size})")
        ax.plot(x, wigner_dyson_r_tilde_pdf(x, 1), "k-", lw=1.5, label="GOE")
        ax.plot(x, poisson_r_tilde_pdf(x), "k:", lw=1.5, label="Poisson")
        ax.set_xlabel("r~")
        ax.set_ylabel("P(r~)")
        ax.set_title(f"MPO chi = {chi}")
        ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=120)


def plot_dynamics_kl_capacity(analysis: Mapping[int, Mapping[str, Any]], path: str | Path) -> Path:
    """Three panels versus training step (log x; step 0 drawn at 0.5): D_KL(P_GOE || P_obs), the
    capacity of entanglement C_E and the entropy S (mean +- std over runs), one line per chi."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), constrained_layout=True)
    for q, chi in enumerate(sorted(analysis)):
        a = analysis[chi]
        s = np.maximum(np.asarray(a["steps"], dtype=float), 0.5)
        c = f"C{q}"
        axes[0].plot(s, a["kl_goe"], "o-", ms=3, color=c, label=f"chi = {chi}")
        for ax, key in ((axes[1], "capacity"), (axes[2], "entropy")):
            m, sd = np.asarray(a[key]), np.asarray(a[f"{key}_std"])
            ax.plot(s, m, "o-", ms=3, color=c, label=f"chi = {chi}")
            ax.fill_between(s, m - sd, m + sd, color=c, alpha=0.2)
        axes[2].axhline(a["min_cut"], color=c, ls=":", lw=1)
    for ax, lab in zip(axes, ("D_KL(P_GOE || P_obs) (nats)", "C_E", "S (nats); dotted: min-cut bound"),
                       strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(lab)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=120)


def plot_spectrum_dynamics(analysis: Mapping[int, Mapping[str, Any]], out_dir: str | Path, *,
                           prefix: str = "dynamics") -> dict[str, Path]:
    """All Fig. 15 panels from :func:`~tnmat.experiments.entanglement.analyse_dynamics`: returns the paths
    of ``{prefix}_spectrum.png``, ``{prefix}_ratios.png`` and ``{prefix}_kl_capacity.png``."""
    if not analysis:
        raise ValueError("plot_spectrum_dynamics: empty analysis")
    out = Path(out_dir)
    return {"spectrum": plot_dynamics_spectrum(analysis, out / f"{prefix}_spectrum.png"),
            "ratios": plot_dynamics_ratios(analysis, out / f"{prefix}_ratios.png"),
            "kl_capacity": plot_dynamics_kl_capacity(analysis, out / f"{prefix}_kl_capacity.png")}
