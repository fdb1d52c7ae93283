"""A relaxed multi-component alloy set: ideal lattice sites in, relaxed EMT mixing energies out.

The task of solid-solution modelling (cluster expansion practice): a model sees a configuration on the ideal
sites of its parent lattice and predicts the energy the configuration has after relaxing positions and cell.

Structures (parent ``lattices``, default fcc; all deterministic from ``seed``):

* the pure elements (one atom each);
* binaries: ``n_binary`` drawn without replacement from the Hart-Forcade derivative structures with at most
  ``binary_max_atoms`` atoms (``icet.tools.enumerate_structures``) of every pair of ``elements``;
* ternaries: ``n_ternary`` drawn from the three-species derivative structures with at most
  ``ternary_max_atoms`` atoms (all three species present) of every triple;
* many-component cells (``n_many``, 4-7 species, as many as ``elements`` allow): half *ordered* (a small
  derivative cell of at most 8 atoms, every species present), half *random* (a 16-, 27- or 32-atom supercell
  of the primitive cell with a near-equiatomic random occupation).

Input geometry: the ideal sites at the Vegard volume, volume per atom = the composition-weighted mean of the
pure elements' EMT-equilibrium volumes on the parent (:func:`tnmat.data.alloys.emt_lattice_constant`).
Relaxation: ASE's EMT, positions and cell together (``FrechetCellFilter`` + BFGS to ``fmax`` eV/A, at most
``max_steps`` steps).  Target ``mixing_energy`` (eV/atom) = E_relaxed/N - sum_k x_k E_k, E_k the relaxed pure
elements on the same parent (so pure structures have 0).  Lattice check (:mod:`tnmat.data.ideal_sites`): a
relaxed structure that no longer maps onto its parent's sites, or whose shape strain or site displacement
exceeds the :class:`~tnmat.data.ideal_sites.LatticeCheck` limits, is kept in the cache with
``on_lattice=False`` and the reason in ``lattice_check``, and excluded from the dataset.

Stored per structure (extxyz, ``$TNMAT_CACHE``): the ideal frame; ``arrays["relaxed_positions"]`` and
``info["relaxed_cell"]`` (the relaxed geometry, :func:`relaxed_structures` rebuilds it); ``info`` fields
``system``, ``lattice``, ``kind`` (pure/binary/ternary/ordered/random), ``n_species``, ``fractions``
(e.g. ``Ag0.500Au0.500``), ``ideal_energy`` and
``relaxed_energy`` (EMT eV/atom), ``ideal_mixing_energy`` (unrelaxed, eV/atom), ``relax_steps``,
``relax_converged``, ``on_lattice``, ``lattice_check``; ``split`` is a seeded 80/20 train/test permutation.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from functools import cache

import numpy as np
from ase import Atoms

from .alloys import EMT_ELEMENTS, _parent, alloy_cache_dir, emt_lattice_constant, enumerate_derivatives, map_on_cores
from .dataset import Dataset
from .ideal_sites import LatticeCheck, check_on_lattice

__all__ = ["RelaxedAlloys", "generate_relaxed_alloys", "relaxed_structures", "relaxed_default", "SMALL"]

_CACHE_VERSION = 1
_RANDOM_REPEATS = ((2, 2, 4), (3, 3, 3), (2, 4, 4))  # 16, 27, 32 atoms per primitive-cell supercell


@dataclass(frozen=True)
class RelaxedAlloys:
    """Settings of the relaxed alloy set (module docstring); validated on construction."""

    elements: tuple[str, ...] = EMT_ELEMENTS
    lattices: tuple[str, ...] = ("fcc",)
    n_binary: int = 600
    binary_max_atoms: int = 6
    n_ternary: int = 300
    ternary_max_atoms: int = 4
    n_many: int = 100
    fmax: float = 0.01  # eV/A, force (and scaled stress) convergence of the relaxation
    max_steps: int = 300
    seed: int = 0
    check: LatticeCheck = field(default_factory=LatticeCheck)

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(sorted(self.elements)))
        object.__setattr__(self, "lattices", tuple(self.lattices))
        bad = sorted(set(self.elements) - set(EMT_ELEMENTS))
        if bad or len(set(self.elements)) != len(self.elements) or len(self.elements) < 2:
            raise ValueError(f"elements {self.elements}: need >= 2 distinct EMT elements ({', '.join(EMT_ELEMENTS)})")
        for lat in self.lattices:
            if lat not in ("fcc", "bcc"):
                raise ValueError(f"lattice must be fcc or bcc, got {lat!r}")
        if min(self.n_binary, self.n_ternary, self.n_many) < 0 or not self.fmax > 0:
            raise ValueError("structure counts must be >= 0 and fmax > 0 eV/A")
        if not (1 <= self.binary_max_atoms <= 8 and 1 <= self.ternary_max_atoms <= 6):
            raise ValueError("binary_max_atoms must be in 1..8 and ternary_max_atoms in 1..6")


#: the quick variant for tests (``alloys-relaxed-small``): three elements, small cells, a few seconds
SMALL = RelaxedAlloys(elements=("Ag", "Au", "Cu"), n_binary=12, binary_max_atoms=3, n_ternary=6,
                      ternary_max_atoms=3, n_many=0)


@cache
def _ternary_derivatives(lattice: str, max_atoms: int) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """Three-species derivative structures (a = 1) with every species present: (cell, fractional, labels 0-2)."""
    from icet.tools import enumerate_structures

    prim = _parent(lattice, 1.0)
    prim.set_chemical_symbols(["Au"] * len(prim))
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spglib's notice, via icet
        for s in enumerate_structures(prim, range(1, max_atoms + 1), ["Ag", "Au", "Cu"]):
            lab = _labels(s.numbers)
            if len(set(lab.tolist())) == 3:
                out.append((s.cell.array.copy(), s.get_scaled_positions(), lab))
    return tuple(out)


def _labels(numbers: np.ndarray) -> np.ndarray:
    """Species labels 0, 1, 2 for Ag (47), Au (79), Cu (29), the placeholders of the enumeration."""
    return np.array([{47: 0, 79: 1, 29: 2}[int(z)] for z in numbers], dtype=np.int8)


def _job(sid: str, lat: str, kind: str, symbols: list[str], cell: np.ndarray, frac: np.ndarray) -> tuple:
    return (sid, lat, kind, tuple(symbols), np.asarray(cell, float), np.asarray(frac, float))


def _enumerated_jobs(sett: RelaxedAlloys, lat: str, rng: np.random.Generator) -> list[tuple]:
    """Pure, binary and ternary jobs on one parent (drawn from the enumerations, module docstring)."""
    jobs = [_job(f"{el}-{lat}-pure", lat, "pure", [el], _parent(lat, 1.0).cell.array, np.zeros((1, 3)))
            for el in sett.elements]
    binaries = [(cell, frac, occ) for cell, frac, occ in enumerate_derivatives(lat, sett.binary_max_atoms)
                if 0 < occ.sum() < len(occ)]
    pool = [(pair, k) for pair in itertools.combinations(sett.elements, 2) for k in range(len(binaries))]
    for i in np.sort(rng.choice(len(pool), size=min(sett.n_binary, len(pool)), replace=False)):
        pair, k = pool[int(i)]
        cell, frac, occ = binaries[k]
        jobs.append(_job(f"{''.join(pair)}-{lat}-{k:04d}", lat, "binary", [pair[o] for o in occ], cell, frac))
    ternaries = _ternary_derivatives(lat, sett.ternary_max_atoms)
    pool = [(tri, k) for tri in itertools.combinations(sett.elements, 3) for k in range(len(ternaries))]
    for i in np.sort(rng.choice(len(pool), size=min(sett.n_ternary, len(pool)), replace=False)):
        tri, k = pool[int(i)]
        cell, frac, lab = ternaries[k]
        jobs.append(_job(f"{''.join(tri)}-{lat}-{k:04d}", lat, "ternary", [tri[j] for j in lab], cell, frac))
    return jobs


def _many_jobs(sett: RelaxedAlloys, lat: str, rng: np.random.Generator) -> list[tuple]:
    """Many-component jobs: ordered small cells and random supercells (module docstring)."""
    jobs = []
    small = [(c, f) for c, f, _ in enumerate_derivatives(lat, 8)]
    prim = _parent(lat, 1.0)
    top = min(7, len(sett.elements))
    for i in range(sett.n_many if top >= 4 else 0):
        k = int(rng.integers(4, top + 1))
        els = sorted(rng.choice(sett.elements, size=k, replace=False).tolist())
        if i % 2 == 0:
            fits = [j for j, (_, f) in enumerate(small) if len(f) >= k]
            cell, frac = small[fits[int(rng.integers(len(fits)))]]
            kind = "ordered"
        else:
            sup = prim.repeat(_RANDOM_REPEATS[int(rng.integers(len(_RANDOM_REPEATS)))])
            cell, frac, kind = sup.cell.array, sup.get_scaled_positions(), "random"
        n = len(frac)
        labels = rng.permutation(np.arange(n) % k)  # near-equiatomic, every species present
        jobs.append(_job(f"{''.join(els)}-{lat}-{kind}-{i:03d}", lat, kind, [els[j] for j in labels], cell, frac))
    return jobs


def _jobs(sett: RelaxedAlloys) -> list[tuple]:
    rng = np.random.default_rng(sett.seed)
    return [j for lat in sett.lattices for j in _enumerated_jobs(sett, lat, rng) + _many_jobs(sett, lat, rng)]


def _vegard_structure(job: tuple) -> Atoms:
    """The job's ideal sites at the Vegard volume per atom (module docstring)."""
    _, lat, _, symbols, cell, frac = job
    prim = _parent(lat, 1.0)
    v_unit = prim.get_volume() / len(prim)
    v = float(np.mean([v_unit * emt_lattice_constant(s, lat)[0] ** 3 for s in symbols]))
    atoms = Atoms(list(symbols), scaled_positions=frac, cell=cell, pbc=True)
    atoms.set_cell(cell * (v / (atoms.get_volume() / len(atoms))) ** (1.0 / 3.0), scale_atoms=True)
    return atoms


def _relax_job(args: tuple[tuple, RelaxedAlloys]) -> Atoms:
    """Relax one job with EMT (positions and cell) and check its lattice; the ideal frame with everything
    recorded in ``info``/``arrays`` (module docstring)."""
    from ase.calculators.emt import EMT
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    job, sett = args
    sid, lat, kind, symbols, _, _ = job
    ideal = _vegard_structure(job)
    relaxed = ideal.copy()
    relaxed.calc = EMT()
    e_ideal = float(relaxed.get_potential_energy()) / len(relaxed)
    opt = BFGS(FrechetCellFilter(relaxed), logfile=None)
    converged = bool(opt.run(fmax=sett.fmax, steps=sett.max_steps))
    e_relaxed = float(relaxed.get_potential_energy()) / len(relaxed)
    relaxed.calc = None
    e_ref = float(np.mean([emt_lattice_constant(s, lat)[1] for s in symbols]))
    _, reason = check_on_lattice(relaxed, lat, sett.check)
    ideal.arrays["relaxed_positions"] = relaxed.positions.copy()
    ideal.info.update(id=sid, system="".join(sorted(set(symbols))), lattice=lat, kind=kind,
                      n_species=len(set(symbols)), fractions=_composition(symbols),
                      relaxed_cell=relaxed.cell.array.reshape(-1).copy(),
                      ideal_energy=e_ideal, relaxed_energy=e_relaxed, ideal_mixing_energy=e_ideal - e_ref,
                      mixing_energy=e_relaxed - e_ref, relax_steps=int(opt.nsteps), relax_converged=converged,
                      on_lattice=not reason and converged,
                      lattice_check=reason or ("ok" if converged else f"not converged in {sett.max_steps} steps"))
    return ideal


def _composition(symbols: tuple[str, ...]) -> str:
    """Composition as 'Ag0.500Au0.500' (sorted species, atomic fractions)."""
    u, c = np.unique(symbols, return_counts=True)
    return "".join(f"{s}{n / len(symbols):.3f}" for s, n in zip(u, c, strict=True))


def _one_thread() -> None:
    """Worker start: one BLAS thread (the cell filter's small matrix logarithms ran 10x slower with every
    worker's BLAS pool competing for the cores)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _cache_path(sett: RelaxedAlloys, cache_dir: str | os.PathLike | None):  # noqa: ANN202 (a Path)
    params = {**asdict(sett), "version": _CACHE_VERSION}
    key = hashlib.sha256(json.dumps(params, sort_keys=True, default=list).encode()).hexdigest()[:16]
    return alloy_cache_dir(cache_dir) / f"relaxed-alloys-{key}.extxyz"


def generate_relaxed_alloys(settings: RelaxedAlloys | None = None, *, cache_dir: str | os.PathLike | None = None,
                            progress: bool = True, keep_excluded: bool = False,
                            name: str = "alloys-relaxed") -> Dataset:
    """The relaxed alloy set (module docstring), read from / written to the cache; structures that left their
    parent lattice are dropped unless ``keep_excluded``.  Inputs are the ideal Vegard-volume sites; target
    ``mixing_energy`` (eV/atom) is the relaxed one."""
    from tnmat.reports import atomic_path

    from .readers import read_structures

    sett = settings or RelaxedAlloys()
    path = _cache_path(sett, cache_dir)
    if not path.is_file():
        for lat in sett.lattices:  # computed once here, inherited by the forked workers
            enumerate_derivatives(lat, 8)
            _ternary_derivatives(lat, sett.ternary_max_atoms)
            for el in sett.elements:
                emt_lattice_constant(el, lat)
        frames = list(map_on_cores(_relax_job, [(j, sett) for j in _jobs(sett)], progress=progress,
                                   desc="relaxed alloys", unit="struct", initializer=_one_thread))
        split = np.full(len(frames), "train", dtype="<U5")
        split[np.random.default_rng(sett.seed).permutation(len(frames))[: len(frames) // 5]] = "test"
        for a, s in zip(frames, split, strict=True):
            a.info["split"] = str(s)
        ds = Dataset(structures=frames, targets={"mixing_energy": [a.info.pop("mixing_energy") for a in frames]},
                     metadata={k: [a.info.pop(k) for a in frames] for k in _META}, name=name)
        ds.units["mixing_energy"] = "eV/atom"
        try:
            with atomic_path(path) as tmp:
                ds.to_extxyz(tmp)
        except OSError:
            pass  # a read-only cache is not an error: the file is re-read below only when written
    ds = read_structures(path, target_keys=("mixing_energy",)) if path.is_file() else ds
    if "composition" in ds.metadata:  # caches written before the field was renamed: a string, not a number
        ds.metadata["fractions"] = ds.metadata.pop("composition")
    n_all = len(ds)
    keep = np.asarray(ds.metadata["on_lattice"]).astype(str) == "True"
    if not keep_excluded:
        ds = ds.subset(keep)
    ds.name = name
    ds.source = (f"generated: icet enumeration, Vegard-volume ideal sites, EMT-relaxed mixing energies; "
                 f"{int((~keep).sum())} of {n_all} structures left their parent lattice and are "
                 f"{'flagged' if keep_excluded else 'excluded'} (cached at {path})")
    return ds


_META = ("id", "split", "system", "lattice", "kind", "n_species", "fractions", "ideal_energy", "relaxed_energy",
         "ideal_mixing_energy", "relax_steps", "relax_converged", "on_lattice", "lattice_check")


def relaxed_structures(ds: Dataset) -> list[Atoms]:
    """The relaxed geometries of a relaxed-alloy dataset (from ``arrays["relaxed_positions"]`` and
    ``info["relaxed_cell"]``), in dataset order."""
    out = []
    for a in ds.structures:
        b = Atoms(a.get_chemical_symbols(), positions=a.arrays["relaxed_positions"],
                  cell=np.reshape(a.info["relaxed_cell"], (3, 3)), pbc=True)
        b.info["id"] = a.info.get("id")
        out.append(b)
    return out


def relaxed_default(*, small: bool = False, cache_dir: str | os.PathLike | None = None,
                    progress: bool = True) -> Dataset:
    """``alloys-relaxed`` (the default settings) or ``alloys-relaxed-small`` (:data:`SMALL`, seconds)."""
    if small:
        return generate_relaxed_alloys(SMALL, cache_dir=cache_dir, progress=progress, name="alloys-relaxed-small")
    return generate_relaxed_alloys(cache_dir=cache_dir, progress=progress)
