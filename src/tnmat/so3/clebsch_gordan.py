"""Clebsch-Gordan coefficients and Wigner 3j symbols (exact Racah formula), real-basis coupling, 2jm cup/cap.

All values are computed exactly (integer / ``fractions.Fraction`` arithmetic; the result is ``sign * sqrt(q)``
with q rational) and rounded once to float64.  Tensors are indexed by m + l (m = -l..l) and cached.
Conventions: docs/conventions.md.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np

from tnmat.so3.spherical_harmonics import _u

__all__ = [
    "clebsch_gordan",
    "clebsch_gordan_coefficient",
    "real_clebsch_gordan",
    "wigner_3j",
    "wigner_3j_tensor",
    "cup",
    "cap",
    "triangle",
]

_f = math.factorial


def _check_l(name: str, *ls: int) -> tuple[int, ...]:
    out = []
    for l in ls:
        if int(l) != l or l < 0:
            raise ValueError(f"{name}: angular momenta must be non-negative integers, got {ls}")
        out.append(int(l))
    return tuple(out)


def triangle(l1: int, l2: int, l3: int) -> bool:
    """True when (l1, l2, l3) satisfy the triangle condition |l1 - l2| <= l3 <= l1 + l2."""
    return abs(l1 - l2) <= l3 <= l1 + l2


def _cg_squared_signed(j1: int, m1: int, j2: int, m2: int, j: int, m: int) -> tuple[int, Fraction]:
    """<j1 m1 j2 m2 | j m> = sign * sqrt(q): returns (sign, q) exactly (Racah 1942, eq. 16.1 of Varshalovich)."""
    if m1 + m2 != m or not triangle(j1, j2, j) or abs(m1) > j1 or abs(m2) > j2 or abs(m) > j:
        return 0, Fraction(0)
    pre = Fraction(
        (2 * j + 1) * _f(j + j1 - j2) * _f(j - j1 + j2) * _f(j1 + j2 - j) * _f(j + m) * _f(j - m)
        * _f(j1 - m1) * _f(j1 + m1) * _f(j2 - m2) * _f(j2 + m2),
        _f(j1 + j2 + j + 1),
    )
    k_min = max(0, j2 - j - m1, j1 - j + m2)
    k_max = min(j1 + j2 - j, j1 - m1, j2 + m2)
    dens = []
    for k in range(k_min, k_max + 1):
        den = _f(k) * _f(j1 + j2 - j - k) * _f(j1 - m1 - k) * _f(j2 + m2 - k)
        den *= _f(j - j2 + m1 + k) * _f(j - j1 - m2 + k)
        dens.append(den)
    # exact integer sum over a common denominator (much faster than summing Fractions)
    common = math.lcm(*dens)
    s = sum((-1) ** (k_min + i) * (common // den) for i, den in enumerate(dens))
    if s == 0:
        return 0, Fraction(0)
    return (1 if s > 0 else -1), pre * Fraction(s * s, common * common)


def _sqrt_signed(sign: int, q: Fraction) -> float:
    # float(Fraction) is correctly rounded; one more rounding in sqrt
    return sign * math.sqrt(float(q)) if sign else 0.0


@lru_cache(maxsize=1 << 16)
def clebsch_gordan_coefficient(l1: int, m1: int, l2: int, m2: int, l3: int, m3: int) -> float:
    """A single complex-basis Clebsch-Gordan coefficient <l1 m1 l2 m2 | l3 m3> (Condon-Shortley phase)."""
    _check_l("clebsch_gordan_coefficient", l1, l2, l3)
    return _sqrt_signed(*_cg_squared_signed(int(l1), int(m1), int(l2), int(m2), int(l3), int(m3)))


@lru_cache(maxsize=4096)
def _cg(l1: int, l2: int, l3: int) -> np.ndarray:
    out = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    if triangle(l1, l2, l3):
        for m1 in range(-l1, l1 + 1):
            for m2 in range(max(-l2, -l3 - m1), min(l2, l3 - m1) + 1):
                out[m1 + l1, m2 + l2, m1 + m2 + l3] = _sqrt_signed(*_cg_squared_signed(l1, m1, l2, m2, l3, m1 + m2))
    out.setflags(write=False)
    return out


def clebsch_gordan(l1: int, l2: int, l3: int) -> np.ndarray:
    """Complex-basis CG tensor ``C[m1+l1, m2+l2, m3+l3] = <l1 m1 l2 m2 | l3 m3>``, shape (2l1+1, 2l2+1, 2l3+1).

    Condon-Shortley phase (``<l1 l1 l2 (l3-l1) | l3 l3> > 0``); all zeros when the triangle condition fails.
    Coupling: ``c_M = sum_{m1 m2} C[m1, m2, M] a_m1 b_m2`` maps vectors transforming like ``Y_l1``, ``Y_l2``
    to one transforming like ``Y_l3``.
    """
    return _cg(*_check_l("clebsch_gordan", l1, l2, l3)).copy()


@lru_cache(maxsize=4096)
def _real_cg(l1: int, l2: int, l3: int) -> np.ndarray:
    c = _cg(l1, l2, l3)
    # c_real[M'] = U3 c_c with a_c = U1^dagger a_real: C_real[a,b,c] = sum C[i,j,k] conj(U1[a,i]) conj(U2[b,j]) U3[c,k]
    cr = np.einsum("ijk,ai,bj,ck->abc", c, _u(l1).conj(), _u(l2).conj(), _u(l3), optimize=True)
    if (l1 + l2 + l3) % 2:
        cr = -1j * cr  # purely imaginary for odd l1+l2+l3: a global phase keeps equivariance
    if np.abs(cr.imag).max(initial=0.0) > 1e-12:
        raise ArithmeticError(f"real_clebsch_gordan({l1}, {l2}, {l3}): result not real (internal error)")
    out = np.ascontiguousarray(cr.real)
    out[np.abs(out) < 1e-15] = 0.0  # exact zeros where the sum cancels
    out.setflags(write=False)
    return out


def real_clebsch_gordan(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real-basis coupling tensor, shape (2l1+1, 2l2+1, 2l3+1), real float64.

    ``C_real = einsum('ijk,ai,bj,ck->abc', C, conj(U1), conj(U2), U3)`` with ``U = real_to_complex_matrix``;
    that is real for l1+l2+l3 even and purely imaginary for odd sums, which are multiplied by ``-i``.
    Properties: ``c_M = sum C_real[m1, m2, M] a_m1 b_m2`` is equivariant under the real Wigner D,
    ``sum_{m1 m2} C_real[m1, m2, M] C_real[m1, m2, M'] = delta_{M M'}``, and
    ``C_real(l, l, 0)[:, :, 0] = (-1)^l / sqrt(2l+1) * identity``.
    """
    return _real_cg(*_check_l("real_clebsch_gordan", l1, l2, l3)).copy()


def wigner_3j(l1: int, l2: int, l3: int, m1: int, m2: int, m3: int) -> float:
    """Wigner 3j symbol ``(l1 l2 l3; m1 m2 m3) = (-1)^(l1-l2-m3) / sqrt(2l3+1) <l1 m1 l2 m2 | l3 -m3>``."""
    _check_l("wigner_3j", l1, l2, l3)
    if m1 + m2 + m3 != 0:
        return 0.0
    cg = clebsch_gordan_coefficient(int(l1), int(m1), int(l2), int(m2), int(l3), int(-m3))
    return (-1) ** ((l1 - l2 - m3) % 2) * cg / math.sqrt(2 * l3 + 1)


@lru_cache(maxsize=4096)
def _w3j(l1: int, l2: int, l3: int) -> np.ndarray:
    c = _cg(l1, l2, l3)[:, :, ::-1]  # index m3 -> -m3
    m3 = np.arange(-l3, l3 + 1)
    sign = (-1.0) ** ((l1 - l2 - m3) % 2)
    out = c * sign / math.sqrt(2 * l3 + 1)
    out.setflags(write=False)
    return out


def wigner_3j_tensor(l1: int, l2: int, l3: int) -> np.ndarray:
    """All 3j symbols ``W[m1+l1, m2+l2, m3+l3] = (l1 l2 l3; m1 m2 m3)``, shape (2l1+1, 2l2+1, 2l3+1)."""
    return np.ascontiguousarray(_w3j(*_check_l("wigner_3j_tensor", l1, l2, l3)))


def cup(l: int) -> np.ndarray:
    """Normalised 2jm cup tensor (complex basis) ``eps(l)[m, m'] = (-1)^(l-m) delta_{m, -m'}``.

    Orthogonal (entries 0 or +-1), equal to ``sqrt(2l+1) <l m l m' | 0 0>``: it contracts two copies of an
    irrep into the invariant, ``sum_{m m'} eps[m, m'] a_m b_m'`` is rotation invariant.
    """
    (l,) = _check_l("cup", l)
    m = np.arange(-l, l + 1)
    return np.diag((-1.0) ** ((l - m) % 2))[:, ::-1].copy()


def cap(l: int) -> np.ndarray:
    """The inverse 2jm tensor ``eps^{-1}(l)[m, m'] = (-1)^(l-m') delta_{m, -m'}`` (so ``cup(l) @ cap(l) = 1``).

    For integer l it equals ``cup(l)`` (eps is symmetric and squares to one).
    """
    (l,) = _check_l("cap", l)
    return cup(l).T.copy()
