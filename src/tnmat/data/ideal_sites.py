"""Ideal parent-lattice sites of relaxed structures (the input a cluster expansion, a ground-state search or a
lattice Monte Carlo has before any relaxation).

:func:`map_to_ideal` maps each relaxed structure onto the sites of a parent lattice with icet's
``map_structure_to_reference`` (cell relaxation allowed) and returns the ideal configurations, rescaled to the
Vegard volume when the pure elements' volumes per atom are given (else to the relaxed volume).  A structure
is refused -- a one-line :class:`LatticeMappingError` naming the source, the structure index and the reason --
when it does not map, or when it has left its parent lattice by CE practice's criteria: an anisotropic
(shape) strain above ``max_anisotropic_strain`` or a site displaced by more than
``max_displacement_fraction`` of the nearest-neighbour distance.

``parent`` is ``"fcc"``, ``"bcc"``, ``"hcp"``, optionally with a lattice constant (``"fcc:4.05"``,
Angstrom; the constant only sets the scale of the reference, the mapping rescales it), or a primitive
``Atoms``; ``"auto"`` tries fcc, bcc and hcp on the first structure and keeps the one with the smallest
shape strain.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk

__all__ = ["LatticeCheck", "LatticeMappingError", "map_to_ideal", "check_on_lattice", "parent_lattice",
           "detect_parent", "PARENTS"]

PARENTS = ("fcc", "bcc", "hcp")


class LatticeMappingError(ValueError):
    """A structure that does not map onto the parent lattice (one-line message naming file and structure)."""


@dataclass(frozen=True)
class LatticeCheck:
    """Limits beyond which a relaxed structure counts as having left its parent lattice (CE practice)."""

    max_anisotropic_strain: float = 0.1  # von Mises strain of the shape change (icet's default trigger)
    max_displacement_fraction: float = 0.3  # of the nearest-neighbour distance (icet's default trigger)
    tol_positions: float = 0.3  # Angstrom, site matching tolerance passed to icet


def parent_lattice(parent: str | Atoms, a: float | None = None) -> Atoms:
    """The primitive parent (``"fcc"``, ``"fcc:4.05"``, ... or an ``Atoms``), one placeholder species."""
    if isinstance(parent, Atoms):
        return parent.copy()
    name, _, const = str(parent).partition(":")
    if name not in PARENTS:
        raise ValueError(f"parent lattice {parent!r}: choose fcc, bcc or hcp (optionally ':a' in Angstrom)")
    try:
        a = float(const) if const else (a or {"fcc": 4.0, "bcc": 3.2, "hcp": 2.9}[name])
    except ValueError:
        raise ValueError(f"parent lattice {parent!r}: lattice constant {const!r} is not a number") from None
    if not a > 0:
        raise ValueError(f"parent lattice {parent!r}: lattice constant must be > 0 Angstrom")
    if name == "hcp":
        return bulk("Au", "hcp", a=a, c=a * np.sqrt(8.0 / 3.0))
    return bulk("Au", name, a=a)


def _map(atoms: Atoms, prim: Atoms, check: LatticeCheck) -> tuple[Atoms, str]:
    """(ideal structure, reason): reason is '' when ``atoms`` maps and stays on the lattice."""
    from icet.tools.structure_mapping import map_structure_to_reference

    # scale the reference to the structure's volume per atom, so the displacement limits are in its units
    ref = prim.copy()
    scale = (atoms.get_volume() / len(atoms) / (ref.get_volume() / len(ref))) ** (1.0 / 3.0)
    ref.set_cell(ref.cell.array * scale, scale_atoms=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ideal, info = map_structure_to_reference(atoms, ref, tol_positions=check.tol_positions,
                                                     assume_no_cell_relaxation=False, suppress_warnings=True)
    except Exception as exc:  # icet raises ValueError and others for cells that fit no supercell
        return atoms, f"does not map onto the {_name(prim)} lattice ({str(exc).splitlines()[0]})"
    d_nn = _nearest_neighbour(ref)
    if info.von_mises_strain > check.max_anisotropic_strain:
        return ideal, (f"left the lattice: shape (von Mises) strain {info.von_mises_strain:.3f} > "
                       f"{check.max_anisotropic_strain:g}")
    if info.drmax > check.max_displacement_fraction * d_nn:
        return ideal, (f"left the lattice: a site moved {info.drmax:.2f} A > {check.max_displacement_fraction:g} "
                       f"x the nearest-neighbour distance {d_nn:.2f} A")
    if len(ideal) != len(atoms) or sorted(ideal.get_chemical_symbols()) != sorted(atoms.get_chemical_symbols()):
        return ideal, "does not map one atom per site (a vacancy or an interstitial)"
    return ideal, ""


def _nearest_neighbour(prim: Atoms) -> float:
    """Nearest-neighbour distance of a lattice (Angstrom)."""
    big = prim.repeat(3)
    d = big.get_all_distances(mic=True)
    return float(d[d > 1e-8].min())


def _name(prim: Atoms) -> str:
    return str(prim.info.get("lattice", "parent"))


def check_on_lattice(atoms: Atoms, parent: str | Atoms, check: LatticeCheck | None = None) -> tuple[Atoms, str]:
    """(ideal sites at the relaxed volume, reason): ``reason`` is '' when ``atoms`` keeps its parent lattice,
    else why it counts as having left it (module docstring)."""
    prim = parent_lattice(parent)
    if isinstance(parent, str):
        prim.info["lattice"] = parent.partition(":")[0]
    return _map(atoms, prim, check or LatticeCheck())


def detect_parent(atoms: Atoms, check: LatticeCheck | None = None) -> str:
    """The parent lattice (fcc, bcc or hcp) that ``atoms`` maps onto with the smallest shape strain."""
    best, best_strain = None, np.inf
    for name in PARENTS:
        ideal, reason = check_on_lattice(atoms, name, check)
        if reason:
            continue
        strain = _shape_strain(atoms, ideal)
        if strain < best_strain:
            best, best_strain = name, strain
    if best is None:
        raise LatticeMappingError("structure 0 maps onto none of fcc, bcc, hcp; give the parent lattice")
    return best


def _shape_strain(relaxed: Atoms, ideal: Atoms) -> float:
    """Norm of the deviatoric part of the strain taking the ideal cell (at equal volume) to the relaxed one."""
    a0 = ideal.cell.array * (relaxed.get_volume() / ideal.get_volume()) ** (1.0 / 3.0)
    f = np.linalg.solve(a0, relaxed.cell.array).T
    eps = 0.5 * (f.T @ f - np.eye(3))
    return float(np.linalg.norm(eps - np.trace(eps) / 3.0 * np.eye(3)))


def map_to_ideal(structures: Sequence[Atoms], parent: str | Atoms = "auto", *,
                 volumes: Mapping[str, float] | None = None, source: str = "structures",
                 check: LatticeCheck | None = None) -> list[Atoms]:
    """The ideal parent-lattice configurations of relaxed ``structures`` (module docstring): same species per
    site, positions on the parent's sites; volume per atom the composition-weighted mean of ``volumes``
    (element -> Angstrom^3/atom: Vegard) when given, else the relaxed one.  ``info`` and per-structure
    targets are kept; ``info["relaxed_volume_per_atom"]`` records the relaxed volume.  Raises
    :class:`LatticeMappingError` (``"{source}: structure {k}: ..."``) for the first structure that does not map."""
    structures = list(structures)
    if not structures:
        return []
    if isinstance(parent, str) and parent == "auto":
        try:
            parent = detect_parent(structures[0], check)
        except LatticeMappingError as exc:
            raise LatticeMappingError(f"{source}: {exc}") from None
    out = []
    for k, atoms in enumerate(structures):
        ideal, reason = check_on_lattice(atoms, parent, check)
        if reason:
            raise LatticeMappingError(f"{source}: structure {k} ({atoms.get_chemical_formula()}): {reason}")
        ideal = _plain(ideal)
        ideal.info.update(atoms.info)
        ideal.info["relaxed_volume_per_atom"] = atoms.get_volume() / len(atoms)
        if volumes is not None:
            ideal.set_cell(ideal.cell.array * _vegard_scale(ideal, volumes, source, k), scale_atoms=True)
        ideal.pbc = True
        out.append(ideal)
    return out


def _plain(ideal: Atoms) -> Atoms:
    """``ideal`` as a plain Atoms: icet's mapping arrays and any calculator dropped."""
    return Atoms(ideal.get_chemical_symbols(), positions=ideal.positions, cell=ideal.cell.array, pbc=True)


def _vegard_scale(atoms: Atoms, volumes: Mapping[str, float], source: str, k: int) -> float:
    """Length scale taking ``atoms`` to the Vegard volume per atom (mean of the elements' volumes)."""
    syms = atoms.get_chemical_symbols()
    missing = sorted(set(syms) - set(volumes))
    if missing:
        raise LatticeMappingError(f"{source}: structure {k}: no reference volume per atom for {', '.join(missing)}")
    v = float(np.mean([volumes[s] for s in syms]))
    return (v / (atoms.get_volume() / len(atoms))) ** (1.0 / 3.0)
