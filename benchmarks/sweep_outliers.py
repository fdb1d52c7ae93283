"""Where the sweep-fitted networks' large test RMSE on some learning-curve splits comes from.

Refits one learning-curve task of the paper protocol (same splits, subsets and 80/20 fit/validation draw as
``tnmat learning-curve --preset paper``; default: NMD18 relaxed, split ``random-2``, 2400 structures, the
TTN with ``solver="sweep"`` and bond cap 8) and writes, for its five worst test structures: formula, space
group, number of atoms, target, the sweep network's error and the error of a closed-form ridge regression on
the same standardised inputs with its strength chosen on the same validation rows (strengths 1e-4..1e4).
If ridge fails on the same structures, the outliers are a property of a weakly regularised linear model
on these inputs (both are linear in the averaged power spectrum), not of the sweep fitter.

    TNMAT_NMD18=/path/to/nmd18 python benchmarks/sweep_outliers.py --out results/sweep/lc_outliers_relaxed.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

from tnmat.descriptor_cache import cached_descriptors
from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.experiments import learning_curve as lc
from tnmat.experiments.protocol import default_target, stratification_quantities
from tnmat.experiments.splits import official_test
from tnmat.training.registry import PRESETS, make_estimator


def ridge_errors(Z: np.ndarray, y: np.ndarray, fit: np.ndarray, val: np.ndarray, test: np.ndarray) -> tuple:
    """Closed-form ridge (intercept = mean target) on standardised rows: strength by validation RMSE;
    returns (strength, test errors in the target's units)."""
    zc, yc = Z[fit] - Z[fit].mean(0), y[fit] - y[fit].mean()
    evals, evecs = np.linalg.eigh(zc.T @ zc)
    proj = evecs.T @ (zc.T @ yc)
    best = None
    for a in 10.0 ** np.arange(-4, 4.5, 0.5):
        w = evecs @ (proj / (evals + a))
        val_rmse = float(np.sqrt(np.mean(((Z[val] - Z[fit].mean(0)) @ w + y[fit].mean() - y[val]) ** 2)))
        if best is None or val_rmse < best[0]:
            best = (val_rmse, a, w)
    _, a, w = best
    return float(a), (Z[test] - Z[fit].mean(0)) @ w + y[fit].mean() - y[test]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--geometry", default="relaxed")
    ap.add_argument("--split", default="random-2")
    ap.add_argument("--n-train", type=int, default=2400)
    ap.add_argument("--model", default="ttn")
    ap.add_argument("--bond-dim", type=int, default=8)
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from tnmat.data import load_nmd18

    ds = load_nmd18(os.environ["TNMAT_NMD18"], geometry=args.geometry)
    target = default_target(ds, None)
    calc = Invariants(AtomicDensity(species=tuple(ds.species), r_cut=6.0, n_max=4, l_max=3, density="gaussian",
                                    sigma=0.5), order=2)  # the paper preset's descriptor (CLI defaults)
    X = cached_descriptors(calc, ds, cache_dir=args.cache, progress=False)
    preset = PRESETS["paper"]
    cfg = lc.LearningCurveSettings(models=[args.model], sizes=list(preset.sizes), n_splits=preset.splits,
                                   test_size=preset.test_size)
    task = lc.LearningCurveTask(X, ds.targets[target], stratification_quantities(ds, target), cfg,
                                official_test=official_test(ds.metadata.get("split"), size=preset.test_size))
    fit, val, test = task.indices(args.split, args.n_train)
    y = task.y
    est = make_estimator(args.model, solver="sweep", bond_dim=args.bond_dim, learning_rate=0.01,
                         **preset.fixed_params(args.model), random_state=0)
    est.fit(task.rows(fit), y[fit], X_val=task.rows(val), y_val=y[val])
    err = (est.predict(task.rows(test)) - y[test]) * 1000.0
    V = task.values.reshape(len(y), -1)
    sd = V[fit].std(0)
    Z = (V - V[fit].mean(0)) / np.where(sd > 0, sd, 1.0)
    alpha, rerr = ridge_errors(Z, y, fit, val, test)
    rerr = rerr * 1000.0
    worst = np.argsort(-np.abs(err))[:5]
    rows = []
    for k in worst:
        i = int(test[k])
        s = ds.structures[i]
        rows.append({"structure": i, "id": str(ds.metadata["id"][i]), "formula": s.get_chemical_formula(),
                     "spacegroup": int(ds.metadata["spacegroup"][i]), "n_atoms": len(s),
                     "target_eV": float(y[i]), "sweep_error_meV": float(err[k]), "ridge_error_meV": float(rerr[k]),
                     "max_abs_standardised_entry": float(np.abs(Z[i]).max())})
    keep = np.ones(len(test), bool)
    keep[worst[0]] = False
    out = {"geometry": args.geometry, "split": args.split, "n_train": args.n_train, "model": args.model,
           "bond_dim": args.bond_dim, "units": "meV/cation",
           "sweep": {"test_rmse": float(np.sqrt(np.mean(err ** 2))), "test_mae": float(np.mean(np.abs(err))),
                     "test_rmse_without_worst": float(np.sqrt(np.mean(err[keep] ** 2))),
                     "bond_dims": list(est.bond_dims_)},
           "ridge": {"alpha": alpha, "test_rmse": float(np.sqrt(np.mean(rerr ** 2))),
                     "test_mae": float(np.mean(np.abs(rerr))),
                     "test_rmse_without_worst": float(np.sqrt(np.mean(rerr[keep] ** 2)))},
           "max_abs_standardised_entry_fit_rows": float(np.abs(Z[fit]).max()),
           "same_spacegroup_in_fit_rows": int(np.sum(ds.metadata["spacegroup"][fit] == rows[0]["spacegroup"])),
           "worst": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(tmp, args.out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
