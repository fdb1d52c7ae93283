"""Structures and datasets: the only layer of tnmat that reads or writes structure files.

- :class:`Dataset`: structures (ASE Atoms) + per-structure targets (eV) + metadata, validated at construction.
- :func:`load_nmd18`: the NOMAD 2018 Kaggle (Al,Ga,In)2O3 set, relaxed or Vegard-law ("unrelaxed") geometry.
- :func:`read_structures`: any ASE-readable file (extxyz, CIF, POSCAR, ...).
- :func:`generate_binary_alloys` / :func:`embedded_default`: BA10-style fcc/bcc/hcp binary-alloy
  superstructures with EMT mixing energies (the default dataset of the README's main job).
"""

from .alloys import EMT_ELEMENTS, embedded_default, generate_binary_alloys
from .dataset import MIN_DISTANCE, Dataset, check_structure
from .nmd18 import NMD18_ENV, load_nmd18, nmd18_root, read_aims_geometry
from .readers import read_structures

__all__ = [
    "EMT_ELEMENTS",
    "embedded_default",
    "generate_binary_alloys",
    "Dataset",
    "MIN_DISTANCE",
    "check_structure",
    "NMD18_ENV",
    "load_nmd18",
    "nmd18_root",
    "read_aims_geometry",
    "read_structures",
]
