"""Entanglement experiments on trained networks (paper Section IV B, Figs. 14 and 15).

Bond-dimension sweep (Fig. 14, :func:`run_bond_sweep`)
------------------------------------------------------
* One fixed test set of ``test_size`` structures (drawn once from ``seed``) that no fit ever sees; the rest
  is the pool.  For split k a random training subset of each size is drawn from the pool (nested: the
  subset of 100 is a prefix of that of 1000) and split 80/20 into fitted and validation structures
  (early stopping and best-epoch restore use the validation part only).
* One task per (model, chi, size, split); the dense tensor has no chi and runs once per (size, split).
  Each finished fit is written at once to the :class:`~tnmat.experiments.store.ResultStore` under the
  hash of its configuration (a rerun skips the stored keys).
* Recorded: test/validation RMSE and MAE (meV, per cation for NMD18: ``units``), parameter count, and, for every
  bipartition (default {a1, a2} | {n1, n2, l} and {a1, n1} | rest), the Schmidt spectrum of the
  normalised trained weight tensor, its von Neumann entropy and capacity of entanglement (natural log),
  the Page entropy of a random complex state of the same dimensions (paper eq. 26) and the real-state
  approximation, and the min-cut bound of the network graph (:func:`tnmat.entanglement.graphs.min_cut_bound`).
  The MPO enters through the Choi isomorphism (its operator is a vector with site dimensions d_k^2, paper Fig. 13), so
  its d_A, d_B, Page entropy and bound refer to the doubled legs.
* chi_ct (compression threshold) per model: :func:`tnmat.networks.compression_threshold`.

Spectrum dynamics (Fig. 15, :func:`run_spectrum_dynamics`)
---------------------------------------------------------
The MPO model at a few chi, ``n_runs`` independent runs (initialisation and mini-batch order differ; the
data do not) of ``n_epochs`` epochs each without early stopping; the Schmidt spectrum of the chosen
bipartition (default {a1, n1}) is recorded by a :class:`~tnmat.training.SnapshotCallback` at log-spaced
optimiser steps (:func:`log_spaced_steps`).  :func:`analyse_dynamics` pools the runs: mean spectrum per
step, entropy and C_E (mean, std), the r~ statistics of the entanglement energies (levels below
``rtol * lambda_max`` dropped: float32 weights resolve Schmidt values only to ~1e-7 relative) and
D_KL(P_GOE || P_obs) with the binning of :func:`tnmat.entanglement.kl_divergence`.

Both are functions of data (descriptors, targets) and settings dataclasses (:class:`SweepSettings`,
:class:`DynamicsSettings`) that return summary dicts; loading data, Markdown reports
(:mod:`tnmat.experiments.entanglement_report`) and figures (:mod:`tnmat.plots.entanglement`) are the
commands layer's (``tnmat entanglement sweep|dynamics``).
"""

from __future__ import annotations

import itertools
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tnmat.entanglement import (
    capacity_of_entanglement,
    entanglement_energies,
    kl_divergence,
    network_state,
    page_entropy,
    poisson_r_tilde_pdf,
    r_tilde,
    spacing_ratios,
    spectrum_of,
    von_neumann_entropy,
    wigner_dyson_r_tilde_pdf,
)
from tnmat.entanglement.graphs import (
    DEFAULT_BIPARTITIONS,
    GRAPH_KINDS,
    bipartition_dims,
    min_cut_bound,
    network_entanglement,
    network_graph,
    partition_indices,
)
from tnmat.experiments.runner import GridOptions, run_grid_with
from tnmat.experiments.splits import FixedTestSplits
from tnmat.experiments.store import ResultStore
from tnmat.legtensor import LegTensor
from tnmat.metrics import rmse_mae
from tnmat.training.params import param_default

__all__ = [
    "SWEEP_EXPERIMENT", "DYNAMICS_EXPERIMENT", "DEFAULT_CHIS", "SWEEP_MODELS", "SweepSettings", "DynamicsSettings",
    "log_spaced_steps", "BondSweepTask", "bond_sweep_tasks", "run_bond_sweep", "summarise_sweep", "DynamicsTask",
    "dynamics_tasks", "run_spectrum_dynamics", "analyse_dynamics",
]

SWEEP_EXPERIMENT = "entanglement-sweep"
DYNAMICS_EXPERIMENT = "entanglement-dynamics"

#: Bond dimensions of the sweep: across chi_ct = 8 and the saturation chi = 16 of the MPS on 4^5 legs.
DEFAULT_CHIS: tuple[int, ...] = (1, 2, 4, 6, 8, 12, 16, 24, 32)
SWEEP_MODELS: tuple[str, ...] = ("mps", "mpo", "ttn", "dense")
_WHAT = "entanglement experiment"


@dataclass(frozen=True)
class SweepSettings:
    """What the bond-dimension sweep computes (module docstring): models x chis x training sizes x splits,
    the fixed test set, the training settings of every fit and the bipartitions analysed."""

    train_sizes: Sequence[int] = (100, 1000)
    n_splits: int = 10
    test_size: int = 600
    chis: Sequence[int] = DEFAULT_CHIS
    models: Sequence[str] = SWEEP_MODELS
    seed: int = 0
    max_epochs: int = 200
    patience: int | None = 30
    learning_rate: float = 5e-3
    batch_size: int = 32
    dtype: str = "float32"
    bipartitions: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(DEFAULT_BIPARTITIONS))
    solver: str = param_default("solver")

    def training(self, model: str) -> dict[str, Any]:
        """The estimator parameters of every fit of ``model`` (they enter the task keys): the solver resolved
        per network, Adam's settings only under Adam and no ``solver`` for Adam, so the keys of stored Adam
        fits stay what they were (:func:`tnmat.training.registry.for_solver`); an explicit ``solver="sweep"``
        keeps the keys of the stored least-squares sweep runs."""
        from tnmat.training.registry import for_solver

        out = {"max_epochs": int(self.max_epochs), "patience": self.patience,
               "learning_rate": float(self.learning_rate), "batch_size": int(self.batch_size), "dtype": self.dtype}
        if self.solver == "sweep":  # an explicit least-squares sweep: the keys of its stored fits
            return {**out, "solver": "sweep"}
        return for_solver(model, out, self.solver)


@dataclass(frozen=True)
class DynamicsSettings:
    """What the spectrum dynamics computes (module docstring): ``n_runs`` runs per chi of ``n_epochs``
    epochs on ``n_train`` structures, ``n_snapshots`` log-spaced spectra of one bipartition (default
    {a1, n1}); ``rtol`` and ``bins`` are the analysis' level cut and histogram bins."""

    chis: Sequence[int] = (12, 16, 20)
    n_runs: int = 4
    n_epochs: int = 50
    n_snapshots: int = 25
    n_train: int = 1000
    test_size: int = 600
    learning_rate: float = 5e-3
    batch_size: int = 32
    dtype: str = "float32"
    bipartition: Mapping[str, Sequence[str]] | None = None
    model: str = "mpo"
    seed: int = 0
    rtol: float = 1e-6
    bins: int = 20

    def partition(self) -> dict[str, tuple[str, ...]]:
        """The one named bipartition followed (default {a1, n1})."""
        bip = {k: tuple(v) for k, v in (self.bipartition or {"a1n1": DEFAULT_BIPARTITIONS["a1n1"]}).items()}
        if len(bip) != 1:
            raise ValueError(f"spectrum dynamics follows one bipartition, got {list(bip)}")
        return bip


def _targets(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64).ravel()
    if len(y) != n:
        raise ValueError(f"entanglement experiment: {len(y)} targets for {n} structures")
    bad = np.flatnonzero(~np.isfinite(y))
    if len(bad):
        raise ValueError(f"entanglement experiment: target of structure {int(bad[0])} is not finite")
    return y


class _DataTask:
    """Shared data holder of the task functions (picklable: numpy arrays, as in the learning curve)."""

    def __init__(self, X: LegTensor, y: Any, *, sizes: Sequence[int], n_splits: int, test_size: int, seed: int,
                 bipartitions: Mapping[str, Sequence[str]], units: str = "meV/cation") -> None:
        if X.is_per_atom:
            raise ValueError("entanglement experiments take structure-averaged descriptors (one row per structure)")
        self.values = X.values.detach().cpu().numpy()
        self.legs, self.meta = tuple(X.legs), dict(X.meta)
        self.y = _targets(y, len(self.values))
        self.bipartitions = {k: tuple(v) for k, v in bipartitions.items()}
        for part in self.bipartitions.values():
            partition_indices(self.legs, part)
        self.units = units
        self.splits = FixedTestSplits(len(self.values), sizes=sizes, n_splits=n_splits, test_size=test_size,
                                      seed=seed)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(self.values.shape[1:])

    def rows(self, idx: np.ndarray) -> LegTensor:
        return LegTensor(torch.from_numpy(np.array(self.values[np.asarray(idx)], dtype=np.float64)), self.legs,
                         meta=self.meta)


def _estimator(model: str, bond_dim: int | None, params: Mapping[str, Any], random_state: int) -> Any:
    from tnmat.training.registry import task_estimator

    full = dict(params)
    if bond_dim is not None:
        full["bond_dim"] = int(bond_dim)
    try:
        return task_estimator(model, {**full, "random_state": random_state})
    except ValueError as exc:
        raise ValueError(f"entanglement experiment: {exc}") from None



# ---------------------------------------------------------------------------------------------- sweep
class BondSweepTask(_DataTask):
    """Task function of the bond-dimension sweep: task dict -> result record (module docstring)."""

    def __call__(self, task: Mapping[str, Any]) -> dict[str, Any]:
        split, n_train = int(task["split"]), int(task["n_train"])
        model, chi = task["model"], task.get("bond_dim")
        fit, val, test = self.splits.indices(split, n_train)
        params = dict(task.get("params") or {})
        est = _estimator(model, chi, params, random_state=int(task.get("seed", 0)) * 1000 + split)
        t0 = time.perf_counter()
        est.fit(self.rows(fit), self.y[fit], X_val=self.rows(val), y_val=self.y[val])
        fit_seconds = time.perf_counter() - t0
        val_rmse, val_mae = rmse_mae(self.y[val], est.predict(self.rows(val)), what=_WHAT)
        test_rmse, test_mae = rmse_mae(self.y[test], est.predict(self.rows(test)), what=_WHAT)
        t0 = time.perf_counter()
        ent = network_entanglement(est.network_, model, self.legs, self.bipartitions)
        ent_seconds = time.perf_counter() - t0
        return {
            "experiment": task.get("experiment", SWEEP_EXPERIMENT), "model": model, "n_train": n_train,
            "split": str(split), "params": {**params, "bond_dim": chi},
            "metrics": {"test_rmse": test_rmse, "test_mae": test_mae, "val_rmse": val_rmse, "val_mae": val_mae,
                        "n_parameters": int(est.n_parameters_), "n_epochs": int(est.n_epochs_),
                        "best_epoch": int(est.best_epoch_), "n_fit": len(fit), "n_val": len(val),
                        "n_test": len(test), "units": self.units, "leg_sizes": list(self.sizes),
                        "entanglement": ent},
            "timings": {"fit_seconds": fit_seconds, "entanglement_seconds": ent_seconds},
            "dataset": task.get("dataset"), "seed": task.get("seed"),
        }


def bond_sweep_tasks(settings: SweepSettings, *, dataset: str) -> list[dict[str, Any]]:
    """One JSON-able task per (model, chi, size, split); the dense model once per (size, split).  Everything
    that changes the result (data name, seed, test size, training settings, bipartitions) is in the task,
    hence in its store key."""
    tasks = []
    bips = {b: list(p) for b, p in settings.bipartitions.items()}
    for model in settings.models:
        if model not in GRAPH_KINDS:
            raise ValueError(f"bond sweep: model must be one of {GRAPH_KINDS}, got {model!r}")
        for chi in ([None] if model == "dense" else sorted({int(c) for c in settings.chis})):
            if chi is not None and chi < 1:
                raise ValueError(f"bond sweep: bond dimensions must be >= 1, got {chi}")
            for n, k in itertools.product(sorted({int(s) for s in settings.train_sizes}), range(settings.n_splits)):
                tasks.append({"experiment": SWEEP_EXPERIMENT, "dataset": dataset, "model": model, "bond_dim": chi,
                              "n_train": n, "split": k, "test_size": int(settings.test_size),
                              "seed": int(settings.seed), "params": settings.training(model),
                              "bipartitions": bips})
    return tasks


def _store(store: ResultStore | str | Path) -> ResultStore:
    return store if isinstance(store, ResultStore) else ResultStore(store)


def _mean_std(x: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(x, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def summarise_sweep(store: ResultStore | Sequence[Mapping[str, Any]], *, dataset: str | None = None
                    ) -> list[dict[str, Any]]:
    """One row per (model, n_train, chi): mean and std over splits of test RMSE/MAE, and per bipartition
    the entropy (mean, std), capacity (mean), Page entropy, real-state Page approximation, min-cut bound
    and log min(d_A, d_B); plus parameter count, chi_ct of the model (None for dense) and mean fit time."""
    from tnmat.networks import compression_threshold

    recs = store.results(experiment=SWEEP_EXPERIMENT) if isinstance(store, ResultStore) else list(store)
    groups: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for r in recs:
        extra = (r.get("params") or {}).get("extra", {})
        if dataset is not None and extra.get("dataset", r.get("dataset")) != dataset:
            continue
        chi = (r.get("params") or {}).get("bond_dim")
        groups[(r["model"], int(r["n_train"]), chi)].append(r)
    rows = []
    for (model, n, chi), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0)):
        m = [r["metrics"] for r in rs]
        rmse, rmse_sd = _mean_std([x["test_rmse"] for x in m])
        mae, mae_sd = _mean_std([x["test_mae"] for x in m])
        sizes = m[0].get("leg_sizes")
        row: dict[str, Any] = {
            "model": model, "n_train": n, "bond_dim": chi, "n_splits": len(rs), "rmse_mean": rmse,
            "rmse_std": rmse_sd, "mae_mean": mae, "mae_std": mae_sd,
            "n_parameters": int(round(np.mean([x["n_parameters"] for x in m]))),
            "chi_ct": None if model == "dense" or not sizes else compression_threshold(model, sizes),
            "fit_seconds": float(np.mean([r["timings"]["fit_seconds"] for r in rs])),
            "n_epochs": float(np.mean([x["n_epochs"] for x in m])),
        }
        for b in m[0]["entanglement"]:
            ents = [x["entanglement"][b] for x in m]
            s, s_sd = _mean_std([e["entropy"] for e in ents])
            row.update({f"S_{b}": s, f"S_{b}_std": s_sd,
                        f"C_{b}": float(np.mean([e["capacity"] for e in ents])),
                        f"page_{b}": ents[0]["page"], f"page_real_{b}": ents[0]["page_real"],
                        f"mincut_{b}": ents[0]["min_cut"], f"maxS_{b}": ents[0]["max_entropy"]})
        rows.append(row)
    return rows


def run_bond_sweep(X: LegTensor, y: Any, settings: SweepSettings | None = None, *, store: ResultStore | str | Path,
                   dataset: str = "dataset", units: str = "meV/cation",
                   options: GridOptions | None = None) -> dict[str, Any]:
    """Bond-dimension sweep (paper Fig. 14): fit every (model, chi, size, split) not yet in ``store`` and
    record errors and entanglement (module docstring).  Returns a summary dict: ``rows``
    (:func:`summarise_sweep`), ``chi_ct`` per model, counts ``n_tasks``, ``n_fitted``, ``n_skipped``,
    ``n_failed`` and the ``failures`` (key, error text)."""
    from tnmat.networks import compression_threshold

    settings = settings or SweepSettings()
    store = _store(store)
    fn = BondSweepTask(X, y, sizes=settings.train_sizes, n_splits=settings.n_splits, test_size=settings.test_size,
                       seed=settings.seed, bipartitions=settings.bipartitions, units=units)
    report = run_grid_with(bond_sweep_tasks(settings, dataset=dataset), fn, store=store,
                           options=options or GridOptions(), desc="bond sweep")
    rows = summarise_sweep(store, dataset=dataset)
    return {"experiment": SWEEP_EXPERIMENT, "dataset": dataset, "rows": rows, "leg_sizes": list(fn.sizes),
            "chi_ct": {m: compression_threshold(m, fn.sizes) for m in settings.models if m != "dense"},
            "units": units, "n_tasks": report.n_tasks, "n_fitted": report.n_done, "n_skipped": report.n_skipped,
            "n_failed": report.n_failed, "failures": [(k, e) for k, _, e in report.failures]}


# ---------------------------------------------------------------------------------------------- dynamics
def log_spaced_steps(total_steps: int, n_points: int) -> list[int]:
    """Step 0 (the initial network) and about ``n_points - 1`` distinct integers log-spaced in
    [1, total_steps], always including 1 and ``total_steps``."""
    if total_steps < 1 or n_points < 2:
        raise ValueError(f"log_spaced_steps: need total_steps >= 1 and n_points >= 2, got {total_steps}, {n_points}")
    grid = np.unique(np.round(np.logspace(0.0, math.log10(total_steps), n_points - 1)).astype(np.int64))
    return [0, *sorted({int(s) for s in grid} | {1, int(total_steps)})]


class DynamicsTask(_DataTask):
    """Task function of the spectrum dynamics: one training run of the MPO with snapshots of the Schmidt
    spectrum of one bipartition at log-spaced steps (module docstring)."""

    def __call__(self, task: Mapping[str, Any]) -> dict[str, Any]:
        from tnmat.training import SnapshotCallback

        run, n_train, chi = int(task["run"]), int(task["n_train"]), int(task["bond_dim"])
        model = task.get("model", "mpo")
        (bname, part), = self.bipartitions.items()
        idx = partition_indices(self.legs, part)
        fit, val, test = self.splits.indices(0, n_train)  # same data for every run: runs differ in init/order
        params = dict(task.get("params") or {})
        batch = int(params.get("batch_size", 32))
        total = int(task["n_epochs"]) * math.ceil(len(fit) / batch)
        steps = log_spaced_steps(total, int(task["n_snapshots"]))
        snap = SnapshotCallback(steps, lambda net: spectrum_of(network_state(net), idx))
        est = _estimator(model, chi, {**params, "max_epochs": int(task["n_epochs"]), "patience": None},
                         random_state=int(task.get("seed", 0)) * 100003 + run)
        est.set_params(callbacks=[snap])
        t0 = time.perf_counter()
        est.fit(self.rows(fit), self.y[fit], X_val=self.rows(val), y_val=self.y[val])
        fit_seconds = time.perf_counter() - t0
        test_rmse, test_mae = rmse_mae(self.y[test], est.predict(self.rows(test)), what=_WHAT)
        graph = network_graph(model, self.sizes, chi)
        d_a, d_b = bipartition_dims(model, self.sizes, idx)
        done = sorted(snap.snapshots)
        return {
            "experiment": task.get("experiment", DYNAMICS_EXPERIMENT), "model": model, "bond_dim": chi,
            "run": run, "n_train": n_train, "n_epochs": int(task["n_epochs"]), "bipartition": bname,
            "partition": list(part), "d_a": d_a, "d_b": d_b, "min_cut": min_cut_bound(graph, idx)[0],
            "page": page_entropy(d_a, d_b), "steps": done, "epochs": [snap.epochs[s] for s in done],
            "schmidt": [[float(v) for v in snap.snapshots[s]] for s in done], "total_steps": total,
            "history": {"train_loss": est.history_["train_loss"], "val_loss": est.history_["val_loss"]},
            "test_rmse": test_rmse, "test_mae": test_mae, "units": self.units, "fit_seconds": fit_seconds,
            "dataset": task.get("dataset"), "seed": task.get("seed"), "params": params,
        }


def dynamics_tasks(settings: DynamicsSettings, *, dataset: str) -> list[dict[str, Any]]:
    """One task per (chi, run)."""
    params = {"learning_rate": float(settings.learning_rate), "batch_size": int(settings.batch_size),
              "dtype": settings.dtype}
    bip = {k: list(v) for k, v in settings.partition().items()}
    return [{"experiment": DYNAMICS_EXPERIMENT, "dataset": dataset, "model": settings.model, "bond_dim": int(c),
             "run": r, "n_train": int(settings.n_train), "n_epochs": int(settings.n_epochs),
             "n_snapshots": int(settings.n_snapshots), "test_size": int(settings.test_size),
             "seed": int(settings.seed), "params": dict(params), "bipartition": bip}
            for c in sorted({int(c) for c in settings.chis}) for r in range(settings.n_runs)]


def run_spectrum_dynamics(X: LegTensor, y: Any, settings: DynamicsSettings | None = None, *,
                          store: ResultStore | str | Path, dataset: str = "dataset", units: str = "meV/cation",
                          options: GridOptions | None = None) -> dict[str, Any]:
    """Spectrum dynamics (paper Fig. 15): ``n_runs`` runs per chi of ``n_epochs`` epochs, spectra of the
    bipartition at ``n_snapshots`` log-spaced steps; each run stored at once.  Returns a summary dict with
    the :func:`analyse_dynamics` result under ``analysis``, the mean seconds per run and epoch per chi, and
    the task counts.  The paper's scale is 100 runs x 1000 epochs."""
    s = settings or DynamicsSettings()
    bip = s.partition()
    store = _store(store)
    fn = DynamicsTask(X, y, sizes=(s.n_train,), n_splits=1, test_size=s.test_size, seed=s.seed, bipartitions=bip,
                      units=units)
    tasks = dynamics_tasks(s, dataset=dataset)
    report = run_grid_with(tasks, fn, store=store, options=options or GridOptions(), desc="spectrum dynamics")
    wanted, params = {int(c) for c in s.chis}, tasks[0]["params"] if tasks else None
    recs = [r for r in store.records(experiment=DYNAMICS_EXPERIMENT)
            if r.get("dataset") == dataset and r.get("bond_dim") in wanted and r.get("n_epochs") == s.n_epochs
            and r.get("n_train") == s.n_train and r.get("seed") == s.seed and r.get("params") == params
            and r.get("run", 0) < s.n_runs and r.get("partition") == list(next(iter(bip.values())))]
    analysis = analyse_dynamics(recs, rtol=s.rtol, bins=s.bins)
    return {"experiment": DYNAMICS_EXPERIMENT, "dataset": dataset, "analysis": analysis, "units": units,
            "n_tasks": report.n_tasks, "n_fitted": report.n_done, "n_skipped": report.n_skipped,
            "n_failed": report.n_failed, "failures": [(k, e) for k, _, e in report.failures]}


def _r_tilde_of(lam: Sequence[float], rtol: float) -> np.ndarray:
    lv = entanglement_energies(np.asarray(lam), rtol=rtol)
    return r_tilde(spacing_ratios(lv)) if lv.size >= 3 else np.zeros(0)


def analyse_dynamics(records: Sequence[Mapping[str, Any]], *, rtol: float = 1e-6, bins: int = 20
                     ) -> dict[int, dict[str, Any]]:
    """Pool the runs per chi and step: ``steps``; ``mean_p`` (mean over runs of the descending
    eigenvalues p_k = lambda_k^2 of rho_A); ``entropy``/``capacity`` means and stds; ``r_tilde`` (pooled
    r~ per step, levels below rtol * lambda_max dropped); ``mean_r``; ``kl_goe`` = D_KL(P_GOE || P_obs)
    and ``kl_poisson`` (nan where fewer than 2 * bins ratios); the run-averaged test RMSE and seconds per
    run and epoch; d_A, d_B, the min-cut bound and the Page entropy."""
    by_chi: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        by_chi[int(r["bond_dim"])].append(r)
    out: dict[int, dict[str, Any]] = {}
    for chi, rs in sorted(by_chi.items()):
        steps = sorted(set.intersection(*[set(r["steps"]) for r in rs]))
        res: dict[str, Any] = {"steps": steps, "n_runs": len(rs), "d_a": rs[0]["d_a"], "d_b": rs[0]["d_b"],
                               "min_cut": rs[0]["min_cut"], "page": rs[0]["page"],
                               "test_rmse": float(np.mean([r["test_rmse"] for r in rs])),
                               "test_rmse_std": _mean_std([r["test_rmse"] for r in rs])[1],
                               "seconds_per_run": float(np.mean([r["fit_seconds"] for r in rs])),
                               "seconds_per_epoch": float(np.mean([r["fit_seconds"] / r["n_epochs"] for r in rs])),
                               "n_epochs": rs[0]["n_epochs"], "total_steps": rs[0]["total_steps"]}
        keys = ("mean_p", "entropy", "entropy_std", "capacity", "capacity_std", "mean_r", "kl_goe", "kl_poisson",
                "n_ratios", "r_tilde", "epochs")
        for k in keys:
            res[k] = []
        for s in steps:
            lams = [np.asarray(r["schmidt"][r["steps"].index(s)]) for r in rs]
            ps = np.stack([np.sort(lam**2)[::-1] for lam in lams])
            ent = [von_neumann_entropy(lam) for lam in lams]
            cap = [capacity_of_entanglement(lam) for lam in lams]
            rt = np.concatenate([_r_tilde_of(lam, rtol) for lam in lams])
            res["mean_p"].append(ps.mean(0).tolist())
            res["entropy"].append(float(np.mean(ent)))
            res["entropy_std"].append(_mean_std(ent)[1])
            res["capacity"].append(float(np.mean(cap)))
            res["capacity_std"].append(_mean_std(cap)[1])
            res["r_tilde"].append(rt.tolist())
            res["n_ratios"].append(int(rt.size))
            res["mean_r"].append(float(rt.mean()) if rt.size else math.nan)
            enough = rt.size >= 2 * bins
            res["kl_goe"].append(kl_divergence(wigner_dyson_r_tilde_pdf, rt, bins=bins) if enough else math.nan)
            res["kl_poisson"].append(kl_divergence(poisson_r_tilde_pdf, rt, bins=bins) if enough else math.nan)
            res["epochs"].append(rs[0]["epochs"][rs[0]["steps"].index(s)])
        out[chi] = res
    return out
