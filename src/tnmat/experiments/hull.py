"""Convex hulls of mixing energies: what a cluster-expansion user does with a model.

* :func:`hull_distances`: the lower convex hull of (composition, energy per atom) points (scipy
  ``ConvexHull`` on the fractions of all but the first element and the energy) and each point's distance
  above it (eV/atom, >= 0); the ground states are the points on the hull.
* :func:`enumerate_configurations`: every derivative structure of a parent lattice with at most ``max_atoms``
  atoms over a set of elements (icet's Hart-Forcade enumeration), on ideal sites at the Vegard volume.
* :func:`hull_rows`: one row per structure (id, formula, fractions, energy, hull distance, ground state).
* :func:`score_hull`: a predicted hull against a reference hull of the same structures: reference ground
  states found (pure elements, on every hull, are not counted), false ground states (and how far above the
  reference hull they are), and the MAE of the hull distance over the structures within ``window`` (default
  50 meV/atom) of the reference hull.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

__all__ = ["fractions", "hull_distances", "enumerate_configurations", "hull_rows", "score_hull", "HullScore",
           "ON_HULL_TOL"]

ON_HULL_TOL = 1e-6  # eV/atom: a point this close to the hull is a ground state (rounding of the hull planes)


def fractions(structures: Sequence[Atoms], elements: Sequence[str]) -> np.ndarray:
    """(n, k) atomic fractions of ``elements`` in each structure; a structure holding another element is a
    ``ValueError`` naming its index."""
    index = {e: j for j, e in enumerate(elements)}
    out = np.zeros((len(structures), len(elements)))
    for k, a in enumerate(structures):
        for s in a.get_chemical_symbols():
            if s not in index:
                raise ValueError(f"structure {k} ({a.get_chemical_formula()}): element {s} is not one of "
                                 f"{', '.join(elements)}")
            out[k, index[s]] += 1.0 / len(a)
    return out


def hull_distances(x: np.ndarray, energies: np.ndarray) -> np.ndarray:
    """Distance (eV/atom, >= 0) of each point above the lower convex hull of (x[:, 1:], energy).

    ``x`` are the (n, k) fractions of k elements (rows sum to 1); the pure elements must be among the points
    (the hull is then defined over the whole composition simplex).  Elements absent from every point are
    dropped first, so a binary subset of a ternary set gives its binary hull."""
    x, e = np.asarray(x, float), np.asarray(energies, float)
    x = x[:, x.max(axis=0) > 0]
    k = x.shape[1]
    for j in range(k):
        if not np.any(np.isclose(x[:, j], 1.0)):
            raise ValueError(f"the hull needs every pure element: no structure is pure element {j}")
    if k == 1:
        return e - e.min()
    pts = np.column_stack([x[:, 1:], e])
    # "ceiling" points above every pure element keep the hull full-dimensional when the energies are coplanar
    ceiling = np.column_stack([np.eye(k)[:, 1:], np.full(k, e.max() + 1.0)])
    from scipy.spatial import ConvexHull

    hull = ConvexHull(np.vstack([pts, ceiling]))
    eq = hull.equations[hull.equations[:, -2] < -1e-12]  # lower facets: outward normal points down in energy
    # on the simplex the hull energy is the maximum of the lower facets' planes (a convex function)
    planes = -(pts[:, :-1] @ eq[:, :-2].T + eq[:, -1]) / eq[:, -2]
    return np.maximum(e - planes.max(axis=1), 0.0)


def enumerate_configurations(elements: Sequence[str], lattice: str = "fcc", max_atoms: int = 8,
                             volumes: dict[str, float] | None = None) -> list[Atoms]:
    """Every derivative structure over ``elements`` with at most ``max_atoms`` atoms on ``lattice`` (fcc,
    bcc), on ideal sites at the Vegard volume (mean of ``volumes``, element -> A^3/atom; default: EMT
    equilibrium volumes where EMT has the element, else ASE's reference crystal); ``info["id"]`` set."""
    from ase.build import bulk
    from icet.tools import enumerate_structures

    if lattice not in ("fcc", "bcc"):
        raise ValueError(f"lattice {lattice!r}: choose fcc or bcc")
    if not 1 <= max_atoms <= 12 or len(set(elements)) != len(elements) or len(elements) < 2:
        raise ValueError(f"need >= 2 distinct elements and max_atoms in 1..12 (got {list(elements)}, {max_atoms})")
    volumes = dict(volumes or {e: _reference_volume(e, lattice) for e in elements})
    prim = bulk("Au", lattice, a=4.0 if lattice == "fcc" else 3.2)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spglib's notice, via icet
        for k, s in enumerate(enumerate_structures(prim, range(1, max_atoms + 1), list(elements))):
            v = float(np.mean([volumes[sym] for sym in s.get_chemical_symbols()]))
            a = Atoms(s.get_chemical_symbols(), positions=s.positions, cell=s.cell.array, pbc=True)
            a.set_cell(a.cell.array * (v / (a.get_volume() / len(a))) ** (1 / 3), scale_atoms=True)
            a.info["id"] = f"{''.join(elements)}-{lattice}-{k:05d}"
            out.append(a)
    return out


def _reference_volume(element: str, lattice: str) -> float:
    """EMT-equilibrium volume per atom on ``lattice`` where EMT has the element, else ASE's reference."""
    from ase.build import bulk

    from tnmat.data.alloys import EMT_ELEMENTS, emt_lattice_constant

    if element in EMT_ELEMENTS:
        a = emt_lattice_constant(element, lattice)[0]
        return a**3 / (4.0 if lattice == "fcc" else 2.0)
    try:
        ref = bulk(element)
    except (ValueError, KeyError, RuntimeError):
        raise ValueError(f"no reference volume for {element}; give volumes") from None
    return ref.get_volume() / len(ref)


def hull_rows(structures: Sequence[Atoms], energies: np.ndarray, elements: Sequence[str]) -> list[dict[str, Any]]:
    """One row per structure: id, formula, n_atoms, one fraction column per element, energy and hull distance
    (meV/atom), on_hull (1 for a ground state)."""
    x = fractions(structures, elements)
    d = hull_distances(x, energies)
    rows = []
    for k, a in enumerate(structures):
        row = {"id": a.info.get("id", k), "formula": a.get_chemical_formula(), "n_atoms": len(a)}
        row.update({f"x_{el}": round(float(x[k, j]), 6) for j, el in enumerate(elements)})
        row.update(energy_meV_per_atom=round(1000.0 * float(energies[k]), 4),
                   hull_distance_meV_per_atom=round(1000.0 * float(d[k]), 4), on_hull=int(d[k] <= ON_HULL_TOL))
        rows.append(row)
    return rows


@dataclass(frozen=True)
class HullScore:
    """A predicted hull against the reference (energies in meV/atom; ground states of mixed composition)."""

    n_reference_ground_states: int
    n_found: int
    false_ground_states: tuple[str, ...]
    worst_false_meV: float  # largest reference hull distance of a false ground state (0 when none)
    hull_distance_mae_meV: float  # over structures within the window of the reference hull
    n_in_window: int

    @property
    def found_fraction(self) -> float:
        return self.n_found / self.n_reference_ground_states if self.n_reference_ground_states else float("nan")


def score_hull(x: np.ndarray, e_ref: np.ndarray, e_pred: np.ndarray, ids: Sequence[str] | None = None, *,
               window: float = 0.05) -> HullScore:
    """Score a predicted hull against the reference hull of the same structures (module docstring);
    ``window`` in eV/atom."""
    d_ref, d_pred = hull_distances(x, e_ref), hull_distances(x, e_pred)
    ids = list(ids) if ids is not None else [str(k) for k in range(len(d_ref))]
    mixed = ~np.isclose(np.asarray(x).max(axis=1), 1.0)  # a pure element is on every hull: not counted
    ref_gs, pred_gs = (d_ref <= ON_HULL_TOL) & mixed, (d_pred <= ON_HULL_TOL) & mixed
    false = pred_gs & ~ref_gs
    near = d_ref <= window
    return HullScore(n_reference_ground_states=int(ref_gs.sum()), n_found=int((ref_gs & pred_gs).sum()),
                     false_ground_states=tuple(ids[k] for k in np.flatnonzero(false)),
                     worst_false_meV=float(1000.0 * d_ref[false].max()) if false.any() else 0.0,
                     hull_distance_mae_meV=float(1000.0 * np.abs(d_ref - d_pred)[near].mean()),
                     n_in_window=int(near.sum()))
