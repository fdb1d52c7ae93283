"""The one dataset type: structures (ASE Atoms), per-structure targets and metadata, validated at construction.

Every loader in :mod:`tnmat.data` returns a :class:`Dataset`.  Construction checks what later layers
would otherwise turn into silent NaNs or nonsense descriptors: non-finite targets, empty structures,
atoms closer than :data:`MIN_DISTANCE` (periodic images included) and arrays whose length does not match
the number of structures.  Errors name the structure id and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import vesin
from ase import Atoms
from ase.data import atomic_numbers

__all__ = ["Dataset", "MIN_DISTANCE", "check_structure"]

#: Smallest allowed interatomic distance in Angstrom (including periodic images); closer atoms are a
#: corrupt file or a unit error (fractional read as Cartesian, Bohr as Angstrom), never physics.
MIN_DISTANCE = 0.5


def check_structure(atoms: Atoms, sid: object, *, min_distance: float = MIN_DISTANCE) -> None:
    """Raise ``ValueError`` naming ``sid`` if ``atoms`` is empty, has non-finite positions/cell, or two atoms
    (or an atom and a periodic image, itself included) closer than ``min_distance`` Angstrom."""
    if len(atoms) == 0:
        raise ValueError(f"structure {sid}: empty structure (no atoms)")
    pos = np.asarray(atoms.positions, dtype=np.float64)
    if not np.isfinite(pos).all():
        raise ValueError(f"structure {sid}: non-finite atomic positions")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    if not np.isfinite(cell).all():
        raise ValueError(f"structure {sid}: non-finite cell")
    if pbc.any() and abs(np.linalg.det(cell)) < 1e-8:
        raise ValueError(f"structure {sid}: periodic structure with a singular cell (volume ~ 0)")
    if not pbc.any():
        cell = np.zeros((3, 3))
    # vesin's cell list has cells of the cutoff's size: a 0.5 A cutoff means thousands of cells and is 10x
    # slower than searching to 1.5 A and filtering (measured on NMD18 cells).
    nl = vesin.NeighborList(cutoff=max(min_distance, 1.5), full_list=False)
    i, j, s, d = nl.compute(pos, cell, pbc, quantities="ijSd")
    close = d < min_distance
    i, j, s, d = i[close], j[close], s[close], d[close]
    if len(d):
        k = int(np.argmin(d))
        where = "" if i[k] != j[k] and not np.any(s[k]) else f" (periodic image shift {tuple(int(x) for x in s[k])})"
        raise ValueError(
            f"structure {sid}: atoms {int(i[k])} ({atoms[int(i[k])].symbol}) and {int(j[k])} "
            f"({atoms[int(j[k])].symbol}) are {float(d[k]):.4f} A apart{where}, closer than {min_distance} A"
        )


@dataclass
class Dataset:
    """Structures with per-structure targets and metadata.

    ``targets[key]`` and ``metadata[key]`` are arrays with one entry per structure (targets float64, in eV;
    see each loader for the normalisation, e.g. NMD18 formation energies are per cation).  Metadata holds at
    least ``"id"`` and ``"split"`` (``"train"``/``"test"``); ``atoms.info["id"]`` repeats the id.
    """

    structures: list[Atoms]
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = "dataset"
    source: str = ""
    #: unit of each target's values where the loader knows it (``{"formation_energy": "eV/cation"}``); read by
    #: :func:`tnmat.data.units.value_units` before its name-based rules, and kept through extxyz files
    units: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.structures = list(self.structures)
        n = len(self.structures)
        for k, a in enumerate(self.structures):
            if not isinstance(a, Atoms):
                raise TypeError(f"{self.name}: structure {k} is {type(a).__name__}, expected ase.Atoms")
        meta = {}
        for key, val in self.metadata.items():
            arr = np.asarray(val)
            if arr.shape[:1] != (n,):
                raise ValueError(f"{self.name}: metadata {key!r} has {len(arr)} entries for {n} structures")
            meta[key] = arr
        if "id" not in meta:
            meta["id"] = np.array([a.info.get("id", k) for k, a in enumerate(self.structures)])
        if "split" not in meta:
            meta["split"] = np.full(n, "train")
        self.metadata = meta
        ids = meta["id"]
        tg = {}
        for key, val in self.targets.items():
            arr = np.asarray(val, dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"{self.name}: target {key!r} has shape {arr.shape}, expected ({n},)")
            bad = np.flatnonzero(~np.isfinite(arr))
            if len(bad):
                raise ValueError(f"{self.name}: structure {ids[bad[0]]}: target {key!r} is {arr[bad[0]]} "
                                 f"(non-finite; {len(bad)} such value(s))")
            tg[key] = arr
        self.targets = tg
        for a, sid in zip(self.structures, ids, strict=True):
            a.info["id"] = sid.item() if isinstance(sid, np.generic) else sid
            check_structure(a, sid)

    # ------------------------------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.structures)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """The structures at ``indices`` (integer positions or a boolean mask), with their targets/metadata."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"{self.name}: boolean mask of length {len(idx)} for {len(self)} structures")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64)
        return Dataset(
            structures=[self.structures[int(k)] for k in idx],
            targets={k: v[idx] for k, v in self.targets.items()},
            metadata={k: v[idx] for k, v in self.metadata.items()},
            name=self.name,
            source=self.source,
            units=dict(self.units),
        )

    def split(self, name: str) -> Dataset:
        """The structures whose ``metadata["split"]`` equals ``name`` (e.g. ``"train"`` or ``"test"``)."""
        splits = self.metadata["split"]
        if name not in set(splits.tolist()):
            raise ValueError(f"{self.name}: no split {name!r}; available: {sorted(set(splits.tolist()))}")
        out = self.subset(splits == name)
        out.name = f"{self.name}[{name}]"
        return out

    @classmethod
    def concatenate(cls, parts: Sequence[Dataset], *, splits: Sequence[str] | None = None,
                    name: str | None = None) -> Dataset:
        """One dataset of the structures of ``parts`` in order, with the targets and metadata they all have;
        ``splits`` (one label per part, e.g. ``("train", "test")``) replaces ``metadata["split"]``."""
        if not parts:
            raise ValueError("Dataset.concatenate: no datasets given")
        if splits is not None and len(splits) != len(parts):
            raise ValueError(f"Dataset.concatenate: {len(splits)} split labels for {len(parts)} datasets")
        targets = set.intersection(*(set(p.targets) for p in parts))
        meta = set.intersection(*(set(p.metadata) for p in parts))
        out_meta = {k: np.concatenate([p.metadata[k] for p in parts]) for k in meta}
        if splits is not None:
            out_meta["split"] = np.concatenate([np.full(len(p), s) for p, s in zip(parts, splits, strict=True)])
        return cls(structures=[a for p in parts for a in p.structures],
                   targets={k: np.concatenate([p.targets[k] for p in parts]) for k in sorted(targets)},
                   metadata=out_meta, name=name or "+".join(p.name for p in parts),
                   source="; ".join(p.source for p in parts if p.source),
                   units={k: v for k, v in parts[0].units.items() if k in targets})

    @property
    def species(self) -> tuple[str, ...]:
        """Chemical symbols present, sorted by atomic number."""
        syms = {s for a in self.structures for s in set(a.get_chemical_symbols())}
        return tuple(sorted(syms, key=lambda s: atomic_numbers[s]))

    # ------------------------------------------------------------------------------------------ output
    def summary(self) -> str:
        """A human-readable description: counts per split, species, atoms per structure, target statistics."""
        n_at = np.array([len(a) for a in self.structures])
        splits, counts = np.unique(self.metadata["split"], return_counts=True)
        per_split = ", ".join(f"{c} {s}" for s, c in zip(splits, counts, strict=True))
        lines = [f"{self.name}: {len(self)} structures ({per_split})"]
        if self.source:
            lines.append(f"  source: {self.source}")
        lines.append(f"  species: {', '.join(self.species)}")
        if len(self):
            lines.append(f"  atoms per structure: {n_at.min()}..{n_at.max()} "
                         f"(mean {n_at.mean():.1f}, total {n_at.sum()})")
        from .units import target_units, value_units

        for key, v in self.targets.items():
            lines.append(f"  target {key} [{value_units(self, key)}; errors in {target_units(self, key)}]: "
                         f"mean {v.mean():.4f}, std {v.std():.4f}, "
                         f"min {v.min():.4f}, max {v.max():.4f}")
        for key in ("spacegroup", "system", "lattice", "geometry_method"):
            if key in self.metadata:
                vals, cnt = np.unique(self.metadata[key], return_counts=True)
                lines.append(f"  {key}: " + ", ".join(f"{v} ({c})" for v, c in zip(vals, cnt, strict=True)))
        return "\n".join(lines)

    def to_extxyz(self, path: str | Path) -> Path:
        """Write all structures to one extended-XYZ file; targets and metadata go to each frame's ``info``
        (``read_structures`` reads the file back into an equal dataset)."""
        from ase.io import write

        from .units import value_units

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = []
        for k, a in enumerate(self.structures):
            b = a.copy()
            b.calc = None
            for key, v in self.targets.items():
                b.info[key] = float(v[k])
            if self.targets:
                b.info["tnmat_targets"] = ",".join(self.targets)  # read back by tnmat.data.read_structures
                b.info["tnmat_units"] = ",".join(f"{t}={value_units(self, t)}" for t in self.targets)
            for key, v in self.metadata.items():
                x = v[k]
                b.info[key] = x.item() if isinstance(x, np.generic) else x
            frames.append(b)
        write(path, frames, format="extxyz")
        return path
