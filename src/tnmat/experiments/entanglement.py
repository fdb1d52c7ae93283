"""Entanglement experiments on trained networks (paper Section IV B, Figs. 14 and 15; issue 5, section 2).

Bond-dimension sweep (Fig. 14, :func:`run_bond_sweep`)
------------------------------------------------------
* One fixed test set of ``test_size`` structures (drawn once from ``seed``) that no fit ever sees; the rest
  is the pool.  For split k a random training subset of each size is drawn from the pool (nested: the
  subset of 100 is a prefix of that of 1000) and split 80/20 into fitted and validation structures
  (early stopping and best-epoch restore use the validation part only).
* One task per (model, chi, size, split); the dense tensor has no chi and runs once per (size, split).
  Each finished fit is written at once to the :class:`~tnmat.experiments.store.ResultStore` under the
  hash of its configuration (a rerun skips the stored keys).
* Recorded: test/validation RMSE and MAE (meV/cation = eV * 1000), parameter count, and, for every
  bipartition (default {a1, a2} | {n1, n2, l} and {a1, n1} | rest), the Schmidt spectrum of the
  normalised trained weight tensor, its von Neumann entropy and capacity of entanglement (natural log),
  the Page entropy of a random complex state of the same dimensions (paper eq. 26) and the real-state
  approximation, and the min-cut bound of the network graph (:func:`min_cut_bound`).  The MPO enters
  through the Choi isomorphism (its operator is a vector with site dimensions d_k^2, paper Fig. 13), so
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

CLI entry points: :func:`entanglement_sweep` and :func:`entanglement_dynamics` take plain arguments (data
root, output folder, options), write PNGs and a Markdown summary, and return a summary dict.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tnmat.entanglement import (
    MEAN_R_TILDE,
    capacity_of_entanglement,
    entanglement_energies,
    kl_divergence,
    min_cut_entropy,
    network_state,
    page_entropy,
    page_entropy_real_approx,
    poisson_r_tilde_pdf,
    r_tilde,
    spacing_ratios,
    spectrum_of,
    von_neumann_entropy,
    wigner_dyson_r_tilde_pdf,
)
from tnmat.experiments.runner import GridReport, run_grid
from tnmat.experiments.splits import train_validation_split
from tnmat.experiments.store import ResultStore, write_rows_csv
from tnmat.legtensor import LegTensor

__all__ = [
    "SWEEP_EXPERIMENT", "DYNAMICS_EXPERIMENT", "DEFAULT_BIPARTITIONS", "DEFAULT_CHIS", "SWEEP_MODELS",
    "NetworkGraph", "network_graph", "min_cut_bound", "bipartition_dims", "network_entanglement",
    "initial_entanglement",
    "log_spaced_steps", "FixedTestSplits", "BondSweepTask", "bond_sweep_tasks", "run_bond_sweep",
    "summarise_sweep", "DynamicsTask", "dynamics_tasks", "run_spectrum_dynamics", "analyse_dynamics",
    "write_sweep_markdown", "write_dynamics_markdown", "load_nmd18_power_spectrum", "entanglement_sweep",
    "entanglement_dynamics", "limit_threads",
]

SWEEP_EXPERIMENT = "entanglement-sweep"
DYNAMICS_EXPERIMENT = "entanglement-dynamics"

#: Named bipartitions (subsystem A as leg names; B is the rest), paper Fig. 14 insets.
DEFAULT_BIPARTITIONS: dict[str, tuple[str, ...]] = {"a1a2": ("a1", "a2"), "a1n1": ("a1", "n1")}

#: Bond dimensions of the sweep: across chi_ct = 8 and the saturation chi = 16 of the MPS on 4^5 legs.
DEFAULT_CHIS: tuple[int, ...] = (1, 2, 4, 6, 8, 12, 16, 24, 32)
SWEEP_MODELS: tuple[str, ...] = ("mps", "mpo", "ttn", "dense")
_CHAIN = ("mps", "mpo")
_GRAPH_KINDS = ("dense", "mps", "mpo", "ttn")


# ---------------------------------------------------------------------------------------------- min cut
@dataclass(frozen=True)
class NetworkGraph:
    """Tensor-network graph: ``n_nodes`` tensors, virtual ``edges`` (u, v, dim) and one open leg per input
    leg, ``legs[k] = (node, dim)`` (for the MPO the Choi-fused leg of dimension d_k^2)."""

    n_nodes: int
    edges: tuple[tuple[int, int, int], ...]
    legs: tuple[tuple[int, int], ...]


def network_graph(kind: str, sizes: Sequence[int], bond_dim: int | None) -> NetworkGraph:
    """Graph of a ``dense``, ``mps``, ``mpo`` (Choi-vectorised) or ``ttn`` network on legs ``sizes``.

    Bond sizes follow the modules: uniform chi on the chains; on the tree, c = min(chi, d_a d_b) per node
    and a top node with a scalar output (padding legs of size 1 are left out: they never add to a cut)."""
    sizes = [int(s) for s in sizes]
    if kind not in _GRAPH_KINDS:
        raise ValueError(f"network_graph: kind must be one of {_GRAPH_KINDS}, got {kind!r}")
    if kind == "dense":
        return NetworkGraph(1, (), tuple((0, d) for d in sizes))
    if bond_dim is None or bond_dim < 1:
        raise ValueError(f"network_graph: kind {kind!r} needs a positive bond_dim, got {bond_dim!r}")
    chi = int(bond_dim)
    if kind in _CHAIN:
        phys = [d * d for d in sizes] if kind == "mpo" else sizes
        n = len(phys)
        return NetworkGraph(n, tuple((k, k + 1, chi) for k in range(n - 1)), tuple((k, d) for k, d in enumerate(phys)))
    from tnmat.networks import padded_sites

    leaves = list(padded_sites(sizes))
    # open items: ("leg", k, dim) for input legs, ("node", id, dim) for outputs of tree nodes
    items: list[tuple[str, int, int]] = [("leg", k, d) for k, d in enumerate(leaves)]
    edges: list[tuple[int, int, int]] = []
    legs: dict[int, tuple[int, int]] = {}
    node = 0
    while len(items) >= 2:
        top = len(items) == 2
        nxt = []
        for j in range(len(items) // 2):
            pair = items[2 * j : 2 * j + 2]
            for typ, ref, dim in pair:
                if typ == "leg":
                    if ref < len(sizes):
                        legs[ref] = (node, dim)
                elif dim > 1:
                    edges.append((ref, node, dim))
            a, b = pair[0][2], pair[1][2]
            nxt.append(("node", node, 1 if top else min(chi, a * b)))
            node += 1
        items = nxt
    return NetworkGraph(node, tuple(edges), tuple(legs[k] for k in range(len(sizes))))


def min_cut_bound(graph: NetworkGraph, partition: Sequence[int]) -> tuple[float, list[int]]:
    """Largest entropy the network can carry across the bipartition (partition | rest) of its legs:
    log of the smallest product of dimensions over the edges and open legs that any cut separating A's
    legs from B's must sever (exhaustive over the 2^n_nodes assignments of tensors to the sides; fine for
    the few-node networks here).  Returns (bound in nats, the severed dimensions); the bound never exceeds
    log min(d_A, d_B) (cutting all of A's or B's legs is a cut)."""
    a = {int(i) for i in partition}
    n_legs = len(graph.legs)
    if not a or len(a) >= n_legs or not a <= set(range(n_legs)):
        raise ValueError(f"min_cut_bound: partition {sorted(a)} is not a proper subset of the {n_legs} legs")
    if graph.n_nodes > 20:
        raise ValueError(f"min_cut_bound: {graph.n_nodes} nodes is too many for the exhaustive search")
    best: tuple[float, list[int]] | None = None
    for sides in itertools.product((0, 1), repeat=graph.n_nodes):
        cut = [d for u, v, d in graph.edges if sides[u] != sides[v]]
        cut += [d for k, (nd, d) in enumerate(graph.legs) if sides[nd] != (0 if k in a else 1)]
        cost = float(sum(math.log(d) for d in cut))
        if best is None or cost < best[0] - 1e-12:
            best = (cost, cut)
    assert best is not None
    d_a = math.prod(graph.legs[k][1] for k in a)
    d_b = math.prod(d for k, (_, d) in enumerate(graph.legs) if k not in a)
    cut = best[1] or [1]
    return min_cut_entropy(cut, d_a, d_b), best[1]


def bipartition_dims(kind: str, sizes: Sequence[int], partition: Sequence[int]) -> tuple[int, int]:
    """(d_A, d_B) of the state the analysis sees: leg sizes, squared for the MPO (Choi vector)."""
    phys = [int(d) ** 2 if kind == "mpo" else int(d) for d in sizes]
    d_a = math.prod(phys[i] for i in partition)
    return d_a, math.prod(phys) // d_a


def _partition_indices(legs: Sequence[str], part: Sequence[str]) -> list[int]:
    missing = [p for p in part if p not in legs]
    if missing:
        raise ValueError(f"bipartition names legs {missing} that the descriptor does not have (legs {tuple(legs)})")
    return [list(legs).index(p) for p in part]


def network_entanglement(network: torch.nn.Module, kind: str, legs: Sequence[str],
                         bipartitions: Mapping[str, Sequence[str]] = DEFAULT_BIPARTITIONS, *,
                         spectra: bool = True) -> dict[str, dict[str, Any]]:
    """Per named bipartition: Schmidt values of the normalised network state (MPO: Choi vector), von
    Neumann entropy S, capacity C_E (eq. 28), d_A, d_B, Page entropy (eq. 26, complex; and the real-state
    approximation), log min(d_A, d_B) and the min-cut bound."""
    sizes = tuple(int(s) for s in network.sizes)
    state = network_state(network)
    graph = network_graph(kind, sizes, getattr(network, "bond_dim", None))
    out = {}
    for name, part in bipartitions.items():
        idx = _partition_indices(legs, part)
        lam = spectrum_of(state, idx)
        d_a, d_b = bipartition_dims(kind, sizes, idx)
        bound, cut = min_cut_bound(graph, idx)
        rec = {"partition": list(part), "d_a": d_a, "d_b": d_b, "entropy": von_neumann_entropy(lam),
               "capacity": capacity_of_entanglement(lam), "page": page_entropy(d_a, d_b),
               "page_real": page_entropy_real_approx(d_a, d_b), "max_entropy": math.log(min(d_a, d_b)),
               "min_cut": bound, "cut_dims": cut}
        if spectra:
            rec["schmidt"] = [float(v) for v in lam]
        out[name] = rec
    return out


def initial_entanglement(models: Sequence[str], sizes: Sequence[int], legs: Sequence[str], chis: Sequence[int], *,
                         n_seeds: int = 3, bipartitions: Mapping[str, Sequence[str]] = DEFAULT_BIPARTITIONS
                         ) -> list[dict[str, Any]]:
    """Entropies of freshly initialised (untrained) networks, mean over ``n_seeds`` seeds: the baseline
    against which the trained entropies of the sweep are read (an entropy near this value says training
    did not move the state's entanglement).  Rows: model, bond_dim, and S_<bipartition>."""
    from tnmat.networks import make_network

    rows = []
    for model in models:
        for chi in ([None] if model == "dense" else sorted({int(c) for c in chis})):
            ents = [network_entanglement(make_network(model, sizes, chi, dtype=torch.float64, seed=s), model, legs,
                                         bipartitions, spectra=False) for s in range(n_seeds)]
            row: dict[str, Any] = {"model": model, "bond_dim": chi}
            for b in bipartitions:
                row[f"S_{b}"] = float(np.mean([e[b]["entropy"] for e in ents]))
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------- splits
def _targets(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64).ravel()
    if len(y) != n:
        raise ValueError(f"entanglement experiment: {len(y)} targets for {n} structures")
    bad = np.flatnonzero(~np.isfinite(y))
    if len(bad):
        raise ValueError(f"entanglement experiment: target of structure {int(bad[0])} is not finite")
    return y


class FixedTestSplits:
    """One fixed test set and ``n_splits`` random training subsets (nested over sizes) of the pool, each
    split 80/20 into fitted and validation structures (module docstring)."""

    def __init__(self, n: int, *, sizes: Sequence[int], n_splits: int, test_size: int, seed: int,
                 val_fraction: float = 0.2) -> None:
        sizes = sorted({int(s) for s in sizes})
        if not 0 < test_size < n:
            raise ValueError(f"test_size={test_size} must be between 1 and n-1={n - 1}")
        if not sizes or sizes[0] < 2 or sizes[-1] > n - test_size:
            raise ValueError(f"training sizes {sizes} must lie in [2, {n - test_size}] (n={n}, test_size={test_size})")
        if n_splits < 1:
            raise ValueError(f"n_splits must be >= 1, got {n_splits}")
        perm = np.random.default_rng([seed, 7919]).permutation(n)
        self.test = np.sort(perm[:test_size])
        self.pool = np.sort(perm[test_size:])
        self.sizes, self.n_splits, self.val_fraction = sizes, int(n_splits), float(val_fraction)
        self._orders = [self.pool[np.random.default_rng([seed, k]).permutation(len(self.pool))]
                        for k in range(n_splits)]

    def indices(self, split: int, n_train: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fit, validation, test) structure indices for split ``split`` and subset size ``n_train``."""
        if not 0 <= split < self.n_splits:
            raise KeyError(f"split {split} out of range (n_splits={self.n_splits})")
        sub = self._orders[split][: int(n_train)]
        fit, val = train_validation_split(sub, val_fraction=self.val_fraction, seed=[int(n_train), split])
        return fit, val, self.test


def _metrics(pred: np.ndarray, y: np.ndarray, scale: float) -> tuple[float, float]:
    err = (np.asarray(pred, dtype=np.float64).ravel() - y) * scale
    if not np.isfinite(err).all():
        raise FloatingPointError("entanglement experiment: the model predicted non-finite values")
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))


class _DataTask:
    """Shared data holder of the task functions (picklable: numpy arrays, as in the learning curve)."""

    def __init__(self, X: LegTensor, y: Any, *, sizes: Sequence[int], n_splits: int, test_size: int, seed: int,
                 bipartitions: Mapping[str, Sequence[str]], scale: float = 1000.0,
                 units: str = "meV/cation") -> None:
        if X.is_per_atom:
            raise ValueError("entanglement experiments take structure-averaged descriptors (one row per structure)")
        self.values = X.values.detach().cpu().numpy()
        self.legs, self.meta = tuple(X.legs), dict(X.meta)
        self.y = _targets(y, len(self.values))
        self.bipartitions = {k: tuple(v) for k, v in bipartitions.items()}
        for part in self.bipartitions.values():
            _partition_indices(self.legs, part)
        self.scale, self.units = float(scale), units
        self.splits = FixedTestSplits(len(self.values), sizes=sizes, n_splits=n_splits, test_size=test_size,
                                      seed=seed)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(self.values.shape[1:])

    def rows(self, idx: np.ndarray) -> LegTensor:
        return LegTensor(torch.from_numpy(np.array(self.values[np.asarray(idx)], dtype=np.float64)), self.legs,
                         meta=self.meta)


def _estimator(model: str, bond_dim: int | None, params: Mapping[str, Any], random_state: int) -> Any:
    from tnmat.training.registry import make_estimator

    full = dict(params)
    if bond_dim is not None:
        full["bond_dim"] = int(bond_dim)
    try:
        return make_estimator(model, **full, random_state=random_state)
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
        val_rmse, val_mae = _metrics(est.predict(self.rows(val)), self.y[val], self.scale)
        test_rmse, test_mae = _metrics(est.predict(self.rows(test)), self.y[test], self.scale)
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


def bond_sweep_tasks(models: Sequence[str], chis: Sequence[int], train_sizes: Sequence[int], n_splits: int, *,
                     params: Mapping[str, Any], bipartitions: Mapping[str, Sequence[str]], test_size: int,
                     dataset: str, seed: int) -> list[dict[str, Any]]:
    """One JSON-able task per (model, chi, size, split); the dense model once per (size, split).  Everything
    that changes the result (data name, seed, test size, training settings, bipartitions) is in the task,
    hence in its store key."""
    tasks = []
    for model in models:
        if model not in _GRAPH_KINDS:
            raise ValueError(f"bond sweep: model must be one of {_GRAPH_KINDS}, got {model!r}")
        for chi in ([None] if model == "dense" else sorted({int(c) for c in chis})):
            if chi is not None and chi < 1:
                raise ValueError(f"bond sweep: bond dimensions must be >= 1, got {chi}")
            for n, k in itertools.product(sorted({int(s) for s in train_sizes}), range(n_splits)):
                tasks.append({"experiment": SWEEP_EXPERIMENT, "dataset": dataset, "model": model, "bond_dim": chi,
                              "n_train": n, "split": k, "test_size": int(test_size), "seed": int(seed),
                              "params": dict(params), "bipartitions": {b: list(p) for b, p in bipartitions.items()}})
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


def run_bond_sweep(X: LegTensor, y: Any, *, train_sizes: Sequence[int] = (100, 1000), n_splits: int = 10,
                   test_size: int = 600, chis: Sequence[int] = DEFAULT_CHIS, models: Sequence[str] = SWEEP_MODELS,
                   store: ResultStore | str | Path, jobs: int = 1, seed: int = 0, max_epochs: int = 200,
                   patience: int | None = 30, learning_rate: float = 5e-3, batch_size: int = 32,
                   dtype: str = "float32", bipartitions: Mapping[str, Sequence[str]] = DEFAULT_BIPARTITIONS,
                   dataset: str = "dataset", progress: bool = True, on_error: str = "raise") -> dict[str, Any]:
    """Bond-dimension sweep (paper Fig. 14): fit every (model, chi, size, split) not yet in ``store`` and
    record errors and entanglement (module docstring).  Returns a summary dict: ``rows``
    (:func:`summarise_sweep`), ``chi_ct`` per model, counts ``n_tasks``, ``n_fitted``, ``n_skipped``,
    ``n_failed`` and the ``failures`` (key, error text)."""
    from tnmat.networks import compression_threshold

    store = _store(store)
    fn = BondSweepTask(X, y, sizes=train_sizes, n_splits=n_splits, test_size=test_size, seed=seed,
                       bipartitions=bipartitions)
    params = {"max_epochs": int(max_epochs), "patience": patience, "learning_rate": float(learning_rate),
              "batch_size": int(batch_size), "dtype": dtype}
    tasks = bond_sweep_tasks(models, chis, train_sizes, n_splits, params=params, bipartitions=bipartitions,
                             test_size=test_size, dataset=dataset, seed=seed)
    report: GridReport = run_grid(tasks, fn, store=store, jobs=jobs, progress=progress, on_error=on_error,
                                  desc="bond sweep")
    rows = summarise_sweep(store, dataset=dataset)
    return {"experiment": SWEEP_EXPERIMENT, "dataset": dataset, "rows": rows, "leg_sizes": list(fn.sizes),
            "chi_ct": {m: compression_threshold(m, fn.sizes) for m in models if m != "dense"},
            "n_tasks": report.n_tasks, "n_fitted": report.n_done, "n_skipped": report.n_skipped,
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
        idx = _partition_indices(self.legs, part)
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
        test_rmse, test_mae = _metrics(est.predict(self.rows(test)), self.y[test], self.scale)
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


def dynamics_tasks(chis: Sequence[int], n_runs: int, *, n_epochs: int, n_snapshots: int, n_train: int,
                   params: Mapping[str, Any], bipartition: Mapping[str, Sequence[str]], test_size: int,
                   dataset: str, seed: int, model: str = "mpo") -> list[dict[str, Any]]:
    """One task per (chi, run)."""
    return [{"experiment": DYNAMICS_EXPERIMENT, "dataset": dataset, "model": model, "bond_dim": int(c), "run": r,
             "n_train": int(n_train), "n_epochs": int(n_epochs), "n_snapshots": int(n_snapshots),
             "test_size": int(test_size), "seed": int(seed), "params": dict(params),
             "bipartition": {k: list(v) for k, v in bipartition.items()}}
            for c in sorted({int(c) for c in chis}) for r in range(n_runs)]


def run_spectrum_dynamics(X: LegTensor, y: Any, *, chis: Sequence[int] = (12, 16, 20), n_runs: int = 4,
                          n_epochs: int = 50, n_snapshots: int = 25, n_train: int = 1000, test_size: int = 600,
                          store: ResultStore | str | Path, learning_rate: float = 5e-3, batch_size: int = 32,
                          dtype: str = "float32", bipartition: Mapping[str, Sequence[str]] | None = None,
                          model: str = "mpo", jobs: int = 1, seed: int = 0, dataset: str = "dataset",
                          progress: bool = True, on_error: str = "raise", rtol: float = 1e-6,
                          bins: int = 20) -> dict[str, Any]:
    """Spectrum dynamics (paper Fig. 15): ``n_runs`` runs per chi of ``n_epochs`` epochs, spectra of the
    bipartition (default {a1, n1}) at ``n_snapshots`` log-spaced steps; each run stored at once.  Returns a
    summary dict with the :func:`analyse_dynamics` result under ``analysis``, the mean seconds per run
    and epoch per chi, and the task counts.  The paper's scale is 100 runs x 1000 epochs."""
    bip = dict(bipartition or {"a1n1": DEFAULT_BIPARTITIONS["a1n1"]})
    if len(bip) != 1:
        raise ValueError(f"spectrum dynamics follows one bipartition, got {list(bip)}")
    store = _store(store)
    fn = DynamicsTask(X, y, sizes=(n_train,), n_splits=1, test_size=test_size, seed=seed, bipartitions=bip)
    params = {"learning_rate": float(learning_rate), "batch_size": int(batch_size), "dtype": dtype}
    tasks = dynamics_tasks(chis, n_runs, n_epochs=n_epochs, n_snapshots=n_snapshots, n_train=n_train,
                           params=params, bipartition=bip, test_size=test_size, dataset=dataset, seed=seed,
                           model=model)
    report = run_grid(tasks, fn, store=store, jobs=jobs, progress=progress, on_error=on_error,
                      desc="spectrum dynamics")
    wanted = {int(c) for c in chis}
    recs = [r for r in store.records(experiment=DYNAMICS_EXPERIMENT)
            if r.get("dataset") == dataset and r.get("bond_dim") in wanted and r.get("n_epochs") == n_epochs
            and r.get("n_train") == n_train and r.get("seed") == seed and r.get("params") == params
            and r.get("run", 0) < n_runs and r.get("partition") == list(next(iter(bip.values())))]
    analysis = analyse_dynamics(recs, rtol=rtol, bins=bins)
    return {"experiment": DYNAMICS_EXPERIMENT, "dataset": dataset, "analysis": analysis, "n_tasks": report.n_tasks,
            "n_fitted": report.n_done, "n_skipped": report.n_skipped, "n_failed": report.n_failed,
            "failures": [(k, e) for k, _, e in report.failures]}


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


# ---------------------------------------------------------------------------------------------- reports
def _fmt(x: Any, nd: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def write_sweep_markdown(summary: Mapping[str, Any], path: str | Path, *, notes: str = "") -> Path:
    """Markdown table of a :func:`run_bond_sweep` summary (errors in meV/cation, entropies in nats)."""
    rows = summary["rows"]
    bips = sorted({k[2:] for r in rows for k in r if k.startswith("S_") and not k.endswith("_std")})
    lines = ["# Bond-dimension sweep (paper Fig. 14)", ""]
    if notes:
        lines += [notes, ""]
    lines += [f"chi_ct (compression threshold): {json.dumps(summary.get('chi_ct', {}))}; "
              f"legs {summary.get('leg_sizes')}", ""]
    head = "| model | n_train | chi | splits | params | RMSE | MAE |"
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    for b in bips:
        head += f" S[{b}] | bound[{b}] | Page[{b}] |"
        sep += "---:|---:|---:|"
    lines += [head, sep]
    for r in rows:
        line = (f"| {r['model']} | {r['n_train']} | {_fmt(r['bond_dim'])} | {r['n_splits']} | {r['n_parameters']} | "
                f"{r['rmse_mean']:.1f} +- {r['rmse_std']:.1f} | {r['mae_mean']:.1f} +- {r['mae_std']:.1f} |")
        for b in bips:
            line += (f" {r[f'S_{b}']:.3f} +- {r[f'S_{b}_std']:.3f} | {r[f'mincut_{b}']:.3f} | "
                     f"{r[f'page_{b}']:.3f} |")
        lines.append(line)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_dynamics_markdown(summary: Mapping[str, Any], path: str | Path, *, notes: str = "",
                            full_runs: int = 100, full_epochs: int = 1000, bins: int = 20) -> Path:
    """Markdown summary of :func:`run_spectrum_dynamics`: per chi the entropy, C_E, <r~> and D_KL at a few
    steps, the test RMSE, and the measured cost extrapolated to ``full_runs`` x ``full_epochs``."""
    an = summary["analysis"]
    lines = ["# Entanglement-spectrum dynamics (paper Fig. 15)", ""]
    if notes:
        lines += [notes, ""]
    lines += [f"<r~>: GOE {MEAN_R_TILDE['goe']:.4f}, Poisson {MEAN_R_TILDE['poisson']:.4f}; D_KL in nats.  A "
              "histogram of N exact GOE samples in B bins has E[D_KL] ~ (B - 1) / (2 N) (finite-sample floor, "
              "given per chi below).", ""]
    total = 0.0
    for chi, a in an.items():
        cost = a["seconds_per_epoch"] * full_epochs * full_runs
        total += cost
        cmax = int(np.nanargmax(a["capacity"]))
        lines += [f"## chi = {chi} ({a['n_runs']} runs x {a['n_epochs']} epochs, {a['total_steps']} steps; "
                  f"d_A = {a['d_a']}, d_B = {a['d_b']}, min-cut bound {a['min_cut']:.3f}, Page {a['page']:.3f})",
                  "", f"test RMSE {a['test_rmse']:.1f} +- {a['test_rmse_std']:.1f} meV/cation; "
                  f"{a['seconds_per_run']:.1f} s per run ({a['seconds_per_epoch']:.2f} s per epoch); "
                  f"max C_E = {a['capacity'][cmax]:.3f} at step {a['steps'][cmax]}; D_KL floor "
                  f"{(bins - 1) / (2 * max(1, int(np.median(a['n_ratios'])))):.3f}", "",
                  "| step | epoch | S | C_E | <r~> | ratios | D_KL(GOE||obs) | D_KL(Poisson||obs) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for i, s in enumerate(a["steps"]):
            lines.append(f"| {s} | {a['epochs'][i]} | {a['entropy'][i]:.3f} | {a['capacity'][i]:.3f} | "
                         f"{_fmt(a['mean_r'][i], 3)} | {a['n_ratios'][i]} | {_fmt(a['kl_goe'][i], 3)} | "
                         f"{_fmt(a['kl_poisson'][i], 3)} |")
        lines.append("")
    lines += [f"Full paper scale ({full_runs} runs x {full_epochs} epochs for these chi) at the measured cost: "
              f"{total / 3600:.1f} core-hours on this machine.", ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def limit_threads(threads: int | None) -> Any:
    """Context manager limiting torch and BLAS/OpenMP threads (``None``: no limit).  SVD-heavy analysis
    and small-batch training run faster single-threaded on a shared machine."""
    import contextlib

    if threads is None:
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _ctx():  # noqa: ANN202
        old = torch.get_num_threads()
        torch.set_num_threads(int(threads))
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # optional: torch's own pool is the one that matters most
            limiter = contextlib.nullcontext()
        else:
            limiter = threadpool_limits(int(threads))
        try:
            with limiter:
                yield
        finally:
            torch.set_num_threads(old)

    return _ctx()


def load_nmd18_power_spectrum(data_root: str | Path | None, *, cache_dir: str | Path | None = None,
                              target: str = "formation_energy") -> tuple[LegTensor, np.ndarray, str]:
    """NMD18 (relaxed) -> (structure-averaged power spectrum LegTensor with legs (a1, a2, n1, n2, l),
    targets in eV per cation, dataset name).  Descriptor: AtomicDensity(r_cut=6, n_max=4, l_max=3,
    sigma=0.5) + Invariants(order=2), cached in ``cache_dir`` under the CLI's cache key."""
    from tnmat.data import load_nmd18
    from tnmat.descriptors import AtomicDensity, Invariants
    from tnmat.model import descriptor_cache_key

    ds = load_nmd18(None if data_root is None else Path(data_root))
    if target not in ds.targets:
        raise KeyError(f"{ds.name}: no target {target!r}; have {sorted(ds.targets)}")
    calc = Invariants(AtomicDensity(species=tuple(ds.species), r_cut=6.0, n_max=4, l_max=3, sigma=0.5), order=2)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{ds.name}-{descriptor_cache_key(calc, ds.name, False)}.npz"
        if path.exists():
            X = LegTensor.load(path)
            if X.n_structures == len(ds):
                return X, np.asarray(ds.targets[target], dtype=np.float64), ds.name
    X = calc.compute(ds.structures, average=True, progress=False)
    if path is not None:
        X.save(path)
    return X, np.asarray(ds.targets[target], dtype=np.float64), ds.name


def entanglement_sweep(data_root: str | Path | None, output_dir: str | Path, *,
                       store_path: str | Path | None = None, cache_dir: str | Path | None = None,
                       train_sizes: Sequence[int] = (100, 1000), n_splits: int = 10, test_size: int = 600,
                       chis: Sequence[int] = DEFAULT_CHIS, models: Sequence[str] = SWEEP_MODELS,
                       max_epochs: int = 200, patience: int | None = 30, learning_rate: float = 5e-3,
                       batch_size: int = 32, jobs: int = 1, seed: int = 0, threads: int | None = 1,
                       progress: bool = True, notes: str = "") -> dict[str, Any]:
    """``tnmat entanglement sweep``: NMD18 descriptors, :func:`run_bond_sweep` into ``store_path``
    (default ``output_dir/entanglement.sqlite``), then ``bond_sweep.png``, ``bond_sweep.md`` and
    ``bond_sweep.csv`` in ``output_dir``.  Returns the sweep summary plus ``files``."""
    from tnmat.plots.entanglement import plot_bond_sweep

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(store_path or out / "entanglement.sqlite")
    X, y, name = load_nmd18_power_spectrum(data_root, cache_dir=cache_dir)
    t0 = time.perf_counter()
    with limit_threads(threads):
        summary = run_bond_sweep(X, y, train_sizes=train_sizes, n_splits=n_splits, test_size=test_size, chis=chis,
                                 models=models, store=store, jobs=jobs, seed=seed, max_epochs=max_epochs,
                                 patience=patience, learning_rate=learning_rate, batch_size=batch_size,
                                 dataset=name, progress=progress)
    summary["seconds"] = time.perf_counter() - t0
    files = {"figure": plot_bond_sweep(summary, out / "bond_sweep.png"),
             "markdown": write_sweep_markdown(summary, out / "bond_sweep.md", notes=notes),
             "csv": write_rows_csv(summary["rows"], out / "bond_sweep.csv")}
    summary["files"] = {k: str(v) for k, v in files.items()}
    return summary


def entanglement_dynamics(data_root: str | Path | None, output_dir: str | Path, *,
                          store_path: str | Path | None = None, cache_dir: str | Path | None = None,
                          chis: Sequence[int] = (12, 16, 20), n_runs: int = 4, n_epochs: int = 50,
                          n_snapshots: int = 25, n_train: int = 1000, test_size: int = 600,
                          learning_rate: float = 5e-3, batch_size: int = 32, jobs: int = 1, seed: int = 0,
                          threads: int | None = 1, progress: bool = True, rtol: float = 1e-6, bins: int = 20,
                          notes: str = "") -> dict[str, Any]:
    """``tnmat entanglement dynamics``: :func:`run_spectrum_dynamics` on NMD18 into ``store_path`` (default
    ``output_dir/entanglement.sqlite``), then ``dynamics_spectrum.png``, ``dynamics_ratios.png``,
    ``dynamics_kl_capacity.png`` and ``dynamics.md`` in ``output_dir``.  Returns the summary plus ``files``."""
    from tnmat.plots.entanglement import plot_spectrum_dynamics

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(store_path or out / "entanglement.sqlite")
    X, y, name = load_nmd18_power_spectrum(data_root, cache_dir=cache_dir)
    t0 = time.perf_counter()
    with limit_threads(threads):
        summary = run_spectrum_dynamics(X, y, chis=chis, n_runs=n_runs, n_epochs=n_epochs, n_snapshots=n_snapshots,
                                        n_train=n_train, test_size=test_size, store=store,
                                        learning_rate=learning_rate, batch_size=batch_size, jobs=jobs, seed=seed,
                                        dataset=name, progress=progress, rtol=rtol, bins=bins)
    summary["seconds"] = time.perf_counter() - t0
    files = plot_spectrum_dynamics(summary["analysis"], out, prefix="dynamics")
    files["markdown"] = write_dynamics_markdown(summary, out / "dynamics.md", notes=notes, bins=bins)
    summary["files"] = {k: str(v) for k, v in files.items()}
    return summary
