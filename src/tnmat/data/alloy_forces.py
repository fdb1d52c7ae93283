"""Rattled and strained binary-alloy supercells with EMT energies, forces and stress (vector / tensor targets).

Built on the BA10-style enumeration of :mod:`tnmat.data.alloys`: for each binary pair A-B (the first
``n_systems`` pairs of the sorted elements) and lattice (fcc, bcc, hcp), the Hart-Forcade derivative
structures with at most ``max_cell_atoms`` atoms are taken at Vegard lattice constants, and ``n_structures``
of them are drawn at random (seeded).  Each draw is repeated k x k x k with the smallest k giving at least
``min_atoms`` atoms (so forces are not fixed by symmetry), homogeneously strained by a random symmetric
``epsilon`` (entries N(0, strain^2)) and rattled by N(0, rattle^2) Cartesian displacements (Angstrom).
ASE's EMT gives

* target ``energy_per_atom`` (E/N, eV/atom; total EMT energy, not the mixing energy, so that
  ``-d(N e)/dr`` is the force),
* ``atoms.arrays["forces"]`` (eV/A) and ``atoms.info["stress"]`` (Voigt, eV/A^3, ASE sign), read with
  :func:`tnmat.data.structure_forces` / :func:`tnmat.data.structure_stress`.

Metadata as the alloy set (``id``, ``split`` (seeded 80/20 over structures), ``system``, ``lattice``,
``composition``, ``n_atoms``, ``volume_per_atom``).  Cached as extxyz beside the alloy set, keyed by a hash of
every parameter; deterministic.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.emt import EMT

from .alloys import (
    EMT_ELEMENTS,
    _systems,
    alloy_cache_dir,
    emt_lattice_constant,
    enumerate_derivatives,
    generated_dataset,
    read_cached_dataset,
)
from .dataset import Dataset

__all__ = ["RattledAlloys", "generate_rattled_alloys"]

_LATTICES = ("fcc", "bcc", "hcp")
_CACHE_VERSION = 1


def _repeat_for(n_cell: int, min_atoms: int) -> int:
    k = 1
    while n_cell * k**3 < min_atoms:
        k += 1
    return k


@dataclass(frozen=True)
class RattledAlloys:
    """Settings of the rattled/strained alloy set (module docstring); validated on construction."""

    n_structures: int = 400
    elements: tuple[str, ...] = EMT_ELEMENTS
    n_systems: int = 3
    max_cell_atoms: int = 4
    min_atoms: int = 16
    rattle: float = 0.1  # Angstrom, standard deviation of the Cartesian displacements
    strain: float = 0.02  # standard deviation of the symmetric strain entries
    lattices: tuple[str, ...] = _LATTICES
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(self.elements))
        object.__setattr__(self, "lattices", tuple(self.lattices))
        for lat in self.lattices:
            if lat not in _LATTICES:
                raise ValueError(f"lattice must be one of {_LATTICES}, got {lat!r}")
        if not 1 <= self.max_cell_atoms <= 8:
            raise ValueError(f"max_cell_atoms must be in 1..8, got {self.max_cell_atoms}")
        if self.n_structures < 1 or self.min_atoms < 1:
            raise ValueError(f"n_structures and min_atoms must be >= 1, got {self.n_structures}, {self.min_atoms}")
        if not (self.rattle >= 0 and self.strain >= 0):
            raise ValueError(f"rattle and strain must be >= 0, got {self.rattle}, {self.strain}")


def _rattled_structure(job: tuple, sett: RattledAlloys, rng: np.random.Generator, calc: EMT) -> tuple[Atoms, float]:
    """One derivative structure at its Vegard lattice constant, repeated, strained, rattled, with EMT energy,
    forces (``arrays["forces"]``) and Voigt stress (``info["stress"]``) attached; also its B fraction x."""
    (el_a, el_b), lat, k = job
    cell, frac, occ = enumerate_derivatives(lat, sett.max_cell_atoms)[k]
    x = float(occ.mean())
    a = (1.0 - x) * emt_lattice_constant(el_a, lat)[0] + x * emt_lattice_constant(el_b, lat)[0]
    atoms = Atoms([el_b if o else el_a for o in occ], scaled_positions=frac, cell=cell * a, pbc=True)
    atoms = atoms.repeat(_repeat_for(len(atoms), sett.min_atoms))
    eps = rng.normal(0.0, sett.strain, (3, 3))
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + (eps + eps.T) / 2), scale_atoms=True)
    atoms.positions += rng.normal(0.0, sett.rattle, atoms.positions.shape)
    atoms.calc = calc
    atoms.info["energy"] = float(atoms.get_potential_energy())
    f = atoms.get_forces().copy()
    s = atoms.get_stress().copy()  # Voigt (xx, yy, zz, yz, xz, xy)
    atoms.calc = None
    atoms.arrays["forces"] = f
    atoms.info["stress"] = s
    return atoms, x


def generate_rattled_alloys(settings: RattledAlloys | None = None, *, cache_dir: str | os.PathLike | None = None,
                            progress: bool = False) -> Dataset:
    """Rattled/strained alloy supercells with EMT energy per atom, forces and stress (module docstring)."""
    sett = RattledAlloys() if settings is None else settings
    n_structures, seed = sett.n_structures, sett.seed
    pairs = _systems(sett.elements, sett.n_systems)
    params = {"pairs": pairs, "n": n_structures, "max_cell_atoms": sett.max_cell_atoms, "min_atoms": sett.min_atoms,
              "rattle": sett.rattle, "strain": sett.strain, "lattices": sett.lattices, "seed": seed,
              "version": _CACHE_VERSION}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    name = f"rattled-alloys-{len(pairs)}x{n_structures}"
    path = alloy_cache_dir(cache_dir) / f"rattled-alloys-{key}.extxyz"
    ds = read_cached_dataset(path, target_keys=("energy_per_atom",), forces=True, stress=True)
    if ds is not None:
        ds.name, ds.source = name, f"generated (cached at {path})"
        return ds
    pool = [(p, lat, k) for p in pairs for lat in sett.lattices
            for k in range(len(enumerate_derivatives(lat, sett.max_cell_atoms)))]
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(pool), size=n_structures, replace=n_structures > len(pool))
    jobs = [pool[int(i)] for i in picks]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="rattled alloys", unit="struct")
    calc = EMT()
    structures, energies = [], []
    cols: dict[str, list] = {k: [] for k in ("id", "system", "lattice", "composition")}
    for count, job in enumerate(jobs):
        atoms, x = _rattled_structure(job, sett, rng, calc)
        (el_a, el_b), lat, k = job
        structures.append(atoms)
        energies.append(atoms.info.pop("energy") / len(atoms))
        cols["id"].append(f"{el_a}{el_b}-{lat}-{k:04d}-r{count:05d}")
        cols["system"].append(f"{el_a}{el_b}")
        cols["lattice"].append(lat)
        cols["composition"].append(x)
    return generated_dataset(structures, cols, {"energy_per_atom": np.array(energies)}, name=name, path=path,
                             source="generated: icet enumeration, Vegard lattice constants, supercell, strain, "
                                    "rattle, ASE EMT", split_seed=seed + 1)

