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
The normalisations are folded into the recurrence coefficients (``_tables``).  Two code paths give the same
values: an out-of-place one when autograd is needed and one writing into preallocated buffers (``out=``)
otherwise; on CPU the vectors are processed in cache-sized chunks in a component-major (3, n) layout.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

__all__ = ["real_spherical_harmonics", "complex_spherical_harmonics", "real_to_complex_matrix", "sh_index",
           "sphere_quadrature"]


def sh_index(l: int, m: int) -> int:
    """Flat index of (l, m) in the (l_max+1)**2 layout: ``l*l + l + m``."""
    if abs(m) > l:
        raise ValueError(f"sh_index: |m| = {abs(m)} > l = {l}")
    return l * l + l + m


@lru_cache(maxsize=64)
def _tables(l_max: int) -> list[tuple[float, float, np.ndarray, np.ndarray]]:
    """Per l: recursion coefficients of the *normalised* polynomials ``P_l^m = N'_lm Q_l^m``.

    ``N'_lm = sqrt((2l+1)/(4 pi) (l-m)!/(l+m)!)`` times sqrt2 for m > 0 (the real-SH prefactor).  Returns
    ``(kappa_l, top_l, A_l, B_l)``: ``P_l^l = kappa_l``, ``P_l^{l-1} = top_l z`` and for m = 0..l-2
    ``P_l^m = A_l[m] z P_{l-1}^m - B_l[m] r^2 P_{l-2}^m`` (the Q recurrence with the norms folded in).
    """

    def nrm(l: int, m: int) -> float:
        f = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - m) / math.factorial(l + m))
        return f * (math.sqrt(2.0) if m else 1.0)

    out = []
    dfact = 1.0  # (2l-1)!!
    for l in range(l_max + 1):
        if l:
            dfact *= 2 * l - 1
        kappa = nrm(l, l) * dfact
        # Q_l^{l-1} = (2l-1) z Q_{l-1}^{l-1} = (2l-1) z (2l-3)!!
        top = (2 * l - 1) * nrm(l, l - 1) * (dfact / (2 * l - 1)) if l else 0.0
        m = np.arange(max(l - 1, 0))
        a = np.array([(2 * l - 1) / (l - k) * nrm(l, k) / nrm(l - 1, k) for k in m])
        b = np.array([(l + k - 1) / (l - k) * nrm(l, k) / nrm(l - 2, k) for k in m])
        out.append((kappa, top, a, b))
    return out


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
    grad = torch.is_grad_enabled() and flat.requires_grad
    rows = _sh_rows_autograd if grad else _sh_rows_inplace
    # CPU: work in cache-sized chunks (intermediates stay in L2 and the allocator reuses memory; about 2x
    # faster than whole-array passes at l_max 8); other devices: one pass
    chunk = _CPU_CHUNK if flat.device.type == "cpu" else max(n, 1)
    if n <= chunk:
        return rows(flat.T.contiguous(), l_max, normalize).T.contiguous().reshape(*batch, n_lm)
    if grad:
        parts = [rows(flat[i : i + chunk].T.contiguous(), l_max, normalize).T for i in range(0, n, chunk)]
        return torch.cat(parts).reshape(*batch, n_lm)
    out = torch.empty((n, n_lm), dtype=flat.dtype, device=flat.device)
    with torch.no_grad():
        for i in range(0, n, chunk):
            out[i : i + chunk] = rows(flat[i : i + chunk].T.contiguous(), l_max, normalize).T
    return out.reshape(*batch, n_lm)


_CPU_CHUNK = 1 << 14


def _unit(v: torch.Tensor, normalize: bool) -> torch.Tensor:
    if not normalize:
        return v
    r2 = (v * v).sum(0, keepdim=True)
    if v.shape[1] and bool((r2 == 0).any()):
        raise ValueError("real_spherical_harmonics: zero-length vector with normalize=True (direction undefined)")
    return v * torch.rsqrt(r2)


def _sh_rows_autograd(v: torch.Tensor, l_max: int, normalize: bool) -> torch.Tensor:
    """Real SH in component-major layout, v (3, n) contiguous -> (n_lm, n); out-of-place (differentiable)."""
    v = _unit(v, normalize)
    x, y, z = v[0], v[1], v[2]
    n, dev, dt = v.shape[1], v.device, v.dtype
    tabs = _tables(l_max)

    def const(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dt, device=dev).unsqueeze(1)

    # C_m + i S_m = (x + i y)^m, m = 1..l_max
    cs, ss = [x], [y]
    for _ in range(2, l_max + 1):
        c, s = cs[-1], ss[-1]
        cs.append(torch.addcmul(x * c, y, s, value=-1.0))
        ss.append(torch.addcmul(x * s, y, c))
    r2 = (x * x + y * y + z * z) if (not normalize and l_max >= 2) else None
    ps = [torch.full((1, n), tabs[0][0], dtype=dt, device=dev)]  # P_l^m, m = 0..l, as (l+1, n)
    blocks = [ps[0]]
    for l in range(1, l_max + 1):
        kappa, top, a, b = tabs[l]
        last = [(z * top).unsqueeze(0), torch.full((1, n), kappa, dtype=dt, device=dev)]
        if l >= 2:
            prev2 = ps[l - 2][: l - 1] if r2 is None else ps[l - 2][: l - 1] * r2
            low = torch.addcmul(const(a) * ps[l - 1][: l - 1] * z, const(-b), prev2)
            last = [low] + last
        p = torch.cat(last)
        ps.append(p)
        blocks += [(p[1:] * torch.stack(ss[:l])).flip(0), p[:1], p[1:] * torch.stack(cs[:l])]
    return torch.cat(blocks)


def _sh_rows_inplace(v: torch.Tensor, l_max: int, normalize: bool) -> torch.Tensor:
    """Same values as :func:`_sh_rows_autograd`, written into preallocated buffers with ``out=`` (no autograd)."""
    v = _unit(v, normalize)
    x, y, z = v[0], v[1], v[2]
    n, dev, dt = v.shape[1], v.device, v.dtype
    tabs = _tables(l_max)
    out = torch.empty(((l_max + 1) ** 2, n), dtype=dt, device=dev)
    out[0].fill_(tabs[0][0])
    if l_max == 0:
        return out
    # trig rows: cs[m-1] = C_m, srev[l_max-m] = S_m (reversed, so S_l..S_1 is a contiguous slice)
    cs = torch.empty((l_max, n), dtype=dt, device=dev)
    srev = torch.empty((l_max, n), dtype=dt, device=dev)
    cs[0].copy_(x)
    srev[l_max - 1].copy_(y)
    for m in range(2, l_max + 1):
        c, s = cs[m - 2], srev[l_max - m + 1]
        torch.mul(x, c, out=cs[m - 1]).addcmul_(y, s, value=-1.0)
        torch.mul(x, s, out=srev[l_max - m]).addcmul_(y, c)
    r2 = (x * x + y * y + z * z) if (not normalize and l_max >= 2) else None
    # P_l^m for m = 0..l in reversed order (row k holds m = l-k), so that P_l..P_1 is a contiguous slice
    pbuf = torch.empty((l_max + 1, l_max + 1, n), dtype=dt, device=dev)
    pbuf[0, 0].fill_(tabs[0][0])
    tmp = torch.empty((l_max, n), dtype=dt, device=dev)
    for l in range(1, l_max + 1):
        kappa, top, a, b = tabs[l]
        p = pbuf[l, : l + 1]  # rows m = l, l-1, ..., 0
        p[0].fill_(kappa)
        torch.mul(z, top, out=p[1])
        if l >= 2:
            low = p[2:]  # m = l-2..0
            a_r = torch.as_tensor(a[::-1].copy(), dtype=dt, device=dev).unsqueeze(1)
            b_r = torch.as_tensor(-b[::-1].copy(), dtype=dt, device=dev).unsqueeze(1)
            torch.mul(pbuf[l - 1, 1:l], z, out=low).mul_(a_r)  # P_{l-1}^m, m = l-2..0
            prev2 = pbuf[l - 2, : l - 1]  # P_{l-2}^m, m = l-2..0
            if r2 is not None:
                prev2 = torch.mul(prev2, r2, out=tmp[: l - 1])
            low.addcmul_(b_r, prev2)
        base = l * l + l
        torch.mul(p[:l], srev[l_max - l :], out=out[base - l : base])  # m = -l..-1: P_l^{|m|} S_{|m|}
        out[base].copy_(p[l])
        torch.mul(p[:l].flip(0), cs[:l], out=out[base + 1 : base + l + 1])  # m = 1..l: P_l^m C_m
    return out


@lru_cache(maxsize=64)
def sphere_quadrature(l: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (P, 3) and weights (P,) integrating polynomials of degree <= 2l on the unit sphere exactly:
    Gauss-Legendre in cos(theta) with l+1 nodes times 2l+1 uniform azimuths (read-only, cached)."""
    x, w = np.polynomial.legendre.leggauss(l + 1)
    n_phi = 2 * l + 1
    # offset the azimuths so no node sits on a symmetry plane (irrelevant for exactness)
    phi = (np.arange(n_phi) + 0.5) * 2 * math.pi / n_phi
    st = np.sqrt(1.0 - x * x)
    pts = np.stack(
        [np.outer(st, np.cos(phi)), np.outer(st, np.sin(phi)), np.repeat(x[:, None], n_phi, axis=1)], axis=-1
    ).reshape(-1, 3)
    weights = np.repeat(w, n_phi) * (2 * math.pi / n_phi)
    pts.setflags(write=False)
    weights.setflags(write=False)
    return pts, weights


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
