"""LegTensor: a batch of tensors whose axes carry names (the one shared type of tnmat).

A descriptor such as the SOAP power spectrum B2[a1, a2, n1, n2, l] is stored with a leading batch axis
(structures, or atoms when ``structure_index`` is set) followed by one axis per *leg*.  Tensor networks
are built from the legs (one site per leg), entanglement bipartitions name legs, and TT-SVD factorises
along them.  The type is deliberately small: values, names, optional atom->structure map, metadata.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["LegTensor", "FORMAT_VERSION"]

#: Version of the on-disk ``.npz`` layout written by :meth:`LegTensor.save`.
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class LegTensor:
    """Values of shape ``(batch, *sizes)`` with one name per non-batch axis.

    Parameters
    ----------
    values:
        torch tensor, first axis is the batch (structures, or atoms for per-atom descriptors).
    legs:
        names of the remaining axes, e.g. ``("a1", "a2", "n1", "n2", "l")``; unique.
    structure_index:
        for per-atom rows, the structure each row belongs to (int64, length ``batch``); ``None`` when
        every row is a structure.
    meta:
        JSON-serialisable metadata (descriptor hyper-parameters, species order, ...).
    """

    values: torch.Tensor
    legs: tuple[str, ...]
    structure_index: torch.Tensor | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.values, torch.Tensor):
            object.__setattr__(self, "values", torch.as_tensor(self.values))
        legs = tuple(str(leg) for leg in self.legs)
        object.__setattr__(self, "legs", legs)
        if self.values.ndim != len(legs) + 1:
            raise ValueError(
                f"LegTensor: values have {self.values.ndim} axes but {len(legs)} legs {legs} were named "
                "(expected one batch axis plus one axis per leg)"
            )
        if len(set(legs)) != len(legs):
            raise ValueError(f"LegTensor: leg names must be unique, got {legs}")
        if self.structure_index is not None:
            idx = torch.as_tensor(self.structure_index, dtype=torch.long)
            if idx.shape != (self.values.shape[0],):
                raise ValueError(
                    f"LegTensor: structure_index has shape {tuple(idx.shape)}, "
                    f"expected ({self.values.shape[0]},)"
                )
            object.__setattr__(self, "structure_index", idx)
        object.__setattr__(self, "meta", dict(self.meta))

    # ------------------------------------------------------------------ basic properties
    @property
    def sizes(self) -> tuple[int, ...]:
        """Dimensions of the legs (without the batch axis)."""
        return tuple(self.values.shape[1:])

    @property
    def n_features(self) -> int:
        """Number of entries per batch row (product of the leg sizes)."""
        return math.prod(self.sizes)

    @property
    def is_per_atom(self) -> bool:
        """True when rows are atoms grouped into structures by ``structure_index``."""
        return self.structure_index is not None

    @property
    def n_structures(self) -> int:
        """Number of structures represented (rows, or distinct structures for per-atom data)."""
        if self.structure_index is None:
            return self.values.shape[0]
        return int(self.structure_index.max().item()) + 1 if len(self.structure_index) else 0

    def __len__(self) -> int:
        return self.values.shape[0]

    def __repr__(self) -> str:
        legs = ", ".join(f"{n}={s}" for n, s in zip(self.legs, self.sizes, strict=True))
        kind = "atoms" if self.is_per_atom else "structures"
        return f"LegTensor({len(self)} {kind}; {legs}; dtype={self.values.dtype})"

    def size_of(self, leg: str) -> int:
        """Dimension of the named leg."""
        return self.sizes[self.axis(leg) - 1]

    def axis(self, leg: str) -> int:
        """Axis of ``values`` that carries ``leg`` (batch is axis 0)."""
        try:
            return self.legs.index(leg) + 1
        except ValueError:
            raise KeyError(f"LegTensor has no leg {leg!r}; legs are {self.legs}") from None

    # ------------------------------------------------------------------ transformations
    def replace(self, **changes: Any) -> LegTensor:
        """A copy with some fields replaced (values, legs, structure_index, meta)."""
        kw = dict(values=self.values, legs=self.legs, structure_index=self.structure_index, meta=self.meta)
        kw.update(changes)
        return LegTensor(**kw)

    def to(self, *args: Any, **kwargs: Any) -> LegTensor:
        """``torch.Tensor.to`` applied to the values (dtype / device)."""
        idx = self.structure_index
        if idx is not None:
            device = kwargs.get("device") or next((a for a in args if isinstance(a, str | torch.device)), None)
            if device is not None:
                idx = idx.to(device)
        return self.replace(values=self.values.to(*args, **kwargs), structure_index=idx)

    def select(self, rows: Sequence[int] | np.ndarray | torch.Tensor) -> LegTensor:
        """Rows by index.  For per-atom data, ``rows`` are *structure* indices and all their atoms are kept
        (structure indices are renumbered 0..len(rows)-1 in the given order)."""
        rows_t = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        if self.structure_index is None:
            return self.replace(values=self.values[rows_t])
        parts, new_idx = [], []
        order = torch.argsort(self.structure_index, stable=True)
        counts = torch.bincount(self.structure_index, minlength=self.n_structures)
        starts = torch.cumsum(counts, 0) - counts
        for k, s in enumerate(rows_t.tolist()):
            sl = order[starts[s] : starts[s] + counts[s]]
            parts.append(sl)
            new_idx.append(torch.full((len(sl),), k, dtype=torch.long))
        take = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
        return self.replace(
            values=self.values[take],
            structure_index=torch.cat(new_idx) if new_idx else torch.zeros(0, dtype=torch.long),
        )

    def permute(self, legs: Sequence[str]) -> LegTensor:
        """Reorder the legs (a permutation of the current names)."""
        legs = tuple(legs)
        if sorted(legs) != sorted(self.legs):
            raise ValueError(f"permute: {legs} is not a permutation of {self.legs}")
        perm = [0] + [self.axis(leg) for leg in legs]
        return self.replace(values=self.values.permute(perm).contiguous(), legs=legs)

    def flatten(self) -> torch.Tensor:
        """Feature matrix of shape ``(batch, n_features)`` (C order over the legs)."""
        return self.values.reshape(len(self), -1)

    def structure_mean(self) -> LegTensor:
        """Average per-atom rows into one row per structure (paper eq. 22); identity for structure rows."""
        if self.structure_index is None:
            return self
        n = self.n_structures
        out = torch.zeros((n, *self.sizes), dtype=self.values.dtype, device=self.values.device)
        out.index_add_(0, self.structure_index.to(self.values.device), self.values)
        counts = torch.bincount(self.structure_index, minlength=n).to(self.values.dtype)
        out /= counts.to(out.device).reshape(-1, *([1] * len(self.sizes)))
        return self.replace(values=out, structure_index=None)

    def pad(self, sizes: Mapping[str, int] | int) -> LegTensor:
        """Zero-pad legs to the given sizes (an int pads every leg to that size); never truncates."""
        target = {leg: sizes for leg in self.legs} if isinstance(sizes, int) else dict(sizes)
        pads: list[int] = []
        for leg, s in reversed(list(zip(self.legs, self.sizes, strict=True))):
            t = target.get(leg, s)
            if t < s:
                raise ValueError(f"pad: leg {leg!r} has size {s} > requested {t}")
            pads += [0, t - s]
        return self.replace(values=torch.nn.functional.pad(self.values, pads))

    def independent_mask(self, pairs: Sequence[tuple[str, str]]) -> torch.Tensor:
        """Boolean mask over the legs selecting independent entries of a tensor symmetric under the
        simultaneous exchange of every pair of legs in ``pairs`` (e.g. ``[("a1","a2"), ("n1","n2")]`` for
        the power spectrum: B2[a1,a2,n1,n2,l] = B2[a2,a1,n2,n1,l]).  An entry is kept when its index tuple
        over the first legs of the pairs is lexicographically <= that over the second legs."""
        grids = torch.meshgrid(*[torch.arange(s) for s in self.sizes], indexing="ij")
        first = [grids[self.axis(p[0]) - 1] for p in pairs]
        second = [grids[self.axis(p[1]) - 1] for p in pairs]
        # lexicographic comparison of the tuples (first) <= (second)
        eq = torch.ones(self.sizes, dtype=torch.bool)
        lt = torch.zeros(self.sizes, dtype=torch.bool)
        for f, s in zip(first, second, strict=True):
            lt = lt | (eq & (f < s))
            eq = eq & (f == s)
        return lt | eq

    def independent_features(self, pairs: Sequence[tuple[str, str]]) -> torch.Tensor:
        """Flattened feature matrix keeping only the entries selected by :meth:`independent_mask`."""
        mask = self.independent_mask(pairs).reshape(-1).to(self.values.device)
        return self.flatten()[:, mask]

    def standardise(
        self, mean: torch.Tensor | None = None, std: torch.Tensor | None = None, eps: float = 1e-12
    ) -> tuple[LegTensor, torch.Tensor, torch.Tensor]:
        """Entry-wise standardisation (x - mean) / std over the batch; returns (result, mean, std).

        Entries with zero variance (e.g. padding) keep std = 1 so they stay exactly zero-centred and
        never produce NaN.  Pass the training set's ``mean``/``std`` to transform other data."""
        if mean is None:
            mean = self.values.mean(0)
        if std is None:
            std = self.values.std(0, unbiased=False)
            std = torch.where(std > eps, std, torch.ones_like(std))
        return self.replace(values=(self.values - mean) / std), mean, std

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write to a compressed ``.npz`` with legs and metadata as JSON (float values kept exact)."""
        path = Path(path)
        header = {"format": "tnmat.LegTensor", "version": FORMAT_VERSION, "legs": list(self.legs),
                  "meta": self.meta}
        arrays: dict[str, np.ndarray] = {
            "values": self.values.detach().cpu().numpy(),
            "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        }
        if self.structure_index is not None:
            arrays["structure_index"] = self.structure_index.cpu().numpy()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LegTensor:
        """Read a file written by :meth:`save`, with a clear error for foreign or corrupted files."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such LegTensor file")
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(bytes(z["header"]).decode())
                values = z["values"]
                sidx = z["structure_index"] if "structure_index" in z.files else None
        except Exception as exc:  # zipfile/JSON/KeyError: all mean "not our file"
            raise ValueError(f"{path}: not a readable tnmat LegTensor file ({exc})") from exc
        if header.get("format") != "tnmat.LegTensor":
            raise ValueError(f"{path}: not a tnmat LegTensor file (format={header.get('format')!r})")
        if header.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: LegTensor format version {header.get('version')} is not supported "
                f"(this tnmat reads version {FORMAT_VERSION}); recompute the descriptors"
            )
        return cls(
            values=torch.from_numpy(values),
            legs=tuple(header["legs"]),
            structure_index=None if sidx is None else torch.from_numpy(sidx),
            meta=header.get("meta", {}),
        )
