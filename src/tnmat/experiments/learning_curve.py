"""The learning-curve experiment (paper Section IV A, Fig. 12) as library functions.

Protocol
--------
* Splits: ``n_splits`` random partitions into a test set of ``test_size`` structures and a pool, plus the
  official split (named ``"official"``) when the data has one (:func:`~tnmat.experiments.splits.
  official_and_random_splits`).
* From each pool, nested training subsets of the requested sizes, stratified on the given quantities
  (volume per atom, composition, energy; :func:`~tnmat.experiments.splits.stratified_subsets`).
* Each subset of size ``n_train`` is split 80/20 into the structures the model is fitted on and a
  validation set (the ``n_train`` reported is the subset size, validation part included; ``n_fit`` and
  ``n_val`` are recorded too).  Every model, the GPRs included, fits on the same 80 %.
* One task per (model, n_train, split, hyper-parameter combination) from a small grid per model
  (:data:`DEFAULT_GRIDS`); :func:`summarise` keeps, for each (model, n_train, split), the combination with
  the lowest *validation* RMSE.  Test predictions are computed for every fit but never used for any
  choice, so the test set plays no part in fitting or tuning.
* Metrics: RMSE and MAE in meV (per cation for NMD18, per atom for the alloys: the ``units`` label of
  :func:`tnmat.data.units.target_units`), number of parameters, fit and predict wall time.  Summary: mean
  and standard deviation (ddof=1) over the random splits; the official split is reported on its own rows
  (``splits="official"``).
* Fit-time scaling: the exponent b of fit_seconds ~ n_train^b by least squares in log-log.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import product
from typing import Any

import numpy as np
import torch

from tnmat.experiments.runner import GridOptions, GridReport, run_grid_with
from tnmat.experiments.splits import official_and_random_splits, stratified_subsets, train_validation_split
from tnmat.experiments.store import ResultStore, config_key
from tnmat.legtensor import LegTensor
from tnmat.metrics import rmse_mae
from tnmat.training.params import param_default
from tnmat.training.registry import for_solver, preset_grids, takes_structures, task_estimator

__all__ = ["EXPERIMENT", "DEFAULT_GRIDS", "QUICK_GRIDS", "SUMMARY_COLUMNS", "LearningCurveSettings",
           "LearningCurveTask", "build_estimator", "cost_accounting", "fit_time_exponents", "learning_curve_tasks",
           "record_dataset", "run_learning_curve", "summarise", "expand_grid", "WithStructures"]

EXPERIMENT = "learning-curve"

#: Hyper-parameter grids per model (the model table's ``paper`` and ``quick`` presets).
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = preset_grids("paper")
QUICK_GRIDS: dict[str, dict[str, list[Any]]] = preset_grids("quick")

SUMMARY_COLUMNS = ["model", "n_train", "splits", "n_splits", "rmse_mean", "rmse_std", "mae_mean", "mae_std",
                   "n_parameters", "fit_seconds", "fit_cpu_seconds", "tuning_seconds", "params", "units"]


@dataclass(frozen=True)
class LearningCurveSettings:
    """What a learning curve computes (module docstring): the models and training sizes, the split protocol
    (``n_splits`` random test sets of ``test_size``, seeded by ``seed``; 80/20 fit/validation; ``n_bins``
    quantile bins per stratification quantity), the hyper-parameter ``grids`` (default
    :data:`DEFAULT_GRIDS`), per-model ``fixed`` parameters applied to every grid point and the tensor networks'
    ``solver`` (resolved per network; grid entries of another solver are dropped)."""

    models: Sequence[str] = ()
    sizes: Sequence[int] = ()
    n_splits: int = 10
    test_size: int = 600
    seed: int = 0
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None
    fixed: Mapping[str, Mapping[str, Any]] | None = None
    val_fraction: float = 0.2
    n_bins: int = 3
    solver: str = param_default("solver")


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of a {name: values} grid as a list of dicts (an empty grid gives [{}])."""
    names = sorted(grid)
    return [dict(zip(names, combo, strict=True)) for combo in product(*(list(grid[k]) for k in names))]


def build_estimator(model: str, params: Mapping[str, Any]) -> Any:
    """A fresh estimator from the model table (:func:`tnmat.training.registry.make_estimator`): a parameter
    the estimator does not have is an error (a silently dropped grid entry would make different tasks
    identical fits); a tensor network's task without a ``solver`` is Adam (stored keys keep their meaning)."""
    return task_estimator(model, dict(params))


def learning_curve_tasks(models: Sequence[str], sizes: Sequence[int], split_names: Sequence[str], *,
                         grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
                         fixed: Mapping[str, Mapping[str, Any]] | None = None, dataset: str = "dataset",
                         seed: int = 0, solver: str = param_default("solver")) -> list[dict[str, Any]]:
    """One JSON-able task per (model, size, split, grid point).

    ``grids`` default to :data:`DEFAULT_GRIDS`; ``fixed`` holds per-model parameters applied to every grid
    point (e.g. ``{"mps": {"max_epochs": 200}}``).  The task's ``seed`` and ``dataset`` enter its key, so
    results from other data or seeds never mix."""
    grids = DEFAULT_GRIDS if grids is None else grids
    fixed = fixed or {}
    for model in models:
        if model not in grids:
            raise ValueError(f"learning curve: no hyper-parameter grid for model {model!r} (known: {sorted(grids)})")
    # split-major order: a run stopped part-way holds whole learning curves of every model for the first
    # splits (what --report-only can show), rather than every split of the first models only
    tasks, seen = [], set()
    for split, size, model in product(split_names, sizes, models):
        for hp in expand_grid(grids[model]):
            params = for_solver(model, {**dict(fixed.get(model, {})), **hp}, solver)
            task = {"experiment": EXPERIMENT, "dataset": dataset, "model": model, "n_train": int(size),
                    "split": str(split), "params": params, "seed": int(seed)}
            if config_key(task) not in seen:  # grid points of another solver collapse to one task
                seen.add(config_key(task))
                tasks.append(task)
    return tasks


def _fitted_summary(est: Any) -> dict[str, Any]:
    """Fitted hyper-parameters worth recording (kernel parameters of a GPR, early-stopping epoch, ...)."""
    out: dict[str, Any] = {}
    for name in ("signal_variance_", "noise_variance_", "length_scale_", "log_marginal_likelihood_value_",
                 "best_epoch_", "n_epochs_", "stopped_early_"):
        v = getattr(est, name, None)
        if isinstance(v, bool | int | float | np.floating | np.integer) and math.isfinite(float(v)):
            out[name.rstrip("_")] = v.item() if hasattr(v, "item") else v
    if hasattr(est, "kernel_"):
        out["kernel"] = str(est.kernel_)
    if hasattr(est, "cutoffs_"):  # the cluster expansion's cross-validated choice
        out.update(cutoffs=list(est.cutoffs_), fit_method=est.fit_method_)
    return out


@dataclass(frozen=True)
class WithStructures:
    """Descriptors together with the structures they describe (same order): the structures are what models
    that take structures instead of descriptors (the cluster expansion) are fitted on."""

    descriptors: LegTensor
    structures: Sequence[Any]


class LearningCurveTask:
    """Task function of the learning curve: ``task dict -> result record`` (picklable; holds the data as numpy
    arrays so joblib memory-maps them into the workers instead of copying them per task).

    ``X``: descriptors, one row per structure or per-atom rows with ``structure_index``; ``y``: targets in eV
    (per cation for NMD18); ``quantities``: per-structure arrays to stratify on; ``settings``: sizes and
    split protocol; ``official_test``: mask or indices of the official test set (optional); ``units``: the
    error label recorded with every fit.  All splits and subsets are drawn here, once, from
    ``settings.seed``, so every worker sees the same ones."""

    def __init__(self, X: LegTensor | WithStructures, y: np.ndarray, quantities: Mapping[str, np.ndarray] | np.ndarray,
                 settings: LearningCurveSettings, *, official_test: np.ndarray | None = None,
                 units: str = "meV/cation") -> None:
        X, structures = (X.descriptors, X.structures) if isinstance(X, WithStructures) else (X, None)
        sizes, test_size, n_splits, seed = settings.sizes, settings.test_size, settings.n_splits, settings.seed
        self.y = np.asarray(y, dtype=np.float64).ravel()
        n = X.n_structures
        if len(self.y) != n:
            raise ValueError(f"learning curve: {len(self.y)} targets for {n} structures")
        if not np.isfinite(self.y).all():
            raise ValueError(f"learning curve: target of structure {int(np.flatnonzero(~np.isfinite(self.y))[0])} "
                             "is not finite")
        self.values = X.values.detach().cpu().numpy()
        self.legs = X.legs
        self.meta = dict(X.meta)
        self.units, self.val_fraction = units, float(settings.val_fraction)
        #: the structures themselves (ideal sites), for models that take structures (the cluster expansion)
        self.structures = None if structures is None else list(structures)
        if X.structure_index is not None:
            sidx = X.structure_index.cpu().numpy()
            self.atom_order = np.argsort(sidx, kind="stable")
            self.atom_start = np.concatenate([[0], np.cumsum(np.bincount(sidx, minlength=n))])
        else:
            self.atom_order = self.atom_start = None
        self.splits = {s.name: s for s in official_and_random_splits(
            n, test_size=test_size, n_splits=n_splits, seed=seed, official_test=official_test)}
        sizes = sorted({int(s) for s in sizes})
        self.subsets: dict[str, dict[int, np.ndarray]] = {}
        for k, (name, sp) in enumerate(self.splits.items()):
            ok = [m for m in sizes if m <= len(sp.pool)]
            self.subsets[name] = stratified_subsets(quantities, ok, seed=seed * 1000 + k, pool=sp.pool,
                                                    n_bins=settings.n_bins) if ok else {}

    @property
    def split_names(self) -> list[str]:
        return list(self.splits)

    def rows(self, idx: np.ndarray) -> LegTensor:
        """Descriptors of the structures ``idx`` (all their atoms for per-atom data), float64."""
        idx = np.asarray(idx, dtype=np.int64)
        if self.atom_order is None:
            return LegTensor(torch.from_numpy(np.array(self.values[idx], dtype=np.float64)), self.legs,
                             meta=self.meta)
        parts = [self.atom_order[self.atom_start[s] : self.atom_start[s + 1]] for s in idx]
        counts = [len(p) for p in parts]
        take = np.concatenate(parts)
        return LegTensor(torch.from_numpy(np.array(self.values[take], dtype=np.float64)), self.legs,
                         structure_index=torch.from_numpy(np.repeat(np.arange(len(idx)), counts)), meta=self.meta)

    def structure_rows(self, idx: np.ndarray) -> list[Any]:
        """The structures ``idx`` (for models that take structures instead of descriptors)."""
        if self.structures is None:
            raise ValueError("learning curve: a model that takes structures (ce) needs them; give the "
                             "descriptors as WithStructures(X, structures)")
        return [self.structures[int(k)] for k in idx]

    def indices(self, split: str, n_train: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fit, validation, test) structure indices of a task."""
        if split not in self.splits:
            raise KeyError(f"learning curve: unknown split {split!r}; have {list(self.splits)}")
        if n_train not in self.subsets[split]:
            raise KeyError(f"learning curve: size {n_train} not drawn for split {split!r} "
                           f"(pool {len(self.splits[split].pool)}, sizes {sorted(self.subsets[split])})")
        sub = self.subsets[split][n_train]
        # the validation draw depends on (split, size) only, so every model sees the same partition
        fit, val = train_validation_split(sub, val_fraction=self.val_fraction,
                                          seed=[n_train, sorted(self.splits).index(split)])
        return fit, val, self.splits[split].test

    def __call__(self, task: Mapping[str, Any]) -> dict[str, Any]:
        fit_idx, val_idx, test_idx = self.indices(task["split"], int(task["n_train"]))
        params = dict(task.get("params") or {})
        est = build_estimator(task["model"], params)
        if "random_state" in est.get_params() and "random_state" not in params:
            est.set_params(random_state=int(task.get("seed", 0)))
        rows = self.structure_rows if takes_structures(task["model"]) else self.rows
        X_fit, X_val, X_test = rows(fit_idx), rows(val_idx), rows(test_idx)
        # wall time and this process's CPU time: the CPU time does not grow when other jobs share the cores,
        # so the fit-time exponents are measured on it (with one torch thread per task, CPU ~ wall when idle)
        t0, c0 = time.perf_counter(), time.process_time()
        est.fit(X_fit, self.y[fit_idx], X_val=X_val, y_val=self.y[val_idx])
        fit_seconds, fit_cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        pred_val = est.predict(X_val)
        pred_test = est.predict(X_test)
        predict_seconds = time.perf_counter() - t0
        what = f"learning curve: {task['model']} (n_train {task['n_train']}, split {task['split']})"
        val_rmse, val_mae = rmse_mae(self.y[val_idx], pred_val, what=what)
        test_rmse, test_mae = rmse_mae(self.y[test_idx], pred_test, what=what)
        n_par = getattr(est, "n_parameters_", None)
        return {
            "experiment": task.get("experiment", EXPERIMENT), "model": task["model"], "n_train": int(task["n_train"]),
            "split": task["split"], "params": params,
            "metrics": {"val_rmse": val_rmse, "val_mae": val_mae, "test_rmse": test_rmse, "test_mae": test_mae,
                        "n_parameters": None if n_par is None else int(n_par), "n_fit": len(fit_idx),
                        "n_val": len(val_idx), "n_test": len(test_idx), "units": self.units},
            "timings": {"fit_seconds": fit_seconds, "fit_cpu_seconds": fit_cpu_seconds,
                        "predict_seconds": predict_seconds},
            "fitted": _fitted_summary(est), "dataset": task.get("dataset"), "seed": task.get("seed"),
        }


# ---------------------------------------------------------------------------------------------- summary
def _std(x: Sequence[float]) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0


def record_dataset(record: Mapping[str, Any]) -> str | None:
    """The dataset label of a stored fit (the store keeps it under ``params["extra"]``; a record not yet
    stored has it at the top level)."""
    return (record.get("params") or {}).get("extra", {}).get("dataset", record.get("dataset"))


def summarise(store: ResultStore | Sequence[Mapping[str, Any]], *, experiment: str = EXPERIMENT,
              dataset: str | None = None, tasks: Sequence[Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Rows (model, n_train, splits, n_splits, rmse_mean, rmse_std, mae_mean, mae_std, n_parameters,
    fit_seconds, tuning_seconds, params) from the stored fits.

    For each (model, n_train, split) the grid point with the lowest validation RMSE is kept; its test RMSE/MAE
    are averaged over the random splits (``splits="random"``); the official split gets its own row.
    ``fit_seconds`` is the mean fit (wall) time of the chosen grid points, ``fit_cpu_seconds`` their mean CPU
    time (None when a record predates it), ``tuning_seconds`` the mean over splits of the whole grid's fit
    time, ``params`` the most frequently chosen grid point (JSON).

    With ``tasks`` (the task dicts of one run), only their records count, and a split is summarised only once
    every grid point of every (model, n_train) of it is stored: a partly finished run reports its finished
    splits, never a validation choice among part of a grid nor models averaged over different splits, and
    records of other grids in the same file stay out."""
    recs = store.results(experiment=experiment) if isinstance(store, ResultStore) else list(store)
    needed: Counter | None = None
    if tasks is not None:
        wanted = {config_key(t): t for t in tasks}  # duplicate tasks run once, so count them once
        needed = Counter((t["model"], int(t["n_train"]), str(t["split"])) for t in wanted.values())
        recs = [r for r in recs if r.get("key") in wanted]
    groups: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for r in recs:
        if dataset is not None and record_dataset(r) != dataset:
            continue
        groups[(r["model"], int(r["n_train"]), str(r["split"]))].append(r)
    if needed is not None:
        whole = {sp for sp in {g[2] for g in needed}
                 if all(len(groups.get(g, ())) >= k for g, k in needed.items() if g[2] == sp)}
        groups = {g: rs for g, rs in groups.items() if g[2] in whole}
    chosen: dict[tuple, list[tuple[Mapping[str, Any], float]]] = defaultdict(list)
    for (model, n, split), rs in groups.items():
        best = min(rs, key=lambda r: r["metrics"]["val_rmse"])  # validation only
        tuning = sum(r["timings"]["fit_seconds"] for r in rs)
        family = "official" if split == "official" else "random"
        chosen[(model, n, family)].append((best, tuning))
    rows = []
    for (model, n, family), items in sorted(chosen.items(), key=lambda kv: (kv[0][0], kv[0][2] != "random",
                                                                            kv[0][1])):
        bests = [b for b, _ in items]
        rmse = [b["metrics"]["test_rmse"] for b in bests]
        mae = [b["metrics"]["test_mae"] for b in bests]
        npar = [b["metrics"].get("n_parameters") for b in bests if b["metrics"].get("n_parameters") is not None]
        hp = Counter(json.dumps({k: v for k, v in (b.get("params") or {}).items() if k != "extra"}, sort_keys=True)
                     for b in bests).most_common(1)[0][0]
        rows.append({"model": model, "n_train": n, "splits": family, "n_splits": len(bests),
                     "rmse_mean": float(np.mean(rmse)), "rmse_std": _std(rmse), "mae_mean": float(np.mean(mae)),
                     "mae_std": _std(mae), "n_parameters": int(round(np.mean(npar))) if npar else None,
                     "fit_seconds": float(np.mean([b["timings"]["fit_seconds"] for b in bests])),
                     "fit_cpu_seconds": _mean_or_none([b["timings"].get("fit_cpu_seconds") for b in bests]),
                     "tuning_seconds": float(np.mean([t for _, t in items])), "params": hp,
                     "units": _units_of(bests)})
    return rows


def _units_of(records: Sequence[Mapping[str, Any]]) -> str | None:
    """The unit label the records' errors carry (one label, else an error: never mix units in a mean)."""
    units = {r["metrics"].get("units") for r in records}
    if len(units) > 1:
        raise ValueError(f"learning curve: fits with different units {sorted(map(str, units))} in one summary row")
    return units.pop()


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def cost_accounting(records: Sequence[Mapping[str, Any]], *, pause_seconds: float = 1800.0) -> dict[str, Any]:
    """What the stored fits cost: their number, summed fit wall and CPU seconds, and the elapsed wall time of
    the run.

    A resumed run spans several sittings, so the elapsed time is measured from the records' ``created_at``
    stamps: they are cut into sittings wherever two consecutive stamps are more than ``pause_seconds`` apart
    (longer than any single fit), and each sitting counts from the start of its first fit (its stamp less its
    ``fit_seconds``) to its last stamp.  Records without a stamp count in the sums only."""
    stamps = []
    for r in records:
        created = r.get("created_at")
        if created:
            t = datetime.fromisoformat(str(created)).timestamp()
            stamps.append((t, float(r["timings"]["fit_seconds"])))
    stamps.sort()
    sittings: list[tuple[float, float]] = []
    for t, fit in stamps:
        if sittings and t - sittings[-1][1] <= pause_seconds:
            sittings[-1] = (sittings[-1][0], t)
        else:
            sittings.append((t - fit, t))
    cpu = [r["timings"].get("fit_cpu_seconds") for r in records]
    return {
        "n_fits": len(records),
        "fit_seconds_total": float(sum(r["timings"]["fit_seconds"] for r in records)),
        "fit_cpu_seconds_total": None if any(c is None for c in cpu) else float(sum(cpu)),
        "elapsed_seconds": float(sum(b - a for a, b in sittings)),
        "n_sittings": len(sittings),
        "first": datetime.fromtimestamp(sittings[0][0], UTC).isoformat(timespec="seconds") if sittings else None,
        "last": datetime.fromtimestamp(sittings[-1][1], UTC).isoformat(timespec="seconds") if sittings else None,
    }


def fit_time_exponents(rows: Sequence[Mapping[str, Any]], *, splits: str = "random",
                       column: str | None = None) -> dict[str, float]:
    """Exponent b of t ~ a n_train^b per model (least squares on log t vs log n_train; models with fewer than
    two sizes are left out).  ``t`` is ``column``; by default ``fit_cpu_seconds`` where every row of the model
    has it (insensitive to other jobs on the machine), else the wall-clock ``fit_seconds``."""
    by_model: dict[str, list[tuple[float, float]]] = defaultdict(list)
    use: dict[str, str] = {}
    for r in rows:
        if r.get("splits", "random") == splits:
            use.setdefault(r["model"], "fit_cpu_seconds")
            if column is None and r.get("fit_cpu_seconds") is None:
                use[r["model"]] = "fit_seconds"
    for r in rows:
        if r.get("splits", "random") != splits:
            continue
        t = r.get(column or use[r["model"]])
        if t is not None and t > 0:
            by_model[r["model"]].append((math.log(r["n_train"]), math.log(t)))
    out = {}
    for model, pts in by_model.items():
        x = np.array([p[0] for p in pts])
        if len(np.unique(x)) < 2:
            continue
        out[model] = float(np.polyfit(x, np.array([p[1] for p in pts]), 1)[0])
    return out


def run_learning_curve(X: LegTensor | WithStructures, y: np.ndarray, quantities: Mapping[str, np.ndarray] | np.ndarray,
                       settings: LearningCurveSettings, *, store: ResultStore, official_test: np.ndarray | None = None,
                       dataset: str = "dataset", units: str = "meV/cation", options: GridOptions | None = None,
                       fit: bool = True) -> tuple[list[dict[str, Any]], GridReport]:
    """Draw splits, run (or resume) the grid into ``store`` and return (:func:`summarise` rows of this grid,
    report).  Sizes larger than a split's pool are skipped for that split.  ``fit=False`` fits nothing and
    summarises what is stored (a progress report of a long run; ``report.n_tasks - report.n_skipped`` remain).
    ``units`` labels the stored errors (:func:`tnmat.data.units.target_units`); give ``X`` as
    :class:`WithStructures` for models that take structures (``ce``)."""
    fn = LearningCurveTask(X, y, quantities, settings, official_test=official_test, units=units)
    tasks = [t for t in learning_curve_tasks(settings.models, settings.sizes, fn.split_names, grids=settings.grids,
                                             fixed=settings.fixed, dataset=dataset, seed=settings.seed,
                                             solver=settings.solver)
             if t["n_train"] in fn.subsets[t["split"]]]
    keys = {config_key(t) for t in tasks}
    if fit:
        report = run_grid_with(tasks, fn, store=store, options=options or GridOptions(), desc="learning curve")
    else:
        report = GridReport(n_tasks=len(keys), n_skipped=len(keys & store.keys()))
    report.accounting = {**cost_accounting([r for r in store.results(experiment=EXPERIMENT) if r.get("key") in keys]),
                         "n_tasks": len(keys)}
    return summarise(store, dataset=dataset, tasks=tasks), report
