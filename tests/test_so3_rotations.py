"""tnmat.so3.rotations: Euler angles, closed-form Wigner D (Wigner's d formula) and the batched torch real D."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from tnmat.so3 import real_spherical_harmonics, real_wigner_D, wigner_D
from tnmat.so3.rotations import (
    real_wigner_D_from_euler,
    real_wigner_D_torch,
    rotation_from_euler,
    wigner_D_from_euler,
    wigner_small_d,
)


def _angles(seed: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    return float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0, math.pi)), float(rng.uniform(0, 2 * math.pi))


def test_rotation_from_euler_matches_scipy_intrinsic_zyz():
    for seed in range(5):
        a = _angles(seed)
        np.testing.assert_allclose(rotation_from_euler(*a), Rotation.from_euler("ZYZ", a).as_matrix(), atol=1e-15)


def test_small_d_known_values():
    # d^1 (Sakurai eq. 3.8.35): d_11 = (1+cos b)/2, d_10 = -sin b/sqrt2, d_1,-1 = (1-cos b)/2, d_00 = cos b;
    # d^2_00 = P_2(cos b) (Sakurai eq. 3.8.34 relation d^l_00 = P_l(cos b))
    b = 1.234
    d1 = wigner_small_d(1, b)
    np.testing.assert_allclose(d1[2], [(1 - math.cos(b)) / 2, -math.sin(b) / math.sqrt(2), (1 + math.cos(b)) / 2],
                               atol=1e-15)
    assert d1[1, 1] == pytest.approx(math.cos(b), abs=1e-15)
    assert wigner_small_d(2, b)[2, 2] == pytest.approx((3 * math.cos(b) ** 2 - 1) / 2, abs=1e-15)
    for l in range(9):  # d(beta) is orthogonal and d(0) = 1
        d = wigner_small_d(l, b)
        np.testing.assert_allclose(d @ d.T, np.eye(2 * l + 1), atol=1e-13)
        np.testing.assert_allclose(wigner_small_d(l, 0.0), np.eye(2 * l + 1), atol=1e-15)


@pytest.mark.parametrize("l", [0, 1, 2, 4, 7, 10])
def test_closed_form_equals_quadrature_wigner_D(l):
    """Two independent routes (Wigner's formula vs integrating rotated harmonics) give the same matrices."""
    for seed in range(3):
        a = _angles(100 + seed)
        R = rotation_from_euler(*a)
        np.testing.assert_allclose(wigner_D_from_euler(l, *a), wigner_D(l, R), atol=1e-12)
        np.testing.assert_allclose(real_wigner_D_from_euler(l, *a), real_wigner_D(l, R), atol=1e-12)


@pytest.mark.parametrize("l", [0, 1, 3, 6])
def test_torch_real_D_batched_matches_numpy_and_rotates_Y(l):
    Rs = Rotation.random(4, random_state=l).as_matrix()
    d = real_wigner_D_torch(l, torch.from_numpy(Rs))
    assert d.shape == (4, 2 * l + 1, 2 * l + 1) and d.dtype == torch.float64
    v = torch.from_numpy(np.random.default_rng(l).normal(size=(6, 3)))
    y = real_spherical_harmonics(v, l)[:, l * l :]
    for k, R in enumerate(Rs):
        np.testing.assert_allclose(d[k].numpy(), real_wigner_D(l, R), atol=1e-13)
        y_rot = real_spherical_harmonics(v @ torch.from_numpy(R).T, l)[:, l * l :]
        torch.testing.assert_close(y_rot, y @ d[k].T, atol=1e-13, rtol=0)
    # homomorphism inside torch
    torch.testing.assert_close(
        real_wigner_D_torch(l, torch.from_numpy(Rs[0] @ Rs[1])), d[0] @ d[1], atol=1e-13, rtol=0
    )


def test_torch_real_D_gradient():
    # polynomial in R: gradcheck on a generic (not necessarily orthogonal) matrix, and for l = 1 the Jacobian
    # is the constant permutation P (x) P with D = P R P^T
    R = torch.from_numpy(Rotation.random(random_state=3).as_matrix()).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda r: real_wigner_D_torch(2, r), (R,))
    P = torch.tensor([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(real_wigner_D_torch(1, R), P @ R @ P.T, atol=1e-14, rtol=0)


def test_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        wigner_small_d(-1, 0.3)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 3\)"):
        real_wigner_D_torch(1, torch.eye(2))
