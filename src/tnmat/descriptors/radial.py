"""Radial basis and radial integrals of the atom-centred density (pure math, no I/O).

GTO basis (DScribe's definition, Himanen et al., Comput. Phys. Commun. 247, 106949 (2020)):
primitive functions ``phi_{n'l}(r) = r^l exp(-alpha_{n'l} r^2)`` with ``alpha_{n'l}`` chosen so that the
n'-th primitive decays to 1e-3 at ``a_n' = linspace(1, r_basis, n_max)[n']``, orthonormalised on
[0, inf) with weight r^2 by Loewdin's symmetric scheme, ``g_{nl}(r) = sum_n' beta_{l n n'} phi_{n'l}(r)``,
``beta_l = S_l^{-1/2}``.

Densities (paper Section II):
- ``delta``: rho_i(r) = sum_j delta(r - r_ij); the coefficients are g_nl(r_ij) Y_lm(r_ij) (ACE).
- ``gaussian``: rho_i(r) = sum_j exp(-|r - r_ij|^2 / (2 sigma^2)) (SOAP, unnormalised Gaussians as in
  DScribe).  Its projection is c_nlm = sum_j I_nl(r_ij) Y_lm(r_ij) with the radial integral
  ``I_nl(d) = 4 pi int_0^inf r^2 g_nl(r) exp(-(r^2 + d^2)/(2 sigma^2)) i_l(r d / sigma^2) dr``
  (i_l: modified spherical Bessel function of the first kind).  For a GTO primitive the integral is
  closed-form (Gradshteyn-Ryzhik 6.631.4 with i_l(z) = sqrt(pi/2z) I_{l+1/2}(z)):
  ``4 pi int r^(l+2) e^{-alpha r^2} e^{-(r^2+d^2)/2s^2} i_l(r d/s^2) dr
  = 4 pi sqrt(pi/2) s^(-2l) / (2a)^(l+3/2) * d^l exp(-d^2 (1/(2s^2) - 1/(4 a s^4)))``, a = alpha + 1/(2s^2):
  again a GTO in d.  So both densities reduce to ``sum_n' C_{n'l} d^l exp(-gamma_{n'l} d^2) Y_lm`` per
  pair: d^l Y_lm is a regular solid harmonic (a polynomial in x, y, z), and beta is applied per atom.
  :func:`gaussian_radial_integral_table` (brute-force quadrature) is the independent test reference.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.linalg import sqrtm
from scipy.special import gamma, ive

__all__ = ["gto_basis", "gaussian_radial_integral_table", "primitive_exponents", "cutoff_function"]


def gto_basis(r_basis: float, n_max: int, l_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Exponents ``alpha[l, n']`` and Loewdin coefficients ``beta[l, n, n']`` of the orthonormal GTO basis.

    Overlap of primitives: S_{n'n''} = Gamma(l + 3/2) / (2 (alpha_n' + alpha_n'')^(l + 3/2)).
    """
    a = np.linspace(1.0, r_basis, n_max)
    threshold = 1e-3
    alphas = np.zeros((l_max + 1, n_max))
    betas = np.zeros((l_max + 1, n_max, n_max))
    for l in range(l_max + 1):
        alpha = -np.log(threshold / np.power(a, l)) / a**2
        s = 0.5 * gamma(l + 1.5) * (alpha[:, None] + alpha[None, :]) ** (-l - 1.5)
        beta = sqrtm(np.linalg.inv(s))
        if np.iscomplexobj(beta) and np.abs(beta.imag).max() > 1e-10:
            raise ValueError(
                f"GTO basis with n_max={n_max}, r_cut={r_basis} is numerically linearly dependent at l={l}; "
                "lower n_max or raise r_cut"
            )
        alphas[l] = alpha
        betas[l] = np.real(beta)
    return alphas, betas


def gaussian_radial_integral_table(
    d_grid: np.ndarray, sigma: float, alphas: np.ndarray, betas: np.ndarray, n_quad: int = 160
) -> np.ndarray:
    """I_nl(d) on ``d_grid`` for the Gaussian density (module docstring); shape (len(d), n_max, l_max+1).

    The integrand is localised within +-8 sigma of d (the Gaussian factor exp(-(r-d)^2/2sigma^2) written
    with the exponentially scaled Bessel function), so each d uses Gauss-Legendre nodes on that window.
    """
    l_max, n_max = alphas.shape[0] - 1, alphas.shape[1]
    x_gl, w_gl = np.polynomial.legendre.leggauss(n_quad)
    out = np.zeros((len(d_grid), n_max, l_max + 1))
    s2 = sigma * sigma
    for k, d in enumerate(d_grid):
        lo, hi = max(0.0, d - 8.0 * sigma), d + 8.0 * sigma
        r = 0.5 * (hi - lo) * x_gl + 0.5 * (hi + lo)
        w = 0.5 * (hi - lo) * w_gl
        for l in range(l_max + 1):
            if d == 0.0:
                if l > 0:
                    continue
                ang = np.exp(-(r * r) / (2 * s2))  # i_0(0) = 1
            else:
                x = r * d / s2
                # exp(-(r^2+d^2)/2s2) i_l(x) = exp(-(r-d)^2/2s2) sqrt(pi/2x) ive(l+1/2, x)
                ang = np.exp(-((r - d) ** 2) / (2 * s2)) * np.sqrt(np.pi / (2 * x)) * ive(l + 0.5, x)
            prim = r[:, None] ** (l + 2) * np.exp(-alphas[l][None, :] * (r * r)[:, None])  # (q, n')
            prim_int = 4 * np.pi * (w * ang) @ prim  # (n',)
            out[k, :, l] = betas[l] @ prim_int
    return out


def primitive_exponents(
    density: str, alphas: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """(gamma[l, n'], prefactor[l, n']) with R_{n'l}(d) = prefactor * d^l * exp(-gamma d^2) the projection of
    one neighbour onto primitive n' (before the Loewdin transform beta); see the module docstring."""
    if density == "delta":
        return alphas.copy(), np.ones_like(alphas)
    s2 = sigma * sigma
    ls = np.arange(alphas.shape[0])[:, None]
    a = alphas + 1.0 / (2.0 * s2)
    gamma_ = 1.0 / (2.0 * s2) - 1.0 / (4.0 * a * s2 * s2)
    pref = 4.0 * np.pi * np.sqrt(np.pi / 2.0) * s2 ** (-ls) / (2.0 * a) ** (ls + 1.5)
    return gamma_, pref


def cutoff_function(r: torch.Tensor, r_cut: float, width: float, kind: str) -> torch.Tensor:
    """Smooth cutoff f_c(r): 1 below r_cut - width, cosine switch to 0 at r_cut ("cosine"), or a hard
    step at r_cut ("step").  The cosine form keeps the descriptor continuously differentiable when
    atoms cross the cutoff sphere."""
    if kind == "step":
        return (r <= r_cut).to(r.dtype)
    x = torch.clamp((r - (r_cut - width)) / width, 0.0, 1.0)
    return 0.5 * (1.0 + torch.cos(math.pi * x))
