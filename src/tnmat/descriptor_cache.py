"""Descriptor caching: the one place where computed descriptors are stored and found again.

A cached file is a :class:`~tnmat.legtensor.LegTensor` ``.npz`` whose name carries a hash of everything
that changes its content (calculator settings, dataset name, the structures themselves, per-atom or
averaged).  Files are written to
a temporary name and renamed, so concurrent runs never read a half-written cache; a cache that cannot be
written (read-only folder) only costs the recomputation next time, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tnmat.legtensor import LegTensor
from tnmat.reports import atomic_path

__all__ = ["descriptor_cache_key", "descriptor_cache_path", "structures_fingerprint", "cached_legtensor",
           "cached_descriptors", "check_finite"]


def structures_fingerprint(structures: Sequence[Any]) -> str:
    """sha1 of every structure's atomic numbers, positions, cell and periodicity: two data sets with the same
    name (``train.extxyz`` in two folders) but different structures never share a cache file."""
    h = hashlib.sha1()
    for a in structures:
        for arr in (a.numbers, a.positions, a.cell.array, a.pbc):
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def descriptor_cache_key(calculator: Any, dataset_name: str, per_atom: bool, fingerprint: str = "") -> str:
    """Stable file-name key for cached descriptors of a dataset (sha1 of the settings and, when given, of the
    structures' :func:`structures_fingerprint`)."""
    spec = {"calc": calculator.get_params(), "data": dataset_name, "per_atom": per_atom}
    if fingerprint:
        spec["structures"] = fingerprint
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def descriptor_cache_path(cache_dir: str | Path, calculator: Any, dataset: Any, per_atom: bool) -> Path:
    """``cache_dir/<dataset name>-<key>.npz``: the file :func:`cached_descriptors` reads and writes for the
    structures of ``dataset``."""
    key = descriptor_cache_key(calculator, dataset.name, per_atom, structures_fingerprint(dataset.structures))
    return Path(cache_dir) / f"{dataset.name}-{key}.npz"


def cached_legtensor(path: str | Path | None, compute: Callable[[], LegTensor], *,
                     valid: Callable[[LegTensor], bool] | None = None) -> LegTensor:
    """``LegTensor.load(path)`` when the file exists (and passes ``valid``), else ``compute()``, saved to
    ``path`` atomically.  ``path=None`` computes without caching."""
    if path is not None and Path(path).is_file():
        try:
            x = LegTensor.load(path)
        except ValueError as exc:  # a damaged cache file (disk full, a copy cut short) costs a recomputation
            warnings.warn(f"descriptor cache {path} unreadable ({exc}); recomputing it", stacklevel=2)
            x = None
        if x is not None and (valid is None or valid(x)):
            return x
    x = compute()
    if path is not None:
        try:
            with atomic_path(path) as tmp:
                x.save(tmp)
        except OSError as exc:
            warnings.warn(f"descriptor cache {path} not written ({exc}); it will be recomputed next time",
                          stacklevel=2)
    return x


def cached_descriptors(calculator: Any, dataset: Any, *, local: bool = False, cache_dir: str | Path | None = None,
                       progress: bool | None = None) -> LegTensor:
    """Descriptors of every structure of ``dataset`` (per atom when ``local``, else structure means), read
    from ``cache_dir`` when computed before with the same settings."""
    path = None if cache_dir is None else descriptor_cache_path(cache_dir, calculator, dataset, local)

    def compute() -> LegTensor:
        check_descriptor_memory(calculator, dataset, local)
        return check_finite(calculator.compute(dataset.structures, average=not local, progress=progress),
                            calculator)

    return cached_legtensor(path, compute, valid=lambda x: x.n_structures == len(dataset))


def check_descriptor_memory(calculator: Any, dataset: Any, local: bool) -> None:
    """:class:`tnmat.memory.InsufficientMemory` naming the descriptor settings when the descriptor array of
    ``dataset`` (per structure, or per atom when ``local``) exceeds the memory available."""
    from tnmat.memory import check_memory, descriptor_bytes

    sizes = getattr(calculator, "sizes", None)
    if sizes is None:
        return
    rows = sum(len(a) for a in dataset.structures) if local else len(dataset.structures)
    dens = getattr(calculator, "density", None)
    settings = ", ".join(f"{k} {getattr(dens, a)}" for k, a in (("--r-cut", "r_cut"), ("--n-max", "n_max"),
                                                                 ("--l-max", "l_max")) if hasattr(dens, a))
    check_memory(descriptor_bytes(sizes, rows), f"descriptors at --order {getattr(calculator, 'order', '?')}, "
                 f"{settings} ({math.prod(sizes):.3g} entries per {'atom' if local else 'structure'}, {rows} rows)")


def check_finite(x: LegTensor, calculator: Any) -> LegTensor:
    """``x`` when every descriptor entry is finite; else ``ValueError`` naming the density settings (a
    Gaussian width far below the radial basis' resolution overflows), so no NaN/inf descriptor is written
    or fitted."""
    finite = x.values.isfinite().reshape(x.values.shape[0], -1).all(dim=1)
    if bool(finite.all()):
        return x
    dens = getattr(calculator, "density", calculator)
    sigma, r_cut = getattr(dens, "sigma", None), getattr(dens, "r_cut", None)
    raise ValueError(f"descriptors not finite (NaN/inf) in {int((~finite).sum())} of {len(finite)} rows at "
                     f"--sigma {sigma:g} (r_cut {r_cut:g}, n_max {getattr(dens, 'n_max', '?')}): the Gaussian "
                     "width is too small for the radial basis; use a larger --sigma (default 0.5 A)")
