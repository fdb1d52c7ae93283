"""The cluster expansion (CE) as a baseline: the incumbent model of solid-solution energetics.

E(sigma) / N = sum_alpha m_alpha J_alpha <Pi_alpha(sigma)>: the energy per atom of a configuration on the
sites of a parent lattice is linear in its cluster vector (icet ``ClusterSpace``: averaged products of point
functions of the site occupations over symmetry-equivalent clusters, pairs to quadruplets within the
cutoffs), with effective cluster interactions (ECIs) J fitted by trainstation.

:class:`ClusterExpansionRegressor` takes ASE structures on ideal parent-lattice sites (not descriptors; map
relaxed cells first with :func:`tnmat.data.ideal_sites.map_to_ideal`).  The parent (fcc, bcc or hcp) is
detected from the first training structure or given; its lattice constant is set by the training
structures' mean volume per atom, and every structure is rescaled isotropically to that volume before its
cluster vector is computed (icet matches sites in Cartesian coordinates).  The cutoffs and the fit method
are chosen by k-fold cross-validation on the training structures only, from a small grid: the cutoff sets
are in Angstrom for a reference fcc lattice of a = 4.0 A and scaled by the parent's nearest-neighbour
distance over 2.83 A.  The lowest validation RMSE wins; the ECIs are then fitted on all training structures.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from sklearn.base import BaseEstimator, RegressorMixin

from tnmat._estimator_file import register_loader, write_estimator_file

__all__ = ["ClusterExpansionRegressor", "CUTOFF_GRID", "FIT_METHODS", "cluster_vectors"]

#: cutoff sets (pairs, triplets, quadruplets; Angstrom at fcc a = 4.0 A): long pairs, pairs with nearest-
#: neighbour triplets, then the usual nested sets (with many species the latter exceed ``max_parameters``:
#: 7 species give 965 functions at [7, 5] and 1657 at [8, 6], while [12] has 448 and [10, 4] 462)
CUTOFF_GRID: tuple[tuple[float, ...], ...] = ((6.0,), (8.0,), (12.0,), (6.0, 4.0), (10.0, 4.0), (7.0, 5.0),
                                              (8.0, 6.0), (10.0, 7.0, 6.0), (12.0, 8.0, 6.0))
FIT_METHODS: tuple[str, ...] = ("least-squares", "lasso", "ardr")
_REFERENCE_NN = 4.0 / np.sqrt(2.0)  # nearest-neighbour distance of the reference fcc lattice, Angstrom


def _prim(parent: str, volume_per_atom: float) -> Atoms:
    """Primitive parent cell with the given volume per atom (hcp at ideal c/a)."""
    from ase.build import bulk

    if parent == "fcc":
        return bulk("Au", "fcc", a=(4.0 * volume_per_atom) ** (1 / 3))
    if parent == "bcc":
        return bulk("Au", "bcc", a=(2.0 * volume_per_atom) ** (1 / 3))
    c_a = np.sqrt(8.0 / 3.0)
    a = (2.0 * volume_per_atom / (np.sqrt(3.0) / 2.0 * c_a)) ** (1 / 3)
    return bulk("Au", "hcp", a=a, c=a * c_a)


def _nn_distance(prim: Atoms) -> float:
    d = prim.repeat(3).get_all_distances(mic=True)
    return float(d[d > 1e-8].min())


def _at_volume(atoms: Atoms, volume_per_atom: float) -> Atoms:
    """``atoms`` rescaled isotropically to ``volume_per_atom`` (ideal sites stay ideal)."""
    out = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell.array, pbc=True)
    s = (volume_per_atom / (atoms.get_volume() / len(atoms))) ** (1 / 3)
    out.set_cell(out.cell.array * s, scale_atoms=True)
    return out


def cluster_vectors(cs: Any, structures: Sequence[Atoms], volume_per_atom: float, who: str) -> np.ndarray:
    """Cluster vectors (rows) of ``structures`` in cluster space ``cs``; a structure that is not on the
    parent's sites or holds a species the space lacks is a ``ValueError`` naming its index."""
    known = set(cs.chemical_symbols[0])
    rows = []
    for k, atoms in enumerate(structures):
        extra = sorted(set(atoms.get_chemical_symbols()) - known)
        if extra:
            raise ValueError(f"{who}: structure {k}: species {', '.join(extra)} not in the training structures "
                             f"({', '.join(sorted(known))})")
        try:
            rows.append(cs.get_cluster_vector(_at_volume(atoms, volume_per_atom)))
        except Exception as exc:  # icet's site matching: not on the parent lattice (ideal sites expected)
            raise ValueError(f"{who}: structure {k} ({atoms.get_chemical_formula()}): not on the ideal sites of "
                             f"the parent lattice ({str(exc).splitlines()[0]}); map it first "
                             "(tnmat.data.ideal_sites.map_to_ideal)") from None
    return np.asarray(rows, dtype=np.float64)


def _structures(X: Any, who: str) -> list[Atoms]:
    if isinstance(X, Atoms) or not isinstance(X, Sequence) or not all(isinstance(a, Atoms) for a in X):
        raise TypeError(f"{who}: the cluster expansion takes a list of ASE structures (ideal sites), "
                        f"not {type(X).__name__}")
    return list(X)


class ClusterExpansionRegressor(RegressorMixin, BaseEstimator):
    """Cluster expansion on ideal-site structures (module docstring).

    ``parent``: ``"auto"``, ``"fcc"``, ``"bcc"`` or ``"hcp"``.  ``cutoffs_grid`` / ``fit_methods``: the
    candidates of the k-fold (``n_splits``) cross-validation; a cutoff set with more than ``max_parameters``
    cluster functions is skipped.  Fitted: ``parent_``, ``cutoffs_`` (Angstrom, scaled), ``fit_method_``,
    ``parameters_`` (ECIs), ``cv_results_`` (one dict per candidate with its validation RMSE in the
    target's units), ``n_parameters_`` (cluster functions), ``cluster_space_``.
    """

    def __init__(self, parent: str = "auto", *, cutoffs_grid: Sequence[Sequence[float]] = CUTOFF_GRID,
                 fit_methods: Sequence[str] = FIT_METHODS, n_splits: int = 5, max_parameters: int = 1000,
                 random_state: int | None = 0, verbose: int = 0) -> None:
        self.parent = parent
        self.cutoffs_grid = cutoffs_grid
        self.fit_methods = fit_methods
        self.n_splits = n_splits
        self.max_parameters = max_parameters
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _setup(self, structures: list[Atoms]) -> None:
        from tnmat.data.ideal_sites import check_on_lattice, detect_parent

        if self.parent == "auto":
            self.parent_ = detect_parent(structures[0])
        elif self.parent in ("fcc", "bcc", "hcp"):
            self.parent_ = self.parent
            _, why = check_on_lattice(structures[0], self.parent)
            if why:
                raise ValueError(f"training structure 0: {why}")
        else:
            raise ValueError(f"parent {self.parent!r}: choose auto, fcc, bcc or hcp")
        self.volume_per_atom_ = float(np.mean([a.get_volume() / len(a) for a in structures]))
        self.species_ = sorted({s for a in structures for s in a.get_chemical_symbols()})
        if len(self.species_) < 2:
            raise ValueError(f"the training structures hold one species ({self.species_[0]}); a cluster "
                             "expansion needs at least two")

    def _space(self, cutoffs: Sequence[float]) -> Any:
        from icet import ClusterSpace

        prim = _prim(self.parent_, self.volume_per_atom_)
        scale = _nn_distance(prim) / _REFERENCE_NN
        return ClusterSpace(prim, [round(float(c) * scale, 4) for c in cutoffs], chemical_symbols=[list(self.species_)])

    def _cross_validate(self, A: np.ndarray, y: np.ndarray, method: str) -> float:
        from trainstation import CrossValidationEstimator

        n_splits = min(self.n_splits, len(y))
        cve = CrossValidationEstimator((A, y), fit_method=method, validation_method="k-fold", n_splits=n_splits,
                                       seed=0 if self.random_state is None else int(self.random_state),
                                       **_method_options(method, len(y) - -(-len(y) // n_splits)))
        cve.validate()
        return float(cve.rmse_validation)

    def fit(self, X: Sequence[Atoms], y: np.ndarray, *, X_val: Any = None, y_val: Any = None
            ) -> ClusterExpansionRegressor:
        """Choose cutoffs and fit method by cross-validation on (X, y), then fit the ECIs on all of it
        (``X_val``/``y_val`` are not used: the choice is made on the training structures only)."""
        structures = _structures(X, "ClusterExpansionRegressor.fit")
        y = np.asarray(y, dtype=np.float64).ravel()
        if len(structures) != len(y) or len(y) < 2:
            raise ValueError(f"ClusterExpansionRegressor.fit: {len(structures)} structures, {len(y)} targets "
                             "(need equal counts, at least 2)")
        self._setup(structures)
        results, best = [], None
        with _quiet():
            for cutoffs in self.cutoffs_grid:
                cs = self._space(cutoffs)
                if len(cs) > self.max_parameters:
                    continue
                A = cluster_vectors(cs, structures, self.volume_per_atom_, "training structures")
                for method in self.fit_methods:
                    rmse = self._cross_validate(A, y, method)
                    results.append({"cutoffs": [float(c) for c in cs.cutoffs], "fit_method": method,
                                    "n_parameters": len(cs), "rmse_validation": rmse})
                    if self.verbose:
                        print(f"  cutoffs {results[-1]['cutoffs']} A, {method}: {len(cs)} cluster functions, "
                              f"CV RMSE {rmse:.4g} (target units)", flush=True)
                    if best is None or rmse < best[0]:
                        best = (rmse, cs, A, method)
        if best is None:
            raise ValueError(f"every cutoff set has more than max_parameters={self.max_parameters} cluster functions")
        _, cs, A, method = best
        self._train(cs, A, y, method)
        self.cv_results_ = results
        return self

    def _train(self, cs: Any, A: np.ndarray, y: np.ndarray, method: str) -> None:
        from trainstation import Optimizer

        with _quiet():
            opt = Optimizer((A, y), fit_method=method, train_size=1.0,
                            seed=0 if self.random_state is None else int(self.random_state),
                            **_method_options(method, len(y)))
            opt.train()
        self.cluster_space_, self.fit_method_ = cs, method
        self.cutoffs_ = [float(c) for c in cs.cutoffs]
        self.parameters_ = np.asarray(opt.parameters, dtype=np.float64)
        self.n_parameters_ = len(cs)
        self.n_nonzero_ = int(np.count_nonzero(self.parameters_))

    # ------------------------------------------------------------------ predict
    def predict(self, X: Sequence[Atoms]) -> np.ndarray:
        """Predicted targets of ideal-site structures (cluster vectors times ECIs)."""
        if not hasattr(self, "parameters_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("ClusterExpansionRegressor is not fitted yet; call fit first")
        A = cluster_vectors(self.cluster_space_, _structures(X, "ClusterExpansionRegressor.predict"),
                            self.volume_per_atom_, "structures to predict")
        return A @ self.parameters_

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """One estimator file (:mod:`tnmat._estimator_file`): the cluster space as parent, volume per atom,
        cutoffs and species (rebuilt identically on loading), and the ECIs -- plain containers only."""
        if not hasattr(self, "parameters_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("ClusterExpansionRegressor is not fitted yet; call fit before save")
        params = self.get_params(deep=False)
        params["cutoffs_grid"] = [list(map(float, c)) for c in params["cutoffs_grid"]]
        params["fit_methods"] = list(params["fit_methods"])
        fitted = {"parent_": self.parent_, "volume_per_atom_": self.volume_per_atom_, "species_": self.species_,
                  "cutoffs_": self.cutoffs_, "fit_method_": self.fit_method_, "parameters_": self.parameters_,
                  "n_parameters_": self.n_parameters_, "cv_results_": self.cv_results_}
        return write_estimator_file(path, type(self).__name__, params, fitted, extra=extra)

    @classmethod
    def _from_file(cls, blob: dict[str, Any], path: Path | None = None) -> ClusterExpansionRegressor:
        """Inverse of :meth:`save` (the loader registered with :mod:`tnmat._estimator_file`)."""
        from icet import ClusterSpace

        est = cls(**blob["params"])
        f = blob["fitted"]
        est.parent_, est.volume_per_atom_ = str(f["parent_"]), float(f["volume_per_atom_"])
        est.species_, est.cutoffs_, est.fit_method_ = list(f["species_"]), list(f["cutoffs_"]), f["fit_method_"]
        est.parameters_ = f["parameters_"].numpy().astype(np.float64)
        est.n_parameters_, est.cv_results_ = int(f["n_parameters_"]), list(f["cv_results_"])
        with _quiet():
            est.cluster_space_ = ClusterSpace(_prim(est.parent_, est.volume_per_atom_), est.cutoffs_,
                                              chemical_symbols=[est.species_])
        if len(est.cluster_space_) != len(est.parameters_):
            raise ValueError(f"the rebuilt cluster space has {len(est.cluster_space_)} functions for "
                             f"{len(est.parameters_)} stored ECIs")
        est.n_nonzero_ = int(np.count_nonzero(est.parameters_))
        est.extra_ = dict(blob.get("extra") or {})
        return est


def _method_options(method: str, n_rows: int) -> dict[str, Any]:
    """Keyword arguments of a trainstation fit method on ``n_rows`` structures: LASSO's inner
    cross-validation of its strength on one process (its default, every core through joblib, spent most of a
    small fit waiting on the workers) with at most as many folds as rows (10 by default)."""
    return {"n_jobs": 1, "cv": max(2, min(10, n_rows))} if method == "lasso" else {}


class _quiet:
    """Silence icet/trainstation logging and warnings inside a block (they report every fit at INFO), on one
    BLAS thread."""

    def __enter__(self) -> None:
        self._levels = {n: logging.getLogger(n).level for n in ("icet", "trainstation")}
        for n in self._levels:
            logging.getLogger(n).setLevel(logging.ERROR)
        self._warn = warnings.catch_warnings()
        self._warn.__enter__()
        warnings.simplefilter("ignore")
        from threadpoolctl import threadpool_limits

        # one BLAS thread: ARDR's many small updates ran several times slower with threads competing
        self._threads = threadpool_limits(1)

    def __exit__(self, *exc: object) -> None:
        self._threads.restore_original_limits()
        self._warn.__exit__(*exc)
        for n, lvl in self._levels.items():
            logging.getLogger(n).setLevel(lvl)


register_loader(ClusterExpansionRegressor.__name__, ClusterExpansionRegressor._from_file)
