"""Applicability domain in real space, beside the descriptor range of :mod:`tnmat.data.domain`: the local
geometry of the training structures, so that a structure unlike all of them is flagged in both directions
(compressed or expanded, e.g. Bohr read as Angstrom) and when its periodicity differs (a cluster or a slab
predicted by a bulk model), which descriptor ranges alone miss (averaged descriptors of an expanded cell can
stay inside the training range).

Recorded at fit time, per ordered species pair A-B (centre A, neighbour B, both in the structure) and per
centre species A with neighbours of any species (A-*): the smallest and the largest per-structure shortest
distance, and the range of the number of neighbours of an A atom within the cutoff; and the periodicity
patterns (``pbc``) of the training structures.  A structure is outside when a shortest distance lies below the
smallest training one by more than ``tolerance`` (relative), a shortest A-* distance above the largest one by
more than ``tolerance`` (per pair this would flag dilute species, whose nearest partner is far by
composition, not by expansion), a neighbour count lies outside the training range widened by ``tolerance``,
a pair has neighbours that no training structure had, or its periodicity is not one of the training
structures'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

__all__ = ["GeometryRange", "DEFAULT_TOLERANCE", "pair_statistics", "training_domain", "domain_flags"]

#: Relative tolerance of distances and neighbour counts.  Chosen so that the held-out alloys-small and NMD18
#: test structures stay inside (their nearest-neighbour distances vary by less), while a cell scaled by the
#: Bohr/Angstrom factor 1.89 moves every shortest distance 89 % out and the neighbour counts by 1.89^3.
DEFAULT_TOLERANCE = 0.1

#: per ordered pair: (shortest distance or inf when no B lies within the cutoff, fewest, most neighbours)
PairStats = dict[str, tuple[float, int, int]]


def _pairs(atoms: Atoms, r_cut: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full neighbour list (i, j, distance) within ``r_cut``, periodic images included (vesin's cell lists,
    the descriptors' own neighbour search; a half list mirrored)."""
    import vesin

    periodic = [bool(p) for p in atoms.pbc]
    box = atoms.cell.array if any(periodic) else np.zeros((3, 3))
    nl = vesin.NeighborList(cutoff=r_cut, full_list=False)
    i, j, d = nl.compute(atoms.positions, box, periodic if not all(periodic) else True, quantities="ijd",
                         copy=True)
    i, j, d = np.asarray(i, np.int64), np.asarray(j, np.int64), np.asarray(d, np.float64)
    return np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([d, d])


def pair_statistics(atoms: Atoms, r_cut: float) -> PairStats:
    """Per ordered species pair "A-B" of ``atoms``: the shortest A-B distance within ``r_cut`` (inf when
    none) and the fewest and most B neighbours of an A atom within ``r_cut`` (periodic images included);
    "A-*" the same for the neighbours of any species."""
    symbols = np.array(atoms.get_chemical_symbols())
    if not len(symbols):
        return {}
    names, sp = np.unique(symbols, return_inverse=True)
    n_sp = len(names)
    i, j, d = _pairs(atoms, float(r_cut))
    counts = np.zeros((len(symbols), n_sp), dtype=np.int64)
    np.add.at(counts, (i, sp[j]), 1)
    shortest = np.full((n_sp, n_sp), math.inf)
    np.minimum.at(shortest, (sp[i], sp[j]), d)
    out: PairStats = {}
    for a in range(n_sp):
        mine = counts[sp == a]
        lo, hi = mine.min(axis=0), mine.max(axis=0)
        for b in range(n_sp):
            out[f"{names[a]}-{names[b]}"] = (float(shortest[a, b]), int(lo[b]), int(hi[b]))
        total = mine.sum(axis=1)
        out[f"{names[a]}-*"] = (float(shortest[a].min()), int(total.min()), int(total.max()))
    return out


def _pbc(atoms: Atoms) -> str:
    return "".join("T" if p else "F" for p in atoms.pbc)


@dataclass
class GeometryRange:
    """Per ordered species pair: [smallest shortest distance, largest shortest distance, fewest neighbours,
    most neighbours] over the training structures; their periodicity patterns; cutoff and tolerance."""

    r_cut: float
    pairs: dict[str, list[float]] = field(default_factory=dict)
    pbc: list[str] = field(default_factory=list)
    tolerance: float = DEFAULT_TOLERANCE

    @classmethod
    def of(cls, structures: Sequence[Atoms], r_cut: float, *, tolerance: float = DEFAULT_TOLERANCE) -> GeometryRange:
        """The geometry range of the training ``structures`` at cutoff ``r_cut``."""
        pairs: dict[str, list[float]] = {}
        for atoms in structures:
            for key, (short, lo, hi) in pair_statistics(atoms, r_cut).items():
                cur = pairs.setdefault(key, [math.inf, -math.inf, math.inf, -math.inf])
                if math.isfinite(short):
                    cur[0], cur[1] = min(cur[0], short), max(cur[1], short)
                cur[2], cur[3] = min(cur[2], lo), max(cur[3], hi)
        return cls(float(r_cut), pairs, sorted({_pbc(a) for a in structures}), float(tolerance))

    def reasons(self, atoms: Atoms) -> list[str]:
        """Why ``atoms`` lies outside the training geometry (empty when inside)."""
        tol, out = self.tolerance, []
        if _pbc(atoms) not in self.pbc:
            out.append(f"periodicity {_pbc(atoms)} (training: {', '.join(self.pbc)})")
        for key, (short, lo, hi) in pair_statistics(atoms, self.r_cut).items():
            ref = self.pairs.get(key)
            if ref is None:
                if math.isfinite(short):
                    out.append(f"{key} neighbours, which no training structure has")
                continue
            d_lo, d_hi, n_lo, n_hi = ref
            if math.isfinite(short) and math.isfinite(d_lo) and short < d_lo * (1 - tol):
                out.append(f"{key} shortest distance {short:.3g} A < {d_lo:.3g} A")
            elif key.endswith("-*") and math.isfinite(short) and math.isfinite(d_hi) and short > d_hi * (1 + tol):
                out.append(f"{key} shortest distance {short:.3g} A > {d_hi:.3g} A")
            if lo < math.floor(n_lo * (1 - tol)) or hi > math.ceil(n_hi * (1 + tol)):
                out.append(f"{key} neighbour count {lo}-{hi} (training {int(n_lo)}-{int(n_hi)})")
        return out

    def outside(self, structures: Sequence[Atoms]) -> list[str]:
        """Per structure: the reasons it lies outside, joined by "; " (empty string when inside)."""
        return ["; ".join(self.reasons(a)) for a in structures]

    def to_dict(self) -> dict[str, Any]:
        """Plain form stored with a model (see :meth:`from_dict`); infinities as None."""
        pairs = {k: [v if math.isfinite(v) else None for v in vals] for k, vals in self.pairs.items()}
        return {"r_cut": self.r_cut, "pairs": pairs, "pbc": list(self.pbc), "tolerance": self.tolerance}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeometryRange:
        """Inverse of :meth:`to_dict`."""
        fill = (math.inf, -math.inf, math.inf, -math.inf)
        pairs = {str(k): [float(f if v is None else v) for v, f in zip(vals, fill, strict=True)]
                 for k, vals in d["pairs"].items()}
        return cls(float(d["r_cut"]), pairs, [str(p) for p in d["pbc"]], float(d["tolerance"]))


def training_domain(X_train: Any, structures: Sequence[Atoms], r_cut: float) -> dict[str, Any]:
    """What a model stores of its training data for the applicability check: the descriptor range of
    ``X_train`` (:class:`tnmat.data.domain.DescriptorRange`) and, under ``"geometry"``, the
    :class:`GeometryRange` of the training ``structures`` at the descriptor's cutoff ``r_cut``."""
    from tnmat.data.domain import DescriptorRange

    return {**DescriptorRange.of(X_train).to_dict(), "geometry": GeometryRange.of(structures, r_cut).to_dict()}


def domain_flags(domain: dict[str, Any], X: Any, structures: Sequence[Atoms]) -> tuple[np.ndarray, np.ndarray,
                                                                                       list[str]]:
    """Per structure of ``X`` / ``structures``, against a stored ``domain`` (:func:`training_domain`; models
    saved before the geometry was recorded have only the descriptor range): whether it lies outside, its
    descriptor range excess, and the reasons (empty string when inside)."""
    from tnmat.data.domain import DescriptorRange

    excess = DescriptorRange.from_dict(domain).excess(X)
    margin = float(domain["margin"])
    geometry = domain.get("geometry")
    geo = GeometryRange.from_dict(geometry).outside(structures) if geometry else [""] * len(excess)
    reasons = ["; ".join(r for r in ((f"descriptor range exceeded by {e:.3g} spans" if e > margin else ""), g) if r)
               for e, g in zip(excess, geo, strict=True)]
    return np.array([bool(r) for r in reasons]), excess, reasons
