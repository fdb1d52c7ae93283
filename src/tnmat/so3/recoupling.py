"""Recoupling symbols: Wigner 6j (exact Racah formula), unitary F-symbols, R-symbols.

Conventions: docs/conventions.md.  Integer angular momenta only (SO(3) irreps).
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

__all__ = ["wigner_6j", "f_symbol", "r_symbol"]

_f = math.factorial


def _ints(name: str, *js: int) -> tuple[int, ...]:
    if any(int(j) != j or j < 0 for j in js):
        raise ValueError(f"{name}: arguments must be non-negative integers, got {js}")
    return tuple(int(j) for j in js)


def _delta_sq(a: int, b: int, c: int) -> Fraction | None:
    """Triangle coefficient squared (a+b-c)!(a-b+c)!(-a+b+c)!/(a+b+c+1)!, None if (a, b, c) is not a triangle."""
    if not abs(a - b) <= c <= a + b:
        return None
    return Fraction(_f(a + b - c) * _f(a - b + c) * _f(-a + b + c), _f(a + b + c + 1))


@lru_cache(maxsize=1 << 16)
def _sixj(j1: int, j2: int, j3: int, j4: int, j5: int, j6: int) -> float:
    tri = [_delta_sq(j1, j2, j3), _delta_sq(j1, j5, j6), _delta_sq(j4, j2, j6), _delta_sq(j4, j5, j3)]
    if any(t is None for t in tri):
        return 0.0
    pre = tri[0] * tri[1] * tri[2] * tri[3]
    a = (j1 + j2 + j3, j1 + j5 + j6, j4 + j2 + j6, j4 + j5 + j3)
    b = (j1 + j2 + j4 + j5, j2 + j3 + j5 + j6, j3 + j1 + j6 + j4)
    s = 0
    for t in range(max(a), min(b) + 1):
        num = (-1) ** t * _f(t + 1)
        den = _f(t - a[0]) * _f(t - a[1]) * _f(t - a[2]) * _f(t - a[3]) * _f(b[0] - t) * _f(b[1] - t) * _f(b[2] - t)
        s += Fraction(num, den)
    if s == 0:
        return 0.0
    # exact value sign(s) * sqrt(pre * s^2), rounded once
    return math.copysign(math.sqrt(float(pre * s * s)), s)


def wigner_6j(j1: int, j2: int, j3: int, j4: int, j5: int, j6: int) -> float:
    """Wigner 6j symbol {j1 j2 j3; j4 j5 j6} by the Racah formula in exact rational arithmetic.

    ``{j1 j2 j3; j4 j5 j6} = D(j1 j2 j3) D(j1 j5 j6) D(j4 j2 j6) D(j4 j5 j3) sum_t (-1)^t (t+1)! /
    [(t-j1-j2-j3)! (t-j1-j5-j6)! (t-j4-j2-j6)! (t-j4-j5-j3)! (j1+j2+j4+j5-t)! (j2+j3+j5+j6-t)! (j3+j1+j6+j4-t)!]``
    with ``D(abc) = sqrt((a+b-c)!(a-b+c)!(-a+b+c)!/(a+b+c+1)!)``; zero unless all four triads are triangles.
    """
    return _sixj(*_ints("wigner_6j", j1, j2, j3, j4, j5, j6))


def f_symbol(a: int, b: int, c: int, d: int, e: int, f: int) -> float:
    """Unitary recoupling (F-matrix) element ``F^{abc}_d[e, f] = <(a,(b,c)f) d | ((a,b)e, c) d>``.

    ``= (-1)^(a+b+c+d) sqrt((2e+1)(2f+1)) {a b e; c d f}``: the overlap of the CG-coupled fusion trees
    ``|((a b)e c) d M>`` and ``|(a (b c)f) d M>`` (independent of M), a real orthogonal matrix in (e, f).
    Zero when either tree is not admissible.
    """
    a, b, c, d, e, f = _ints("f_symbol", a, b, c, d, e, f)
    sixj = _sixj(a, b, e, c, d, f)
    return (-1) ** ((a + b + c + d) % 2) * math.sqrt((2 * e + 1) * (2 * f + 1)) * sixj


def r_symbol(l1: int, l2: int, l3: int) -> int:
    """Braiding phase ``R^{l1 l2}_{l3} = (-1)^(l1+l2-l3)``: ``<l2 m2 l1 m1 | l3 m3> = R <l1 m1 l2 m2 | l3 m3>``."""
    l1, l2, l3 = _ints("r_symbol", l1, l2, l3)
    return -1 if (l1 + l2 - l3) % 2 else 1
