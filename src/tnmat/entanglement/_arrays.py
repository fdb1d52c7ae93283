"""Private helpers: array conversion and bipartition parsing for :mod:`tnmat.entanglement`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["as_array", "as_cores", "parse_partition"]


def as_array(x: Any, *, name: str = "state") -> np.ndarray:
    """float64 (or complex128) numpy copy-free view of a numpy array or torch tensor."""
    if hasattr(x, "detach"):  # torch tensor (or Parameter): leave autograd, go to host memory
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind == "c":
        a = a.astype(np.complex128, copy=False)
    elif a.dtype.kind in "fiub":
        a = a.astype(np.float64, copy=False)
    else:
        raise TypeError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or infinite entries")
    return a


def as_cores(cores: Iterable[Any], *, ndim: int = 3, name: str = "cores") -> list[np.ndarray]:
    """Validated list of chain cores: each ``ndim``-dimensional, matching virtual bonds, open ends (bond 1)."""
    out = [as_array(c, name=f"{name}[{k}]") for k, c in enumerate(cores)]
    if not out:
        raise ValueError(f"{name}: empty list of cores")
    for k, c in enumerate(out):
        if c.ndim != ndim:
            raise ValueError(f"{name}[{k}]: expected a {ndim}-dimensional core, got shape {c.shape}")
    for k in range(len(out) - 1):
        if out[k].shape[-1] != out[k + 1].shape[0]:
            raise ValueError(f"{name}: bond mismatch between core {k} (right bond {out[k].shape[-1]}) "
                             f"and core {k + 1} (left bond {out[k + 1].shape[0]})")
    if out[0].shape[0] != 1 or out[-1].shape[-1] != 1:
        raise ValueError(f"{name}: open boundary needs outer bonds of size 1, got {out[0].shape[0]} "
                         f"and {out[-1].shape[-1]}")
    return out


def parse_partition(partition: Iterable[int | str], n_legs: int, legs: Sequence[str] | None = None
                    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(A, B): sorted axis indices of the subsystem and of its complement.

    ``partition`` lists axis indices (negative allowed) or, with ``legs``, leg names.  Both sides must be
    non-empty: the trivial bipartition has no entanglement to speak of and is almost always a caller bug.
    """
    if isinstance(partition, str | int):
        partition = [partition]
    items = list(partition)
    if legs is not None:
        legs = list(legs)
        if len(legs) != n_legs:
            raise ValueError(f"legs {legs} name {len(legs)} axes but the state has {n_legs}")
    idx: list[int] = []
    for it in items:
        if isinstance(it, str):
            if legs is None:
                raise ValueError(f"partition names leg {it!r} but no `legs` were given")
            if it not in legs:
                raise ValueError(f"partition names unknown leg {it!r}; legs are {legs}")
            idx.append(legs.index(it))
        else:
            i = int(it)
            if not -n_legs <= i < n_legs:
                raise ValueError(f"partition axis {i} out of range for {n_legs} legs")
            idx.append(i % n_legs)
    if len(set(idx)) != len(idx):
        raise ValueError(f"partition {items} repeats a leg")
    a = tuple(sorted(idx))
    b = tuple(i for i in range(n_legs) if i not in a)
    if not a or not b:
        raise ValueError(f"partition {items} of {n_legs} legs leaves one side empty")
    return a, b
