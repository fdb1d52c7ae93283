"""Equivariant models for vector and tensor properties (paper Appendix C): one place for the networks whose
irrep edge M stays open (:mod:`~tnmat.equivariant.networks`: EquivariantMPS, EquivariantMPO), the estimator
that fits one irrep per row (:mod:`~tnmat.equivariant.estimator`) and the model that predicts Cartesian forces
per atom and stress per structure from ASE structures (:mod:`~tnmat.equivariant.model`).  The SO(3)
primitives they use (real spherical components of vectors and rank-2 tensors) are in :mod:`tnmat.so3`."""

from tnmat.equivariant.estimator import EquivariantRegressor
from tnmat.equivariant.model import EquivariantModel
from tnmat.equivariant.networks import EquivariantMPO, EquivariantMPS

__all__ = ["EquivariantMPO", "EquivariantMPS", "EquivariantModel", "EquivariantRegressor"]
