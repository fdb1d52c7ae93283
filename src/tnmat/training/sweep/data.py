"""Inputs of the sweeping fitter: dense or factorised (TT) rows, optionally per atom (local model, eq. 1).

A :class:`SweepData` holds the network inputs of one set of structures (training, validation, refit) as
float64: either a dense tensor (rows, d_1, ..., d_N) or a list of per-row MPS cores (rows, r, d_k, r'),
the paper's factorised inputs (Fig. 8).  Per-atom rows carry ``groups`` (the structure of every row);
a local model's structure prediction is the mean of its per-atom outputs (what the estimators use), so
every local feature tensor Phi is averaged over the atoms of each structure (the prediction is linear
in Phi).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tnmat.compression import tt_svd
from tnmat.networks.base import is_factorised

#: relative Frobenius error per row of the TT decomposition of dense rows (exact to rounding)
EXACT_TT_TOL = 1e-13

__all__ = ["SweepData"]


@dataclass
class SweepData:
    """Network inputs of a set of structures (float64) and their standardised targets."""

    x: torch.Tensor | list[torch.Tensor]  # dense (rows, *sizes) or factorised cores (rows, r, d, r')
    y: torch.Tensor  # (n_structures,)
    groups: torch.Tensor | None = None  # (rows,) structure of each row (per-atom inputs), else None

    def __post_init__(self) -> None:
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
        return SweepData(x=self.aggregate(self.x), y=self.y)

    def as_cores(self) -> list[torch.Tensor]:
        """Factorised rows (TT-SVD of dense rows to a relative error of :data:`EXACT_TT_TOL`)."""
        return list(self.x) if self.factorised else tt_svd(self.x, tol=EXACT_TT_TOL)

    def as_dense(self) -> torch.Tensor:
        """Dense rows (contracting factorised ones)."""
        if not self.factorised:
            return self.x
        from tnmat.networks.base import dense_from_cores

        return dense_from_cores(self.x)
