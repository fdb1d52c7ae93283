"""Reports of the learning curve (paper Fig. 12): the summary CSV and the Markdown tables (pivot tables of
test MAE/RMSE by size and model, the long tables, fit-time exponents, the run's cost), written atomically
through :mod:`tnmat.reports`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tnmat.experiments.learning_curve import SUMMARY_COLUMNS, fit_time_exponents
from tnmat.reports import atomic_write, write_rows_csv

__all__ = ["write_summary_csv", "write_markdown"]


def _exponent_caveat(rows: Sequence[Mapping[str, Any]], model: str) -> str:
    """A warning appended to a fit-time exponent fitted on too few sizes or too narrow a range (fewer than 3
    sizes, or the largest under 4x the smallest) to be read as a scaling law."""
    sizes = sorted({r["n_train"] for r in rows if r["model"] == model and r.get("splits", "random") == "random"})
    if len(sizes) >= 3 and sizes[-1] >= 4 * sizes[0]:
        return ""
    return f" (from {len(sizes)} sizes, {sizes[0]}-{sizes[-1]}: too few or too close to be a scaling law)"


def write_summary_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """The summary table as CSV with :data:`SUMMARY_COLUMNS` (at least the issue's required columns)."""
    return write_rows_csv(rows, path, columns=SUMMARY_COLUMNS)


def _pivot_tables(rows: Sequence[Mapping[str, Any]], units: str) -> list[str]:
    """Markdown lines: test MAE and RMSE with one row per training size and one column per model (random
    splits as mean +- std, then the official split), the form in which models are compared."""
    lines: list[str] = []
    for family, fmt in (("random", "{m:.1f} +- {s:.1f}"), ("official", "{m:.1f}")):
        fam = [r for r in rows if r.get("splits", "random") == family]
        if not fam:
            continue
        models = sorted({r["model"] for r in fam})
        cell = {(r["model"], r["n_train"]): r for r in fam}
        k = max(r["n_splits"] for r in fam)
        where = f"mean +- std over {k} random splits" if family == "random" else "official split"
        for metric in ("mae", "rmse"):
            lines += [f"## Test {metric.upper()} by training size, {where} ({units})", "",
                      "| n_train | " + " | ".join(models) + " |", "|---:|" + "---:|" * len(models)]
            for n in sorted({r["n_train"] for r in fam}):
                vals = [fmt.format(m=cell[(m, n)][f"{metric}_mean"], s=cell[(m, n)][f"{metric}_std"])
                        if (m, n) in cell else "-" for m in models]
                lines.append(f"| {n} | " + " | ".join(vals) + " |")
            lines.append("")
    return lines


def write_markdown(rows: Sequence[Mapping[str, Any]], path: str | Path, *, title: str = "Learning curve",
                   units: str | None = None, notes: str = "", accounting: Mapping[str, Any] | None = None) -> Path:
    """A short Markdown summary: one table per split family, the fit-time exponents and, given
    ``accounting`` (:func:`cost_accounting`), what the run cost.  Errors are labelled ``units``, by default
    the label the rows carry (:func:`summarise` takes it from the stored fits)."""
    units = units or next((r["units"] for r in rows if r.get("units")), "meV")
    lines = [f"# {title}", ""]
    if notes:
        lines += [notes, ""]
    if accounting and accounting.get("n_fits"):
        a = accounting
        cpu = a.get("fit_cpu_seconds_total")
        lines += ["## Cost of the run", "",
                  f"- fits stored: {a['n_fits']}"
                  + (f" of {a['n_tasks']}" if a.get("n_tasks") else ""),
                  f"- elapsed wall time: {a['elapsed_seconds'] / 3600:.2f} h in {a['n_sittings']} sitting(s), "
                  f"{a['first']} to {a['last']} (pauses between sittings left out)",
                  f"- summed fit time: {a['fit_seconds_total'] / 3600:.2f} h wall"
                  + ("" if cpu is None else f", {cpu / 3600:.2f} h CPU"), ""]
    lines += _pivot_tables(rows, units)
    for family in ("random", "official"):
        fam = [r for r in rows if r.get("splits", "random") == family]
        if not fam:
            continue
        head = ("Test errors, mean +- std over random splits" if family == "random"
                else "Test errors on the official split")
        lines += [f"## {head} ({units})", "",
                  "| model | n_train | splits | RMSE | MAE | parameters | fit time (s) | fit CPU (s) | chosen |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in fam:
            lines.append(f"| {r['model']} | {r['n_train']} | {r['n_splits']} | {r['rmse_mean']:.2f} +- "
                         f"{r['rmse_std']:.2f} | {r['mae_mean']:.2f} +- {r['mae_std']:.2f} | "
                         f"{r['n_parameters'] if r['n_parameters'] is not None else '-'} | "
                         f"{r['fit_seconds']:.3g} | "
                         f"{'-' if r.get('fit_cpu_seconds') is None else format(r['fit_cpu_seconds'], '.3g')} | "
                         f"`{r['params']}` |")
        lines.append("")
    exps = fit_time_exponents(rows)
    if exps:
        lines += ["## Fit-time scaling", "", "fit time ~ n_train^b (least squares in log-log; process CPU time "
                  "where recorded, else wall time):", ""]
        lines += [f"- {m}: b = {b:.2f}{_exponent_caveat(rows, m)}" for m, b in sorted(exps.items())]
        lines.append("")
    return atomic_write(path, "\n".join(lines))
