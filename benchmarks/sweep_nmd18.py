"""Sweep-fitted tensor networks against ridge and GPR-RBF on NMD18, official split, in one run.

Protocol: the 2400 official training structures, the 600 official test structures (the split of the data's
metadata).  Inputs: SOAP invariants, structure-averaged, Gaussian density sigma 0.5 A; descriptor sets
named ``r{r_cut}n{n_max}l{l_max}[c]`` (``c``: the centre-species leg) for the power spectrum B2 and
``b3-...`` for the bispectrum (nu = 3).  Models on the same inputs:

* ridge: closed form on the standardised flattened descriptor, strength by validation (the same seeded 20%
  of the training structures) then refitted on all 2400;
* GPR-RBF: :class:`tnmat.baselines.GPRRegressor` (marginal likelihood, all 2400 training structures);
* MPS / MPO / TTN with ``solver="sweep"``: strengths, passes chosen on the same 20%, refitted on all 2400;
  ``ens:K:SPEC``: the mean prediction of K networks SPEC with random_state 0..K-1 (each seed draws its own
  validation fifth, if any, and initial network); ``ttn-ens:CHI:K`` = ``ens:K:ttn:CHI``;
  ``sum:K:SPEC``: the same mean merged into one network (:func:`tnmat.training.ensemble.ensemble_mean`,
  bonds summed; SPEC must hold no rows out, e.g. ``ttn:8:ev0``).

Every fit records test MAE/RMSE (meV/cation for the formation energy, meV for the band gap), parameters,
fit seconds (one thread), the peak resident-memory increase during the fit (sampled every 10 ms) and its
test errors; ``paired_mae_differences`` gives every model's MAE minus GPR-RBF's and ridge's on the same
test structures with a 95 % paired bootstrap interval.
Descriptors are cached under ``cache/`` (outside git).  Results: JSON to ``--out`` (default
bench_out/sweep_nmd18.json); copy it to results/sweep/ to commit.

Usage: ``python benchmarks/sweep_nmd18.py [--nmd18 PATH] [--descriptors r6n4l3,r8n8l6] [--targets ...]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from tnmat import LegTensor
from tnmat.data import load_nmd18
from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.training.sweep import DEFAULT_ALPHAS, SweepConfig
from tnmat.training.sweep.solve import LocalRows, ridge_local_solve

TARGETS = {"formation_energy": ("formation_energy", "meV/cation"), "band_gap": ("bandgap", "meV")}


def parse_descriptor(name: str) -> dict:
    """``r8n8l6c`` -> r_cut 8, n_max 8, l_max 6, centre species; ``b3-`` prefix: bispectrum."""
    order = 3 if name.startswith("b3-") else 2
    body = name[3:] if order == 3 else name
    centre = body.endswith("c")
    body = body.rstrip("c")
    r, rest = body[1:].split("n")
    n, l_ = rest.split("l")
    return {"order": order, "r_cut": float(r), "n_max": int(n), "l_max": int(l_), "center": centre}


def descriptors(root: Path, geometry: str, name: str, cache: Path) -> tuple[LegTensor, dict, np.ndarray]:
    """(X averaged over atoms, targets, split) for NMD18, cached as .npz under ``cache``."""
    ds = load_nmd18(root, geometry=geometry)
    spec = parse_descriptor(name)
    path = cache / f"nmd18-{geometry}-{name}.npz"
    if path.exists():
        X = LegTensor.load(path)
    else:
        calc = Invariants(AtomicDensity(species=ds.species, r_cut=spec["r_cut"], n_max=spec["n_max"],
                                        l_max=spec["l_max"], sigma=0.5), order=spec["order"],
                          center_species=spec["center"])
        t0 = time.perf_counter()
        X = calc.compute(ds.structures, average=True, progress=False)
        print(f"  descriptor {name} ({geometry}): {time.perf_counter() - t0:.0f} s, shape {X.sizes}",
              file=sys.stderr, flush=True)
        tmp = path.with_suffix(".tmp.npz")
        X.save(tmp)
        tmp.rename(path)
    targets = {k: np.asarray(ds.targets[k], dtype=np.float64) for k in ds.targets}
    return X, targets, np.asarray(ds.metadata["split"])


class PeakRSS:
    """Peak resident-set-size increase (MiB) of this process while the context is open (10 ms samples)."""

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())
        self.mib = (self.peak - self.base) / 2**20


def split_rows(split: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Official train/test, and the seeded 20% validation / 80% fit rows of the training set."""
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    perm = np.random.default_rng(seed).permutation(train)
    n_val = len(perm) // 5
    return train, test, np.sort(perm[n_val:]), np.sort(perm[:n_val])


def fit_ridge(x: np.ndarray, y: np.ndarray, fit: np.ndarray, val: np.ndarray, train: np.ndarray
              ) -> tuple[callable, int, dict]:
    """Closed-form ridge on standardised features: strength by validation, refit on all training rows."""
    def scaled(rows: np.ndarray, ref: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        mu, sd = x[ref].mean(0), x[ref].std(0)
        sd = np.where(sd > 1e-12 * (1 + np.abs(mu)), sd, 1.0)
        return torch.as_tensor((x[rows] - mu) / sd), mu, sd

    xf, _, _ = scaled(fit, fit)
    mu_f, sd_f = x[fit].mean(0), np.where(x[fit].std(0) > 0, x[fit].std(0), 1.0)
    ys = y[fit].std()
    sol = ridge_local_solve(xf, torch.as_tensor(y[fit] / ys), DEFAULT_ALPHAS, select="validation",
                            val=LocalRows(torch.as_tensor((x[val] - mu_f) / sd_f), torch.as_tensor(y[val] / ys)))
    xa, mu, sd = scaled(train, train)
    ys = y[train].std()
    ref = ridge_local_solve(xa, torch.as_tensor(y[train] / ys), [sol.lam], select="fixed")
    m, b = ref.m.numpy() * ys, ref.intercept * ys

    def predict(rows: np.ndarray) -> np.ndarray:
        return ((x[rows] - mu) / sd) @ m + b

    return predict, x.shape[1], {"alpha": sol.lam, "val_rmse_best": sol.val_mse**0.5}


def tn_estimator(model: str, bond: int, n_sweeps: int):  # noqa: ANN201 (an unfitted estimator)
    """A sweep-fitted network from ``KIND[:BOND[:OPTION...]]``: KIND mps, ttn, mpo or dense (the closed-form
    ridge of the estimators, BOND ignored).  An option is a number (the MPO's input offset); ``gcv`` (no
    validation rows: every strength by GCV on all rows, passes stopped on the training RMSE); ``ev`` / ``ev0``
    (every strength by the Bayesian evidence; ``ev0``: no validation rows, passes stopped on the training
    RMSE); ``alpha=A`` (one ridge strength at every step); ``cut=C`` (singular-value cutoff); ``sweeps=N``;
    ``seed=S``; ``huber=D`` (the Huber loss with threshold D standard deviations of the target)."""
    from tnmat.training.estimators import DenseACERegressor, MPORegressor, MPSRegressor, TTNRegressor

    kind, *opts = model.split(":")
    cls = {"mps": MPSRegressor, "mpo": MPORegressor, "ttn": TTNRegressor, "dense": DenseACERegressor}[kind]
    kw: dict = {"solver": "sweep", "n_sweeps": n_sweeps, "dtype": "float64", "validation_fraction": 0.2,
                "random_state": 0}
    if kind != "dense":
        kw["bond_dim"] = int(opts[0]) if opts else bond
    for opt in opts[1:]:
        if opt == "gcv":
            kw["validation_fraction"] = 0.0
        elif opt == "ev":  # every strength by the Bayesian evidence (validation rows only stop the passes)
            kw["alpha_selection"] = "evidence"
        elif opt == "ev0":  # the evidence, no validation rows at all
            kw["alpha_selection"], kw["validation_fraction"] = "evidence", 0.0
        elif opt.startswith("cut="):
            kw["svd_cutoff"] = float(opt[4:])
        elif opt.startswith("sweeps="):
            kw["n_sweeps"] = int(opt[7:])
        elif opt.startswith("alpha="):  # one ridge strength for every local solve (no per-step choice)
            kw["alphas"] = [float(opt[6:])]
        elif opt.startswith("seed="):
            kw["random_state"] = int(opt[5:])
        elif opt.startswith("huber="):
            kw["loss"], kw["huber_delta"] = "huber", float(opt[6:])
        elif kind == "mpo":
            kw["input_offset"] = float(opt)
        else:
            raise SystemExit(f"unknown model option {opt!r} in {model!r}")
    return cls(**kw)


def ensemble_specs(model: str) -> list[str]:
    """Member specs of ``ens:K:SPEC`` (SPEC with ``seed=0..K-1``) or the older ``ttn-ens:CHI:K``
    (= ``ens:K:ttn:CHI``)."""
    if model.startswith("ttn-ens"):
        _, chi, k = model.split(":")
        model = f"ens:{k}:ttn:{chi}"
    _, k, spec = model.split(":", 2)
    return [f"{spec}:seed={seed}" for seed in range(int(k))]


def choose_by_cv(model: str, X: LegTensor, y: np.ndarray, train: np.ndarray, bond: int, n_sweeps: int,
                 scale: float) -> tuple:
    """``choose:K:SPEC|SPEC|...``: the candidate network with the lowest K-fold cross-validated MAE over the
    training structures only (folds seeded, 0); returns the unfitted winner and every candidate's CV MAE/RMSE."""
    _, k, specs = model.split(":", 2)
    folds = np.array_split(np.random.default_rng(0).permutation(train), int(k))
    scores = {}
    for spec in specs.split("|"):
        err = np.concatenate([
            (tn_estimator(spec, bond, n_sweeps).fit(X.select(np.setdiff1d(train, f)), y[np.setdiff1d(train, f)])
             .predict(X.select(f)) - y[f]) * scale for f in folds])
        scores[spec] = {"cv_mae": float(np.mean(np.abs(err))), "cv_rmse": float(np.sqrt(np.mean(err**2)))}
        print(f"    cv {spec}: MAE {scores[spec]['cv_mae']:.2f} RMSE {scores[spec]['cv_rmse']:.2f}", file=sys.stderr,
              flush=True)
    best = min(scores, key=lambda sp: scores[sp]["cv_mae"])
    return tn_estimator(best, bond, n_sweeps), {"chosen": best, "cv": scores}


def run_models(X: LegTensor, y: np.ndarray, split: np.ndarray, models: list[str], bond: int, scale: float,
               n_sweeps: int, holdout: bool = False) -> list[dict]:
    from sklearn.base import clone

    from tnmat.baselines import GPRRegressor

    train, test, fit, val = split_rows(split)
    x = X.values.reshape(X.values.shape[0], -1).numpy()
    rows = []
    for model in models:
        t0 = time.perf_counter()
        info: dict = {}
        with PeakRSS() as mem:
            if model == "ridge":
                predict, n_par, info = fit_ridge(x, y, fit, val, train)
                pred = predict(test)
                info["holdout_val_rmse"] = info["val_rmse_best"] * float(y[fit].std()) * scale
            elif model == "gpr-rbf":
                est = GPRRegressor(kernel="rbf", random_state=0).fit(x[train], y[train])
                pred, n_par = est.predict(x[test]), len(train)
            elif model.startswith("choose:"):  # "choose:5:ttn:8:alpha=1|ttn:8:alpha=10": K-fold CV on train
                est, info = choose_by_cv(model, X, y, train, bond, n_sweeps, scale)
                est.fit(X.select(train), y[train])
                pred, n_par = est.predict(X.select(test)), est.n_parameters_
                info["bond_dims"] = est.bond_dims_
            elif model.startswith(("ttn-ens", "ens:", "sum:")):  # K sweep fits with random_state 0..K-1
                members = [tn_estimator(spec, bond, n_sweeps).fit(X.select(train), y[train])
                           for spec in ensemble_specs(model)]
                member_pred = [m.predict(X.select(test)) for m in members]
                info = {"bond_dims": [m.bond_dims_ for m in members],
                        "member_test_mae": [float(np.mean(np.abs(p - y[test])) * scale) for p in member_pred]}
                if model.startswith("sum:"):  # "sum:4:ttn:8:ev0": the mean merged into one network
                    from tnmat.training.ensemble import ensemble_mean

                    est = ensemble_mean(members)
                    pred, n_par = est.predict(X.select(test)), est.n_parameters_
                    info["member_bond_dims"], info["bond_dims"] = info["bond_dims"], est.bond_dims_
                else:  # the plain mean of the members' predictions
                    pred, n_par = np.mean(member_pred, axis=0), sum(m.n_parameters_ for m in members)
            else:  # "mps", "ttn:16", "mpo:4:1", "ttn:8:gcv", "ttn:8:cut=1e-3" (see tn_estimator)
                est = tn_estimator(model, bond, n_sweeps)
                if holdout:  # the same settings fitted on the fit rows, scored on the validation rows
                    h = clone(est).fit(X.select(fit), y[fit])
                    herr = (h.predict(X.select(val)) - y[val]) * scale
                    info["holdout_val_rmse"] = float(np.sqrt(np.mean(herr**2)))
                    info["holdout_val_mae"] = float(np.mean(np.abs(herr)))
                est.fit(X.select(train), y[train])
                pred, n_par = est.predict(X.select(test)), est.n_parameters_
                hist = est.history_
                info.update({"bond_dims": est.bond_dims_, "passes": est.n_epochs_, "best_pass": est.best_epoch_ + 1,
                             "stop_reason": hist.get("stop_reason", ["one closed-form solve"])[0],
                             "val_rmse_per_pass": hist["val_rmse"], "val_rmse_best": hist["val_rmse"][est.best_epoch_]})
        err = (pred - y[test]) * scale
        rows.append({"model": model, "n_parameters": int(n_par), "fit_seconds": time.perf_counter() - t0,
                     "peak_rss_mib": mem.mib, "test_mae": float(np.mean(np.abs(err))),
                     "test_rmse": float(np.sqrt(np.mean(err**2))), **info,
                     "test_errors": [round(float(e), 4) for e in err]})
        r = rows[-1]
        print(f"  {model:8s} MAE {r['test_mae']:7.2f} RMSE {r['test_rmse']:7.2f} params {r['n_parameters']:7d} "
              f"fit {r['fit_seconds']:6.1f} s  mem +{r['peak_rss_mib']:.0f} MiB", file=sys.stderr, flush=True)
    return rows


def setup_run(args: argparse.Namespace) -> tuple[Path, Path]:
    """One torch thread; the NMD18 folder (a clear exit when it is missing) and the descriptor cache."""
    torch.set_num_threads(1)
    root = Path(args.nmd18)
    if not (root / "train.csv").exists():
        sys.exit(f"NMD18 not found at {root}: pass --nmd18 PATH or set TNMAT_NMD18")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    return root, cache


def official_relaxed_r8n8l6(args: argparse.Namespace) -> tuple[LegTensor, np.ndarray, np.ndarray, np.ndarray]:
    """(B2 r8n8l6 of relaxed NMD18, formation energies in eV/cation, official train rows, official test rows):
    the inputs of the small-data and rounding runs (one thread, descriptors cached under ``args.cache``)."""
    root, cache = setup_run(args)
    X, targets, split = descriptors(root, "relaxed", "r8n8l6", cache)
    train, test, _, _ = split_rows(split)
    return X, targets["formation_energy"], train, test


def paired_mae_differences(rows: list[dict], refs: tuple[str, ...] = ("gpr-rbf", "ridge"), n_boot: int = 4000
                           ) -> list[dict]:
    """MAE(model) - MAE(reference) on the same test structures, with a 95 % paired bootstrap interval
    (resampling test structures, seed 0): whether a difference is larger than the test set's noise."""
    out = []
    by_model = {r["model"]: np.abs(np.asarray(r["test_errors"])) for r in rows if "test_errors" in r}
    rng = np.random.default_rng(0)
    for ref in refs:
        if ref not in by_model:
            continue
        idx = rng.integers(0, len(by_model[ref]), size=(n_boot, len(by_model[ref])))
        for model, a in by_model.items():
            if model == ref:
                continue
            d = a - by_model[ref]
            boot = d[idx].mean(1)
            out.append({"model": model, "reference": ref, "mae_difference": float(d.mean()),
                        "ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_root = os.environ.get("TNMAT_NMD18", str(Path(__file__).resolve().parents[2] / "shared/data/nmd18"))
    ap.add_argument("--nmd18", default=default_root)
    ap.add_argument("--descriptors", default="r6n4l3,r8n8l6")
    ap.add_argument("--runs", default="relaxed:formation_energy,relaxed:band_gap,vegard:formation_energy",
                    help="geometry:target pairs")
    ap.add_argument("--models", default="ridge,gpr-rbf,mps:8,ttn:8,mpo:4:1",
                    help="ridge, gpr-rbf, KIND[:BOND[:OPTION...]] for KIND in mps, ttn, mpo, dense "
                         "(options: tn_estimator)")
    ap.add_argument("--bond-dim", type=int, default=8)
    ap.add_argument("--n-sweeps", type=int, default=6)
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--holdout", action="store_true",
                    help="also fit every network on the 80%% fit rows and score it on the 20%% validation rows "
                         "(holdout_val_rmse: the model-selection column; the test rows are never used to choose)")
    ap.add_argument("--out", default="bench_out/sweep_nmd18.json")
    args = ap.parse_args()
    root, cache = setup_run(args)
    out = Path(args.out)
    results = json.loads(out.read_text())["results"] if out.exists() else []
    done = {(r["descriptor"], r["geometry"], r["target"], r["model"]) for r in results}
    for run in args.runs.split(","):
        geometry, target = run.split(":")
        for name in args.descriptors.split(","):
            X, targets, split = descriptors(root, geometry, name, cache)
            key, unit = TARGETS[target]
            # the MPO's local problems grow as chi^2 d^4: only on the small input
            models = [m for m in args.models.split(",") if (name, geometry, target, m) not in done
                      and not (m.startswith("mpo") and X.values[0].numel() > 2048)]
            if not models:
                continue
            print(f"{geometry} {target} {name} {X.sizes}", file=sys.stderr, flush=True)
            for r in run_models(X, targets[key], split, models, args.bond_dim, 1000.0, args.n_sweeps,
                                args.holdout):
                results.append({"descriptor": name, "geometry": geometry, "target": target, "unit": unit,
                                "leg_sizes": list(X.sizes), **r})
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_suffix(".tmp")
                paired = {f"{g}:{t}:{d}": paired_mae_differences(
                    [r for r in results if (r["geometry"], r["target"], r["descriptor"]) == (g, t, d)])
                    for g, t, d in {(r["geometry"], r["target"], r["descriptor"]) for r in results}}
                tmp.write_text(json.dumps({"protocol": __doc__.split("\n\n")[1], "threads": 1,
                                           "bond_dim": args.bond_dim, "refine_solves": SweepConfig().refine_solves,
                                           "results": results, "paired_mae_differences": paired}, indent=1))
                tmp.rename(out)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
