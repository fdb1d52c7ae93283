"""tnmat.so3.cartesian: Cartesian <-> real-irrep components rotate with real_wigner_D (docs/conventions.md, 12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from tnmat.so3 import (
    matrix_to_voigt,
    real_spherical_harmonics,
    real_wigner_D,
    spherical_to_symmetric,
    spherical_to_vector,
    symmetric_basis,
    symmetric_to_spherical,
    vector_to_spherical,
    voigt_to_matrix,
)

ROTS = Rotation.random(5, random_state=3).as_matrix()


@pytest.mark.parametrize("k", range(5))
def test_vector_rotates_with_D1(k: int) -> None:
    R = ROTS[k]
    v = np.random.default_rng(k).normal(size=(7, 3))
    lhs = vector_to_spherical(v @ R.T)
    rhs = vector_to_spherical(v) @ real_wigner_D(1, R).T
    assert np.abs(lhs - rhs).max() < 1e-12


@pytest.mark.parametrize("k", range(5))
def test_symmetric_tensor_rotates_with_D0_D2(k: int) -> None:
    R = ROTS[k]
    a = np.random.default_rng(k).normal(size=(4, 3, 3))
    t = a + a.transpose(0, 2, 1)
    t0, t2 = symmetric_to_spherical(t)
    r0, r2 = symmetric_to_spherical(R @ t @ R.T)
    assert np.abs(r0 - t0).max() < 1e-12
    assert np.abs(r2 - t2 @ real_wigner_D(2, R).T).max() < 1e-12


def test_round_trips_and_norms() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(5, 3))
    assert np.array_equal(spherical_to_vector(vector_to_spherical(v)), v)
    a = rng.normal(size=(5, 3, 3))
    t = a + a.transpose(0, 2, 1)
    t0, t2 = symmetric_to_spherical(t)
    assert np.abs(spherical_to_symmetric(t0, t2) - t).max() < 1e-12
    # orthonormal: the Frobenius norm is the norm of the six components
    assert np.allclose((t * t).sum((1, 2)), (t0 * t0).sum(1) + (t2 * t2).sum(1))
    q = symmetric_basis().reshape(6, 9)
    assert np.allclose(q @ q.T, np.eye(6))
    # the antisymmetric part is dropped
    anti = a - a.transpose(0, 2, 1)
    z0, z2 = symmetric_to_spherical(anti)
    assert np.abs(z0).max() < 1e-14 and np.abs(z2).max() < 1e-14


def test_l2_components_are_the_real_harmonics() -> None:
    """t2(r r^T) is proportional to Y_2m(r) with one positive constant (the real-SH table's signs)."""
    r = np.random.default_rng(1).normal(size=(20, 3))
    _, t2 = symmetric_to_spherical(np.einsum("ni,nj->nij", r, r))
    y = real_spherical_harmonics(torch.from_numpy(r), 2, normalize=False).numpy()[:, 4:9]
    ratio = t2 / y
    assert np.all(ratio > 0) and np.allclose(ratio, ratio[0, 0])
    # L = 1: (y, z, x) is proportional to Y_1 with a positive constant
    y1 = real_spherical_harmonics(torch.from_numpy(r), 1, normalize=False).numpy()[:, 1:4]
    ratio1 = vector_to_spherical(r) / y1
    assert np.all(ratio1 > 0) and np.allclose(ratio1, ratio1[0, 0])


def test_torch_differentiable_and_voigt() -> None:
    a = torch.randn(3, 3, 3, dtype=torch.float64, requires_grad=True)
    t0, t2 = symmetric_to_spherical(a)
    (t0.sum() + t2.sum()).backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()
    s = np.arange(6.0)
    m = voigt_to_matrix(s)
    assert np.array_equal(m, m.T) and m[1, 2] == 3 and m[0, 2] == 4 and m[0, 1] == 5
    assert np.array_equal(matrix_to_voigt(m), s)
    with pytest.raises(ValueError, match="trailing shape"):
        vector_to_spherical(np.zeros((2, 4)))
