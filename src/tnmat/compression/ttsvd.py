"""TT-SVD: each structure's dense descriptor tensor factorised into an MPS (paper Section III, Fig. 8).

For a tensor T[s_1, ..., s_N] the successive-SVD algorithm (Oseledets, SIAM J. Sci. Comput. 33, 2295 (2011))
reshapes the remainder into a matrix (r_{k-1} d_k) x (d_{k+1} ... d_N), keeps the r_k largest singular
triplets, stores U as the left-orthonormal core X_k (r_{k-1}, d_k, r_k) and absorbs S V^T into the right
neighbour.  The last core carries the norm.  Because every stored U is an isometry, the errors of the cuts
are mutually orthogonal and

    ||T - TT||_F^2 = sum_k  sum_{j > r_k} sigma_j(R_k)^2                                    (exact)

with R_k the remainder matrix actually decomposed at cut k, and the Eckart-Young bounds against the
unfoldings T_<k> (rows s_1..s_k) of the original tensor hold:

    max_k sum_{j > r_k} sigma_j(T_<k>)^2  <=  ||T - TT||_F^2  <=  sum_k sum_{j > r_k} sigma_j(T_<k>)^2.

All structures of a batch are decomposed together (batched Gram eigenproblems, see ``_left_factor``) with a
*common* rank per cut: a row that needs fewer singular values than the common rank has its extra ones set to
zero (exact zero padding of its cores), so a batch is a list of tensors of shape (batch, r_{k-1}, d_k, r_k).
Pure math: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tnmat.networks.base import dense_from_cores

__all__ = [
    "TTSVDResult",
    "tt_svd",
    "tt_svd_info",
    "tt_to_dense",
    "tt_ranks",
    "n_input_parameters",
    "full_ranks",
    "unfolding_bounds",
]


@dataclass(frozen=True)
class TTSVDResult:
    """Cores (batch, r_{k-1}, d_k, r_k), the squared Frobenius norm discarded at each cut (batch, N-1), and
    the number of singular values each row really kept at each cut (batch, N-1) (<= the common rank)."""

    cores: list[torch.Tensor]
    discarded: torch.Tensor
    kept: torch.Tensor


def full_ranks(sizes: Sequence[int]) -> list[int]:
    """Largest useful rank at each of the N-1 cuts: min(d_1...d_k, d_{k+1}...d_N)."""
    sizes = [int(s) for s in sizes]
    return [min(math.prod(sizes[: k + 1]), math.prod(sizes[k + 1 :])) for k in range(len(sizes) - 1)]


def _check(tensor: torch.Tensor, max_bond: int | None, tol: float | None) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tt_svd: tensor must be a torch.Tensor (batch, *sizes), got {type(tensor).__name__}")
    if tensor.ndim < 2:
        raise ValueError(f"tt_svd: tensor must have a batch axis and at least one leg, got shape {tuple(tensor.shape)}")
    if not torch.is_floating_point(tensor):
        raise TypeError(f"tt_svd: tensor must be floating point, got {tensor.dtype}")
    if not torch.isfinite(tensor).all():
        raise ValueError("tt_svd: tensor contains NaN or inf")
    if max_bond is not None and (isinstance(max_bond, bool) or int(max_bond) != max_bond or max_bond < 1):
        raise ValueError(f"tt_svd: max_bond must be a positive int or None, got {max_bond!r}")
    if tol is not None and not (0.0 <= float(tol) < 1.0):
        raise ValueError(f"tt_svd: tol must be in [0, 1) (relative Frobenius error), got {tol!r}")


def _left_factor(mat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left singular vectors U (b, m, k) of mat (b, m, n), k = min(m, n), ordered by decreasing singular
    value, and the projection U^T mat = S V^T (b, k, n).

    Computed from the symmetric eigenproblem of the small Gram matrix (after a QR when m > n), which is far
    cheaper than a batched SVD for the wide / tall unfoldings of TT-SVD.  U is orthonormal to machine
    precision and S V^T is formed as U^T mat, so U U^T mat reproduces mat exactly at full rank and the
    discarded weight is the norm of the dropped rows of U^T mat (singular values below ~1e-8 of the largest
    are not resolved individually, which only affects which of them a tolerance drops)."""
    m, n = mat.shape[-2:]
    if m <= n:
        w = torch.linalg.eigh(mat @ mat.transpose(-1, -2))[1].flip(-1)  # (b, m, m), decreasing eigenvalues
        return w, w.transpose(-1, -2) @ mat
    q, r = torch.linalg.qr(mat)  # (b, m, n), (b, n, n)
    w = torch.linalg.eigh(r @ r.transpose(-1, -2))[1].flip(-1)
    return q @ w, w.transpose(-1, -2) @ r


def tt_svd_info(tensor: torch.Tensor, *, max_bond: int | None = None, tol: float | None = None) -> TTSVDResult:
    """TT-SVD of every row of ``tensor`` (batch, d_1, ..., d_N) with details (see :func:`tt_svd`)."""
    _check(tensor, max_bond, tol)
    b, sizes = tensor.shape[0], tuple(tensor.shape[1:])
    n = len(sizes)
    # per-cut squared error budget delta^2 = tol^2 ||T||^2 / (N-1) (Oseledets' choice): the sum over cuts
    # then gives a relative error <= tol for every row
    budget = None
    if tol is not None and n > 1:
        norm2 = tensor.reshape(b, -1).pow(2).sum(-1)
        budget = (float(tol) ** 2) * norm2 / (n - 1)
    cores: list[torch.Tensor] = []
    discarded, kept_counts = [], []
    rest = tensor.reshape(b, 1, -1)
    r = 1
    for d in sizes[:-1]:
        mat = rest.reshape(b, r * d, -1)
        u, proj = _left_factor(mat)
        s2 = proj.pow(2).sum(-1)  # (b, m): squared singular values, decreasing
        m = s2.shape[-1]
        # tail[j] = sum_{i >= j} s_i^2: discarded weight when keeping j values
        tail = torch.flip(torch.cumsum(torch.flip(s2, [-1]), -1), [-1])
        tail = torch.cat([tail, tail.new_zeros(b, 1)], -1)  # (b, m+1)
        keep_row = torch.full((b,), m, dtype=torch.long, device=tensor.device)
        if budget is not None:
            ok = tail <= budget.unsqueeze(-1)  # keeping j values is enough
            # smallest j with ok[j] (ok[m] is always true); at least one value kept
            keep_row = torch.argmax(ok.to(torch.int8), dim=-1).clamp(min=1)
        if max_bond is not None:
            keep_row = keep_row.clamp(max=int(max_bond))
        keep = int(keep_row.max())
        # zero the singular values a row does not keep (its cores are then exactly zero-padded)
        mask = torch.arange(keep, device=tensor.device).unsqueeze(0) < keep_row.unsqueeze(-1)
        discarded.append(tail.gather(1, keep_row.unsqueeze(-1)).squeeze(-1))
        kept_counts.append(keep_row)
        cores.append(u[:, :, :keep].reshape(b, r, d, keep))
        rest = proj[:, :keep, :] * mask.to(proj.dtype).unsqueeze(-1)
        r = keep
    cores.append(rest.reshape(b, r, sizes[-1], 1))
    if discarded:
        disc = torch.stack(discarded, -1)
        kept = torch.stack(kept_counts, -1)
    else:
        disc = tensor.new_zeros(b, 0)
        kept = torch.zeros(b, 0, dtype=torch.long)
    return TTSVDResult(cores=cores, discarded=disc, kept=kept)


def tt_svd(tensor: torch.Tensor, *, max_bond: int | None = None, tol: float | None = None) -> list[torch.Tensor]:
    """Factorise each row of ``tensor`` (batch, d_1, ..., d_N) into MPS cores (batch, r_{k-1}, d_k, r_k).

    Successive SVDs from the left, singular values absorbed into the right neighbour (left-orthonormal
    cores, norm in the last core).  ``max_bond`` caps every rank (chi_in); ``tol`` is a relative Frobenius
    error per row: each cut may discard up to tol^2 ||T||^2 / (N-1), so ||T - TT|| <= tol ||T||.  With
    neither, the factorisation is exact (ranks up to :func:`full_ranks`).  Ranks are common to the batch.
    """
    return tt_svd_info(tensor, max_bond=max_bond, tol=tol).cores


#: cores (batch, r_{k-1}, d_k, r_k) -> the dense tensor (batch, d_1, ..., d_N): the networks' one contraction
tt_to_dense = dense_from_cores


def tt_ranks(cores: Sequence[torch.Tensor]) -> list[int]:
    """Bond dimensions (r_0, r_1, ..., r_N) of a factorised input (r_0 = r_N = 1)."""
    return [int(cores[0].shape[1])] + [int(c.shape[-1]) for c in cores]


def n_input_parameters(cores: Sequence[torch.Tensor]) -> int:
    """N_in: stored numbers per structure, sum_k r_{k-1} d_k r_k (paper Fig. 17)."""
    return sum(int(c.shape[1]) * int(c.shape[2]) * int(c.shape[3]) for c in cores)


def unfolding_bounds(tensor: torch.Tensor, ranks: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Eckart-Young bounds on the squared error of any TT with cut ranks ``ranks`` (N-1 values) built by
    TT-SVD: (lower, upper) = (max_k, sum_k) of the squared singular values of the unfolding T_<k> beyond
    r_k, per row (batch,).  An independent check of :func:`tt_svd` (module docstring)."""
    b, sizes = tensor.shape[0], tuple(tensor.shape[1:])
    if len(ranks) != len(sizes) - 1:
        raise ValueError(f"unfolding_bounds: need {len(sizes) - 1} ranks, got {len(ranks)}")
    tails = []
    for k, r in enumerate(ranks):
        s = torch.linalg.svdvals(tensor.reshape(b, math.prod(sizes[: k + 1]), -1))
        tails.append(s[:, int(r):].pow(2).sum(-1))
    if not tails:
        z = tensor.new_zeros(b)
        return z, z
    t = torch.stack(tails, -1)
    return t.max(-1).values, t.sum(-1)
