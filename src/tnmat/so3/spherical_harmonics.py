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
def _tables(l_max: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[np.ndarray]]:
    """Per l: recursion coefficients (a_m, b_m) for m = 0..l-2 and the norms sqrt2^[m>0] N_lm for m = 0..l."""
    coeffs, norms = [], []
    for l in range(l_max + 1):
        m = np.arange(max(l - 1, 0), dtype=np.float64)
        coeffs.append(((2 * l - 1) / (l - m), (l + m - 1) / (l - m)))
        norms.append(
            np.array([
                math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - a) / math.factorial(l + a))
                * (math.sqrt(2.0) if a else 1.0)
                for a in range(l + 1)
            ])
        )
    return coeffs, norms


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
    flat = xyz.reshape(-1, 3)
    n, n_lm = flat.shape[0], (l_max + 1) ** 2
    # CPU: work in cache-sized chunks (intermediates stay in L2 and the allocator reuses memory; about 3x
    # faster than whole-array passes at 1e6 vectors); other devices: one pass
    chunk = _CPU_CHUNK if flat.device.type == "cpu" else max(n, 1)
    if n <= chunk:
        return _sh_rows(flat.T, l_max, normalize).T.contiguous().reshape(*batch, n_lm)
    if torch.is_grad_enabled() and flat.requires_grad:
        parts = [_sh_rows(flat[i : i + chunk].T, l_max, normalize).T for i in range(0, n, chunk)]
        return torch.cat(parts).reshape(*batch, n_lm)
    out = torch.empty((n, n_lm), dtype=flat.dtype, device=flat.device)
    with torch.no_grad():
        for i in range(0, n, chunk):
            out[i : i + chunk] = _sh_rows(flat[i : i + chunk].T, l_max, normalize).T
    return out.reshape(*batch, n_lm)


_CPU_CHUNK = 1 << 15


def _sh_rows(v: torch.Tensor, l_max: int, normalize: bool) -> torch.Tensor:
    """Real SH in component-major layout: v (3, n) -> (n_lm, n); every row operation is on contiguous memory."""
    if normalize:
        r = torch.linalg.vector_norm(v, dim=0, keepdim=True)
        if v.shape[1] and bool((r == 0).any()):
            raise ValueError("real_spherical_harmonics: zero-length vector with normalize=True (direction undefined)")
        v = v / r
    else:
        v = v.contiguous()
    x, y, z = v[0], v[1], v[2]
    n = v.shape[1]
    coeffs, norms = _tables(l_max)
    dev, dt = v.device, v.dtype

    def const(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dt, device=dev).unsqueeze(1)

    # C_m + i S_m = (x + i y)^m for m = 1..l_max, built recursively (rows of (l_max, n) stacks)
    cs, ss = [x], [y]
    for _ in range(2, l_max + 1):
        c, s = cs[-1], ss[-1]
        cs.append(x * c - y * s)
        ss.append(x * s + y * c)
    if l_max >= 1:
        cstack, sstack = torch.stack(cs), torch.stack(ss)

    # Q_l^m(z, r^2) for m = 0..l, one (l+1, n) block per l, vectorised over m
    r2 = (x * x + y * y + z * z) if (not normalize and l_max >= 2) else None
    qs = [torch.ones((1, n), dtype=dt, device=dev)]
    blocks = [qs[0] * norms[0][0]]
    dfact = 1.0  # (2l-1)!!
    for l in range(1, l_max + 1):
        dfact *= 2 * l - 1
        prev = qs[l - 1]
        top = torch.stack([(2 * l - 1) * z * prev[l - 1], torch.full_like(z, dfact)])  # m = l-1, l
        if l >= 2:
            a, b = coeffs[l]
            prev2 = qs[l - 2][: l - 1]
            low = const(a) * z * prev[: l - 1] - const(b) * (prev2 if r2 is None else r2 * prev2)
            q = torch.cat([low, top])
        else:
            q = top
        qs.append(q)
        qn = q * const(norms[l])  # normalised: N_lm (sqrt2 for m > 0) Q_l^m
        pos = qn[1:] * cstack[:l]
        neg = (qn[1:] * sstack[:l]).flip(0)
        blocks += [neg, qn[:1], pos]
    return torch.cat(blocks)


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
