"""The "unrelaxed" NMD18 geometry of the seed paper: ideal positions in Vegard-law cells.

NMD18 ships only DFT-relaxed geometries.  The seed paper (Sommer & Dunham) also uses ideal lattice positions
with lattice vectors scaled by Vegard's law between the end-member oxides Al2O3, Ga2O3, In2O3.  We build them
as follows (cation fractions x, y, z of the alloy; all steps deterministic, from the released files only):

1. End members.  Five (spacegroup, atoms-per-cell) phases contain all three pure oxides:
   (12, 20), (33, 40), (167, 30), (194, 10), (206, 80).  In each, the Ga and In end members' sites are matched
   one-to-one to the Al end member's (O to O, cation to cation; Hungarian assignment on periodic distances,
   after the best rigid translation), so the three share one site order.  The matched end members coincide to
   <= 0.07 A for 12, 33, 167, 206; the 194 (10-atom) ones differ by up to 1.1 A (their relaxations differ).
2. Vegard prototype of an alloy = the virtual crystal interpolated linearly in composition:
   cell  L(x) = x L_Al + y L_Ga + z L_In (cell matrices; the three are in one setting and orientation), and
   fractional coordinates f(x) = x f_Al + y f_Ga + z f_In (matched sites, unwrapped).  Vegard's law for the
   lattice vectors, and for the internal coordinates the linear interpolation that makes the construction
   exact at the end members.
3. Supercells.  Phases (12, 80), (33, 80), (167, 60), (194, 80) are supercells of the phases above: the
   integer matrix M = round(L_alloy L(x)^-1) (accepted if within 0.1 of integers and det M = n/n_proto)
   maps the prototype to the alloy's cell; the ideal structure is the supercell M L(x) of the prototype.
4. Species.  Each alloy atom is assigned to one ideal site (O to O, cation to cation) by Hungarian
   assignment of periodic Cartesian distances in the ideal cell after the best rigid translation (tried:
   every O site for the alloy's first O atom).  Atom k of the result is atom k of the relaxed structure moved
   to its ideal site, so species, counts and order are preserved.  Accepted if every atom moves by less than
   ``max_shift`` (1.0 A); method ``"prototype"``.
5. Fallback (no prototype of the phase, e.g. spacegroup 227, which has no pure end member in NMD18, or a
   rejected match): the alloy keeps its own fractional coordinates and its cell is scaled isotropically to
   the Vegard volume per atom V(x) = x V_Al + y V_Ga + z V_In, where V_k are the end-member volumes per atom
   of the phase (from step 1, or for phases without end members the least-squares fit of V(x) to the relaxed
   volumes of all structures of that spacegroup; Vegard's law extrapolated from the alloys).  Method
   ``"scaled"``; the positions are then NOT ideal, only the volume follows Vegard.

Guarantees (tested): species and atom order equal the relaxed structure's; for ``"prototype"`` the cell is
M (x L_Al + y L_Ga + z L_In) exactly and the fractional coordinates are the interpolated ideal ones, each atom
within ``max_shift`` of its relaxed position (modulo the rigid translation); for ``"scaled"`` the volume per
atom equals the Vegard value and fractional coordinates equal the relaxed ones.  The per-structure method is in
``metadata["geometry_method"]`` and counted in ``Dataset.summary()``.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from scipy.optimize import linear_sum_assignment

__all__ = ["vegard_structures", "END_MEMBER_PHASES", "match_sites"]

END_MEMBER_PHASES = ((12, 20), (33, 40), (167, 30), (194, 10), (206, 80))
_X = ("x_al", "x_ga", "x_in")


def _periodic_cost(fa: np.ndarray, fs: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Squared minimum-image Cartesian distances |(fa_i - fs_j - round) L|^2 (nearly orthogonal cells)."""
    d = fa[:, None, :] - fs[None, :, :]
    d -= np.round(d)
    c = d @ cell
    return np.einsum("ijk,ijk->ij", c, c)


def match_sites(fa: np.ndarray, is_o_a: np.ndarray, fs: np.ndarray, is_o_s: np.ndarray,
                cell: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """One-to-one assignment of atoms ``fa`` (fractional) to sites ``fs`` in ``cell``, O to O, cation to cation,
    after the rigid translation (one of ``fs[O] - fa[first O]``) minimising the largest distance.

    Returns (largest distance in A, ``site[k]`` for atom k, translation in fractional coordinates).
    """
    best: tuple[float, np.ndarray, np.ndarray] = (np.inf, np.empty(0, int), np.zeros(3))
    groups = [(np.flatnonzero(is_o_a == g), np.flatnonzero(is_o_s == g)) for g in (True, False)]
    first_o = fa[groups[0][0][0]]
    for t in fs[groups[0][1]] - first_o:
        site = np.empty(len(fa), dtype=np.int64)
        worst = 0.0
        for ia, js in groups:
            c = _periodic_cost(fa[ia] + t, fs[js], cell)
            r, col = linear_sum_assignment(c)
            site[ia[r]] = js[col]
            worst = max(worst, float(np.sqrt(c[r, col].max())))
            if worst >= best[0]:
                break
        if worst < best[0]:
            best = (worst, site, t)
        if worst < 0.05:  # an essentially exact match cannot be beaten meaningfully; saves the search
            break
    return best


def _is_o(atoms: Atoms) -> np.ndarray:
    return np.array(atoms.get_chemical_symbols()) == "O"


def _end_members(structures: list[Atoms], meta: dict[str, np.ndarray]) -> dict[int, tuple]:
    """Per spacegroup with all three pure oxides: (n_atoms, [L_Al, L_Ga, L_In], [f_Al, f_Ga, f_In], is_O)."""
    out = {}
    sg, n = meta["spacegroup"], meta["n_atoms"]
    for group, size in END_MEMBER_PHASES:
        pure = []
        for key in _X:
            hit = np.flatnonzero((sg == group) & (n == size) & (meta[key] == 1.0))
            if len(hit) == 0:
                break
            pure.append(structures[hit[0]])
        if len(pure) < 3:
            continue
        ref = pure[0]
        f_ref, o_ref = ref.get_scaled_positions(), _is_o(ref)
        fracs = [f_ref]
        for other in pure[1:]:
            f = other.get_scaled_positions()
            _, site, t = match_sites(f_ref, o_ref, f, _is_o(other), other.cell.array)
            # other's site[k] sits at f_ref[k] + t (mod 1): bring it next to f_ref[k], unwrapped
            d = f[site] - t - f_ref
            fracs.append(f_ref + d - np.round(d))
        out[group] = (size, [p.cell.array.copy() for p in pure], fracs, o_ref)
    return out


def _fit_vegard_volumes(vpa: np.ndarray, x: np.ndarray, label: str) -> np.ndarray:
    """Least-squares end-member volumes per atom V_k from V(x) = sum_k x_k V_k over structures of one phase."""
    coef, _, rank, _ = np.linalg.lstsq(x, vpa, rcond=None)
    if rank < 3:
        raise ValueError(f"Vegard fallback for {label}: compositions of its {len(vpa)} structures do not span "
                         "Al, Ga, In; cannot extrapolate end-member volumes")
    return coef


def vegard_structures(structures: list[Atoms], meta: dict[str, np.ndarray], *,
                      max_shift: float = 1.0) -> tuple[list[Atoms], list[str]]:
    """The Vegard-law ideal structures of NMD18 (module docstring) and the method used for each.

    ``structures`` are the relaxed ones of the FULL set (both splits: most end members are in train);
    ``meta`` needs ``spacegroup``, ``n_atoms``, ``x_al``, ``x_ga``, ``x_in``, ``id``.
    """
    ends = _end_members(structures, meta)
    xs = np.stack([meta[k] for k in _X], axis=1).astype(np.float64)
    vpa = np.array([a.get_volume() / len(a) for a in structures])
    v_end: dict[int, np.ndarray] = {}
    for group in np.unique(meta["spacegroup"]):
        group = int(group)
        if group in ends:
            size, cells, _, _ = ends[group]
            v_end[group] = np.array([abs(np.linalg.det(c)) / size for c in cells])
        else:
            sel = meta["spacegroup"] == group
            v_end[group] = _fit_vegard_volumes(vpa[sel], xs[sel], f"spacegroup {group}")
    out: list[Atoms] = []
    methods: list[str] = []
    for k, atoms in enumerate(structures):
        group, x = int(meta["spacegroup"][k]), xs[k]
        ideal = None
        if group in ends:
            ideal = _prototype(atoms, x, ends[group], max_shift)
        if ideal is not None:
            methods.append("prototype")
        else:
            scale = (float(x @ v_end[group]) * len(atoms) / atoms.get_volume()) ** (1.0 / 3.0)
            ideal = atoms.copy()
            ideal.set_cell(atoms.cell.array * scale, scale_atoms=True)
            methods.append("scaled")
        ideal.info = {"id": atoms.info.get("id", meta["id"][k])}
        out.append(ideal)
    return out, methods


def _prototype(atoms: Atoms, x: np.ndarray, end: tuple, max_shift: float) -> Atoms | None:
    """Steps 2-4 of the module docstring for one alloy; None when the cell or the sites do not match."""
    size, cells, fracs, o_proto = end
    n = len(atoms)
    if n % size:
        return None
    cell = sum(w * c for w, c in zip(x, cells, strict=True))
    f_proto = sum(w * f for w, f in zip(x, fracs, strict=True))
    m = atoms.cell.array @ np.linalg.inv(cell)
    m_int = np.round(m)
    if np.abs(m - m_int).max() > 0.1 or round(abs(np.linalg.det(m_int))) != n // size:
        return None
    # supercell sites: prototype fractional coordinates plus the lattice points of M, in the supercell basis
    m_inv = np.linalg.inv(m_int)
    span = np.abs(m_int).sum(0).astype(int)
    grid = np.array(np.meshgrid(*[np.arange(-s, s + 1) for s in span], indexing="ij")).reshape(3, -1).T
    pts = grid @ m_inv
    inside = np.all((pts > -1e-9) & (pts < 1 - 1e-9), axis=1)
    lattice_pts = grid[inside]
    if len(lattice_pts) != n // size:
        return None
    f_super = ((f_proto[None, :, :] + lattice_pts[:, None, :]).reshape(-1, 3)) @ m_inv
    o_super = np.tile(o_proto, len(lattice_pts))
    super_cell = m_int @ cell
    f_atoms = np.linalg.solve(super_cell.T, atoms.positions.T).T
    worst, site, _ = match_sites(f_atoms, _is_o(atoms), f_super, o_super, super_cell)
    if worst >= max_shift:
        return None
    return Atoms(atoms.get_chemical_symbols(), scaled_positions=f_super[site] % 1.0, cell=super_cell, pbc=True)
