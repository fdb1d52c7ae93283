"""Entropies and the capacity of entanglement of a Schmidt spectrum (natural logarithm throughout).

With p_k = lambda_k^2 (sum p = 1) the eigenvalues of the reduced density matrix:

* von Neumann  S = -sum p log p
* Renyi        S_alpha = log(sum p^alpha) / (1 - alpha)   (alpha -> 1: von Neumann; 0: log rank; inf: -log p_max)
* capacity     C_E = sum p (log p)^2 - (sum p log p)^2    (paper eq. 28): the variance of the entanglement
  Hamiltonian H_E = -log rho_A, equal to d^2/dn^2 [(1 - n) S_n] at n = 1.

Zero probabilities contribute nothing (0 log 0 = 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from tnmat.entanglement._arrays import as_array
from tnmat.entanglement.schmidt import mps_schmidt_values, schmidt_values

__all__ = ["probabilities", "von_neumann_entropy", "renyi_entropy", "capacity_of_entanglement",
           "entanglement_entropy", "spectrum_of"]


def probabilities(lambdas: Any, *, atol: float = 1e-10) -> np.ndarray:
    """p = lambda^2 from Schmidt coefficients, checking sum p = 1 within ``atol`` (pass normalised spectra)."""
    lam = as_array(lambdas, name="lambdas")
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"lambdas: expected a non-empty 1-d spectrum, got shape {lam.shape}")
    p = np.abs(lam) ** 2
    total = float(p.sum())
    if abs(total - 1.0) > atol:
        raise ValueError(f"lambdas: sum of squares is {total}, not 1; normalise the spectrum first")
    return p


def _plogp_terms(p: np.ndarray) -> np.ndarray:
    """log p where p > 0 and 0 elsewhere (so that p log p -> 0 at p = 0)."""
    out = np.zeros_like(p)
    pos = p > 0
    out[pos] = np.log(p[pos])
    return out


def von_neumann_entropy(lambdas: Any) -> float:
    """S = -sum_k lambda_k^2 log lambda_k^2 (nats)."""
    p = probabilities(lambdas)
    return float(max(-np.sum(p * _plogp_terms(p)), 0.0))


def renyi_entropy(lambdas: Any, alpha: float) -> float:
    """S_alpha = log(sum_k p_k^alpha) / (1 - alpha), p = lambda^2; alpha in [0, inf], 1 gives von Neumann."""
    alpha = float(alpha)
    if not alpha >= 0:
        raise ValueError(f"Renyi index alpha must be >= 0, got {alpha}")
    p = probabilities(lambdas)
    if alpha == 1.0:
        return von_neumann_entropy(lambdas)
    if math.isinf(alpha):
        return float(-math.log(p.max()))
    pos = p[p > 0]
    if alpha == 0.0:
        return math.log(pos.size)
    # log-sum-exp keeps large alpha from underflowing
    logs = alpha * np.log(pos)
    m = logs.max()
    return float((m + math.log(np.sum(np.exp(logs - m)))) / (1.0 - alpha))


def capacity_of_entanglement(lambdas: Any) -> float:
    """C_E = sum p (log p)^2 - (sum p log p)^2 with p = lambda^2 (paper eq. 28)."""
    p = probabilities(lambdas)
    lp = _plogp_terms(p)
    mean = float(np.sum(p * lp))
    # variance computed around the mean: no cancellation of two large numbers
    return float(np.sum(p * (lp - mean) ** 2))


def spectrum_of(state: Any, partition: Iterable[int | str], *, legs: Sequence[str] | None = None,
                method: str = "auto") -> np.ndarray:
    """Schmidt coefficients of a dense tensor (array/tensor) or an MPS (list/tuple of cores)."""
    if isinstance(state, list | tuple):
        return mps_schmidt_values(state, partition, legs=legs, method=method)
    return schmidt_values(state, partition, legs=legs)


def entanglement_entropy(state: Any, partition: Iterable[int | str], *, legs: Sequence[str] | None = None,
                         alpha: float = 1.0, method: str = "auto") -> float:
    """Bipartite entropy (von Neumann, or Renyi-alpha) of a dense tensor or an MPS (list of cores)."""
    lam = spectrum_of(state, partition, legs=legs, method=method)
    return von_neumann_entropy(lam) if alpha == 1.0 else renyi_entropy(lam, alpha)
