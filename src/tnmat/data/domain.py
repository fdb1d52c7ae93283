"""Applicability domain of a fitted model: the range of the training descriptors, so that predictions for
structures far outside it (a unit error such as Bohr read as Angstrom, an absurd density) are flagged
instead of trusted.

The check is a per-feature range test: for every descriptor entry j the training rows span
[low_j, high_j]; a row's *excess* is the largest distance outside that interval over all entries, in units
of the entry's training span.  A structure is outside the domain when its excess exceeds ``margin``
(default :data:`DEFAULT_MARGIN`); for per-atom descriptors a structure's excess is that of its worst atom.
The range (two vectors of the descriptor's size) is stored with the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tnmat.legtensor import LegTensor

__all__ = ["DescriptorRange", "DEFAULT_MARGIN"]

#: Excess (in training spans) above which a structure is flagged.  Measured (benchmarks/domain.py,
#: results/domain/domain.json): at 1.0 none of the 600 NMD18 official test structures nor of the 28 held-out
#: alloys-small structures is flagged (at 0.5: 1 and 1), while every test structure scaled by the
#: Bohr/Angstrom factor exceeds it by 32 (alloys) to 60 (NMD18) spans.
DEFAULT_MARGIN = 1.0


def _rows(X: LegTensor) -> np.ndarray:
    return X.values.detach().cpu().numpy().reshape(X.values.shape[0], -1).astype(np.float64)


@dataclass
class DescriptorRange:
    """Per-entry range [low, high] of training descriptors (flattened rows) and the flagging margin."""

    low: np.ndarray
    high: np.ndarray
    margin: float = DEFAULT_MARGIN

    @classmethod
    def of(cls, X: LegTensor, *, margin: float = DEFAULT_MARGIN) -> DescriptorRange:
        """The range of the rows of ``X`` (per structure or per atom)."""
        rows = _rows(X)
        if not len(rows):
            raise ValueError("DescriptorRange.of: no training rows")
        return cls(rows.min(axis=0), rows.max(axis=0), float(margin))

    def excess(self, X: LegTensor) -> np.ndarray:
        """Per structure: the largest distance of its descriptor entries (worst atom for per-atom ``X``)
        outside the training range, in units of each entry's training span (0 inside)."""
        rows = _rows(X)
        if rows.shape[1] != len(self.low):
            raise ValueError(f"descriptor has {rows.shape[1]} entries per row, the stored range {len(self.low)}")
        # a constant training entry gets a floor of its magnitude, so round-off never counts as an excess
        span = np.maximum(self.high - self.low, 1e-6 * np.maximum(np.abs(self.low), np.abs(self.high)) + 1e-12)
        out = np.maximum(self.low - rows, rows - self.high).clip(min=0.0) / span
        per_row = out.max(axis=1) if out.shape[1] else np.zeros(len(rows))
        if X.structure_index is None:
            return per_row
        idx = X.structure_index.cpu().numpy()
        res = np.zeros(X.n_structures)
        np.maximum.at(res, idx, per_row)
        return res

    def outside(self, X: LegTensor) -> np.ndarray:
        """Boolean per structure: excess above the margin."""
        return self.excess(X) > self.margin

    def to_dict(self) -> dict[str, Any]:
        """Plain form stored with a model (see :meth:`from_dict`)."""
        return {"low": self.low, "high": self.high, "margin": self.margin}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DescriptorRange:
        """Inverse of :meth:`to_dict` (tensors or arrays accepted)."""
        return cls(np.asarray(d["low"], dtype=np.float64), np.asarray(d["high"], dtype=np.float64),
                   float(d["margin"]))
