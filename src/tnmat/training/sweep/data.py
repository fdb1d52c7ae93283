"""Inputs of the sweeping fitter: dense or factorised (TT) rows, optionally per atom (local model, eq. 1).

A :class:`SweepData` holds the network inputs of one set of structures (training, validation, refit) as
float64: either a dense tensor (rows, d_1, ..., d_N) or a list of per-row MPS cores (rows, r, d_k, r'),
the paper's factorised inputs (Fig. 8).  Per-atom rows carry ``groups`` (the structure of every row);
a local model's structure prediction is the mean of its per-atom outputs (what the estimators use), so
every local feature tensor Phi is averaged over the atoms of each structure (the prediction is linear
in Phi).

Force matching: ``weights`` (one per structure, > 0) weigh the energy rows, and ``dx`` / ``dy`` / ``dweights``
add derivative rows: dx_k = d x_s / d r_{j,alpha} of a structure's (standardised, averaged) input with respect
to one atomic coordinate, its target dy_k and weight.  The networks the sweeps fit (MPS, TTN, dense) are
linear in their input, so <W, dx_k> is the derivative of the prediction and a derivative row enters every
local solve like an input row, only without the intercept (:func:`stack_rows`); more derivative rows than
input features are compressed exactly to as many rows as features (:func:`compress_rows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tnmat.compression import tt_svd
from tnmat.networks.base import is_factorised

#: relative Frobenius error per row of the TT decomposition of dense rows (exact to rounding)
EXACT_TT_TOL = 1e-13

__all__ = ["SweepData", "StackedRows", "stack_rows"]


@dataclass
class SweepData:
    """Network inputs of a set of structures (float64) and their standardised targets."""

    x: torch.Tensor | list[torch.Tensor]  # dense (rows, *sizes) or factorised cores (rows, r, d, r')
    y: torch.Tensor  # (n_structures,)
    groups: torch.Tensor | None = None  # (rows,) structure of each row (per-atom inputs), else None
    weights: torch.Tensor | None = None  # (n_structures,) weights of the energy rows (None: 1)
    dx: torch.Tensor | None = None  # (m, *sizes) derivative rows (dense), no intercept
    dy: torch.Tensor | None = None  # (m,) their targets
    dweights: torch.Tensor | None = None  # (m,) their weights (None: 1)

    def __post_init__(self) -> None:
        self._check_extra_rows()
        if is_factorised(self.x):
            self.x = [torch.as_tensor(c, dtype=torch.float64) for c in self.x]
        else:
            self.x = torch.as_tensor(self.x, dtype=torch.float64)
        self.y = torch.as_tensor(self.y, dtype=torch.float64).reshape(-1)
        n_rows = self.n_rows
        if self.groups is None:
            if n_rows != len(self.y):
                raise ValueError(f"SweepData: {n_rows} input rows but {len(self.y)} targets")
            return
        self.groups = torch.as_tensor(self.groups, dtype=torch.long)
        if len(self.groups) != n_rows:
            raise ValueError(f"SweepData: groups has {len(self.groups)} entries for {n_rows} rows")
        counts = torch.bincount(self.groups, minlength=len(self.y))
        if len(counts) != len(self.y) or bool((counts == 0).any()):
            raise ValueError("SweepData: groups must number the structures 0..n-1 (one target each), every "
                             "structure with at least one row")
        self._inv_counts = 1.0 / counts.to(torch.float64)

    def _check_extra_rows(self) -> None:
        """Weights finite and > 0, derivative rows with one target (and weight) each."""
        n = len(torch.as_tensor(self.y).reshape(-1))
        if self.weights is not None:
            self.weights = _positive(self.weights, n, "weights")
        if (self.dx is None) != (self.dy is None):
            raise ValueError("SweepData: pass both dx and dy (derivative rows and their targets), or neither")
        if self.dx is None:
            if self.dweights is not None:
                raise ValueError("SweepData: dweights without derivative rows dx")
            return
        self.dx = torch.as_tensor(self.dx, dtype=torch.float64)
        self.dy = torch.as_tensor(self.dy, dtype=torch.float64).reshape(-1)
        if len(self.dy) != self.dx.shape[0] or not bool(torch.isfinite(self.dy).all()):
            raise ValueError(f"SweepData: {self.dx.shape[0]} derivative rows need as many finite targets dy, "
                             f"got {len(self.dy)}")
        if self.dweights is not None:
            self.dweights = _positive(self.dweights, len(self.dy), "dweights")

    @property
    def has_extra_rows(self) -> bool:
        """Whether the data carry weights or derivative rows (the plain fit ignores neither)."""
        return self.weights is not None or self.dx is not None

    @property
    def factorised(self) -> bool:
        return is_factorised(self.x)

    @property
    def n_rows(self) -> int:
        return int(self.x[0].shape[0] if self.factorised else self.x.shape[0])

    @property
    def n_structures(self) -> int:
        return len(self.y)

    def aggregate(self, rows: torch.Tensor) -> torch.Tensor:
        """Per-row quantities (rows, ...) -> per-structure means (n_structures, ...) (identity when the
        rows are structures)."""
        if self.groups is None:
            return rows
        out = torch.zeros(self.n_structures, *rows.shape[1:], dtype=rows.dtype)
        out.index_add_(0, self.groups, rows)
        return out * self._inv_counts.reshape(-1, *([1] * (rows.ndim - 1)))

    def averaged(self) -> SweepData:
        """The same structures with dense per-atom rows replaced by their mean (exact for a model linear in
        the input: MPS, TTN); factorised or per-structure data are returned unchanged."""
        if self.groups is None or self.factorised:
            return self
        return SweepData(x=self.aggregate(self.x), y=self.y, weights=self.weights, dx=self.dx, dy=self.dy,
                         dweights=self.dweights)

    def as_cores(self) -> list[torch.Tensor]:
        """Factorised rows (TT-SVD of dense rows to a relative error of :data:`EXACT_TT_TOL`)."""
        return list(self.x) if self.factorised else tt_svd(self.x, tol=EXACT_TT_TOL)

    def as_dense(self) -> torch.Tensor:
        """Dense rows (contracting factorised ones)."""
        if not self.factorised:
            return self.x
        from tnmat.networks.base import dense_from_cores

        return dense_from_cores(self.x)


def _positive(w: torch.Tensor, n: int, what: str) -> torch.Tensor:
    w = torch.as_tensor(w, dtype=torch.float64).reshape(-1)
    if len(w) != n or not bool(torch.isfinite(w).all()) or not bool((w > 0).all()):
        raise ValueError(f"SweepData: {what} must be {n} finite numbers > 0")
    return w


@dataclass
class StackedRows:
    """Energy rows followed by derivative rows as one data set, with the row weights (None: all 1) and the
    mask of the rows that carry the intercept (None: all)."""

    data: SweepData
    weights: torch.Tensor | None
    intercept_rows: torch.Tensor | None


def stack_rows(d: SweepData) -> StackedRows:
    """``d`` as one set of rows: x = [mean input per structure; dx], y = [y; dy], weights [weights; dweights]
    and the intercept on the first n_structures rows only.  Data without weights or derivative rows (and
    inputs with their own contraction) are returned as they are."""
    if not getattr(d, "has_extra_rows", False):
        return StackedRows(d, None, None)
    n = d.n_structures
    w = torch.ones(n, dtype=torch.float64) if d.weights is None else d.weights
    if d.dx is None:
        return StackedRows(d, w, None)  # the sweepers' local features are per structure already
    x = d.as_dense()
    if d.groups is not None:
        x = d.aggregate(x)
    if tuple(d.dx.shape[1:]) != tuple(x.shape[1:]):
        raise ValueError(f"SweepData: derivative rows of shape {tuple(d.dx.shape[1:])}, inputs "
                         f"{tuple(x.shape[1:])}")
    dw = torch.ones(len(d.dy), dtype=torch.float64) if d.dweights is None else d.dweights
    dx, dy = compress_rows(d.dx, d.dy, dw)
    if dx is not d.dx:  # the compressed rows carry their weights
        dw = torch.ones(len(dy), dtype=torch.float64)
    mask = torch.cat([torch.ones(n, dtype=torch.bool), torch.zeros(len(dy), dtype=torch.bool)])
    return StackedRows(SweepData(x=torch.cat([x, dx]), y=torch.cat([d.y, dy])), torch.cat([w, dw]), mask)


def compress_rows(dx: torch.Tensor, dy: torch.Tensor, dw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """m weighted rows without intercept -> at most D = prod(sizes) unweighted rows with the same least-squares
    objective up to a constant, when m > D: with sqrt(w) dx = Q R (reduced QR, R of D rows),

        sum_k w_k (dy_k - <W, dx_k>)^2 = ||Q^T sqrt(w) dy - R vec(W)||^2 + ||(1 - Q Q^T) sqrt(w) dy||^2,

    exact for any model linear in its input (MPS, TTN, dense), so every local solve sees the same normal
    equations from D rows instead of m (on rattled alloys ~24 000 force components -> 1024 rows).  Rows are
    returned unchanged when m <= D."""
    m, shape = dx.shape[0], dx.shape[1:]
    p = math.prod(shape)
    if m <= p:
        return dx, dy
    sw = dw.sqrt()
    q, r = torch.linalg.qr(dx.reshape(m, p) * sw[:, None])
    return r.reshape(p, *shape), q.T @ (sw * dy)
