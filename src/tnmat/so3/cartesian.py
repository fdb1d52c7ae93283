"""Cartesian <-> spherical (real-basis irrep) components of vectors and symmetric rank-2 tensors.

Convention (docs/conventions.md, item 12), orthonormal so that norms are kept:

* vector v (L = 1): ``s = (v_y, v_z, v_x)``, the order of the real ``Y_{1,(-1,0,1)} ~ (y, z, x)``;
  ``s(R v) = real_wigner_D(1, R) @ s(v)``.
* symmetric 3x3 tensor T (L = 0 + 2): ``t0 = <Q0, T>`` with ``Q0 = I / sqrt3`` and ``t2[m] = <Q_m, T>``
  (Frobenius product) with the unit-norm traceless symmetric matrices of the real ``Y_{2,m}``,
  ``Y_{2,m}(r) ~ r^T Q_m r``: ``Q_{-2} = (xy + yx)/sqrt2``, ``Q_{-1} = (yz + zy)/sqrt2``,
  ``Q_0 = diag(-1, -1, 2)/sqrt6``, ``Q_1 = (xz + zx)/sqrt2``, ``Q_2 = diag(1, -1, 0)/sqrt2``;
  ``t2(R T R^T) = real_wigner_D(2, R) @ t2(T)`` and ``t0`` is invariant.
  ASE Voigt order (xx, yy, zz, yz, xz, xy) converts with :func:`voigt_to_matrix` / :func:`matrix_to_voigt`.

All functions accept numpy arrays or torch tensors with any leading batch shape and return the same kind
(torch stays differentiable).
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

__all__ = [
    "vector_to_spherical",
    "spherical_to_vector",
    "symmetric_to_spherical",
    "spherical_to_symmetric",
    "voigt_to_matrix",
    "matrix_to_voigt",
    "symmetric_basis",
]

Array = TypeVar("Array", np.ndarray, torch.Tensor)

_PERM = (1, 2, 0)  # (x, y, z) -> (y, z, x)
_INV_PERM = (2, 0, 1)


def symmetric_basis() -> np.ndarray:
    """The six orthonormal symmetric matrices (6, 3, 3): ``Q0 = I/sqrt3`` then ``Q_{2,m}``, m = -2..2."""
    q = np.zeros((6, 3, 3))
    q[0] = np.eye(3) / math.sqrt(3.0)
    h = 1.0 / math.sqrt(2.0)
    q[1, 0, 1] = q[1, 1, 0] = h  # xy
    q[2, 1, 2] = q[2, 2, 1] = h  # yz
    q[3] = np.diag([-1.0, -1.0, 2.0]) / math.sqrt(6.0)  # 2z^2 - x^2 - y^2
    q[4, 0, 2] = q[4, 2, 0] = h  # xz
    q[5] = np.diag([1.0, -1.0, 0.0]) * h  # x^2 - y^2
    return q


_Q = symmetric_basis()


def _check_last(x: Array, shape: tuple[int, ...], name: str) -> None:
    if tuple(x.shape[len(x.shape) - len(shape):]) != shape:
        raise ValueError(f"{name}: expected trailing shape {shape}, got {tuple(x.shape)}")


def vector_to_spherical(v: Array) -> Array:
    """(..., 3) Cartesian (x, y, z) -> (..., 3) real L = 1 components (y, z, x)."""
    _check_last(v, (3,), "vector_to_spherical")
    return v[..., list(_PERM)]


def spherical_to_vector(s: Array) -> Array:
    """Inverse of :func:`vector_to_spherical`: (..., 3) components m = -1, 0, 1 -> (x, y, z)."""
    _check_last(s, (3,), "spherical_to_vector")
    return s[..., list(_INV_PERM)]


def _basis_like(x: Array) -> Array:
    if isinstance(x, torch.Tensor):
        return torch.as_tensor(_Q, dtype=x.dtype, device=x.device)
    return _Q


def symmetric_to_spherical(t: Array) -> tuple[Array, Array]:
    """(..., 3, 3) tensor -> (L = 0 part (..., 1), L = 2 part (..., 5)); the antisymmetric part is dropped
    (only ``(T + T^T)/2`` is projected)."""
    _check_last(t, (3, 3), "symmetric_to_spherical")
    q = _basis_like(t)
    if isinstance(t, torch.Tensor):
        c = torch.einsum("...ij,kij->...k", t, q)
    else:
        c = np.einsum("...ij,kij->...k", t, q)
    return c[..., :1], c[..., 1:]


def spherical_to_symmetric(t0: Array, t2: Array) -> Array:
    """Inverse of :func:`symmetric_to_spherical`: ``T = t0 Q0 + sum_m t2[m] Q_m`` (..., 3, 3)."""
    _check_last(t0, (1,), "spherical_to_symmetric (t0)")
    _check_last(t2, (5,), "spherical_to_symmetric (t2)")
    q = _basis_like(t2)
    if isinstance(t2, torch.Tensor):
        return torch.einsum("...k,kij->...ij", torch.cat([t0, t2], dim=-1), q)
    return np.einsum("...k,kij->...ij", np.concatenate([t0, t2], axis=-1), q)


_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def voigt_to_matrix(s: Array) -> Array:
    """ASE Voigt (..., 6) = (xx, yy, zz, yz, xz, xy) -> symmetric (..., 3, 3)."""
    _check_last(s, (6,), "voigt_to_matrix")
    idx = [[0, 5, 4], [5, 1, 3], [4, 3, 2]]
    return s[..., idx]


def matrix_to_voigt(t: Array) -> Array:
    """Symmetric (..., 3, 3) -> ASE Voigt (..., 6) (the symmetric part of t)."""
    _check_last(t, (3, 3), "matrix_to_voigt")
    sym = (t + t.swapaxes(-1, -2)) / 2 if isinstance(t, np.ndarray) else (t + t.transpose(-1, -2)) / 2
    return sym[..., [i for i, _ in _VOIGT], [j for _, j in _VOIGT]]
