"""The truncated split re-fitted by alternating solves (``SweepConfig.refine_solves``) on the README main job.

Runs ``tnmat fit alloys`` (the default sweep-fitted TTN, its defaults otherwise) in this process once per value
of ``refine_solves`` and records, per value: the training and validation RMSE of every selection pass
(standardised units), the bond dimensions, the test RMSE/MAE (meV/atom) and the fit seconds.  With one solve
(no alternating re-solve after the truncated split) the second pass ended on a truncation that raised both errors.

    python benchmarks/sweep_refine.py --values 1,3,5,9 --out results/sweep/refine_alloys.json
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import re
import time
from contextlib import redirect_stdout
from pathlib import Path

import tnmat.training.sweep.engine as sweep
import tnmat.training.sweep.estimator as sweep_train
from tnmat.cli import main as tnmat_main
from tnmat.reports import atomic_write


def run(k: int, cache: str) -> dict:
    """One ``tnmat fit alloys`` with ``refine_solves=k``; the sweep's history and the reported test errors."""
    fits = []
    original = sweep.sweep_fit

    def recording(net, train, val=None, config=None, **kw):  # noqa: ANN001, ANN202 (the fitter's signature)
        res = original(net, train, val, dataclasses.replace(config, refine_solves=k), **kw)
        fits.append(res)
        return res

    sweep_train.sweep_fit = recording
    out = io.StringIO()
    t0 = time.perf_counter()
    try:
        with redirect_stdout(out):
            tnmat_main(["fit", "alloys", "--cache", cache, "--quiet"])
    finally:
        sweep_train.sweep_fit = original
    text = out.getvalue()
    test = re.search(r"test\s+RMSE\s+([\d.]+) meV/atom\s+MAE\s+([\d.]+)", text)
    fit_s = re.search(r"fit time:\s+([\d.]+) s", text)
    sel = fits[0].history["selection"]
    return {"refine_solves": k, "train_rmse_per_pass": sel["train_rmse"], "val_rmse_per_pass": sel["val_rmse"],
            "refit_train_rmse": fits[0].history.get("refit", {}).get("train_rmse"), "bond_dims": fits[0].bond_dims,
            "test_rmse_mev_atom": float(test.group(1)), "test_mae_mev_atom": float(test.group(2)),
            "fit_seconds": float(fit_s.group(1)), "wall_seconds": time.perf_counter() - t0,
            "loadavg": Path("/proc/loadavg").read_text().split()[:3]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--values", default="1,3,5,9")
    ap.add_argument("--cache", default="cache/alloys")
    ap.add_argument("--out", default="bench_out/refine_alloys.json")
    args = ap.parse_args()
    rows = []
    for k in (int(v) for v in args.values.split(",")):
        rows.append(run(k, args.cache))
        r = rows[-1]
        print(f"refine_solves {k}: train {r['train_rmse_per_pass']} val {r['val_rmse_per_pass']} test RMSE "
              f"{r['test_rmse_mev_atom']} MAE {r['test_mae_mev_atom']} fit {r['fit_seconds']} s", flush=True)
        atomic_write(args.out, json.dumps({"protocol": __doc__.split("\n\n")[1], "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
