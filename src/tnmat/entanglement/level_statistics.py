"""Entanglement-spectrum statistics (paper Section IV B, eqs. 27-28, Fig. 15).

Entanglement energies xi_k = -log lambda_k^2 (ascending), level spacings s_k = xi_{k+1} - xi_k, ratios of
consecutive spacings r_k = s_k / s_{k-1} and r~_k = min(r_k, 1/r_k) in [0, 1].  Ratios need no unfolding
(the local density of levels cancels), which is why they are used for spectra with no known density.

Reference distributions of r (Atas, Bogomolny, Giraud, Roux, PRL 110, 084101 (2013)):

* Wigner-Dyson surmise  P_WD(r; beta) = (r + r^2)^beta / (Z_beta (1 + r + r^2)^(1 + 3 beta / 2)),
  Z_1 = 8/27, Z_2 = 4 pi / (81 sqrt 3), Z_4 = 4 pi / (729 sqrt 3)   (paper eq. 27);
* Poisson (uncorrelated levels)  P_P(r) = 1 / (1 + r)^2.

Both satisfy P(r) = P(1/r) / r^2, so r~ has density 2 P(r~) on [0, 1].  Mean r~: surmise 4 - 2 sqrt 3
(GOE), 2 sqrt 3 / pi - 1/2 (GUE), 32 sqrt 3 / (15 pi) - 1/2 (GSE); large random matrices 0.5307, 0.5996,
0.6744 (Atas et al., numerics); Poisson 2 log 2 - 1 = 0.3863.

KL divergence binning (documented once, used by the experiments): ``kl_divergence(pdf, samples)`` uses
``bins`` equal-width bins on ``range`` (default 20 bins of r~ on [0, 1]).  P_ref per bin is the integral
of the reference density over the bin (8-point Gauss-Legendre), renormalised to the range; P_obs is the
histogram fraction of the samples inside the range, floored at ``eps`` (default 1e-6, i.e. an empty bin
counts as if it held a millionth of the samples) and renormalised.  D_KL(P_ref || P_obs) =
sum_i P_ref,i log(P_ref,i / P_obs,i) >= 0 (nats).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tnmat.entanglement._arrays import as_array

__all__ = ["entanglement_energies", "level_spacings", "spacing_ratios", "r_tilde", "wigner_dyson_ratio_pdf",
           "poisson_ratio_pdf", "wigner_dyson_r_tilde_pdf", "poisson_r_tilde_pdf", "WD_NORMALISATION",
           "MEAN_R_TILDE", "MEAN_R_TILDE_SURMISE", "mean_r_tilde", "kl_divergence", "bin_probabilities",
           "random_matrix_levels"]

#: Z_beta of the Wigner-Dyson ratio surmise (paper eq. 27).
WD_NORMALISATION = {1: 8.0 / 27.0, 2: 4.0 * math.pi / (81.0 * math.sqrt(3.0)),
                    4: 4.0 * math.pi / (729.0 * math.sqrt(3.0))}

#: <r~> of large random matrices (Atas et al. 2013, numerics) and of Poisson levels (exact).
MEAN_R_TILDE = {"goe": 0.5307, "gue": 0.5996, "gse": 0.6744, "poisson": 2.0 * math.log(2.0) - 1.0}

#: <r~> of the surmise P_WD itself (closed forms).
MEAN_R_TILDE_SURMISE = {1: 4.0 - 2.0 * math.sqrt(3.0), 2: 2.0 * math.sqrt(3.0) / math.pi - 0.5,
                        4: 32.0 * math.sqrt(3.0) / (15.0 * math.pi) - 0.5}


def entanglement_energies(lambdas, *, rtol: float = 1e-12) -> np.ndarray:
    """xi_k = -log lambda_k^2, ascending.  Schmidt values <= rtol * lambda_max are numerical zeros (the SVD
    resolves singular values only down to ~1e-16 lambda_max) and are dropped, not mapped to huge energies."""
    lam = np.abs(as_array(lambdas, name="lambdas").ravel())
    if lam.size == 0 or not lam.max() > 0:
        raise ValueError("lambdas: empty or all-zero spectrum")
    keep = lam[lam > rtol * lam.max()]
    return np.sort(-2.0 * np.log(keep))


def level_spacings(levels) -> np.ndarray:
    """s_k = x_{k+1} - x_k of the sorted levels (length n - 1)."""
    x = np.sort(as_array(levels, name="levels").ravel())
    return np.diff(x)


def spacing_ratios(levels) -> np.ndarray:
    """r_k = s_k / s_{k-1} of consecutive spacings of the sorted levels; pairs with s_{k-1} = 0 (exactly
    degenerate levels, e.g. from a symmetry) are dropped since their ratio is undefined."""
    s = level_spacings(levels)
    prev, nxt = s[:-1], s[1:]
    ok = prev > 0
    return nxt[ok] / prev[ok]


def r_tilde(r) -> np.ndarray:
    """r~ = min(r, 1/r) in [0, 1] (r = 0 maps to 0)."""
    r = as_array(r, name="r")
    if np.any(r < 0):
        raise ValueError("r: spacing ratios must be non-negative")
    with np.errstate(divide="ignore"):
        return np.where(r > 1.0, 1.0 / r, r)


def _beta(beta: int) -> int:
    if beta not in WD_NORMALISATION:
        raise ValueError(f"Wigner-Dyson index beta must be 1, 2 or 4, got {beta!r}")
    return int(beta)


def wigner_dyson_ratio_pdf(r, beta: int = 1) -> np.ndarray:
    """P_WD(r; beta) on r >= 0 (paper eq. 27)."""
    b = _beta(beta)
    r = np.asarray(r, dtype=np.float64)
    out = (r + r * r) ** b / (WD_NORMALISATION[b] * (1.0 + r + r * r) ** (1.0 + 1.5 * b))
    return np.where(r >= 0, out, 0.0)


def poisson_ratio_pdf(r) -> np.ndarray:
    """P_Poisson(r) = 1 / (1 + r)^2 on r >= 0."""
    r = np.asarray(r, dtype=np.float64)
    return np.where(r >= 0, 1.0 / (1.0 + np.abs(r)) ** 2, 0.0)


def wigner_dyson_r_tilde_pdf(x, beta: int = 1) -> np.ndarray:
    """Density of r~ in [0, 1] under P_WD: 2 P_WD(x; beta)."""
    x = np.asarray(x, dtype=np.float64)
    return np.where((x >= 0) & (x <= 1), 2.0 * wigner_dyson_ratio_pdf(x, beta), 0.0)


def poisson_r_tilde_pdf(x) -> np.ndarray:
    """Density of r~ in [0, 1] for Poisson levels: 2 / (1 + x)^2."""
    x = np.asarray(x, dtype=np.float64)
    return np.where((x >= 0) & (x <= 1), 2.0 * poisson_ratio_pdf(x), 0.0)


_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)


def bin_probabilities(pdf: Callable[[np.ndarray], np.ndarray], edges: np.ndarray) -> np.ndarray:
    """Integral of ``pdf`` over each bin [edges_i, edges_{i+1}] (8-point Gauss-Legendre per bin)."""
    edges = np.asarray(edges, dtype=np.float64)
    lo, hi = edges[:-1, None], edges[1:, None]
    x = 0.5 * (hi - lo) * _GL_X[None, :] + 0.5 * (hi + lo)
    return (0.5 * (hi - lo)[:, 0]) * (np.asarray(pdf(x)) @ _GL_W)


def mean_r_tilde(pdf_r_tilde: Callable[[np.ndarray], np.ndarray], *, n_bins: int = 200) -> float:
    """<r~> = int_0^1 x p(x) dx of a density of r~ on [0, 1]."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return float(bin_probabilities(lambda x: x * pdf_r_tilde(x), edges).sum())


def kl_divergence(p_ref_pdf: Callable[[np.ndarray], np.ndarray], samples, *, bins: int = 20,
                  range: tuple[float, float] = (0.0, 1.0), eps: float = 1e-6) -> float:
    """D_KL(P_ref || P_obs) between a reference density and a histogram of samples (binning in the module
    docstring).  Default: r~ samples against e.g. ``wigner_dyson_r_tilde_pdf`` (GOE for beta = 1)."""
    s = as_array(samples, name="samples").ravel()
    lo, hi = float(range[0]), float(range[1])
    if not hi > lo or bins < 1:
        raise ValueError(f"kl_divergence: need bins >= 1 and range[1] > range[0], got {bins}, {range}")
    inside = s[(s >= lo) & (s <= hi)]
    if inside.size == 0:
        raise ValueError(f"kl_divergence: no samples inside the range {range}")
    edges = np.linspace(lo, hi, bins + 1)
    p = bin_probabilities(p_ref_pdf, edges)
    if not np.all(p >= 0) or not p.sum() > 0:
        raise ValueError("kl_divergence: reference density is negative or zero on the range")
    p = p / p.sum()
    q = np.histogram(inside, bins=edges)[0] / inside.size
    q = np.maximum(q, eps)
    q = q / q.sum()
    pos = p > 0
    return float(max(np.sum(p[pos] * np.log(p[pos] / q[pos])), 0.0))


def random_matrix_levels(n: int, ensemble: str, *, rng: np.random.Generator) -> np.ndarray:
    """Sorted levels of one random n x n matrix: "goe" (eigenvalues of (A + A^T)/2, A real Gaussian),
    "gue" ((A + A^dagger)/2, A complex Gaussian) or "poisson" (cumulative sums of i.i.d. unit exponential
    spacings: uncorrelated levels).  Reference samples for the ratio statistics."""
    if ensemble == "goe":
        a = rng.standard_normal((n, n))
        return np.linalg.eigvalsh((a + a.T) / 2)
    if ensemble == "gue":
        a = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
        return np.linalg.eigvalsh((a + a.conj().T) / 2)
    if ensemble == "poisson":
        return np.cumsum(rng.exponential(size=n))
    raise ValueError(f"unknown ensemble {ensemble!r}; choose goe, gue or poisson")
