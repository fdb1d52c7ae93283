"""Wigner D matrices of a rotation matrix, in the real and the complex spherical-harmonic basis.

Convention (active rotation): ``Y(R r) = D^l(R) @ Y(r)`` for every unit vector r, so that
``D(R1 R2) = D(R1) D(R2)``.  The real matrix is computed by an exact quadrature of
``D[m, m'] = int Y_m(R r) Y_m'(r) dOmega`` (Gauss-Legendre in cos(theta) with l+1 nodes x 2l+1 uniform
azimuths integrates polynomials of degree 2l on the sphere exactly), and the complex one is
``U^dagger D_real U`` with ``U = real_to_complex_matrix(l)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from tnmat.so3.spherical_harmonics import _u, real_spherical_harmonics, sphere_quadrature

__all__ = ["wigner_D", "real_wigner_D"]


@lru_cache(maxsize=64)
def _grid(l: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes (P, 3) and weighted harmonics w_p Y_lm'(r_p) (P, 2l+1), exact for degree <= 2l."""
    pts, weights = sphere_quadrature(l)
    y = real_spherical_harmonics(torch.tensor(pts), l).numpy()[:, l * l :]
    wy = y * weights[:, None]
    wy.setflags(write=False)
    return pts, wy


def _check_rotation(R: np.ndarray, name: str) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3):
        raise ValueError(f"{name}: R must be a 3x3 rotation matrix, got shape {R.shape}")
    if not np.all(np.isfinite(R)):
        raise ValueError(f"{name}: R contains non-finite entries")
    if np.abs(R @ R.T - np.eye(3)).max() > 1e-8 or np.linalg.det(R) < 0:
        raise ValueError(f"{name}: R is not a proper rotation (R R^T != 1 or det R < 0)")
    return R


def real_wigner_D(l: int, R: np.ndarray) -> np.ndarray:
    """Real orthogonal (2l+1, 2l+1) matrix with ``Y_real(R r) = real_wigner_D(l, R) @ Y_real(r)``."""
    if int(l) != l or l < 0:
        raise ValueError(f"real_wigner_D: l must be a non-negative integer, got {l}")
    l = int(l)
    R = _check_rotation(R, "real_wigner_D")
    if l == 0:
        return np.ones((1, 1))
    pts, wy = _grid(l)
    y_rot = real_spherical_harmonics(torch.from_numpy(pts @ R.T), l).numpy()[:, l * l :]
    return y_rot.T @ wy


def wigner_D(l: int, R: np.ndarray) -> np.ndarray:
    """Complex unitary (2l+1, 2l+1) matrix with ``Y_complex(R r) = wigner_D(l, R) @ Y_complex(r)``.

    For a rotation by alpha about z it is ``diag(exp(i m alpha))``.
    """
    d = real_wigner_D(l, R)
    u = _u(int(l))
    return u.conj().T @ d @ u
