"""tnmat.so3: the conventions written in docs/conventions.md, each checked against an independent textbook formula.

Every test here pins one sentence of docs/conventions.md, so a change of phase or ordering fails loudly:
the real<->complex unitary written out by hand for l = 1, 2; the Wigner D matrix against Wigner's explicit
small-d formula with z-y-z Euler angles; the 3j <-> CG relation both ways; the 2jm cup as the l3 = 0 3j tensor.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from scipy.special import sph_harm_y

from tnmat.so3 import (
    cap,
    clebsch_gordan,
    complex_spherical_harmonics,
    cup,
    real_spherical_harmonics,
    real_to_complex_matrix,
    real_wigner_D,
    wigner_3j_tensor,
    wigner_D,
)

_f = math.factorial


def _small_d(l: int, beta: float) -> np.ndarray:
    """Wigner's formula d^l_{m'm}(beta) (Wigner 1931; Sakurai eq. 3.8.33; Wikipedia 'Wigner D-matrix').

    d^l_{m'm} = sum_s (-1)^(m'-m+s) sqrt((l+m')!(l-m')!(l+m)!(l-m)!) / ((l+m-s)! s! (m'-m+s)! (l-m'-s)!)
                * cos(beta/2)^(2l+m-m'-2s) sin(beta/2)^(m'-m+2s)
    """
    c, s_ = math.cos(beta / 2), math.sin(beta / 2)
    d = np.zeros((2 * l + 1, 2 * l + 1))
    for mp in range(-l, l + 1):
        for m in range(-l, l + 1):
            pre = math.sqrt(_f(l + mp) * _f(l - mp) * _f(l + m) * _f(l - m))
            tot = 0.0
            for s in range(max(0, m - mp), min(l + m, l - mp) + 1):
                den = _f(l + m - s) * _f(s) * _f(mp - m + s) * _f(l - mp - s)
                tot += (-1) ** (mp - m + s) * c ** (2 * l + m - mp - 2 * s) * s_ ** (mp - m + 2 * s) / den
            d[mp + l, m + l] = pre * tot
    return d


def _textbook_D(l: int, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """D^l_{m'm}(alpha, beta, gamma) = <l m'| exp(-i alpha J_z) exp(-i beta J_y) exp(-i gamma J_z) |l m>."""
    m = np.arange(-l, l + 1)
    return np.exp(-1j * m * alpha)[:, None] * _small_d(l, beta) * np.exp(-1j * m * gamma)[None, :]


def test_small_d_formula_matches_textbook_l1():
    # d^1 table (Sakurai eq. 3.8.35 / Wikipedia): d_00 = cos b, d_10 = -sin b / sqrt2, d_11 = (1 + cos b)/2
    b = 0.83
    d = _small_d(1, b)
    assert d[1, 1] == pytest.approx(math.cos(b), abs=1e-15)
    assert d[2, 1] == pytest.approx(-math.sin(b) / math.sqrt(2), abs=1e-15)
    assert d[2, 2] == pytest.approx((1 + math.cos(b)) / 2, abs=1e-15)
    assert d[0, 2] == pytest.approx((1 - math.cos(b)) / 2, abs=1e-15)


@pytest.mark.parametrize("l", [0, 1, 2, 3, 6])
def test_wigner_D_is_conjugate_of_textbook_D_with_zyz_euler_angles(l):
    """R = Rz(alpha) Ry(beta) Rz(gamma) (scipy 'ZYZ', intrinsic): wigner_D(l, R) = conj(D^l(alpha, beta, gamma)).

    Why the conjugate: the textbook relation Y(R^{-1} r) = D(R)^T Y(r) with R -> R^{-1} and unitarity gives
    Y(R r) = conj(D(R)) Y(r), which is the relation wigner_D is defined by.
    """
    rng = np.random.default_rng(l)
    for _ in range(3):
        alpha, gamma = rng.uniform(0, 2 * math.pi, 2)
        beta = rng.uniform(0, math.pi)
        R = Rotation.from_euler("ZYZ", [alpha, beta, gamma]).as_matrix()
        np.testing.assert_allclose(R, _rz(alpha) @ _ry(beta) @ _rz(gamma), atol=1e-15)
        np.testing.assert_allclose(wigner_D(l, R), _textbook_D(l, alpha, beta, gamma).conj(), atol=1e-13)
        u = real_to_complex_matrix(l)
        d_real = u @ _textbook_D(l, alpha, beta, gamma).conj() @ u.conj().T
        np.testing.assert_allclose(real_wigner_D(l, R), d_real.real, atol=1e-13)
        np.testing.assert_allclose(d_real.imag, 0.0, atol=1e-13)


def _rz(a: float) -> np.ndarray:
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


def _ry(b: float) -> np.ndarray:
    return np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])


def test_active_rotation_of_a_point():
    """Active convention: rotating the vector e_x by +90 degrees about z gives e_y, and Y follows the vector."""
    R = _rz(math.pi / 2)
    ex = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    ey = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    for l in range(4):
        y_x = real_spherical_harmonics(ex, l)[0, l * l :].numpy()
        y_y = real_spherical_harmonics(ey, l)[0, l * l :].numpy()
        np.testing.assert_allclose(real_wigner_D(l, R) @ y_x, y_y, atol=1e-14)


def test_real_to_complex_matrix_written_out():
    s = 1 / math.sqrt(2)
    # l = 1, rows/columns m = -1, 0, 1.  Y_{1,-1} = i (Y^-1 + Y^1)/sqrt2, Y_{1,0} = Y^0, Y_{1,1} = (Y^-1 - Y^1)/sqrt2
    u1 = np.array([[1j * s, 0, 1j * s], [0, 1, 0], [s, 0, -s]])
    np.testing.assert_allclose(real_to_complex_matrix(1), u1, atol=1e-15)
    # l = 2, m = 2: Y_{2,2} = (Y^2 + Y^-2)/sqrt2, Y_{2,-2} = i (Y^-2 - Y^2)/sqrt2
    u2 = real_to_complex_matrix(2)
    np.testing.assert_allclose(u2[4], [s, 0, 0, 0, s], atol=1e-15)
    np.testing.assert_allclose(u2[0], [1j * s, 0, 0, 0, -1j * s], atol=1e-15)
    np.testing.assert_allclose(u2[3], [0, s, 0, -s, 0], atol=1e-15)  # Y_{2,1} = (Y^-1 - Y^1)/sqrt2


def test_complex_sh_condon_shortley_explicit():
    # Y_1^1 = -sqrt(3/(8 pi)) (x + i y)/r: the Condon-Shortley minus sign (Jackson eq. 3.53; scipy sph_harm_y)
    v = np.array([[0.3, -1.1, 0.7]])
    r = np.linalg.norm(v)
    yc = complex_spherical_harmonics(torch.from_numpy(v), 1).numpy()[0]
    expected = math.sqrt(3 / (8 * math.pi)) * np.array([(v[0, 0] - 1j * v[0, 1]), 0, -(v[0, 0] + 1j * v[0, 1])]) / r
    np.testing.assert_allclose(yc[[1, 3]], expected[[0, 2]], atol=1e-15)
    theta, phi = math.acos(v[0, 2] / r), math.atan2(v[0, 1], v[0, 0])
    assert yc[3] == pytest.approx(complex(sph_harm_y(1, 1, theta, phi)), abs=1e-15)


@pytest.mark.parametrize("l1,l2,l3", [(1, 1, 2), (2, 3, 4), (3, 3, 3), (4, 2, 3)])
def test_3j_cg_relation_both_ways(l1, l2, l3):
    # (l1 l2 l3; m1 m2 m3) = (-1)^(l1-l2-m3) / sqrt(2l3+1) <l1 m1 l2 m2 | l3 -m3>   (Edmonds eq. 3.7.3)
    w, c = wigner_3j_tensor(l1, l2, l3), clebsch_gordan(l1, l2, l3)
    m3 = np.arange(-l3, l3 + 1)
    np.testing.assert_allclose(w, (-1.0) ** (l1 - l2 - m3) / math.sqrt(2 * l3 + 1) * c[:, :, ::-1], atol=1e-15)
    # <l1 m1 l2 m2 | l3 m3> = (-1)^(l1-l2+m3) sqrt(2l3+1) (l1 l2 l3; m1 m2 -m3)
    np.testing.assert_allclose(c, (-1.0) ** (l1 - l2 + m3) * math.sqrt(2 * l3 + 1) * w[:, :, ::-1], atol=1e-15)


@pytest.mark.parametrize("l", range(6))
def test_cup_is_the_2jm_symbol(l):
    # 2jm symbol (Wormer & Paldus): (l m, l m') = sqrt(2l+1) (l l 0; m m' 0) = (-1)^(l-m) delta_{m,-m'}
    np.testing.assert_allclose(cup(l), math.sqrt(2 * l + 1) * wigner_3j_tensor(l, l, 0)[:, :, 0], atol=1e-15)
    # the unit-norm l3 = 0 CG vector is cup / sqrt(2l+1)
    np.testing.assert_allclose(cup(l) / math.sqrt(2 * l + 1), clebsch_gordan(l, l, 0)[:, :, 0], atol=1e-15)
    # cup maps Y to its conjugate: sum_m' eps[m, m'] Y_l^m' = (-1)^(l-m) Y_l^-m = (-1)^l conj(Y_l^m)
    np.testing.assert_allclose(cup(l) @ cap(l), np.eye(2 * l + 1), atol=0)
    v = torch.from_numpy(np.random.default_rng(l).normal(size=(4, 3)))
    y = complex_spherical_harmonics(v, l).numpy()[:, l * l :]
    np.testing.assert_allclose(y @ cup(l).T, (-1) ** l * y.conj(), atol=1e-14)
