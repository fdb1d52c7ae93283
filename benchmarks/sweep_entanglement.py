"""Paper Fig. 14 with sweep-fitted networks beside the Adam-trained ones.

Reads two ``bond_sweep.csv`` files written by ``tnmat entanglement sweep`` on the same data, test set,
sizes and splits (``--adam``: the stored Adam run, ``--sweep``: the run with ``--solver sweep``) and writes
``comparison.md`` and ``comparison.json`` next to the sweep CSV: per model (MPS, TTN) and training size, test
RMSE / MAE (mean +- std over the splits) and the entropies S[a1a2], S[a1n1] of both fits at every bond
dimension, and the dense model of each run.

    python benchmarks/sweep_entanglement.py --adam results/entanglement/bond_sweep.csv \\
        --sweep results/sweep_entanglement/bond_sweep.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

COLUMNS = ("rmse_mean", "rmse_std", "mae_mean", "mae_std", "n_parameters", "S_a1a2", "S_a1n1", "fit_seconds")


def read(path: Path) -> dict[tuple[str, int, str], dict[str, float]]:
    """(model, n_train, bond_dim or '') -> the numeric columns of one bond-sweep CSV row."""
    with open(path, newline="") as fh:
        return {(r["model"], int(r["n_train"]), r["bond_dim"]): {c: float(r[c]) for c in COLUMNS if r.get(c)}
                for r in csv.DictReader(fh)}


def table(adam: dict, sweep: dict) -> tuple[list[dict], str]:
    """Rows present in both runs and their Markdown table."""
    keys = sorted(set(adam) & set(sweep), key=lambda k: (k[1], k[0], int(k[2]) if k[2] else 0))
    rows = [{"model": m, "n_train": n, "bond_dim": int(c) if c else None, "adam": adam[(m, n, c)],
             "sweep": sweep[(m, n, c)]} for m, n, c in keys]
    lines = ["| n_train | model | chi | RMSE Adam | RMSE sweep | MAE Adam | MAE sweep | S[a1a2] Adam | S[a1a2] sweep"
             " | S[a1n1] Adam | S[a1n1] sweep | params Adam / sweep |", "|" + "---:|" * 12]
    for r in rows:
        a, s = r["adam"], r["sweep"]
        cells = [str(r["n_train"]), r["model"], str(r["bond_dim"] or "-"),
                 f"{a['rmse_mean']:.1f} +- {a['rmse_std']:.1f}", f"{s['rmse_mean']:.1f} +- {s['rmse_std']:.1f}",
                 f"{a['mae_mean']:.1f}", f"{s['mae_mean']:.1f}", f"{a['S_a1a2']:.2f}", f"{s['S_a1a2']:.2f}",
                 f"{a['S_a1n1']:.2f}", f"{s['S_a1n1']:.2f}", f"{a['n_parameters']:.0f} / {s['n_parameters']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return rows, "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adam", type=Path, required=True)
    ap.add_argument("--sweep", type=Path, required=True)
    args = ap.parse_args(argv)
    rows, md = table(read(args.adam), read(args.sweep))
    out = args.sweep.parent
    for name, text in (("comparison.md", "Test errors in meV/cation (mean +- std over the splits), entropies in nats "
                        "(mean over the splits).\n\n" + md),
                       ("comparison.json", json.dumps({"adam": str(args.adam), "sweep": str(args.sweep),
                                                       "rows": rows}, indent=1) + "\n")):
        tmp = out / (name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out / name)
    print(md)


if __name__ == "__main__":
    main()
