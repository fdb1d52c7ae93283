"""Schmidt spectra of dense tensors and matrix product states for any bipartition of their legs.

The state is the network's weight tensor W normalised to ||W||_F = 1 (paper Section IV B).  For a
bipartition A|B of the legs, W reshaped to the matrix W[(A), (B)] has singular values lambda_k; the
normalised Schmidt coefficients satisfy sum_k lambda_k^2 = 1 and are returned in descending order, padded
with exact zeros to min(d_A, d_B) values (d_A = product of the dimensions of the legs in A).

MPS routes (the dense state is never built):

* ``"canonical"`` - A or B is a prefix of the chain (a single bond is cut): QR sweeps bring the sites left
  of the bond to left-canonical and those right of it to right-canonical form; the singular values of the
  bond matrix R_L L_R are the Schmidt values.  Cost O(N d chi^3).
* ``"compress"`` - any bipartition (contiguous block in the middle, or scattered legs such as {a1, n1}):
  one left-to-right sweep carries T[a, r, chi], where a runs over the A legs seen so far and r is an
  orthonormal compression of the B legs seen so far (an LQ decomposition after every B site, so
  Psi = sum T[a, r, chi] Q[r, b] with Q an isometry).  At the end Psi[a, b] = T[a, r] Q[r, b] and the
  singular values of T are the Schmidt values.  A is taken as the side of smaller dimension, so T holds at
  most d_A * min(d_A chi, d_B) * chi numbers: polynomial in chi and in the smaller side's dimension.  This
  is the reduced-density-matrix route (rho_A = T T^dagger) without squaring the condition number: small
  Schmidt values keep full relative precision.
* ``"rdm"`` - the reduced density matrix rho_A = tr_B |psi><psi| by contracting the MPS with its
  conjugate over B, then eigenvalues; Schmidt values below ~1e-8 lose relative precision (kept as an
  independent cross-check of ``"compress"``).
* ``"dense"`` - contract to the dense tensor and SVD (reference).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import scipy.linalg
import torch

from tnmat.entanglement._arrays import as_array, as_cores, parse_partition
from tnmat.networks.base import chain_to_dense

__all__ = ["schmidt_values", "mps_schmidt_values", "mps_to_dense", "mps_norm", "normalise_spectrum",
           "MPS_METHODS"]

MPS_METHODS = ("auto", "canonical", "compress", "rdm", "dense")


def _svdvals(m: np.ndarray) -> np.ndarray:
    """Singular values; gesdd first (fast), gesvd if it fails to converge (rare, ill-conditioned)."""
    try:
        return scipy.linalg.svdvals(m, check_finite=False)
    except np.linalg.LinAlgError:
        return scipy.linalg.svd(m, compute_uv=False, lapack_driver="gesvd", check_finite=False)


def normalise_spectrum(values: np.ndarray, size: int, *, name: str = "state") -> np.ndarray:
    """Singular values -> descending Schmidt coefficients with sum lambda^2 = 1, padded/cut to ``size``."""
    lam = np.sort(np.abs(np.asarray(values, dtype=np.float64)))[::-1]
    norm = math.sqrt(float(np.sum(lam * lam)))
    if not norm > 0.0 or not math.isfinite(norm):
        raise ValueError(f"{name}: the state has norm {norm}; Schmidt coefficients are undefined")
    lam = lam / norm
    out = np.zeros(size)
    out[: min(size, lam.size)] = lam[:size]
    return out


def schmidt_values(state: Any, partition: Iterable[int | str], *, legs: Sequence[str] | None = None
                   ) -> np.ndarray:
    """Normalised Schmidt coefficients of a dense tensor for the bipartition (partition | rest).

    ``state`` has one axis per leg (no batch axis); ``partition`` lists axis indices or, with ``legs``,
    leg names; contiguity is not required.  Returns min(d_A, d_B) values, descending, sum of squares 1.
    """
    psi = as_array(state)
    if psi.ndim < 2:
        raise ValueError(f"state: need at least two legs to bipartition, got shape {psi.shape}")
    a, b = parse_partition(partition, psi.ndim, legs)
    d_a = math.prod(psi.shape[i] for i in a)
    d_b = math.prod(psi.shape[i] for i in b)
    mat = np.transpose(psi, a + b).reshape(d_a, d_b)
    return normalise_spectrum(_svdvals(mat), min(d_a, d_b))


def mps_to_dense(cores: Sequence[Any]) -> np.ndarray:
    """Contract MPS cores (chi_l, d, chi_r) into the float64 tensor of shape (d_1, ..., d_N) (the networks' one
    contraction, :func:`tnmat.networks.chain_to_dense`)."""
    return chain_to_dense([torch.from_numpy(np.asarray(c)) for c in as_cores(cores)]).numpy()


def mps_norm(cores: Sequence[Any]) -> float:
    """||psi||_2 of an MPS by a left-to-right QR sweep (no overflow of the transfer matrix)."""
    r = np.ones((1, 1))
    for c in as_cores(cores):
        x = np.einsum("ab,bsc->asc", r, c).reshape(-1, c.shape[2])
        r = np.linalg.qr(x, mode="r")
    return float(np.abs(r).item())


def _left_factor(cs: list[np.ndarray], k: int) -> np.ndarray:
    """R with psi = Q_L R (sites < k, Q_L an isometry), shape (rank, chi_k)."""
    r = np.ones((1, 1), dtype=np.result_type(*cs))
    for c in cs[:k]:
        x = np.einsum("ab,bsc->asc", r, c).reshape(-1, c.shape[2])
        r = np.linalg.qr(x, mode="r")
    return r


def _right_factor(cs: list[np.ndarray], k: int) -> np.ndarray:
    """L with psi = L Q_R (sites >= k, Q_R with orthonormal rows), shape (chi_k, rank)."""
    l = np.ones((1, 1), dtype=np.result_type(*cs))
    for c in reversed(cs[k:]):
        x = np.einsum("asb,bc->asc", c, l).reshape(c.shape[0], -1)
        l = np.linalg.qr(x.T, mode="r").T  # x = R^T Q^T: an LQ decomposition via QR of the transpose
    return l


def _compress_sweep(cs: list[np.ndarray], a_sites: set[int]) -> np.ndarray:
    """T[a, r] with Psi[a, b] = T Q, Q an isometry over the complement (see module docstring)."""
    t = np.ones((1, 1, 1), dtype=np.result_type(*cs))  # (a, r, chi)
    for i, c in enumerate(cs):
        u = np.einsum("arx,xsy->arsy", t, c)
        na, nr, ns, ny = u.shape
        if i in a_sites:
            t = u.transpose(0, 2, 1, 3).reshape(na * ns, nr, ny)
        else:
            m = u.transpose(0, 3, 1, 2).reshape(na * ny, nr * ns)
            l = np.linalg.qr(m.T, mode="r").T  # m = L Q; only L is kept, Q (orthonormal rows) drops out
            t = l.reshape(na, ny, -1).transpose(0, 2, 1)
    return t[:, :, 0]


def _rdm_sweep(cs: list[np.ndarray], a_sites: set[int]) -> np.ndarray:
    """rho_A = tr_B |psi><psi| (unnormalised) by contracting the chain with its conjugate over B."""
    e = np.ones((1, 1, 1, 1), dtype=np.result_type(*cs))  # (a, a', chi, chi')
    for i, c in enumerate(cs):
        if i in a_sites:
            e = np.einsum("abxy,xsz,ytw->asbtzw", e, c, c.conj())
            na, ns, nb, nt, nz, nw = e.shape
            e = e.reshape(na * ns, nb * nt, nz, nw)
        else:
            e = np.einsum("abxy,xsz,ysw->abzw", e, c, c.conj())
    return e[:, :, 0, 0]


def mps_schmidt_values(cores: Sequence[Any], partition: Iterable[int | str], *,
                       legs: Sequence[str] | None = None, method: str = "auto") -> np.ndarray:
    """Normalised Schmidt coefficients of an MPS (cores (chi_l, d, chi_r), open ends) for (partition | rest).

    ``method``: "auto" ("canonical" if a single bond is cut, else "compress"), "canonical", "compress",
    "rdm" or "dense" (see module docstring).  Same output convention as :func:`schmidt_values`.
    """
    if method not in MPS_METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {MPS_METHODS}")
    cs = as_cores(cores)
    n = len(cs)
    if n < 2:
        raise ValueError("cores: need at least two sites to bipartition")
    a, b = parse_partition(partition, n, legs)
    dims = [c.shape[1] for c in cs]
    d_a, d_b = math.prod(dims[i] for i in a), math.prod(dims[i] for i in b)
    size = min(d_a, d_b)
    prefix = a if a[0] == 0 else b  # the side holding site 0
    single_cut = prefix == tuple(range(len(prefix)))
    if method == "auto":
        method = "canonical" if single_cut else "compress"
    if method == "dense":
        return schmidt_values(mps_to_dense(cs), a)
    if method == "canonical":
        if not single_cut:
            raise ValueError(f"method 'canonical' needs a bipartition that cuts one bond; {a}|{b} does not")
        k = len(prefix)
        bond = _left_factor(cs, k) @ _right_factor(cs, k)
        return normalise_spectrum(_svdvals(bond), size, name="mps")
    small = set(a) if d_a <= d_b else set(b)  # keep the smaller side open: cost polynomial in its size
    if method == "compress":
        return normalise_spectrum(_svdvals(_compress_sweep(cs, small)), size, name="mps")
    rho = _rdm_sweep(cs, small)
    ev = scipy.linalg.eigvalsh((rho + rho.conj().T) / 2, check_finite=False)
    return normalise_spectrum(np.sqrt(np.clip(ev, 0.0, None)), size, name="mps")
