"""Tensor-network models on NMD18 (official Kaggle split): accuracy, size and speed.

Protocol: the 2400 official training structures (20% of them, seeded, for validation/early stopping) and
the 600 official test structures; SOAP power spectrum r_cut 6 A, n_max 4, l_max 3, sigma 0.5 A (legs
a1, a2, n1, n2, l of size 4); target formation energy per cation; errors in meV/cation.  For every model
and geometry (relaxed, Vegard) the script records parameters, seconds per epoch, epochs to early stop,
fit time, prediction throughput and test RMSE/MAE.  Every finished fit goes to a ResultStore (SQLite)
at once, so an interrupted run resumes; the table and JSON are rebuilt from the store.

Published references on the same 600 test structures (Sutton et al., npj Comput. Mater. 5, 111 (2019),
Tables 1-2; formation-energy MAE, meV/cation): Kaggle n-gram KRR 14, c/BOP LGBM 15, SOAP NN 13;
retrained on relaxed / Vegard inputs: SOAP NN 11 / 13, c/BOP LGBM 14 / 15, 4-gram KRR 17 / 15.

Usage: ``python benchmarks/models.py [--nmd18 PATH] [--configs default|accuracy] [--out bench_out/models.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tnmat import LegTensor
from tnmat.data import load_nmd18
from tnmat.descriptor_cache import cached_legtensor
from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.experiments.splits import holdout_split, official_test, train_validation_split
from tnmat.experiments.store import ResultStore, config_key
from tnmat.metrics import rmse_mae
from tnmat.training.registry import make_estimator

PUBLISHED = {"Kaggle 1st n-gram KRR": 14, "Kaggle 2nd c/BOP LGBM": 15, "Kaggle 3rd SOAP NN": 13,
             "SOAP NN relaxed/vegard": "11 / 13", "c/BOP LGBM relaxed/vegard": "14 / 15",
             "4-gram KRR relaxed/vegard": "17 / 15"}

TRAIN = dict(learning_rate=3e-3, batch_size=64, max_epochs=1000, patience=60, lr_schedule="plateau")
# (name, model, estimator parameters, descriptor: order / local)
CONFIGS = {
    "default": [
        ("dense", "dense", {}, dict(order=2, local=False)),
        ("mps chi=8", "mps", {"bond_dim": 8}, dict(order=2, local=False)),
        ("mpo chi=8", "mpo", {"bond_dim": 8}, dict(order=2, local=False)),
        ("ttn chi=8", "ttn", {"bond_dim": 8}, dict(order=2, local=False)),
        ("mera chi=4", "mera", {"bond_dim": 4}, dict(order=2, local=False)),
        # one site per feature (1024 sites): ~1 s per mini-batch step on this machine, so its epochs are capped
        ("feature-map-mps chi=6", "feature-map-mps", {"bond_dim": 6, "max_epochs": 40, "patience": 10},
         dict(order=2, local=False)),
    ],
    "accuracy": [
        ("mps chi=8, centre species", "mps", {"bond_dim": 8}, dict(order=2, local=False, center=True)),
        ("mpo chi=8, centre species", "mpo", {"bond_dim": 8}, dict(order=2, local=False, center=True)),
    ],
    # a larger basis: ridge regression on it gives 11.9 meV/cation MAE (13.3 with n_max 4, l_max 3)
    "basis": [
        ("ttn chi=8, n_max 6 l_max 5", "ttn", {"bond_dim": 8}, dict(order=2, local=False, n_max=6, l_max=5)),
        ("mps chi=8, n_max 6 l_max 5", "mps", {"bond_dim": 8}, dict(order=2, local=False, n_max=6, l_max=5)),
    ],
}


def descriptors(root: Path, geometry: str, local: bool, cache: Path, center: bool = False, n_max: int = 4,
                l_max: int = 3) -> tuple[LegTensor, np.ndarray, np.ndarray]:
    """(X, y, split) for NMD18 (default: the paper's settings), cached as .npz."""
    ds = load_nmd18(root, geometry=geometry)
    calc = Invariants(AtomicDensity(species=ds.species, r_cut=6.0, n_max=n_max, l_max=l_max, sigma=0.5), order=2,
                      center_species=center)
    basis = "" if (n_max, l_max) == (4, 3) else f"-n{n_max}l{l_max}"
    path = cache / f"nmd18-{geometry}-B2{basis}-{'atoms' if local else 'mean'}{'-centre' if center else ''}.npz"
    X = cached_legtensor(path, lambda: calc.compute(ds.structures, average=not local, progress=False))
    return X, ds.targets["formation_energy"], np.asarray(ds.metadata["split"])


def fit_one(X: LegTensor, y: np.ndarray, split: np.ndarray, model: str, params: dict, seed: int) -> dict:
    # the official split; 20 % of its training part (480 of 2400) for early stopping, drawn from ``seed``
    train, test = holdout_split(len(split), official=official_test(split))
    fit_idx, val = train_validation_split(train, val_fraction=0.2, seed=seed)
    est = make_estimator(model, random_state=seed, **{**TRAIN, **params})
    t0 = time.perf_counter()
    est.fit(X.select(fit_idx), y[fit_idx], X_val=X.select(val), y_val=y[val])
    fit_s = time.perf_counter() - t0
    Xt = X.select(test)
    t0 = time.perf_counter()
    pred = est.predict(Xt)
    pred_s = time.perf_counter() - t0
    test_rmse, test_mae = rmse_mae(y[test], pred, what=model)
    n_epochs = int(getattr(est, "n_epochs_", 0) or 0)
    return {
        "n_parameters": int(getattr(est, "n_parameters_", 0) or 0),
        "fit_seconds": fit_s,
        "seconds_per_epoch": fit_s / max(n_epochs, 1),
        "n_epochs": n_epochs,
        "best_epoch": int(getattr(est, "best_epoch_", -1)),
        "predict_structures_per_s": len(test) / pred_s,
        "test_rmse": test_rmse,
        "test_mae": test_mae,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmd18", default=os.environ.get("TNMAT_NMD18", str(Path(__file__).resolve().parents[2]
                                                                        / "shared/data/nmd18")))
    ap.add_argument("--configs", default="default", help="comma-separated groups: " + ", ".join(CONFIGS))
    ap.add_argument("--geometries", default="relaxed,vegard")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (mean over seeds is reported)")
    ap.add_argument("--store", default="bench_out/models.sqlite")
    ap.add_argument("--out", default="bench_out/models.json")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (small networks train faster on 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.nmd18)
    if not (root / "train.csv").exists():
        sys.exit(f"NMD18 not found at {root}: pass --nmd18 PATH or set TNMAT_NMD18")
    cache = Path(args.store).parent / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    store = ResultStore(args.store)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for geometry in args.geometries.split(","):
        for group in args.configs.split(","):
            for name, model, params, desc in CONFIGS[group]:
                X, y, split = descriptors(root, geometry, desc["local"], cache, desc.get("center", False),
                                          desc.get("n_max", 4), desc.get("l_max", 3))
                results = []
                for seed in seeds:
                    cfg = {"experiment": "models", "name": name, "model": model, "params": params, "desc": desc,
                           "geometry": geometry, "seed": seed, "train": TRAIN}
                    key = config_key(cfg)
                    rec = store.get(key)
                    if rec is None:
                        print(f"fitting {name} ({geometry}, seed {seed}) ...", file=sys.stderr, flush=True)
                        metrics = fit_one(X, y, split, model, params, seed)
                        store.put(key, {"model": model, "metrics": metrics, "params": cfg, "n_train": 1920,
                                        "split": "official"}, experiment="models")
                        rec = store.get(key)
                    results.append(rec["metrics"])
                mean = {k: float(np.mean([r[k] for r in results])) for k in results[0]}
                rows.append({"name": name, "geometry": geometry, "n_seeds": len(results), **mean})
    header = (f"{'model':24s} {'geometry':8s} {'params':>7s} {'s/epoch':>8s} {'epochs':>6s} {'fit s':>7s} "
              f"{'pred/s':>8s} {'RMSE':>7s} {'MAE':>7s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['name']:24s} {r['geometry']:8s} {r['n_parameters']:7.0f} {r['seconds_per_epoch']:8.3f} "
              f"{r['n_epochs']:6.0f} {r['fit_seconds']:7.1f} {r['predict_structures_per_s']:8.0f} "
              f"{r['test_rmse']:7.2f} {r['test_mae']:7.2f}")
    print("(errors: formation energy, meV/cation, official 600-structure test set)")
    print("published MAE (Sutton et al. 2019):", "; ".join(f"{k} {v}" for k, v in PUBLISHED.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"protocol": __doc__.split("\n\n")[1], "train": TRAIN, "rows": rows,
                               "published_mae": PUBLISHED, "threads": args.threads}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
