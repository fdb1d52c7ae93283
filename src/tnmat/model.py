"""StructureModel: a descriptor calculator joined to a fitted regressor, so a saved model predicts
directly on ASE structures (training layer: depends on descriptors and the estimators, never on files
other than its own save format)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from tnmat.descriptor_cache import descriptor_cache_key  # re-exported: its home is the descriptor cache
from tnmat.descriptors import Equivariants, Invariants, descriptor_from_params
from tnmat.legtensor import LegTensor

__all__ = ["StructureModel", "descriptor_cache_key"]


class StructureModel:
    """Descriptor + regressor.  ``local=True`` feeds per-atom descriptors to the regressor, which then
    predicts the mean of a per-atom network over each structure's atoms (paper eq. 1); otherwise the
    structure-averaged descriptor is used (paper eq. 22).  ``descriptor=None``: the regressor takes the
    structures themselves (the cluster expansion, on ideal lattice sites)."""

    def __init__(self, descriptor: Invariants | Equivariants | None, regressor: Any, *, local: bool = False,
                 target: str = "target", units: str = "eV", info: dict[str, Any] | None = None) -> None:
        self.descriptor = descriptor
        self.regressor = regressor
        self.local = local
        self.target = target
        self.units = units
        #: what the fit used and found (split, applicability range, stop reason), stored with the model
        self.info = dict(info or {})

    def featurize(self, structures: Sequence[Atoms], *, progress: bool | None = None) -> LegTensor:
        """Descriptors in the form the regressor expects (the structures for a structure-input regressor)."""
        if self.descriptor is None:
            return list(structures)
        return self.descriptor.compute(list(structures), average=not self.local, progress=progress)

    def fit(self, X: LegTensor | list[Atoms], y: np.ndarray, *, X_val: LegTensor | None = None,
            y_val: np.ndarray | None = None, forces: Any = None, forces_val: Any = None,
            structure_weight: Any = None) -> StructureModel:
        """Fit the regressor on precomputed descriptors (see :meth:`featurize`), or on structures for a model
        that takes them (the cluster expansion); ``forces`` / ``forces_val``: force rows of the structures
        (:func:`tnmat.training.force_rows.force_rows`, force matching); ``structure_weight``: one weight per
        structure of X."""
        extra = {k: v for k, v in (("forces", forces), ("forces_val", forces_val),
                                   ("structure_weight", structure_weight)) if v is not None}
        self.regressor.fit(X, y, X_val=X_val, y_val=y_val, **extra)
        return self

    def predict(self, structures: Sequence[Atoms] | LegTensor, *, progress: bool | None = None) -> np.ndarray:
        """Predictions for structures (or for precomputed descriptors)."""
        X = structures if isinstance(structures, LegTensor) else self.featurize(structures, progress=progress)
        if self.descriptor is None:
            X = list(structures)
        return np.asarray(self.regressor.predict(X), dtype=np.float64)

    def save(self, path: str | Path) -> Path:
        """One file: the regressor's own format with the descriptor settings attached."""
        desc = None if self.descriptor is None else self.descriptor.get_params()
        extra = {"tnmat_structure_model": 1, "descriptor": desc, "local": self.local,
                 "target": self.target, "units": self.units, "info": self.info}
        self.regressor.save(path, extra=extra)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> StructureModel:
        """Inverse of :meth:`save`; clear errors for files that are not tnmat models."""
        from tnmat.training import load_estimator

        reg = load_estimator(path)
        extra = getattr(reg, "extra_", None) or {}
        if "descriptor" not in extra:
            raise ValueError(f"{path}: a fitted estimator without descriptor settings; it cannot predict on "
                             "structures (save it with StructureModel.save)")
        desc = None if extra["descriptor"] is None else descriptor_from_params(extra["descriptor"])
        return cls(desc, reg, local=bool(extra.get("local", False)),
                   target=extra.get("target", "target"), units=extra.get("units", "eV"),
                   info=extra.get("info") or {})
