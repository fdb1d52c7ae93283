"""Periodic neighbour lists for batches of structures (vesin's C++ cell lists, all periodic images).

vesin was chosen over ASE's ``neighbor_list`` by measurement (``benchmarks/descriptors.py`` prints
both); it handles cells smaller than the cutoff (NMD18: 10-atom cells, r_cut = 6 A) by including every
periodic image.
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


def build_pairs(
    frames: Sequence[Atoms],
    cutoff: float,
    species_numbers: Sequence[int],
    *,
    dtype: torch.dtype = torch.float64,
    offset: int = 0,
) -> PairList:
    """Half neighbour list (each unordered pair once) within ``cutoff`` for every frame, concatenated.

    ``offset`` is the index of ``frames[0]`` in the caller's list and only serves error messages.
    """
    centers, neighbors, vectors, species, structure = [], [], [], [], []
    start = 0
    nl = vesin.NeighborList(cutoff=cutoff, full_list=False, sorted=True)
    for k, atoms in enumerate(frames):
        where = f"structure {offset + k}" + (f" ({atoms.info['id']})" if "id" in atoms.info else "")
        _check_frame(atoms, where)
        periodic = bool(atoms.pbc.all())
        if atoms.pbc.any() and not periodic:
            # mixed periodicity: vesin takes a per-axis flag
            periodic = [bool(p) for p in atoms.pbc]
        box = atoms.cell.array if atoms.pbc.any() else np.zeros((3, 3))
        i, j, d = nl.compute(atoms.positions, box, periodic, quantities="ijD", copy=True)
        n = len(atoms)
        species.append(species_indices(atoms.numbers, species_numbers, where))
        centers.append(i.astype(np.int64) + start)
        neighbors.append(j.astype(np.int64) + start)
        vectors.append(d)
        structure.append(np.full(n, offset + k, dtype=np.int64))
        start += n
    return PairList(
        center=torch.from_numpy(np.concatenate(centers)),
        neighbor=torch.from_numpy(np.concatenate(neighbors)),
        vectors=torch.from_numpy(np.concatenate(vectors)).to(dtype),
        atom_species=torch.from_numpy(np.concatenate(species)),
        atom_structure=torch.from_numpy(np.concatenate(structure)),
    )
