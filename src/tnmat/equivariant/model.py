"""EquivariantModel: equivariant descriptors + one :class:`EquivariantRegressor` per irrep, predicting
Cartesian vectors per atom (forces) or symmetric tensors per structure (stress) directly on ASE structures.

* ``target="forces"``: per-atom rows, L = 1 (``tnmat.so3.vector_to_spherical``), output (N_k, 3) per structure.
* ``target="stress"``: structure-averaged rows, L = 0 and L = 2 (``tnmat.so3.symmetric_to_spherical``),
  output (n, 3, 3).

The invariant descriptor (``Invariants`` of the same density, order ``invariant_order``) feeds the MPO
(Fig. 26b); the L = 0 block uses ``Invariants`` of body order ``order`` with an m leg of size one appended.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from sklearn.base import clone

from tnmat.descriptors import AtomicDensity, Equivariants, Invariants, descriptor_from_params
from tnmat.equivariant.estimator import EquivariantRegressor
from tnmat.legtensor import LegTensor
from tnmat.so3.cartesian import (
    spherical_to_symmetric,
    spherical_to_vector,
    symmetric_to_spherical,
    vector_to_spherical,
)

__all__ = ["EquivariantModel", "TARGET_IRREPS"]

#: the irreps of each supported target
TARGET_IRREPS = {"forces": (1,), "stress": (0, 2)}
_FORMAT = "tnmat.equivariant_model"


class EquivariantModel:
    """Descriptors (one ``Equivariants`` per irrep, optional ``Invariants``) + regressors (one per irrep).

    ``EquivariantModel.build(density, target="forces", order=2, regressor=EquivariantRegressor(model="mpo"))``
    clones ``regressor`` for every irrep of the target."""

    def __init__(self, target: str, equivariants: dict[int, Equivariants | Invariants],
                 regressors: dict[int, EquivariantRegressor], invariants: Invariants | None = None) -> None:
        if target not in TARGET_IRREPS:
            raise ValueError(f"EquivariantModel: target must be one of {tuple(TARGET_IRREPS)}, got {target!r}")
        if set(equivariants) != set(TARGET_IRREPS[target]) or set(regressors) != set(TARGET_IRREPS[target]):
            raise ValueError(f"EquivariantModel: target {target!r} needs descriptors and regressors for L in "
                             f"{TARGET_IRREPS[target]}")
        self.target, self.equivariants, self.regressors, self.invariants = target, equivariants, regressors, invariants

    @classmethod
    def build(cls, density: AtomicDensity, *, target: str, order: int = 2, invariant_order: int = 2,
              center_species: bool = True, regressor: EquivariantRegressor | None = None) -> EquivariantModel:
        """Descriptors of ``density`` at body order ``order`` for every irrep of ``target``."""
        if target not in TARGET_IRREPS:
            raise ValueError(f"EquivariantModel: target must be one of {tuple(TARGET_IRREPS)}, got {target!r}")
        regressor = regressor if regressor is not None else EquivariantRegressor()
        eqs = {L: Equivariants(density, order=order, L=L, center_species=center_species) if L
               else Invariants(density, order=order, center_species=center_species) for L in TARGET_IRREPS[target]}
        regs = {L: clone(regressor) for L in TARGET_IRREPS[target]}
        inv = Invariants(density, order=invariant_order, center_species=center_species) \
            if regressor.model == "mpo" else None
        return cls(target, eqs, regs, inv)

    @property
    def per_atom(self) -> bool:
        return self.target == "forces"

    # ------------------------------------------------------------------ descriptors and targets
    def featurize(self, structures: Sequence[Atoms]) -> dict[Any, Any]:
        """Descriptors per irrep (key L) and the invariant one (key "inv"), per atom or averaged."""
        avg = not self.per_atom
        feats: dict[Any, Any] = {}
        for L, d in self.equivariants.items():
            t = d.compute(list(structures), average=avg, progress=False)
            if isinstance(d, Invariants):  # L = 0: the invariant with an m leg of size one
                t = LegTensor(t.values.unsqueeze(-1), (*t.legs, "m"), structure_index=t.structure_index, meta=t.meta)
            feats[L] = t
        if self.invariants is not None:
            feats["inv"] = self.invariants.compute(list(structures), average=avg, progress=False)
        return feats

    def spherical_targets(self, y: Any) -> dict[int, np.ndarray]:
        """Cartesian targets -> irrep components: forces (list of (N, 3) or (atoms, 3)) or stress (n, 3, 3)."""
        if self.target == "forces":
            f = np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1, 3) for a in y]) \
                if isinstance(y, list | tuple) else np.asarray(y, dtype=np.float64).reshape(-1, 3)
            return {1: vector_to_spherical(f)}
        s = np.asarray(y, dtype=np.float64)
        if s.ndim != 3 or s.shape[1:] != (3, 3):
            raise ValueError(f"EquivariantModel: stress targets must have shape (n, 3, 3), got {s.shape}")
        t0, t2 = symmetric_to_spherical(s)
        return {0: t0, 2: t2}

    # ------------------------------------------------------------------ fit / predict
    def fit(self, structures: Sequence[Atoms] | dict, y: Any, *, validation: tuple | None = None) -> EquivariantModel:
        """Fit every irrep's regressor; ``structures`` may be precomputed :meth:`featurize` output.
        ``validation``: optional (structures or features, y) used for early stopping."""
        feats = structures if isinstance(structures, dict) else self.featurize(structures)
        ys = self.spherical_targets(y)
        vfeats = vys = None
        if validation is not None:
            vfeats = validation[0] if isinstance(validation[0], dict) else self.featurize(validation[0])
            vys = self.spherical_targets(validation[1])
        for L, reg in self.regressors.items():
            if len(ys[L]) != feats[L].values.shape[0]:
                raise ValueError(f"EquivariantModel: {len(ys[L])} target rows for {feats[L].values.shape[0]} "
                                 f"descriptor rows ({'atoms' if self.per_atom else 'structures'})")
            kw: dict[str, Any] = {"X_inv": feats.get("inv")}
            if vfeats is not None and reg.model != "linear":
                kw.update(X_val=vfeats[L], y_val=vys[L], X_inv_val=vfeats.get("inv"))
            reg.fit(feats[L], ys[L], **kw)
        return self

    def predict_spherical(self, structures: Sequence[Atoms] | dict) -> dict[int, np.ndarray]:
        """Irrep components per row (atoms or structures)."""
        feats = structures if isinstance(structures, dict) else self.featurize(structures)
        return {L: reg.predict(feats[L], X_inv=feats.get("inv")) for L, reg in self.regressors.items()}

    def predict(self, structures: Sequence[Atoms] | dict) -> list[np.ndarray] | np.ndarray:
        """Forces: one (N_k, 3) array per structure (eV/A); stress: (n, 3, 3)."""
        feats = structures if isinstance(structures, dict) else self.featurize(structures)
        out = self.predict_spherical(feats)
        if self.target == "forces":
            f = spherical_to_vector(out[1])
            sidx = feats[1].structure_index.numpy()
            return [f[sidx == k] for k in range(int(sidx.max()) + 1)]
        return spherical_to_symmetric(out[0], out[2])

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """One file: descriptor settings + every regressor's state (written to a temporary name, renamed;
        versioned and checksummed, :func:`tnmat._estimator_file.write_checked_file`)."""
        from tnmat._estimator_file import write_checked_file

        blob = {"format": _FORMAT, "target": self.target,
                "equivariants": {str(L): d.get_params() for L, d in self.equivariants.items()},
                "invariants": None if self.invariants is None else self.invariants.get_params(),
                "regressors": {str(L): r.state() for L, r in self.regressors.items()}}
        return write_checked_file(path, blob)

    @classmethod
    def load(cls, path: str | Path) -> EquivariantModel:
        """Inverse of :meth:`save`; ``ValueError`` naming the file when it is not an intact equivariant model
        (checksum, finite weights, only declared fitted entries)."""
        from tnmat._estimator_file import read_checked_file

        path = Path(path)
        blob = read_checked_file(path, _FORMAT, "tnmat equivariant (forces/stress) model", finite=("regressors",))
        try:
            eqs = {int(L): descriptor_from_params(p) for L, p in blob["equivariants"].items()}
            regs = {int(L): EquivariantRegressor.from_state(s) for L, s in blob["regressors"].items()}
            inv = None if blob["invariants"] is None else descriptor_from_params(blob["invariants"])
            return cls(blob["target"], eqs, regs, inv)
        except (KeyError, TypeError, RuntimeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{path}: inconsistent tnmat equivariant model file ({type(exc).__name__}: "
                             f"{exc})") from None
