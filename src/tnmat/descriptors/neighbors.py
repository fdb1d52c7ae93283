"""Periodic neighbour lists for batches of structures (all periodic images, half lists).

Two routes, same pairs: ``"direct"`` visits every atom pair and exactly the lattice images that can lie
within the cutoff, for a whole chunk of structures in one compiled call (:mod:`tnmat.descriptors._kernels`);
``"vesin"`` calls vesin's C++ cell lists once per structure.  For small cells (NMD18: 10-80 atoms) the
per-call overhead of vesin (~0.1 ms) dominates and the direct search measured faster
(``benchmarks/descriptors.py`` prints both), so ``"auto"`` uses it for fully periodic or fully open
structures of up to ``DIRECT_MAX_ATOMS`` atoms and vesin otherwise (cell lists scale linearly; mixed
periodicity always goes to vesin).  vesin was
chosen over ASE's ``neighbor_list`` by measurement; both handle cells smaller than the cutoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import vesin
from ase import Atoms

__all__ = ["PairList", "build_pairs", "species_indices"]


@dataclass
class PairList:
    """Neighbour pairs of a batch of structures, atoms numbered consecutively across the batch.

    ``center``/``neighbor`` index atoms of the batch, ``vectors`` = r_j - r_i (+ lattice shift); with
    ``half`` every unordered pair (including an atom and its own periodic image) is listed once,
    ``atom_species`` is the species index of every atom, ``atom_structure`` the structure of every atom.
    """

    center: torch.Tensor
    neighbor: torch.Tensor
    vectors: torch.Tensor
    atom_species: torch.Tensor
    atom_structure: torch.Tensor
    half: bool = True
    #: pairs of structure f are rows pair_ptr[f]:pair_ptr[f+1], its atoms atom_ptr[f]:atom_ptr[f+1]
    #: (the compiled kernels work per structure); None when the pairs are not grouped by structure
    pair_ptr: np.ndarray | None = None
    atom_ptr: np.ndarray | None = None
    #: integer lattice shifts S of every pair (vectors = r_j - r_i + S @ cell), when known
    shifts: np.ndarray | None = None

    @property
    def n_atoms(self) -> int:
        return len(self.atom_species)


def species_indices(numbers: np.ndarray, species_numbers: Sequence[int], where: str) -> np.ndarray:
    """Map atomic numbers to indices into the descriptor's species list, with a clear error."""
    lut = np.full(max(max(species_numbers), int(numbers.max(initial=0))) + 1, -1, dtype=np.int64)
    lut[list(species_numbers)] = np.arange(len(species_numbers))
    idx = lut[numbers]
    if (idx < 0).any():
        from ase.data import chemical_symbols

        bad = sorted({chemical_symbols[z] for z in numbers[idx < 0]})
        known = [chemical_symbols[z] for z in species_numbers]
        raise ValueError(f"{where}: species {bad} not in the descriptor's species {known}")
    return idx


def _check_frame(atoms: Atoms, where: str) -> None:
    if len(atoms) == 0:
        raise ValueError(f"{where}: empty structure (no atoms)")
    pos = atoms.positions
    if not np.isfinite(pos).all():
        raise ValueError(f"{where}: non-finite atomic positions")
    if atoms.pbc.any() and abs(np.linalg.det(atoms.cell.array)) < 1e-8:
        raise ValueError(f"{where}: periodic structure with a degenerate (zero-volume) cell")


#: largest structure searched directly (O(N^2) atom pairs, each with an exact image range); above it vesin's
#: cell lists.  Measured (benchmarks/descriptors_profile.py, supercells of an 80-atom NMD18 cell, DScribe's
#: sphere): the fused direct kernel stays 1.5x faster than vesin + the pair kernel up to 5120 atoms
DIRECT_MAX_ATOMS = 5000
_NL_METHODS = ("auto", "direct", "vesin")


def _direct(atoms: Atoms, method: str) -> bool:
    if method == "vesin":
        return False
    uniform = bool(atoms.pbc.all()) or not atoms.pbc.any()
    if method == "direct" and not uniform:
        raise ValueError("build_pairs: method='direct' needs fully periodic or fully open structures")
    return uniform and (method == "direct" or len(atoms) <= DIRECT_MAX_ATOMS)


def _vesin_pairs(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, ...]:
    periodic = bool(atoms.pbc.all())
    if atoms.pbc.any() and not periodic:
        periodic = [bool(p) for p in atoms.pbc]  # mixed periodicity: vesin takes a per-axis flag
    box = atoms.cell.array if atoms.pbc.any() else np.zeros((3, 3))
    nl = vesin.NeighborList(cutoff=cutoff, full_list=False, sorted=True)
    i, j, s, d = nl.compute(atoms.positions, box, periodic, quantities="ijSD", copy=True)
    return i.astype(np.int64), j.astype(np.int64), s.astype(np.int64), np.asarray(d, dtype=np.float64)


def _direct_pairs(frames: Sequence[Atoms], cutoff: float) -> tuple[np.ndarray, ...]:
    """Compiled direct search over a batch of structures: (pair_ptr, i, j, S, D) with frame-local i, j."""
    from tnmat.descriptors._kernels import neighbor_pairs, numba_threads

    sizes = np.array([len(a) for a in frames], dtype=np.int64)
    atom_ptr = np.concatenate([[0], np.cumsum(sizes)])
    positions = np.concatenate([a.positions for a in frames]).astype(np.float64)
    periodic = np.array([bool(a.pbc.all()) for a in frames])
    cells = np.stack([a.cell.array if p else np.eye(3) for a, p in zip(frames, periodic, strict=True)])
    invs = np.linalg.inv(cells)
    with numba_threads(1):  # the callers parallelise (or not) over chunks
        ptr, i, j, s, d = neighbor_pairs(positions, cells, invs, periodic, atom_ptr, float(cutoff))
    local = np.repeat(atom_ptr[:-1], np.diff(ptr))
    return ptr, i - local, j - local, s, d


def build_pairs(
    frames: Sequence[Atoms],
    cutoff: float,
    species_numbers: Sequence[int],
    *,
    dtype: torch.dtype = torch.float64,
    offset: int = 0,
    method: str = "auto",
) -> PairList:
    """Half neighbour list (each unordered pair once) within ``cutoff`` for every frame, concatenated and
    grouped by frame (``pair_ptr``/``atom_ptr``).  ``method``: ``"auto"``, ``"direct"`` or ``"vesin"``
    (module docstring).  ``offset`` is the index of ``frames[0]`` in the caller's list (error messages)."""
    if method not in _NL_METHODS:
        raise ValueError(f"build_pairs: method must be one of {_NL_METHODS}, got {method!r}")
    species, structure = [], []
    for k, atoms in enumerate(frames):
        where = f"structure {offset + k}" + (f" ({atoms.info['id']})" if "id" in atoms.info else "")
        _check_frame(atoms, where)
        species.append(species_indices(atoms.numbers, species_numbers, where))
        structure.append(np.full(len(atoms), offset + k, dtype=np.int64))
    direct = [k for k, a in enumerate(frames) if _direct(a, method)]
    parts: list[tuple[np.ndarray, ...] | None] = [None] * len(frames)
    if direct:
        ptr, i, j, s, d = _direct_pairs([frames[k] for k in direct], cutoff)
        for q, k in enumerate(direct):
            sl = slice(ptr[q], ptr[q + 1])
            parts[k] = (i[sl], j[sl], s[sl], d[sl])
    for k, atoms in enumerate(frames):
        if parts[k] is None:
            parts[k] = _vesin_pairs(atoms, cutoff)
    sizes = np.array([len(a) for a in frames], dtype=np.int64)
    atom_ptr = np.concatenate([[0], np.cumsum(sizes)])
    counts = np.array([len(p[0]) for p in parts], dtype=np.int64)
    local = np.repeat(atom_ptr[:-1], counts)
    return PairList(
        center=torch.from_numpy(np.concatenate([p[0] for p in parts]) + local),
        neighbor=torch.from_numpy(np.concatenate([p[1] for p in parts]) + local),
        vectors=torch.from_numpy(np.concatenate([p[3] for p in parts]).reshape(-1, 3)).to(dtype),
        atom_species=torch.from_numpy(np.concatenate(species)),
        atom_structure=torch.from_numpy(np.concatenate(structure)),
        pair_ptr=np.concatenate([[0], np.cumsum(counts)]),
        atom_ptr=atom_ptr,
        shifts=np.concatenate([p[2] for p in parts]).reshape(-1, 3),
    )
