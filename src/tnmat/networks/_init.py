"""Initialisation schemes that keep outputs and gradients of order one for any number of sites.

Why not iid Gaussian cores: for an MPS with iid N(0, s^2) cores and inputs with E[x x^T] = I (entries
standardised and uncorrelated), E_cores E_x[y^2] = E||W||_F^2 = prod_k (s_k^2 d_k) * prod_bonds chi_b, so
s_k^2 = 1 / (d_k sqrt(chi_{k-1} chi_k)) makes the *mean* one.  But ||W||^2 = l^T (prod_k E_k) r is a product
of random transfer matrices E_k = sum_s A_k[s] (x) A_k[s]; its logarithm is a sum of N random terms whose
mean is negative (e.g. chi = 1: E log(chi^2_d / d) < 0), so a *typical* network has ||W||^2 ~ exp(-c N / chi^2)
and the output vanishes for many sites (the TorchMPS / tensorkrowch threads: jemisjoky/TorchMPS#23,
joserapa98/tensorkrowch#3).  The schemes below remove the randomness of the norm instead of its mean:

* ``canonical`` (MPS, MPO, DenseACE): every core, reshaped to (chi_left, d * chi_right), has orthonormal
  rows (a random right isometry).  Then sum_s A[s] A[s]^T = I_{chi_left} exactly, the right environments
  are identities and ||W||_F = 1 *deterministically*, so E_x[y^2] = ||W||^2 = 1 for every realisation, every
  N and every chi.  The gradient is also fixed in size: E_x ||dy/dA_k||^2 = d_k * chi_right (the left
  block has unit norm because the right block is isometric).  Bonds larger than min(prod d_left,
  prod d_right) cannot raise the rank; their extra rows/columns are set to zero (they stay a saddle of
  the loss, so the function class is unchanged).
* ``isometric`` (TTN, MERA): every node (d_a, d_b, c) reshaped to (d_a d_b, c) has orthonormal columns,
  disentanglers are Haar-orthogonal, the top node has unit Frobenius norm: ||W||_F = ||top||_F = 1.
* ``identity`` (FeatureMapMPS default, optional for MPS): A_k[:, s, :] = (I + eps G_k[s]) / sqrt(d_k)**p.
  For the map phi(x) = [1 - x, x] the components sum to one, so with p = 0 the noiseless network gives
  y = 1 for every input whatever N (Stoudenmire-Schwab / TorchMPS "identity" trick).  With iid noise
  G ~ N(0, 1) the second moment of the bond vector grows by (1 + chi v eps^2) per site, v = E|phi|^2;
  choosing eps^2 = log(1 + chi) / (N chi v) bounds the total growth by 1 + chi, so Var(y) ~ (e^g - 1) / chi ~ 1.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "make_generator",
    "right_isometric_core",
    "isometry",
    "haar_orthogonal",
    "identity_noise_core",
    "identity_noise_eps",
    "operator_identity_core",
    "effective_bonds",
]


def make_generator(seed: int | None = None, generator: torch.Generator | None = None) -> torch.Generator:
    """A CPU generator: the one given, else one seeded by ``seed``, else a fresh nondeterministic one."""
    if generator is not None:
        return generator
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def effective_bonds(phys: list[int], chi: int) -> list[int]:
    """Useful bond dimensions min(chi, prod d_left, prod d_right) for the N + 1 bonds of an open chain
    (boundary bonds are 1); ``phys`` are the per-site dimensions (d, or d^2 for an MPO)."""
    n = len(phys)
    out = [1] * (n + 1)
    for k in range(1, n):
        left = math.prod(phys[:k])
        right = math.prod(phys[k:])
        out[k] = min(chi, left, right)
    return out


def right_isometric_core(
    chi_l: int, d: int, chi_r: int, eff_l: int, eff_r: int, g: torch.Generator
) -> torch.Tensor:
    """A (chi_l, d, chi_r) float64 core whose (eff_l, d, eff_r) block, reshaped to (eff_l, d * eff_r), has
    orthonormal rows (requires eff_l <= d * eff_r); all other entries are zero."""
    if eff_l > d * eff_r:
        raise ValueError(f"right_isometric_core: eff_l={eff_l} > d*eff_r={d * eff_r}")
    gauss = torch.randn(d * eff_r, eff_l, generator=g, dtype=torch.float64)
    q, r = torch.linalg.qr(gauss)
    q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(())).unsqueeze(0)  # Haar
    core = torch.zeros(chi_l, d, chi_r, dtype=torch.float64)
    core[:eff_l, :, :eff_r] = q.T.reshape(eff_l, d, eff_r)
    return core


def isometry(n_in: int, n_out: int, g: torch.Generator) -> torch.Tensor:
    """A random (n_in, n_out) float64 matrix with orthonormal columns (n_out <= n_in)."""
    if n_out > n_in:
        raise ValueError(f"isometry: {n_out} columns cannot be orthonormal in dimension {n_in}")
    q, r = torch.linalg.qr(torch.randn(n_in, n_out, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(())).unsqueeze(0)


def haar_orthogonal(n: int, g: torch.Generator) -> torch.Tensor:
    """A Haar-random (n, n) float64 orthogonal matrix."""
    return isometry(n, n, g)


def identity_noise_eps(n_sites: int, chi: int, v: float = 1.0) -> float:
    """Noise amplitude eps with eps^2 = log(1 + chi) / (N chi v) (see the module docstring)."""
    return math.sqrt(math.log1p(chi) / (max(n_sites, 1) * chi * v))


def identity_noise_core(
    chi_l: int, d: int, chi_r: int, eps: float, scale: float, g: torch.Generator
) -> torch.Tensor:
    """A (chi_l, d, chi_r) float64 core: scale * (I[:chi_l, :chi_r] + eps * N(0, 1)) for every physical
    index (a truncated identity for boundary cores, whose first/last bond is 1)."""
    eye = torch.eye(chi_l, chi_r, dtype=torch.float64).unsqueeze(1).expand(chi_l, d, chi_r)
    noise = torch.randn(chi_l, d, chi_r, generator=g, dtype=torch.float64)
    return scale * (eye + eps * noise)


def operator_identity_core(chi_l: int, d_out: int, d_in: int, chi_r: int, noise: float,
                           g: torch.Generator) -> torch.Tensor:
    """A (chi_l, d_out, d_in, chi_r) float64 MPO core: the truncated identity delta(o, i) on the first bond
    channel plus N(0, noise^2) entries.  A chain of them without noise is the identity map for d_out = d_in
    and the projection onto the first d_out basis states of every leg for d_out < d_in (the autoencoder's
    start)."""
    core = noise * torch.randn(chi_l, d_out, d_in, chi_r, generator=g, dtype=torch.float64)
    m = min(d_out, d_in)
    core[0, torch.arange(m), torch.arange(m), 0] += 1.0
    return core
