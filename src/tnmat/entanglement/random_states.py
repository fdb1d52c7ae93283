"""Reference values for random states: Page entropy, min-cut bound, Marchenko-Pastur spectrum.

A random state of a d_A x d_B bipartite system is psi = G / ||G||_F with G a d_A x d_B matrix of i.i.d.
standard Gaussians: complex Gaussians give the Haar (unitarily invariant, Page) ensemble, real Gaussians
the orthogonally invariant one that a real weight tensor with no structure would follow.  The reduced
density matrix rho_A = psi psi^dagger is then a fixed-trace Wishart matrix (beta = 2 complex, 1 real).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import digamma

__all__ = ["page_entropy", "page_entropy_real_approx", "mean_random_entropy", "min_cut_entropy",
           "random_state", "marchenko_pastur_pdf", "marchenko_pastur_cdf", "marchenko_pastur_spectrum", "ks_distance"]


def _dims(d_a: int, d_b: int) -> tuple[int, int]:
    """(m, n) = (min, max) of two positive integer dimensions."""
    if int(d_a) != d_a or int(d_b) != d_b or d_a < 1 or d_b < 1:
        raise ValueError(f"dimensions must be positive integers, got d_a={d_a}, d_b={d_b}")
    return min(int(d_a), int(d_b)), max(int(d_a), int(d_b))


def page_entropy(d_a: int, d_b: int) -> float:
    """Mean von Neumann entropy of a Haar-random (complex) pure state (Page 1993; paper eq. 26):
    S = sum_{k=n+1}^{mn} 1/k - (m - 1) / (2 n) with m = min(d_a, d_b), n = max(d_a, d_b) (symmetric in
    its arguments, since both reduced density matrices share their non-zero spectrum).

    The harmonic sum is evaluated as psi(mn + 1) - psi(n + 1) (digamma), exact and O(1) for large dims."""
    m, n = _dims(d_a, d_b)
    return float(digamma(m * n + 1) - digamma(n + 1) - (m - 1) / (2 * n))


def page_entropy_real_approx(d_a: int, d_b: int) -> float:
    """Approximate mean entropy of a random *real* pure state (orthogonal ensemble, beta = 1), m <= n:
    S ~ psi(mn/2 + 1) - psi(n/2 + 1) - (m - 1) / (2 n).

    Not exact: the exact beta = 1 mean has no such digamma form (for m = 2 it involves log 2 at odd n and
    Catalan's constant at even n; Kumar & Pandey, J. Phys. A 44, 445301 (2011) give finite sums).  This
    expression has the exact large-n expansion log m - (m + 2)(m - 1) / (2 m n) + O(n^-2) (from the exact
    real-state mean purity (m + n + 1)/(mn + 2)); against exact quadrature at m = 2 it is low by 0.027
    (n = 2), 0.0062 (n = 4), 0.0015 (n = 8).  Use :func:`mean_random_entropy` for a sampled value with an
    error bar.  Real random states are less entangled than complex ones (page_entropy)."""
    m, n = _dims(d_a, d_b)
    return float(digamma(m * n / 2 + 1) - digamma(n / 2 + 1) - (m - 1) / (2 * n))


def mean_random_entropy(d_a: int, d_b: int, *, real: bool, n_samples: int = 1000,
                        rng: np.random.Generator) -> tuple[float, float]:
    """(mean, standard error) of the von Neumann entropy of ``n_samples`` Gaussian random states of a
    d_a x d_b system, real or complex (the complex mean is :func:`page_entropy`)."""
    m, n = _dims(d_a, d_b)
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    s = np.empty(n_samples)
    for k in range(n_samples):
        psi = random_state((m, n), rng=rng, complex_=not real)
        p = np.linalg.svd(psi, compute_uv=False) ** 2
        p = p[p > 0]
        s[k] = -np.sum(p * np.log(p))
    return float(s.mean()), float(s.std(ddof=1) / math.sqrt(n_samples))


def min_cut_entropy(bond_dims_cut: Sequence[int] | int, d_a: int | None = None, d_b: int | None = None) -> float:
    """Largest entropy a network can carry across a cut: log(prod chi over the cut bonds), limited by
    log(min(d_A, d_B)) when the side dimensions are given (the Schmidt rank is at most both)."""
    chis = [bond_dims_cut] if isinstance(bond_dims_cut, int) else list(bond_dims_cut)
    if not chis or any(int(c) != c or c < 1 for c in chis):
        raise ValueError(f"bond_dims_cut must be positive integers, got {bond_dims_cut!r}")
    s = float(sum(math.log(c) for c in chis))
    if d_a is not None or d_b is not None:
        if d_a is None or d_b is None:
            raise ValueError("give both d_a and d_b, or neither")
        m, _ = _dims(d_a, d_b)
        s = min(s, math.log(m))
    return s


def random_state(dims: Sequence[int], *, rng: np.random.Generator, complex_: bool = True) -> np.ndarray:
    """Normalised Gaussian random state of shape ``dims`` (complex: Haar measure; real: orthogonal)."""
    shape = tuple(int(d) for d in dims)
    g = rng.standard_normal(shape)
    if complex_:
        g = g + 1j * rng.standard_normal(shape)
    return g / np.linalg.norm(g)


def _mp_edges(ratio: float) -> tuple[float, float]:
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"Marchenko-Pastur ratio must be in (0, 1] (use min/max of the dims), got {ratio}")
    s = math.sqrt(ratio)
    return (1.0 - s) ** 2, (1.0 + s) ** 2


def marchenko_pastur_pdf(x: np.ndarray | float, ratio: float) -> np.ndarray:
    """Marchenko-Pastur density of x = d_A * p (p an eigenvalue of rho_A, d_A <= d_B, ratio c = d_A/d_B):
    rho(x) = sqrt((x_+ - x)(x - x_-)) / (2 pi c x) on [x_-, x_+], x_+- = (1 +- sqrt c)^2; mean of x is 1.
    The same law for real and complex states (beta only enters the finite-size corrections)."""
    lo, hi = _mp_edges(ratio)
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    inside = (x > lo) & (x < hi)
    xi = x[inside]
    out[inside] = np.sqrt((hi - xi) * (xi - lo)) / (2 * math.pi * ratio * xi)
    return out


def marchenko_pastur_cdf(x: np.ndarray | float, ratio: float, *, n_grid: int = 4097) -> np.ndarray:
    """Cumulative Marchenko-Pastur distribution of x (see :func:`marchenko_pastur_pdf`).

    With x = x_- + (x_+ - x_-) sin^2(t) the density times dx becomes the smooth function
    (x_+ - x_-)^2 sin^2 t cos^2 t / (pi c x(t)) on t in [0, pi/2] (the square-root edges and, at c = 1,
    the 1/sqrt(x) divergence cancel), integrated by a cumulative Simpson rule on a uniform t grid."""
    from scipy.integrate import cumulative_simpson

    lo, hi = _mp_edges(ratio)
    t = np.linspace(0.0, math.pi / 2, n_grid)
    s2 = np.sin(t) ** 2
    xt = lo + (hi - lo) * s2
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(xt > 0, (hi - lo) ** 2 * s2 * np.cos(t) ** 2 / (math.pi * ratio * xt), 0.0)
    if lo == 0.0:  # c = 1: the integrand tends to (hi - lo) cos^2 t / pi at t = 0
        f[0] = (hi - lo) / math.pi
    cdf = cumulative_simpson(f, x=t, initial=0.0)
    cdf /= cdf[-1]  # removes the O(grid^-4) quadrature error of the total (analytically 1)
    x = np.asarray(x, dtype=np.float64)
    return np.interp(x, xt, cdf, left=0.0, right=1.0)


def marchenko_pastur_spectrum(d_a: int, d_b: int) -> np.ndarray:
    """Expected entanglement spectrum (eigenvalues p_k of rho_A, descending, sum 1) of a random state of
    dims (d_a, d_b) under the Marchenko-Pastur law: the k-th largest of the m = min(d_a, d_b) non-zero
    eigenvalues is placed at the (k - 1/2)/m upper quantile, p_k = x_k / m.  For plotting observed spectra
    against the random-state reference (the law is asymptotic in m; edges deviate at small m)."""
    m, n = _dims(d_a, d_b)
    if m == 1:
        return np.ones(1)
    ratio = m / n
    lo, hi = _mp_edges(ratio)
    grid = np.linspace(lo, hi, 20001)
    cdf = marchenko_pastur_cdf(grid, ratio)
    q = 1.0 - (np.arange(m) + 0.5) / m
    x = np.interp(q, cdf, grid)
    return x / x.sum()


def ks_distance(samples: np.ndarray, cdf) -> float:
    """Kolmogorov-Smirnov distance sup_x |F_empirical(x) - F(x)| of samples against a callable CDF."""
    s = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    if s.size == 0:
        raise ValueError("ks_distance: no samples")
    f = np.asarray(cdf(s), dtype=np.float64)
    k = np.arange(1, s.size + 1) / s.size
    return float(max(np.max(k - f), np.max(f - (k - 1.0 / s.size))))
