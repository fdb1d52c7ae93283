"""Lossy rounding of a merged TTN: how many parameters the ensemble mean needs.

Protocol: NMD18 relaxed, B2 r_c 8 A, n_max 8, l_max 6 structure-averaged, the official split (2400 training,
600 test structures).  K TTNs (chi 8, every ridge strength by the Bayesian evidence, no rows held out,
random_state 0..K-1) are merged into one network (:func:`tnmat.training.ensemble.ensemble_mean`, which rounds
losslessly), then rounded again with :func:`tnmat.networks.rounding.round_network` at growing relative
tolerances rtol (||W - W'||_F <= rtol ||W||_F on the standardised inputs).  For every rtol: stored
parameters, bond dimensions, test MAE / RMSE (meV/cation) and the relative weight change actually made; one
member alone is the reference for what the ensemble buys.

Usage: ``python benchmarks/sweep_rounding.py [--nmd18 PATH] [--members 8] [--cache DIR] [--out JSON]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from tnmat.networks.rounding import round_network
from tnmat.reports import atomic_write
from tnmat.training.ensemble import ensemble_mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_nmd18 import official_relaxed_r8n8l6, tn_estimator  # noqa: E402 (same inputs and specs)

RTOLS = (0.0, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)


def _row(est, X, y: np.ndarray, test: np.ndarray, rtol: float, weight_change: float | None) -> dict:
    err = (est.predict(X.select(test)) - y[test]) * 1000.0
    params = int(sum(p.numel() for p in est.network_.parameters()))
    return {"rtol": rtol, "n_parameters": params, "bond_dims": est.bond_dims_, "weight_change": weight_change,
            "test_mae": float(np.mean(np.abs(err))), "test_rmse": float(np.sqrt(np.mean(err**2)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmd18", default=os.environ.get("TNMAT_NMD18",
                                                      str(Path(__file__).resolve().parents[2] / "shared/data/nmd18")))
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--out", default="bench_out/sweep_rounding.json")
    args = ap.parse_args()
    X, y, train, test = official_relaxed_r8n8l6(args)
    t0 = time.perf_counter()
    members = [tn_estimator(f"ttn:8:ev0:seed={s}", 8, 4).fit(X.select(train), y[train])
               for s in range(args.members)]
    fit_s = time.perf_counter() - t0
    merged = ensemble_mean(members)
    w = merged.network_.to_dense()
    rows = [{"model": "one member (seed 0)", **_row(members[0], X, y, test, 0.0, None)}]
    for rtol in RTOLS:
        est = copy.deepcopy(merged)
        est.network_ = round_network(merged.network_, rtol=rtol)
        change = float((est.network_.to_dense() - w).norm() / w.norm())
        rows.append({"model": f"mean of {args.members}, rounded", **_row(est, X, y, test, rtol, change)})
        r = rows[-1]
        print(f"rtol {rtol:g}: {r['n_parameters']} parameters, bonds {r['bond_dims']}, weight change "
              f"{change:.2e}, MAE {r['test_mae']:.2f} RMSE {r['test_rmse']:.2f}", file=sys.stderr, flush=True)
    out = Path(args.out)
    atomic_write(out, json.dumps({"protocol": __doc__.split("\n\n")[1], "unit": "meV/cation",
                                  "members_fit_seconds": fit_s, "rows": rows}, indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
