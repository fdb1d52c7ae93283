"""Units of dataset targets: the one place that says what a target's values are (total or intensive energy,
per what) and in what its errors are reported.

Targets are stored in eV (see :class:`~tnmat.data.Dataset`).  A structure file's ``energy`` is the total
energy of the structure, as ASE defines it; the intensive target ``energy_per_atom`` is derived from it
explicitly (:func:`tnmat.data.read_structures`).  NMD18 formation energies are per cation, the generated
alloys' mixing energies per atom.  Errors are reported in meV per the same quantity.  The labels enter
printed errors, CSV/Markdown reports, figures, ``data summarise`` and the metadata of saved models and
stored fits, so every layer asks here instead of guessing.

Every scalar model of tnmat is *intensive*: it predicts a structure mean (of a network on the averaged
descriptor, or of a per-atom network, paper eq. 1).  Fitting it to a total energy of structures of different
sizes is a unit error; :func:`check_intensive` says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["target_units", "value_units", "EXTENSIVE", "per_atom_name", "check_intensive", "energies_look_per_atom"]

#: Targets whose normalisation does not depend on the dataset: the unit of their values (eV ...).
_FIXED = {
    "bandgap": "eV",  # an energy of the structure, not a density
    "mixing_energy": "eV/atom",  # alloys: EMT mixing energy per atom (tnmat.data.alloys)
    "energy_per_atom": "eV/atom",
    "free_energy_per_atom": "eV/atom",
    "energy": "eV/structure",  # the ASE convention: a structure's total energy
    "free_energy": "eV/structure",
}

#: Targets whose errors are not reported in meV: equivariant forces (per atom and Cartesian component) and
#: stress (per structure and Voigt component; eV/A^3 values, GPa errors), tnmat.commands.vector_targets.
_ERROR_UNITS = {"forces": "eV/A", "stress": "GPa"}

#: Extensive (total) targets of structure files and the intensive targets derived from them.
EXTENSIVE = ("energy", "free_energy")


def per_atom_name(target: str) -> str:
    """The intensive target derived from an extensive one (``energy`` -> ``energy_per_atom``)."""
    return f"{target}_per_atom"


def value_units(dataset: Any, target: str) -> str:
    """Unit of the values of ``target`` in ``dataset`` (a :class:`~tnmat.data.Dataset` or its name), e.g.
    ``eV/atom``, ``eV/cation``, ``eV/structure``; plain ``eV`` for any other target."""
    known = getattr(dataset, "units", None) or {}
    if target in known:  # the loader's own statement (kept through extxyz files written by tnmat)
        return known[target]
    name = dataset if isinstance(dataset, str) else getattr(dataset, "name", "")
    if target == "formation_energy" and name.split("-")[0] == "nmd18":
        return "eV/cation"  # Sutton et al. 2019, see tnmat.data.nmd18
    return _FIXED.get(target, "eV")


def target_units(dataset: Any, target: str) -> str:
    """Error unit of ``target`` in ``dataset``: meV per the quantity of :func:`value_units` (``meV/atom``,
    ``meV/cation``, ``meV/structure``, or plain ``meV``); forces in eV/A and stress in GPa."""
    return _ERROR_UNITS.get(target) or "m" + value_units(dataset, target)


def check_intensive(dataset: Any, target: str) -> None:
    """``ValueError`` when ``target`` is a total (extensive) energy of structures of different sizes: an
    intensive model (every scalar tnmat model predicts a structure mean) cannot fit it.  The message names
    the dataset, the target and the intensive target to fit instead."""
    if target not in EXTENSIVE:
        return
    n = np.array([len(a) for a in dataset.structures])
    if len(n) and n.min() != n.max():
        name = getattr(dataset, "name", "dataset")
        raise ValueError(
            f"{name}: target {target!r} is the total energy of each structure (ASE convention; {n.min()} to "
            f"{n.max()} atoms), but the model predicts a structure mean (intensive); fit "
            f"{per_atom_name(target)!r} instead (the default; predictions give both)")


def energies_look_per_atom(energies: np.ndarray, n_atoms: np.ndarray, *, ratio: float = 10.0) -> bool:
    """True when values stored as total energies behave like energies per atom: over structures of
    different sizes, a constant describes them ``ratio`` times better (residual sum of squares) than a
    proportionality E = e N does.  Total energies of real structures grow with N, so the reverse holds;
    values that neither model separates (e.g. near-zero mixing energies) are not flagged."""
    e = np.asarray(energies, dtype=np.float64)
    n = np.asarray(n_atoms, dtype=np.float64)
    if len(e) < 3 or n.min() == n.max():
        return False
    rss_const = float(np.sum((e - e.mean()) ** 2))
    slope = float(e @ n / (n @ n))
    rss_total = float(np.sum((e - slope * n) ** 2))
    return rss_total > ratio * max(rss_const, 1e-300)
