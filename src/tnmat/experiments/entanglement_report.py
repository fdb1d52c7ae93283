"""Markdown reports of the entanglement experiments (bond sweep, paper Fig. 14; spectrum dynamics, Fig. 15),
written atomically through :mod:`tnmat.reports`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tnmat.entanglement import MEAN_R_TILDE
from tnmat.reports import atomic_write, fmt

__all__ = ["write_sweep_markdown", "write_dynamics_markdown"]


def write_sweep_markdown(summary: Mapping[str, Any], path: str | Path, *, notes: str = "") -> Path:
    """Markdown table of a :func:`~tnmat.experiments.entanglement.run_bond_sweep` summary (errors in its
    ``units``, entropies in nats)."""
    rows = summary["rows"]
    units = summary.get("units", "meV/cation")
    bips = sorted({k[2:] for r in rows for k in r if k.startswith("S_") and not k.endswith("_std")})
    lines = ["# Bond-dimension sweep (paper Fig. 14)", ""]
    if notes:
        lines += [notes, ""]
    lines += [f"chi_ct (compression threshold): {json.dumps(summary.get('chi_ct', {}))}; "
              f"legs {summary.get('leg_sizes')}", ""]
    head = f"| model | n_train | chi | splits | params | RMSE ({units}) | MAE |"
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    for b in bips:
        head += f" S[{b}] | bound[{b}] | Page[{b}] |"
        sep += "---:|---:|---:|"
    lines += [head, sep]
    for r in rows:
        line = (f"| {r['model']} | {r['n_train']} | {fmt(r['bond_dim'])} | {r['n_splits']} | {r['n_parameters']} | "
                f"{r['rmse_mean']:.1f} +- {r['rmse_std']:.1f} | {r['mae_mean']:.1f} +- {r['mae_std']:.1f} |")
        for b in bips:
            line += (f" {r[f'S_{b}']:.3f} +- {r[f'S_{b}_std']:.3f} | {r[f'mincut_{b}']:.3f} | "
                     f"{r[f'page_{b}']:.3f} |")
        lines.append(line)
    return atomic_write(path, "\n".join(lines) + "\n")


def write_dynamics_markdown(summary: Mapping[str, Any], path: str | Path, *, notes: str = "",
                            full_runs: int = 100, full_epochs: int = 1000, bins: int = 20) -> Path:
    """Markdown summary of :func:`~tnmat.experiments.entanglement.run_spectrum_dynamics`: per chi the
    entropy, C_E, <r~> and D_KL at a few steps, the test RMSE, and the measured cost extrapolated to
    ``full_runs`` x ``full_epochs``."""
    an = summary["analysis"]
    units = summary.get("units", "meV/cation")
    lines = ["# Entanglement-spectrum dynamics (paper Fig. 15)", ""]
    if notes:
        lines += [notes, ""]
    lines += [f"<r~>: GOE {MEAN_R_TILDE['goe']:.4f}, Poisson {MEAN_R_TILDE['poisson']:.4f}; D_KL in nats.  A "
              "histogram of N exact GOE samples in B bins has E[D_KL] ~ (B - 1) / (2 N) (finite-sample floor, "
              "given per chi below).", ""]
    total = 0.0
    for chi, a in an.items():
        cost = a["seconds_per_epoch"] * full_epochs * full_runs
        total += cost
        cmax = int(np.nanargmax(a["capacity"]))
        lines += [f"## chi = {chi} ({a['n_runs']} runs x {a['n_epochs']} epochs, {a['total_steps']} steps; "
                  f"d_A = {a['d_a']}, d_B = {a['d_b']}, min-cut bound {a['min_cut']:.3f}, Page {a['page']:.3f})",
                  "", f"test RMSE {a['test_rmse']:.1f} +- {a['test_rmse_std']:.1f} {units}; "
                  f"{a['seconds_per_run']:.1f} s per run ({a['seconds_per_epoch']:.2f} s per epoch); "
                  f"max C_E = {a['capacity'][cmax]:.3f} at step {a['steps'][cmax]}; D_KL floor "
                  f"{(bins - 1) / (2 * max(1, int(np.median(a['n_ratios'])))):.3f}", "",
                  "| step | epoch | S | C_E | <r~> | ratios | D_KL(GOE||obs) | D_KL(Poisson||obs) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for i, s in enumerate(a["steps"]):
            lines.append(f"| {s} | {a['epochs'][i]} | {a['entropy'][i]:.3f} | {a['capacity'][i]:.3f} | "
                         f"{fmt(a['mean_r'][i], 3)} | {a['n_ratios'][i]} | {fmt(a['kl_goe'][i], 3)} | "
                         f"{fmt(a['kl_poisson'][i], 3)} |")
        lines.append("")
    lines += [f"Full paper scale ({full_runs} runs x {full_epochs} epochs for these chi) at the measured cost: "
              f"{total / 3600:.1f} core-hours on this machine.", ""]
    return atomic_write(path, "\n".join(lines))
