"""tnmat.so3 spherical harmonics and Wigner D: known values, scipy reference, quadrature, rotations, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from scipy.special import roots_legendre, sph_harm_y

from tnmat.so3 import (
    complex_spherical_harmonics,
    real_spherical_harmonics,
    real_to_complex_matrix,
    real_wigner_D,
    sh_index,
    wigner_D,
)

L_MAX = 10


def _vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3)) * 1.7


def _sph(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = np.linalg.norm(v, axis=-1)
    return r, np.arccos(v[:, 2] / r), np.arctan2(v[:, 1], v[:, 0])


def _block(y: np.ndarray | torch.Tensor, l: int):
    return y[..., l * l : (l + 1) ** 2]


def test_frozen_low_order_values():
    # Y_00 = 1/(2 sqrt(pi)) and Y_1 = sqrt(3/(4 pi)) (y, z, x)/r: the standard real SH table
    # (e.g. Wikipedia "Table of spherical harmonics", real section); Y_{2,0} = sqrt(5/(16 pi)) (3z^2 - r^2)/r^2
    # and Y_{2,2} = sqrt(15/(16 pi)) (x^2 - y^2)/r^2 from the same table.
    v = _vectors(5, 0)
    y = real_spherical_harmonics(torch.from_numpy(v), 2).numpy()
    r = np.linalg.norm(v, axis=1)
    x_, y_, z_ = (v / r[:, None]).T
    np.testing.assert_allclose(y[:, 0], 0.5 / math.sqrt(math.pi), rtol=1e-15)
    np.testing.assert_allclose(y[:, 1:4], math.sqrt(3 / (4 * math.pi)) * np.stack([y_, z_, x_], 1), rtol=1e-14)
    np.testing.assert_allclose(y[:, sh_index(2, 0)], math.sqrt(5 / (16 * math.pi)) * (3 * z_**2 - 1), atol=1e-15)
    np.testing.assert_allclose(y[:, sh_index(2, 2)], math.sqrt(15 / (16 * math.pi)) * (x_**2 - y_**2), atol=1e-15)
    np.testing.assert_allclose(y[:, sh_index(2, -2)], math.sqrt(15 / (4 * math.pi)) * x_ * y_, atol=1e-15)
    assert sh_index(3, -3) == 9 and sh_index(3, 3) == 15


def test_orthonormal_by_exact_quadrature():
    # Gauss-Legendre in cos(theta) with L+1 nodes x 2L+1 uniform azimuths is exact for degree 2L
    n_t, n_p = L_MAX + 1, 2 * L_MAX + 1
    x, w = roots_legendre(n_t)
    phi = 2 * np.pi * np.arange(n_p) / n_p + 0.3
    st = np.sqrt(1 - x**2)
    pts = np.stack([np.outer(st, np.cos(phi)), np.outer(st, np.sin(phi)), np.outer(x, np.ones(n_p))], -1)
    weights = np.outer(w, np.full(n_p, 2 * np.pi / n_p)).ravel()
    y = real_spherical_harmonics(torch.from_numpy(pts.reshape(-1, 3)), L_MAX).numpy()
    gram = y.T @ (weights[:, None] * y)
    np.testing.assert_allclose(gram, np.eye((L_MAX + 1) ** 2), atol=1e-13)
    yc = complex_spherical_harmonics(torch.from_numpy(pts.reshape(-1, 3)), L_MAX).numpy()
    np.testing.assert_allclose(yc.conj().T @ (weights[:, None] * yc), np.eye((L_MAX + 1) ** 2), atol=1e-13)


def test_real_and_complex_match_scipy_via_U():
    v = _vectors(40, 1)
    _, theta, phi = _sph(v)
    yr = real_spherical_harmonics(torch.from_numpy(v), L_MAX).numpy()
    yc = complex_spherical_harmonics(torch.from_numpy(v), L_MAX).numpy()
    for l in range(L_MAX + 1):
        ref = np.stack([sph_harm_y(l, m, theta, phi) for m in range(-l, l + 1)], axis=1)  # scipy: CS phase
        u = real_to_complex_matrix(l)
        np.testing.assert_allclose(u @ u.conj().T, np.eye(2 * l + 1), atol=1e-15)
        np.testing.assert_allclose(_block(yc, l), ref, atol=1e-13)
        np.testing.assert_allclose(_block(yr, l), ref @ u.T, atol=1e-13)  # Y_real = U Y_complex


def test_real_sh_definition_from_complex():
    # Y_{l,m>0} = sqrt2 (-1)^m Re Y_l^m, Y_{l,m<0} = sqrt2 (-1)^m Im Y_l^{|m|}
    v = _vectors(10, 2)
    _, theta, phi = _sph(v)
    yr = real_spherical_harmonics(torch.from_numpy(v), 5).numpy()
    for l in range(6):
        for m in range(1, l + 1):
            yc = sph_harm_y(l, m, theta, phi)
            np.testing.assert_allclose(yr[:, sh_index(l, m)], math.sqrt(2) * (-1) ** m * yc.real, atol=1e-14)
            np.testing.assert_allclose(yr[:, sh_index(l, -m)], math.sqrt(2) * (-1) ** m * yc.imag, atol=1e-14)


def test_solid_harmonics_and_homogeneity():
    v = _vectors(30, 3)
    r = np.linalg.norm(v, axis=1)
    y = real_spherical_harmonics(torch.from_numpy(v), L_MAX).numpy()
    s = real_spherical_harmonics(torch.from_numpy(v), L_MAX, normalize=False).numpy()
    for l in range(L_MAX + 1):
        # compare on the unit sphere: r^l Y has cancellations relative to its size r^l
        np.testing.assert_allclose(_block(s, l) / r[:, None] ** l, _block(y, l), atol=1e-13)
    # homogeneous of degree l, parity (-1)^l
    s2 = real_spherical_harmonics(torch.from_numpy(-0.6 * v), L_MAX, normalize=False).numpy()
    for l in range(L_MAX + 1):
        np.testing.assert_allclose(_block(s2, l) / (-0.6 * r[:, None]) ** l, _block(y, l), atol=1e-13)
    # the origin: only the constant survives, and nothing is NaN
    z = real_spherical_harmonics(torch.zeros(1, 3, dtype=torch.float64), 3, normalize=False)
    np.testing.assert_allclose(z.numpy()[0], [0.5 / math.sqrt(math.pi)] + [0.0] * 15)


def test_zero_vector_with_normalize_raises():
    with pytest.raises(ValueError, match="zero-length"):
        real_spherical_harmonics(torch.zeros(2, 3, dtype=torch.float64), 2)
    with pytest.raises(ValueError, match="shape"):
        real_spherical_harmonics(torch.ones(2, 4), 2)


def test_shapes_dtypes_and_float32():
    v = torch.from_numpy(_vectors(24, 4)).reshape(2, 3, 4, 3)
    y64 = real_spherical_harmonics(v, 4)
    assert y64.shape == (2, 3, 4, 25) and y64.dtype == torch.float64
    y32 = real_spherical_harmonics(v.float(), 4)
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y64, atol=2e-6, rtol=1e-5)
    assert real_spherical_harmonics(v, 0).shape == (2, 3, 4, 1)


@pytest.mark.parametrize("normalize", [True, False])
def test_gradcheck(normalize):
    v = torch.from_numpy(_vectors(6, 5)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: real_spherical_harmonics(x, 5, normalize=normalize), (v,))


def test_gradient_of_solid_harmonic_l1_is_constant():
    # d/dr of sqrt(3/4pi) (y, z, x) is a constant permutation matrix: independent analytic check of the backward
    v = torch.from_numpy(_vectors(3, 6)).requires_grad_(True)
    jac = torch.autograd.functional.jacobian(lambda x: real_spherical_harmonics(x, 1, normalize=False)[..., 1:], v)
    expected = math.sqrt(3 / (4 * math.pi)) * np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    for i in range(3):
        np.testing.assert_allclose(jac[i, :, i, :].numpy(), expected, atol=1e-15)


# --- Wigner D ---------------------------------------------------------------------------------------------------


def _rot(seed: int) -> np.ndarray:
    return Rotation.random(random_state=seed).as_matrix()


@pytest.mark.parametrize("l", range(9))
def test_sh_rotate_with_wigner_D(l):
    """Y(R r) = D(R) Y(r) in the real and the complex basis, to 1e-12 (l <= 8)."""
    R = _rot(10 + l)
    v = _vectors(25, 7)
    vr = v @ R.T
    y = _block(real_spherical_harmonics(torch.from_numpy(v), l), l).numpy()
    yr = _block(real_spherical_harmonics(torch.from_numpy(vr), l), l).numpy()
    np.testing.assert_allclose(yr, y @ real_wigner_D(l, R).T, atol=1e-12)
    c = _block(complex_spherical_harmonics(torch.from_numpy(v), l), l).numpy()
    cr = _block(complex_spherical_harmonics(torch.from_numpy(vr), l), l).numpy()
    np.testing.assert_allclose(cr, c @ wigner_D(l, R).T, atol=1e-12)


@pytest.mark.parametrize("l", [0, 1, 2, 5, 8])
def test_wigner_D_homomorphism_and_orthogonality(l):
    R1, R2 = _rot(1), _rot(2)
    d1, d2, d12 = real_wigner_D(l, R1), real_wigner_D(l, R2), real_wigner_D(l, R1 @ R2)
    np.testing.assert_allclose(d12, d1 @ d2, atol=1e-13)
    np.testing.assert_allclose(d1 @ d1.T, np.eye(2 * l + 1), atol=1e-13)
    np.testing.assert_allclose(real_wigner_D(l, R1.T), d1.T, atol=1e-13)
    np.testing.assert_allclose(real_wigner_D(l, np.eye(3)), np.eye(2 * l + 1), atol=1e-14)
    c1, c2, c12 = wigner_D(l, R1), wigner_D(l, R2), wigner_D(l, R1 @ R2)
    np.testing.assert_allclose(c12, c1 @ c2, atol=1e-13)
    np.testing.assert_allclose(c1 @ c1.conj().T, np.eye(2 * l + 1), atol=1e-13)
    u = real_to_complex_matrix(l)
    np.testing.assert_allclose(u @ c1 @ u.conj().T, d1, atol=1e-13)


def test_wigner_D_analytic_cases():
    # rotation by alpha about z: phi -> phi + alpha, so Y_l^m(R r) = exp(i m alpha) Y_l^m(r)
    alpha = 0.7312
    Rz = Rotation.from_rotvec([0, 0, alpha]).as_matrix()
    for l in range(6):
        m = np.arange(-l, l + 1)
        np.testing.assert_allclose(wigner_D(l, Rz), np.diag(np.exp(1j * m * alpha)), atol=1e-14)
    # l = 1 real basis is (y, z, x): D^1 = P R P^T with P the permutation (x, y, z) -> (y, z, x)
    R = _rot(3)
    P = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)
    np.testing.assert_allclose(real_wigner_D(1, R), P @ R @ P.T, atol=1e-14)


def test_wigner_D_rejects_non_rotations():
    with pytest.raises(ValueError, match="proper rotation"):
        real_wigner_D(2, np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="3x3"):
        wigner_D(1, np.eye(2))


def test_chunked_evaluation_matches_single_pass(monkeypatch):
    """The CPU path evaluates in chunks; values and gradients must not depend on the chunk boundaries."""
    import tnmat.so3.spherical_harmonics as sh

    v = torch.from_numpy(_vectors(1001, 8))
    weights = torch.arange(49.0, dtype=torch.float64)
    results = []
    for chunk in (1 << 20, 97):
        monkeypatch.setattr(sh, "_CPU_CHUNK", chunk)
        vg = v.clone().requires_grad_(True)
        y_grad_path = real_spherical_harmonics(vg, 6)
        (y_grad_path**2 * weights).sum().backward()
        results.append((real_spherical_harmonics(v, 6), real_spherical_harmonics(v, 6, normalize=False), vg.grad))
        # the differentiable (out-of-place) and the no-grad (in-place buffers) code paths agree
        torch.testing.assert_close(y_grad_path.detach(), results[-1][0], atol=1e-14, rtol=0)
        sg = real_spherical_harmonics(v.clone().requires_grad_(True), 6, normalize=False).detach()
        torch.testing.assert_close(sg, results[-1][1], atol=1e-10, rtol=1e-12)  # |r|^6 up to ~1e3
    (a, sa, ga), (b, sb, gb) = results
    torch.testing.assert_close(b, a, atol=0, rtol=0)
    torch.testing.assert_close(sb, sa, atol=0, rtol=0)
    torch.testing.assert_close(gb, ga, atol=1e-14, rtol=1e-12)
