"""Real and complex spherical harmonics (Condon-Shortley phase, m = -l..l, flat index l*l + l + m).

Conventions (docs/conventions.md):

* complex ``Y_l^m(theta, phi) = (-1)^m N_lm P_l^m(cos theta) e^{i m phi}`` for m >= 0 with
  ``N_lm = sqrt((2l+1)/(4 pi) (l-m)!/(l+m)!)`` and ``P_l^m`` the Legendre function *without* the
  Condon-Shortley phase; ``Y_l^{-m} = (-1)^m conj(Y_l^m)``.  This is scipy's ``sph_harm_y``.
* real ``Y_{l,m>0} = sqrt2 (-1)^m Re Y_l^m``, ``Y_{l,0} = Y_l^0``, ``Y_{l,m<0} = sqrt2 (-1)^m Im Y_l^{|m|}``,
  so ``Y_{1,(-1,0,1)} = sqrt(3/(4 pi)) (y, z, x)/r``.
* ``Y_real = U @ Y_complex`` with ``U = real_to_complex_matrix(l)`` unitary.

The evaluation is a vectorised polynomial recursion (no trig functions): with ``C_m + i S_m = (x + i y)^m``,
``r^l P_l^m(z/r) cos(m phi) = Q_l^m(z, r^2) C_m`` where ``Q_m^m = (2m-1)!!``, ``Q_{m+1}^m = (2m+1) z Q_m^m``
and ``(l-m) Q_l^m = (2l-1) z Q_{l-1}^m - (l+m-1) r^2 Q_{l-2}^m`` (homogenised associated Legendre
recurrence).  Every term is a homogeneous polynomial of degree l in (x, y, z), i.e. a regular solid harmonic.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

__all__ = ["real_spherical_harmonics", "complex_spherical_harmonics", "real_to_complex_matrix", "sh_index"]


def sh_index(l: int, m: int) -> int:
    """Flat index of (l, m) in the (l_max+1)**2 layout: ``l*l + l + m``."""
    if abs(m) > l:
        raise ValueError(f"sh_index: |m| = {abs(m)} > l = {l}")
    return l * l + l + m


@lru_cache(maxsize=64)
def _tables(l_max: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray, np.ndarray]:
    """Recursion coefficients per l, gather indices (into concatenated Q_l^m and trig columns), norms."""
    coeffs = []
    for l in range(2, l_max + 1):
        m = np.arange(l - 1, dtype=np.float64)
        coeffs.append(((2 * l - 1) / (l - m), (l + m - 1) / (l - m)))
    q_idx, t_idx, norm = [], [], []
    offset = 0  # start of Q_l in the concatenation of Q_0 (1 column), Q_1 (2 columns), ...
    for l in range(l_max + 1):
        for m in range(-l, l + 1):
            a = abs(m)
            q_idx.append(offset + a)
            # trig columns are [S_lmax .. S_1, 1, C_1 .. C_lmax]: index l_max + m
            t_idx.append(l_max + m)
            n = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - a) / math.factorial(l + a))
            norm.append(n * (math.sqrt(2.0) if m != 0 else 1.0))
        offset += l + 1
    return coeffs, np.array(q_idx), np.array(t_idx), np.array(norm)


def real_spherical_harmonics(xyz: torch.Tensor, l_max: int, normalize: bool = True) -> torch.Tensor:
    """Real spherical harmonics ``Y_lm`` of the vectors ``xyz`` (..., 3), shape (..., (l_max+1)**2).

    Orthonormal on the unit sphere, Condon-Shortley phase, m = -l..l at flat index ``l*l + l + m``.
    ``normalize=True`` evaluates ``Y_lm(r / |r|)`` (raises on a zero vector); ``normalize=False`` evaluates
    the same homogeneous polynomials on the raw vector, i.e. the regular solid harmonics ``|r|^l Y_lm(r_hat)``
    (finite and differentiable everywhere, including r = 0).  Works for any float dtype and device and is
    differentiable with torch autograd.
    """
    if not isinstance(xyz, torch.Tensor):
        raise TypeError(f"real_spherical_harmonics: xyz must be a torch.Tensor, got {type(xyz).__name__}")
    if xyz.shape[-1:] != (3,):
        raise ValueError(f"real_spherical_harmonics: xyz must have shape (..., 3), got {tuple(xyz.shape)}")
    if not xyz.is_floating_point():
        raise TypeError(f"real_spherical_harmonics: xyz must be floating point, got {xyz.dtype}")
    if l_max < 0 or int(l_max) != l_max:
        raise ValueError(f"real_spherical_harmonics: l_max must be a non-negative integer, got {l_max}")
    l_max = int(l_max)
    batch = xyz.shape[:-1]
    v = xyz.reshape(-1, 3)
    if normalize:
        r = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
        if v.shape[0] and bool((r == 0).any()):
            raise ValueError("real_spherical_harmonics: zero-length vector with normalize=True (direction undefined)")
        v = v / r
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    n = v.shape[0]
    coeffs, q_idx, t_idx, norm = _tables(l_max)
    dev, dt = v.device, v.dtype

    # Q_l^m(z, r^2) for m = 0..l, one (n, l+1) block per l, vectorised over m
    ones = torch.ones((n, 1), dtype=dt, device=dev)
    qs = [ones]
    if l_max >= 1:
        qs.append(torch.stack([z, torch.ones_like(z)], dim=1))  # Q_1^0 = z, Q_1^1 = 1
    if l_max >= 2:
        r2 = (x * x + y * y + z * z).unsqueeze(1) if not normalize else None
        zc = z.unsqueeze(1)
        dfact = 1.0  # (2l-1)!!
        for l in range(2, l_max + 1):
            dfact *= 2 * l - 1
            a, b = coeffs[l - 2]
            a_t = torch.as_tensor(a, dtype=dt, device=dev)
            b_t = torch.as_tensor(b, dtype=dt, device=dev)
            prev, prev2 = qs[l - 1], qs[l - 2]
            low = a_t * zc * prev[:, : l - 1]
            low = low - b_t * (prev2[:, : l - 1] if r2 is None else r2 * prev2[:, : l - 1])
            top = (2 * l - 1) * zc * prev[:, l - 1 :]  # m = l-1
            qs.append(torch.cat([low, top, torch.full((n, 1), dfact, dtype=dt, device=dev)], dim=1))
    qcat = torch.cat(qs, dim=1)

    # C_m + i S_m = (x + i y)^m, built recursively
    cs, ss = [], []
    c, s = x, y
    for m in range(1, l_max + 1):
        if m > 1:
            c, s = x * c - y * s, x * s + y * c
        cs.append(c)
        ss.append(s)
    trig = torch.stack(ss[::-1] + [torch.ones_like(x)] + cs, dim=1)

    q_i = torch.as_tensor(q_idx, device=dev)
    t_i = torch.as_tensor(t_idx, device=dev)
    out = qcat.index_select(1, q_i) * trig.index_select(1, t_i) * torch.as_tensor(norm, dtype=dt, device=dev)
    return out.reshape(*batch, (l_max + 1) ** 2)


@lru_cache(maxsize=64)
def _u(l: int) -> np.ndarray:
    u = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    h = 1.0 / math.sqrt(2.0)
    u[l, l] = 1.0
    for m in range(1, l + 1):
        # Y_{l,m} = ((-1)^m Y^m + Y^{-m}) / sqrt2, Y_{l,-m} = i (Y^{-m} - (-1)^m Y^m) / sqrt2
        u[l + m, l + m] = (-1) ** m * h
        u[l + m, l - m] = h
        u[l - m, l - m] = 1j * h
        u[l - m, l + m] = -1j * (-1) ** m * h
    u.setflags(write=False)
    return u


def real_to_complex_matrix(l: int) -> np.ndarray:
    """Unitary ``U`` (2l+1, 2l+1) with ``Y_real = U @ Y_complex`` (rows/columns m = -l..l).

    Non-zero entries for m > 0: ``U[m, m] = (-1)^m/sqrt2``, ``U[m, -m] = 1/sqrt2``,
    ``U[-m, -m] = i/sqrt2``, ``U[-m, m] = -i (-1)^m/sqrt2``; ``U[0, 0] = 1``.
    """
    if l < 0 or int(l) != l:
        raise ValueError(f"real_to_complex_matrix: l must be a non-negative integer, got {l}")
    return _u(int(l)).copy()


def complex_spherical_harmonics(xyz: torch.Tensor, l_max: int, normalize: bool = True) -> torch.Tensor:
    """Complex spherical harmonics ``Y_l^m`` (Condon-Shortley, scipy's ``sph_harm_y``), shape (..., (l_max+1)**2).

    Computed as ``U^dagger @ Y_real`` per l; complex dtype matching the input precision.
    """
    yr = real_spherical_harmonics(xyz, l_max, normalize=normalize)
    cdt = torch.complex128 if yr.dtype == torch.float64 else torch.complex64
    blocks = []
    for l in range(l_max + 1):
        uh = torch.as_tensor(_u(l).conj().T.copy(), dtype=cdt, device=yr.device)
        blocks.append(yr[..., l * l : (l + 1) ** 2].to(cdt) @ uh.T)
    return torch.cat(blocks, dim=-1)
