"""Rotations by Euler angles and Wigner D matrices in closed form (numpy) and batched in torch.

Conventions (docs/conventions.md, item 6): z-y-z Euler angles, ``R = Rz(alpha) Ry(beta) Rz(gamma)`` acting
actively on column vectors (scipy ``Rotation.from_euler("ZYZ", ...)``); ``wigner_D(l, R)`` satisfies
``Y(R r) = D Y(r)`` and equals the complex conjugate of the textbook ``D^l_{m'm}(alpha, beta, gamma) =
e^{-i m' alpha} d^l_{m'm}(beta) e^{-i m gamma}``.  The closed form here (Wigner's formula for d) is an
independent route to the same matrices as ``tnmat.so3.wigner``, which integrates rotated harmonics.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from tnmat.so3.spherical_harmonics import real_spherical_harmonics, real_to_complex_matrix, sphere_quadrature

__all__ = [
    "rotation_from_euler",
    "wigner_small_d",
    "wigner_D_from_euler",
    "real_wigner_D_from_euler",
    "real_wigner_D_torch",
]

_f = math.factorial


def _check_l(name: str, l: int) -> int:
    if int(l) != l or l < 0:
        raise ValueError(f"{name}: l must be a non-negative integer, got {l}")
    return int(l)


def rotation_from_euler(alpha: float, beta: float, gamma: float) -> np.ndarray:
    """The 3x3 rotation ``Rz(alpha) Ry(beta) Rz(gamma)`` (z-y-z Euler angles, active, radians)."""
    ca, sa, cb, sb, cg, sg = (f(a) for a in (alpha, beta, gamma) for f in (math.cos, math.sin))

    def rz(c: float, s: float) -> np.ndarray:
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    ry = np.array([[cb, 0.0, sb], [0.0, 1.0, 0.0], [-sb, 0.0, cb]])
    return rz(ca, sa) @ ry @ rz(cg, sg)


@lru_cache(maxsize=64)
def _small_d_terms(l: int) -> tuple[tuple[int, int, int, float, int, int], ...]:
    """Terms (m', m, s, coefficient, power of cos(b/2), power of sin(b/2)) of Wigner's formula for d^l."""
    terms = []
    for mp in range(-l, l + 1):
        for m in range(-l, l + 1):
            pre = math.sqrt(_f(l + mp) * _f(l - mp) * _f(l + m) * _f(l - m))
            for s in range(max(0, m - mp), min(l + m, l - mp) + 1):
                den = _f(l + m - s) * _f(s) * _f(mp - m + s) * _f(l - mp - s)
                terms.append((mp, m, s, (-1) ** (mp - m + s) * pre / den, 2 * l + m - mp - 2 * s, mp - m + 2 * s))
    return tuple(terms)


def wigner_small_d(l: int, beta: float) -> np.ndarray:
    """Textbook ``d^l_{m'm}(beta) = <l m'| exp(-i beta J_y) |l m>`` by Wigner's formula, rows m', columns m.

    ``d^l_{m'm} = sum_s (-1)^(m'-m+s) sqrt((l+m')!(l-m')!(l+m)!(l-m)!) / ((l+m-s)! s! (m'-m+s)! (l-m'-s)!)
    cos(beta/2)^(2l+m-m'-2s) sin(beta/2)^(m'-m+2s)`` (Sakurai eq. 3.8.33).  Float64; adequate for l <= 12.
    """
    l = _check_l("wigner_small_d", l)
    c, s = math.cos(beta / 2), math.sin(beta / 2)
    d = np.zeros((2 * l + 1, 2 * l + 1))
    for mp, m, _, coef, pc, ps in _small_d_terms(l):
        d[mp + l, m + l] += coef * c**pc * s**ps
    return d


def wigner_D_from_euler(l: int, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Complex ``D`` with ``Y(R r) = D Y(r)`` for ``R = rotation_from_euler(alpha, beta, gamma)``.

    ``= conj(e^{-i m' alpha} d^l_{m'm}(beta) e^{-i m gamma})``, equal to ``wigner_D(l, R)``.
    """
    l = _check_l("wigner_D_from_euler", l)
    m = np.arange(-l, l + 1)
    textbook = np.exp(-1j * m * alpha)[:, None] * wigner_small_d(l, beta) * np.exp(-1j * m * gamma)[None, :]
    return textbook.conj()


def real_wigner_D_from_euler(l: int, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Real orthogonal ``U D U^dagger`` (``U = real_to_complex_matrix(l)``), equal to ``real_wigner_D(l, R)``."""
    u = real_to_complex_matrix(_check_l("real_wigner_D_from_euler", l))
    d = u @ wigner_D_from_euler(l, alpha, beta, gamma) @ u.conj().T
    return np.ascontiguousarray(d.real)


def real_wigner_D_torch(l: int, R: torch.Tensor) -> torch.Tensor:
    """Batched real Wigner D in torch: ``R`` (..., 3, 3) -> (..., 2l+1, 2l+1), same dtype and device.

    ``D[m, m'] = int Y_m(R r) Y_m'(r) dOmega`` by a quadrature exact for degree 2l, so ``D`` is a polynomial
    of degree l in the entries of R: differentiable with torch autograd, and for rotation matrices equal to
    ``real_wigner_D(l, R)`` (``Y_real(R r) = D Y_real(r)``).  R is not checked to be a rotation.
    """
    l = _check_l("real_wigner_D_torch", l)
    if not isinstance(R, torch.Tensor) or R.shape[-2:] != (3, 3) or not R.is_floating_point():
        raise ValueError(f"real_wigner_D_torch: R must be a floating torch tensor of shape (..., 3, 3), got {R!r:.80}")
    pts_np, w_np = sphere_quadrature(l)
    pts = torch.tensor(pts_np, dtype=R.dtype, device=R.device)
    w = torch.tensor(w_np, dtype=R.dtype, device=R.device)
    y = real_spherical_harmonics(pts, l)[:, l * l :]  # (P, 2l+1)
    # rotated nodes R p for each batch element: (..., P, 3); normalize=False keeps the map polynomial in R
    rotated = torch.einsum("...ij,pj->...pi", R, pts)
    y_rot = real_spherical_harmonics(rotated, l, normalize=False)[..., l * l :]  # (..., P, 2l+1)
    return torch.einsum("...pa,pb->...ab", y_rot, y * w[:, None])
