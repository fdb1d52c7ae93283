"""Input handling for the estimators: LegTensor / arrays -> validated float tensors grouped by structure.

Two layouts reach the training loop:

* structure rows: one descriptor per structure, ``x[k]`` belongs to structure ``k``;
* per-atom rows (a :class:`~tnmat.LegTensor` with ``structure_index``): the rows are sorted by structure
  once, so structure ``k`` owns the contiguous rows ``starts[k] : starts[k] + counts[k]`` and a
  mini-batch of structures is gathered without a Python loop.  The model is then *local* (paper eq. 1):
  the prediction for a structure is the mean of the network's output over its atoms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.utils import column_or_1d
from sklearn.utils.validation import validate_data

from tnmat.legtensor import LegTensor

__all__ = ["DTYPES", "Inputs", "Rows", "convert_inputs", "check_targets", "resolve_device", "rows_with_bad_values"]

#: the ``dtype`` parameter's values
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device: Any, owner: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; a cuda device that is not available is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{owner}: device={device!r} is not a torch device ('cpu', 'cuda', 'auto')") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{owner}: device={device!r} but CUDA is not available (use 'cpu' or 'auto')")
    return dev


@dataclass(frozen=True)
class Inputs:
    """Validated raw inputs (float64, CPU): ``values`` (rows, *sizes), leg names, per-atom grouping."""

    values: torch.Tensor
    legs: tuple[str, ...]
    starts: torch.Tensor | None = None  # (n_structures,) first row of each structure (per-atom only)
    counts: torch.Tensor | None = None  # (n_structures,) atoms per structure (per-atom only)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(self.values.shape[1:])

    @property
    def per_atom(self) -> bool:
        return self.counts is not None

    @property
    def n_structures(self) -> int:
        return len(self.counts) if self.counts is not None else self.values.shape[0]

    def row_mask(self, structures: np.ndarray) -> torch.Tensor:
        """Rows (atoms, or structures) that belong to the given structures."""
        idx = torch.as_tensor(np.asarray(structures), dtype=torch.long)
        if self.counts is None:
            return idx
        return gather_rows(self.starts, self.counts, idx)[0]


@dataclass(frozen=True)
class Rows:
    """Standardised network inputs on the training device, with the per-atom grouping (if any)."""

    x: torch.Tensor | list[torch.Tensor]  # (rows, *network_sizes), or factorised: cores (rows, r, d, r')
    starts: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    derivative: Any = None  # standardised force rows (tnmat.training.force_rows.DerivativeRows), if any
    weights: torch.Tensor | None = None  # (n_structures,) per-structure weights (sweep fits), if any

    @property
    def n_structures(self) -> int:
        return len(self.counts) if self.counts is not None else self.n_rows

    @property
    def n_rows(self) -> int:
        return self._first.shape[0]

    @property
    def device(self) -> torch.device:
        return self._first.device

    @property
    def dtype(self) -> torch.dtype:
        return self._first.dtype

    @property
    def _first(self) -> torch.Tensor:
        return self.x[0] if isinstance(self.x, list | tuple) else self.x

    def take(self, rows: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """The network inputs of the given rows (every core's rows for a factorised input)."""
        return [c[rows] for c in self.x] if isinstance(self.x, list | tuple) else self.x[rows]


def gather_rows(starts: torch.Tensor, counts: torch.Tensor, structures: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices of the atoms of ``structures`` (contiguous blocks) and, for each row, the position of
    its structure within ``structures`` (the segment id used by ``index_add``)."""
    c = counts[structures]
    seg = torch.repeat_interleave(torch.arange(len(structures), device=c.device), c)
    first = torch.cumsum(c, 0) - c  # offset of each block in the output
    within = torch.arange(int(c.sum()), device=c.device) - first[seg]
    return starts[structures][seg] + within, seg


def rows_with_bad_values(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """Indices of rows holding NaN or +-inf."""
    v = torch.as_tensor(values)
    bad = ~torch.isfinite(v.reshape(v.shape[0], -1)).all(dim=1) if v.ndim > 1 else ~torch.isfinite(v)
    return np.flatnonzero(bad.cpu().numpy())


def _describe_rows(rows: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return f"[{shown}{', ...' if len(rows) > limit else ''}] ({len(rows)} in all)"


def convert_inputs(est: Any, X: Any, *, leg_sizes: Sequence[int] | None, reset: bool) -> Inputs:
    """Validate ``X`` (LegTensor, or array of shape (n, *leg_sizes) or (n, prod(leg_sizes))) into
    :class:`Inputs`.  ``reset=True`` (fit) records ``n_features_in_`` on ``est``; ``reset=False`` (predict)
    checks against it through sklearn's ``validate_data`` for plain arrays."""
    name = type(est).__name__
    if isinstance(X, LegTensor):
        values = X.values.detach().to("cpu")
        if values.is_complex():
            raise ValueError(f"{name}: complex descriptors are not supported")
        values = values.to(torch.float64)
        if values.shape[0] == 0:
            raise ValueError(f"{name}: the LegTensor has 0 rows; at least one structure is required")
        if leg_sizes is not None and tuple(int(s) for s in leg_sizes) != X.sizes:
            raise ValueError(f"{name}: leg_sizes={tuple(leg_sizes)} disagrees with the LegTensor's leg sizes "
                             f"{X.sizes} (legs {X.legs}); leave leg_sizes=None for LegTensor inputs")
        if reset:
            est.n_features_in_ = X.n_features
        legs = X.legs
        sidx = X.structure_index
    else:
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        if not hasattr(X, "ndim"):  # lists and other array-likes (sparse matrices and frames keep theirs)
            X = np.asarray(X)
        arr = X
        shape_tail: tuple[int, ...] | None = None
        if X.ndim > 2:  # (n, *leg_sizes): flatten for sklearn's checks, restore below
            arr = np.asarray(X)
            shape_tail = tuple(arr.shape[1:])
            arr = arr.reshape(arr.shape[0], -1)
        arr = validate_data(est, X=arr, reset=reset, dtype=np.float64, ensure_all_finite=False)
        n, p = arr.shape
        if leg_sizes is None:
            sizes = shape_tail if shape_tail is not None else (p,)
        else:
            sizes = tuple(int(s) for s in leg_sizes)
            if any(s < 1 for s in sizes) or math.prod(sizes) != p:
                raise ValueError(f"{name}: leg_sizes={sizes} (product {math.prod(sizes)}) do not fit inputs with "
                                 f"{p} features per row")
            if shape_tail is not None and shape_tail != sizes:
                raise ValueError(f"{name}: inputs of shape (n, {', '.join(map(str, shape_tail))}) disagree with "
                                 f"leg_sizes={sizes}")
        # a writable C-contiguous copy when needed (read-only memmaps cannot back a torch tensor)
        values = torch.from_numpy(np.require(arr, requirements=["C", "W"])).reshape(n, *sizes)
        legs = tuple(f"x{k}" for k in range(len(sizes)))
        sidx = None
    bad = rows_with_bad_values(values)
    if len(bad):
        where = "rows"
        if sidx is not None:
            structs = np.unique(sidx.cpu().numpy()[bad])
            where = f"structures {_describe_rows(structs)}, atom rows"
        raise ValueError(f"{name}: X contains NaN or inf in {where} {_describe_rows(bad)}")
    if sidx is None:
        return Inputs(values=values.contiguous(), legs=legs)
    sidx = sidx.to("cpu", torch.long)
    if len(sidx) and int(sidx.min()) < 0:
        raise ValueError(f"{name}: structure_index contains negative entries")
    n_struct = int(sidx.max()) + 1
    counts = torch.bincount(sidx, minlength=n_struct)
    empty = np.flatnonzero((counts == 0).numpy())
    if len(empty):
        raise ValueError(f"{name}: per-atom LegTensor has no atoms for structures {_describe_rows(empty)}; "
                         "structure_index must number the structures 0..n-1 without gaps")
    order = torch.argsort(sidx, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    return Inputs(values=values[order].contiguous(), legs=legs, starts=starts, counts=counts)


def check_targets(est: Any, y: Any, n_structures: int, *, what: str = "y") -> np.ndarray:
    """Targets as a finite float64 vector of length ``n_structures`` (column vectors warn, like sklearn)."""
    name = type(est).__name__
    if y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None")
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if np.iscomplexobj(y):
        raise ValueError(f"{name}: complex {what} is not supported")
    if y.ndim == 2 and y.shape[1] != 1:
        raise ValueError(f"{name}: {what} must be one target per structure, got shape {y.shape} "
                         "(multi-output regression is not supported)")
    y = column_or_1d(y, warn=True).astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(y))
    if len(bad):
        raise ValueError(f"{name}: {what} contains NaN or inf in rows {_describe_rows(bad)}")
    if len(y) != n_structures:
        raise ValueError(f"{name}: {what} has {len(y)} entries but X holds {n_structures} structures "
                         "(inconsistent numbers of samples)")
    return y
