"""The measurements behind the default training and descriptor policy (tnmat.training.params,
tnmat.descriptors.presets): the default estimator (TTN, solver and loss "auto") under three ways of choosing
the ridge strengths, on two descriptor presets, on NMD18's official split and on the README main job's alloy
set, with descriptor and fit times.

    python benchmarks/default_policy.py --nmd18 ../shared/data/nmd18 --cache bench_out/policy \
        -o results/defaults/default_policy.json

Policies: ``validation`` (each local strength chosen on a held-out fifth, then refitted on all),
``evidence_holdout`` (strengths by the Bayesian evidence; the fifth only stops the passes) and ``evidence_all``
(strengths by the evidence, nothing held out), each with plain standardisation; ``*_floor*``: the same with
the input scales floored at that fraction of the RMS spread (``input_scale_floor``).  Errors: meV per cation
(NMD18) and meV per atom (alloys).
Resumable: finished rows are kept in the output file and skipped on a rerun.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from tnmat.data import embedded_default, load_nmd18
from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.descriptors.presets import PRESETS
from tnmat.experiments.splits import holdout_split, official_test
from tnmat.legtensor import LegTensor
from tnmat.metrics import rmse_mae
from tnmat.reports import atomic_write
from tnmat.training import TTNRegressor

POLICIES = {"validation": {"alpha_selection": "validation", "validation_fraction": 0.2, "input_scale_floor": 0.0},
            "evidence_holdout": {"alpha_selection": "evidence", "validation_fraction": 0.2,
                                 "input_scale_floor": 0.0},
            "evidence_all": {"alpha_selection": "evidence", "validation_fraction": 0.0, "input_scale_floor": 0.0},
            "evidence_holdout_floor1e-3": {"alpha_selection": "evidence", "validation_fraction": 0.2,
                                           "input_scale_floor": 1e-3},
            "evidence_all_floor1e-3": {"alpha_selection": "evidence", "validation_fraction": 0.0,
                                       "input_scale_floor": 1e-3},
            "evidence_all_floor1e-2": {"alpha_selection": "evidence", "validation_fraction": 0.0,
                                       "input_scale_floor": 1e-2}}


def _inputs(name: str, preset: str, args: argparse.Namespace) -> tuple[LegTensor, np.ndarray, np.ndarray,
                                                                       np.ndarray, float]:
    """(descriptors, targets, train rows, test rows, descriptor seconds), descriptors cached as .npz."""
    if name == "nmd18":
        ds, target = load_nmd18(args.nmd18), "formation_energy"
    else:
        ds, target = embedded_default(small=False), "mixing_energy"
    train, test = holdout_split(len(ds), official=official_test(ds.metadata.get("split")), seed=0)
    s = PRESETS[preset]
    path = args.cache / f"{name}-{preset}.npz"
    seconds = float("nan")
    if path.exists():
        X = LegTensor.load(path)
    else:
        calc = Invariants(AtomicDensity(species=ds.species, r_cut=s.r_cut, n_max=s.n_max, l_max=s.l_max,
                                        sigma=s.sigma), order=s.order)
        t0 = time.perf_counter()
        X = calc.compute(ds.structures, average=True)
        seconds = time.perf_counter() - t0
        args.cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        X.save(tmp)
        tmp.rename(path)
    return X, np.asarray(ds.targets[target], dtype=np.float64), train, test, seconds


def _row(X: LegTensor, y: np.ndarray, train: np.ndarray, test: np.ndarray, policy: str) -> dict:
    t0 = time.perf_counter()
    est = TTNRegressor(**POLICIES[policy]).fit(X.select(train), y[train])
    fit_seconds = time.perf_counter() - t0
    rmse, mae = rmse_mae(y[test], est.predict(X.select(test)), scale=1000.0)
    return {"test_rmse": rmse, "test_mae": mae, "fit_seconds": fit_seconds, "n_parameters": est.n_parameters_,
            "bond_dims": est.bond_dims_, "features": int(np.prod(X.sizes)), "n_train": len(train),
            "n_test": len(test)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nmd18", type=Path, required=True, help="the NMD18 folder")
    ap.add_argument("--cache", type=Path, default=Path("bench_out/policy"), help="descriptor cache folder")
    ap.add_argument("--cases", default="nmd18:fast,nmd18:accurate,alloys:fast",
                    help="DATA:PRESET pairs (default nmd18:fast,nmd18:accurate,alloys:fast)")
    ap.add_argument("-o", "--output", type=Path, default=Path("results/defaults/default_policy.json"))
    args = ap.parse_args()
    out = json.loads(args.output.read_text()) if args.output.exists() else {"units": {
        "nmd18": "meV/cation", "alloys": "meV/atom"}, "rows": {}}
    for case in args.cases.split(","):
        name, preset = case.split(":")
        X, y, train, test, seconds = _inputs(name, preset, args)
        for policy in POLICIES:
            key = f"{name}:{preset}:{policy}"
            if key in out["rows"]:
                continue
            row = _row(X, y, train, test, policy)
            if seconds == seconds:  # measured in this run (not read from the cache)
                row["descriptor_seconds"] = seconds
            out["rows"][key] = row
            print(key, {k: row[k] for k in ("test_mae", "test_rmse", "fit_seconds")}, file=sys.stderr, flush=True)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(args.output, json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
