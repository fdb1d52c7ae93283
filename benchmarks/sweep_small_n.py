"""Small training sets: what limits the sweep-fitted networks at 50-800 structures.

Protocol: NMD18, relaxed geometry, B2 r_c 8 A, n_max 8, l_max 6 structure-averaged (legs 4,4,8,8,7); for each
size, 10 random subsets (seeds 100..109) of the 2400 official training structures; test MAE on the 600
official test structures (meV/cation), mean and standard deviation over the subsets.  Models, all in the
same run on the same rows:

* ``gpr-rbf``: GPRRegressor(kernel="rbf"), marginal likelihood on the subset;
* ``ridge-ev``: DenseACERegressor(solver="sweep"), strength by the Bayesian evidence, no rows held out;
* ``ttn:CAP``: TTN, strengths on a 20 % validation part, refitted on the subset (the default fitter);
* ``ttn:CAP:ev``: TTN, strengths by the evidence, no rows held out;
* ``ttn:CAP:ev:xK``: K such TTNs merged into one (``n_members=K``).

Usage: ``python benchmarks/sweep_small_n.py [--nmd18 PATH] [--sizes 50,200,800] [--out JSON]``; the
descriptors are cached under ``--cache``.  Output: JSON with every fit's test MAE, rewritten (atomically) after
every fit; a rerun with the same ``--out`` skips the fits already there, so a killed run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_nmd18 import official_relaxed_r8n8l6  # noqa: E402 (the official-split run's cached descriptors)

MODELS = "gpr-rbf,ridge-ev,ttn:8,ttn:8:ev,ttn:16:ev,ttn:64:ev,ttn:8:ev:x4"


def estimator(spec: str):  # noqa: ANN201 (an unfitted estimator)
    """The estimator of a model spec (module docstring)."""
    from tnmat.baselines import GPRRegressor
    from tnmat.training.estimators import DenseACERegressor, TTNRegressor

    if spec == "gpr-rbf":
        return GPRRegressor(kernel="rbf", random_state=0)
    if spec == "ridge-ev":
        return DenseACERegressor(solver="sweep", dtype="float64", validation_fraction=0.0,
                                 alpha_selection="evidence")
    _, cap, *opts = spec.split(":")
    kw = {"solver": "sweep", "bond_dim": int(cap), "dtype": "float64", "random_state": 0}
    if "ev" in opts:
        kw.update(alpha_selection="evidence", validation_fraction=0.0)
    for opt in opts:
        if opt.startswith("x"):
            kw["n_members"] = int(opt[1:])
    return TTNRegressor(**kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmd18", default=os.environ.get("TNMAT_NMD18",
                                                      str(Path(__file__).resolve().parents[2] / "shared/data/nmd18")))
    ap.add_argument("--sizes", default="50,200,800")
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--subsets", type=int, default=10)
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--out", default="bench_out/sweep_small_n.json")
    args = ap.parse_args()
    X, y, train, test = official_relaxed_r8n8l6(args)
    out = Path(args.out)
    # every fit is written at once and a rerun skips the fits already in --out: a kill loses one fit
    rows = json.loads(out.read_text())["fits"] if out.exists() else []
    done = {(r["n_train"], r["subset"], r["model"]) for r in rows}
    for n in (int(s) for s in args.sizes.split(",")):
        for s in range(args.subsets):
            sub = np.sort(np.random.default_rng(100 + s).choice(train, n, replace=False))
            for spec in args.models.split(","):
                if (n, s, spec) in done:
                    continue
                t0 = time.perf_counter()
                est = estimator(spec).fit(X.select(sub), y[sub])
                mae = float(np.mean(np.abs(est.predict(X.select(test)) - y[test]))) * 1000.0
                rows.append({"n_train": n, "subset": s, "model": spec, "test_mae": mae,
                             "fit_seconds": time.perf_counter() - t0})
                write_json(out, rows, args.models.split(","))
        summary = {spec: [r["test_mae"] for r in rows if r["n_train"] == n and r["model"] == spec]
                   for spec in args.models.split(",")}
        print(f"{n}: " + "  ".join(f"{k} {np.mean(v):.1f}+-{np.std(v):.1f}" for k, v in summary.items()),
              file=sys.stderr, flush=True)
    write_json(out, rows, args.models.split(","))
    print(f"wrote {out}", file=sys.stderr)


def write_json(out: Path, rows: list[dict], models: list[str]) -> None:
    """The fits so far and their mean/std test MAE per (size, model), written atomically to ``out``."""
    table = {f"{n}:{spec}": {"mean": float(np.mean(v)), "std": float(np.std(v)), "n_subsets": len(v)}
             for n in sorted({r["n_train"] for r in rows}) for spec in models
             for v in [[r["test_mae"] for r in rows if r["n_train"] == n and r["model"] == spec]] if v}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"protocol": __doc__.split("\n\n")[1], "unit": "meV/cation", "summary": table,
                               "fits": rows}, indent=1))
    tmp.rename(out)


if __name__ == "__main__":
    main()
