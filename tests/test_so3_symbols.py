"""tnmat.so3 coupling symbols: CG, 3j, real-basis CG, 2jm cup/cap, 6j, F- and R-symbols.

Checks: frozen literature values, sympy as an independent exact reference (l up to 12), orthogonality and
completeness, 3j symmetries, naturality under Wigner D (complex and real), Gaunt products of the real
harmonics, Biedenharn-Elliott / pentagon identities, and F-symbols against explicit fusion-tree overlaps.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from sympy.physics import wigner as sw

from tnmat.so3 import (
    cap,
    clebsch_gordan,
    clebsch_gordan_coefficient,
    cup,
    f_symbol,
    r_symbol,
    real_clebsch_gordan,
    real_spherical_harmonics,
    real_to_complex_matrix,
    real_wigner_D,
    triangle,
    wigner_3j,
    wigner_3j_tensor,
    wigner_6j,
    wigner_D,
)


def _triples(l_max: int):
    return [t for t in itertools.product(range(l_max + 1), repeat=3) if triangle(*t)]


# --- frozen values ----------------------------------------------------------------------------------------------


def test_frozen_table():
    s = math.sqrt
    # Clebsch-Gordan: Particle Data Group, "Clebsch-Gordan coefficients, spherical harmonics and d functions"
    # (Review of Particle Physics), 1x1 and 2x2 tables (Condon-Shortley phase)
    assert clebsch_gordan_coefficient(1, 0, 1, 0, 2, 0) == pytest.approx(s(2 / 3), abs=1e-15)
    assert clebsch_gordan_coefficient(1, 1, 1, -1, 0, 0) == pytest.approx(1 / s(3), abs=1e-15)
    assert clebsch_gordan_coefficient(1, 0, 1, 0, 0, 0) == pytest.approx(-1 / s(3), abs=1e-15)
    assert clebsch_gordan_coefficient(1, 1, 1, -1, 1, 0) == pytest.approx(1 / s(2), abs=1e-15)
    assert clebsch_gordan_coefficient(1, 1, 1, -1, 2, 0) == pytest.approx(1 / s(6), abs=1e-15)
    assert clebsch_gordan_coefficient(1, 0, 1, 0, 1, 0) == 0.0
    assert clebsch_gordan_coefficient(2, 0, 2, 0, 2, 0) == pytest.approx(-s(2 / 7), abs=1e-15)
    assert clebsch_gordan(1, 1, 2)[2, 1, 3] == pytest.approx(1 / s(2), abs=1e-15)  # <1 1 1 0|2 1>
    # 3j: (j j 0; m -m 0) = (-1)^(j-m)/sqrt(2j+1), Edmonds, Angular Momentum in QM, eq. (3.7.9)
    assert wigner_3j(1, 1, 0, 0, 0, 0) == pytest.approx(-1 / s(3), abs=1e-15)
    assert wigner_3j(2, 2, 0, 1, -1, 0) == pytest.approx(-1 / s(5), abs=1e-15)
    # 6j: {1 1 1; 1 1 1} = 1/6 and {2 2 2; 2 2 2} = -3/70 (Rotenberg et al., The 3-j and 6-j Symbols, 1959);
    # {a b c; 0 c b} = (-1)^(a+b+c)/sqrt((2b+1)(2c+1)), Edmonds eq. (6.3.2)
    assert wigner_6j(1, 1, 1, 1, 1, 1) == pytest.approx(1 / 6, abs=1e-15)
    assert wigner_6j(2, 2, 2, 2, 2, 2) == pytest.approx(-3 / 70, abs=1e-15)
    assert wigner_6j(1, 1, 1, 0, 1, 1) == pytest.approx(-1 / 3, abs=1e-15)
    assert wigner_6j(2, 3, 1, 0, 1, 3) == pytest.approx(1 / s(21), abs=1e-15)
    assert wigner_6j(1, 1, 3, 1, 1, 1) == 0.0  # (1 1 3) is not a triangle
    # real basis: coupling two l=1 vectors (y, z, x order) to l=1 gives +(a x b)/sqrt2 (derived from the
    # conventions above; frozen so the odd-sum -i phase cannot silently flip)
    P = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)
    a, b = np.random.default_rng(0).normal(size=(2, 3))
    c = np.einsum("ijk,i,j->k", real_clebsch_gordan(1, 1, 1), P @ a, P @ b)
    np.testing.assert_allclose(c, P @ np.cross(a, b) / s(2), atol=1e-15)
    # and two l=1 vectors to l=0 gives -(a . b)/sqrt3
    c0 = np.einsum("ijk,i,j->k", real_clebsch_gordan(1, 1, 0), P @ a, P @ b)
    np.testing.assert_allclose(c0, [-(a @ b) / s(3)], atol=1e-15)


# --- independent reference: sympy (exact) -----------------------------------------------------------------------


def test_against_sympy_random_sample():
    rng = np.random.default_rng(42)
    n_checked = 0
    while n_checked < 60:
        l1, l2 = (int(v) for v in rng.integers(0, 13, 2))
        l3 = int(rng.integers(abs(l1 - l2), min(l1 + l2, 12) + 1)) if abs(l1 - l2) <= 12 else 0
        if not triangle(l1, l2, l3):
            continue
        m1 = int(rng.integers(-l1, l1 + 1))
        m2 = int(rng.integers(max(-l2, -l3 - m1), min(l2, l3 - m1) + 1))
        ref = float(sw.clebsch_gordan(l1, l2, l3, m1, m2, m1 + m2))
        assert clebsch_gordan_coefficient(l1, m1, l2, m2, l3, m1 + m2) == pytest.approx(ref, abs=1e-14)
        assert clebsch_gordan(l1, l2, l3)[m1 + l1, m2 + l2, m1 + m2 + l3] == pytest.approx(ref, abs=1e-14)
        ref3 = float(sw.wigner_3j(l1, l2, l3, m1, m2, -m1 - m2))
        assert wigner_3j(l1, l2, l3, m1, m2, -m1 - m2) == pytest.approx(ref3, abs=1e-14)
        js = [int(v) for v in rng.integers(0, 9, 3)]
        ref6 = float(sw.wigner_6j(l1, l2, l3, *js))
        assert wigner_6j(l1, l2, l3, *js) == pytest.approx(ref6, abs=1e-14)
        n_checked += 1
    # the largest case the descriptors use, checked in full
    ref = np.array(
        [[float(sw.clebsch_gordan(12, 12, 12, m1, m2, m1 + m2)) if abs(m1 + m2) <= 12 else 0.0
          for m2 in range(-12, 13)] for m1 in range(-12, 13)]
    )
    got = np.array([[clebsch_gordan(12, 12, 12)[m1 + 12, m2 + 12, m1 + m2 + 12] if abs(m1 + m2) <= 12 else 0.0
                     for m2 in range(-12, 13)] for m1 in range(-12, 13)])
    np.testing.assert_allclose(got, ref, atol=1e-14)


# --- CG identities ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("l1,l2,l3", _triples(4) + [(12, 12, 12), (12, 7, 9), (12, 12, 0)])
def test_cg_orthonormal_and_real_cg_orthonormal(l1, l2, l3):
    for c in (clebsch_gordan(l1, l2, l3), real_clebsch_gordan(l1, l2, l3)):
        np.testing.assert_allclose(np.einsum("abc,abd->cd", c, c), np.eye(2 * l3 + 1), atol=1e-13)


@pytest.mark.parametrize("l1,l2", [(0, 3), (2, 2), (3, 4), (6, 5)])
def test_cg_completeness(l1, l2):
    for fn in (clebsch_gordan, real_clebsch_gordan):
        s = sum(np.einsum("abc,dec->abde", fn(l1, l2, l3), fn(l1, l2, l3)) for l3 in range(abs(l1 - l2), l1 + l2 + 1))
        eye = np.einsum("ad,be->abde", np.eye(2 * l1 + 1), np.eye(2 * l2 + 1))
        np.testing.assert_allclose(s, eye, atol=1e-13)


def test_cg_zero_outside_triangle_and_m_conservation():
    assert not clebsch_gordan(1, 1, 3).any() and not real_clebsch_gordan(2, 0, 1).any()
    c = clebsch_gordan(3, 2, 4)
    for i, j, k in zip(*np.nonzero(c), strict=True):
        assert (i - 3) + (j - 2) == k - 4


@pytest.mark.parametrize("l1,l2,l3", [(1, 1, 1), (2, 3, 4), (3, 3, 2), (4, 2, 5), (5, 5, 5)])
def test_3j_symmetries(l1, l2, l3):
    w = wigner_3j_tensor(l1, l2, l3)
    sign = (-1) ** (l1 + l2 + l3)
    np.testing.assert_allclose(wigner_3j_tensor(l2, l3, l1).transpose(2, 0, 1), w, atol=1e-15)  # cyclic
    np.testing.assert_allclose(wigner_3j_tensor(l3, l1, l2).transpose(1, 2, 0), w, atol=1e-15)
    np.testing.assert_allclose(wigner_3j_tensor(l2, l1, l3).transpose(1, 0, 2), sign * w, atol=1e-15)  # odd
    np.testing.assert_allclose(wigner_3j_tensor(l1, l3, l2).transpose(0, 2, 1), sign * w, atol=1e-15)
    np.testing.assert_allclose(w[::-1, ::-1, ::-1], sign * w, atol=1e-15)  # m -> -m
    m1, m2 = 1, -1
    assert w[m1 + l1, m2 + l2, l3] == pytest.approx(wigner_3j(l1, l2, l3, m1, m2, 0), abs=1e-15)
    # normalisation: sum over all m of 3j^2 = 1
    assert float((w**2).sum()) == pytest.approx(1.0, abs=1e-13)


@pytest.mark.parametrize("l1,l2,l3", [(1, 1, 2), (2, 3, 4), (3, 3, 3), (4, 4, 1), (2, 2, 0)])
def test_r_symbol_is_exchange_phase(l1, l2, l3):
    np.testing.assert_allclose(
        clebsch_gordan(l2, l1, l3).transpose(1, 0, 2), r_symbol(l1, l2, l3) * clebsch_gordan(l1, l2, l3), atol=1e-15
    )
    assert r_symbol(1, 1, 1) == -1 and r_symbol(1, 1, 2) == 1


@pytest.mark.parametrize("l1,l2,l3", [(1, 1, 0), (1, 1, 1), (1, 2, 2), (2, 2, 3), (3, 4, 5), (4, 4, 4)])
def test_cg_naturality_complex_and_real(l1, l2, l3):
    """sum C[m1, m2, M] (D1 a)_m1 (D2 b)_m2 = (D3 [C a b])_M for random rotations."""
    for seed in (0, 1):
        R = Rotation.random(random_state=seed).as_matrix()
        for cg, dfun in ((clebsch_gordan, wigner_D), (real_clebsch_gordan, real_wigner_D)):
            c = cg(l1, l2, l3)
            d1, d2, d3 = (dfun(l, R) for l in (l1, l2, l3))
            np.testing.assert_allclose(
                np.einsum("abc,ai,bj->ijc", c, d1, d2), np.einsum("ck,ijk->ijc", d3, c), atol=1e-13
            )


@pytest.mark.parametrize("l1,l2,l3", _triples(3) + [(5, 6, 7), (6, 6, 6), (8, 4, 5)])
def test_real_cg_is_transformed_complex_cg(l1, l2, l3):
    u1, u2, u3 = (real_to_complex_matrix(l) for l in (l1, l2, l3))
    cr = np.einsum("ijk,ai,bj,ck->abc", clebsch_gordan(l1, l2, l3), u1.conj(), u2.conj(), u3)
    phase = 1.0 if (l1 + l2 + l3) % 2 == 0 else -1j
    np.testing.assert_allclose(phase * cr, real_clebsch_gordan(l1, l2, l3), atol=1e-14)
    assert real_clebsch_gordan(l1, l2, l3).dtype == np.float64


@pytest.mark.parametrize("l", range(9))
def test_real_cg_l_l_0_and_power_spectrum_identity(l):
    c = real_clebsch_gordan(l, l, 0)[:, :, 0]
    np.testing.assert_allclose(c, (-1) ** l / math.sqrt(2 * l + 1) * np.eye(2 * l + 1), atol=1e-15)
    # B2 = sum_m (-1)^(l-m)/sqrt(2l+1) A_m A_{-m} (complex basis) = (-1)^l/sqrt(2l+1) sum_m A_real_m^2
    rng = np.random.default_rng(l)
    a_real = rng.normal(size=2 * l + 1)
    a_c = real_to_complex_matrix(l).conj().T @ a_real
    m = np.arange(-l, l + 1)
    b2 = np.sum((-1.0) ** (l - m) / math.sqrt(2 * l + 1) * a_c * a_c[::-1])
    assert b2 == pytest.approx((-1) ** l / math.sqrt(2 * l + 1) * a_real @ a_real, abs=1e-13)
    assert b2 == pytest.approx(np.einsum("i,j,ij->", a_c, a_c, clebsch_gordan(l, l, 0)[:, :, 0]), abs=1e-13)


def test_gaunt_product_of_real_harmonics():
    """Y_{l1 a} Y_{l2 b} = sum_L sqrt((2l1+1)(2l2+1)/(4 pi (2L+1))) <l1 0 l2 0|L 0> sum_c C_real[a,b,c] Y_{L c}.

    Links real_clebsch_gordan to the real harmonics with no Wigner D involved."""
    v = torch.from_numpy(np.random.default_rng(3).normal(size=(20, 3)))
    y = real_spherical_harmonics(v, 8).numpy()
    for l1, l2 in [(1, 1), (1, 2), (2, 3), (3, 3), (4, 2)]:
        lhs = np.einsum("pa,pb->pab", y[:, l1 * l1 : (l1 + 1) ** 2], y[:, l2 * l2 : (l2 + 1) ** 2])
        rhs = np.zeros_like(lhs)
        for L in range(abs(l1 - l2), l1 + l2 + 1, 2):
            k = math.sqrt((2 * l1 + 1) * (2 * l2 + 1) / (4 * math.pi * (2 * L + 1)))
            k *= clebsch_gordan_coefficient(l1, 0, l2, 0, L, 0)
            rhs += k * np.einsum("abc,pc->pab", real_clebsch_gordan(l1, l2, L), y[:, L * L : (L + 1) ** 2])
        np.testing.assert_allclose(lhs, rhs, atol=1e-13)


# --- 2jm cup / cap ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("l", range(7))
def test_cup_cap(l):
    eps = cup(l)
    np.testing.assert_array_equal(eps @ cap(l), np.eye(2 * l + 1))
    m = np.arange(-l, l + 1)
    assert eps[0, -1] == (-1) ** (2 * l) and eps[l, l] == (-1) ** l and np.count_nonzero(eps) == 2 * l + 1
    np.testing.assert_allclose(eps, math.sqrt(2 * l + 1) * clebsch_gordan(l, l, 0)[:, :, 0], atol=1e-14)
    np.testing.assert_array_equal(np.diag(eps[:, ::-1]), (-1.0) ** (l - m))
    # invariant pairing: D^T eps D = eps for the complex Wigner D
    d = wigner_D(l, Rotation.random(random_state=l).as_matrix())
    np.testing.assert_allclose(d.T @ eps @ d, eps, atol=1e-13)


# --- 6j, F-symbols, pentagon ------------------------------------------------------------------------------------


def test_6j_orthogonality():
    # sum_x (2x+1)(2y+1) {a b x; c d y} {a b x; c d y'} = delta_{y y'} (Edmonds eq. 6.2.9)
    for a, b, c, d in [(1, 2, 2, 1), (2, 2, 3, 3), (3, 1, 2, 4), (4, 4, 4, 4)]:
        ys = [y for y in range(0, 10) if triangle(a, d, y) and triangle(b, c, y)]
        g = np.array([[sum((2 * x + 1) * (2 * y + 1) * wigner_6j(a, b, x, c, d, y) * wigner_6j(a, b, x, c, d, yp)
                           for x in range(0, 12)) for yp in ys] for y in ys])
        np.testing.assert_allclose(g, np.eye(len(ys)), atol=1e-13)


def test_biedenharn_elliott_identity():
    # sum_x (-1)^(S+x) (2x+1) {a b x; c d p}{c d x; e f q}{e f x; b a r} = {p q r; e a d}{p q r; f b c}
    rng = np.random.default_rng(7)
    nontrivial = 0
    while nontrivial < 25:
        a, b, c, d, e, f, p, q, r = (int(v) for v in rng.integers(0, 5, 9))
        s = a + b + c + d + e + f + p + q + r
        rhs = wigner_6j(p, q, r, e, a, d) * wigner_6j(p, q, r, f, b, c)
        if rhs == 0.0:
            continue
        lhs = sum((-1) ** ((s + x) % 2) * (2 * x + 1) * wigner_6j(a, b, x, c, d, p) * wigner_6j(c, d, x, e, f, q)
                  * wigner_6j(e, f, x, b, a, r) for x in range(0, 20))
        assert lhs == pytest.approx(rhs, abs=1e-13)
        nontrivial += 1


def test_f_symbol_is_fusion_tree_overlap_and_orthogonal():
    """F^{abc}_d[e, f] = <(a,(b,c)f) d M | ((a,b)e, c) d M> computed from explicit CG trees."""
    for a, b, c, d in [(1, 1, 1, 1), (1, 2, 1, 2), (2, 2, 2, 2), (2, 1, 3, 3), (3, 2, 2, 1)]:
        es = [e for e in range(abs(a - b), a + b + 1) if triangle(e, c, d)]
        fs = [f for f in range(abs(b - c), b + c + 1) if triangle(a, f, d)]
        assert len(es) == len(fs)
        fmat = np.array([[f_symbol(a, b, c, d, e, f) for f in fs] for e in es])
        np.testing.assert_allclose(fmat @ fmat.T, np.eye(len(es)), atol=1e-13)
        for i, e in enumerate(es):
            t1 = np.einsum("ijx,xkM->ijkM", clebsch_gordan(a, b, e), clebsch_gordan(e, c, d))
            for j, f in enumerate(fs):
                t2 = np.einsum("jky,iyM->ijkM", clebsch_gordan(b, c, f), clebsch_gordan(a, f, d))
                np.testing.assert_allclose(np.einsum("ijkM,ijkM->M", t1, t2), fmat[i, j], atol=1e-13)


def test_pentagon_identity():
    """F^{xcd}_e[y,w] F^{abw}_e[x,v] = sum_z F^{abc}_y[x,z] F^{azd}_e[y,v] F^{bcd}_v[z,w] on random labels."""
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(40):
        a, b, c, d, e = (int(v) for v in rng.integers(0, 4, 5))
        for x, y, w, v in itertools.product(range(7), repeat=4):
            if not (triangle(a, b, x) and triangle(x, c, y) and triangle(y, d, e) and triangle(c, d, w)
                    and triangle(x, w, e) and triangle(b, w, v) and triangle(a, v, e)):
                continue
            lhs = f_symbol(x, c, d, e, y, w) * f_symbol(a, b, w, e, x, v)
            rhs = sum(f_symbol(a, b, c, y, x, z) * f_symbol(a, z, d, e, y, v) * f_symbol(b, c, d, v, z, w)
                      for z in range(abs(b - c), b + c + 1))
            assert lhs == pytest.approx(rhs, abs=1e-13)
            checked += 1
    assert checked > 200


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="non-negative integers"):
        clebsch_gordan(1, -1, 1)
    with pytest.raises(ValueError, match="non-negative integers"):
        wigner_6j(0.5, 0.5, 1, 1, 1, 1)
    with pytest.raises(ValueError):
        real_to_complex_matrix(-2)
