"""A generated many-species binary-alloy dataset in the style of BA10 (Nyshadham et al., npj Comput. Mater. 2019).

For each binary pair A-B (A < B alphabetically) and each parent lattice (fcc, bcc, hcp), every derivative
superstructure with at most ``max_atoms`` atoms per cell is enumerated with the Hart-Forcade algorithm
(``icet.tools.enumerate_structures``; Hart & Forcade, Phys. Rev. B 77, 224115, 2008).  Up to 8 atoms this
gives 631 fcc + 631 bcc + 333 hcp = 1595 structures per binary, BA10's number (pure A and B included once per
lattice).

Geometry (unrelaxed): lattice constant by Vegard's rule a(x) = (1 - x) a_A + x a_B, with x the fraction of B
and a_K the EMT-equilibrium lattice constant of pure K on the same lattice (minimum of ASE's EMT energy per
atom; hcp with ideal c/a = sqrt(8/3), so a single parameter per lattice).  Positions are the ideal lattice sites.

Target ``mixing_energy`` (eV/atom), ASE's EMT calculator on the unrelaxed structure:
    E_mix = E/N - [(1 - x) E_A + x E_B],
E_A, E_B the EMT energies per atom of the pure elements on the same lattice at their own equilibrium
lattice constant (so pure structures have E_mix = 0 exactly).

Metadata: ``id`` (``"{system}-{lattice}-{index}"``), ``split`` (seeded 80/20 train/test permutation of the
whole set), ``system`` (e.g. ``"AgAu"``), ``lattice``, ``composition`` (x), ``n_atoms``, ``volume_per_atom``.
Default systems: the first ``n_systems`` pairs of the sorted elements (Ag, Al, Au, Cu, Ni, Pd, Pt).
The dataset is cached as extxyz in ``cache_dir`` (default ``$TNMAT_CACHE`` or ``~/.cache/tnmat``), keyed
by a hash of every parameter; generation is deterministic.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from scipy.optimize import minimize_scalar

from tnmat.reports import atomic_path

from .dataset import Dataset
from .readers import COUNT_INFO_KEY

__all__ = ["generate_binary_alloys", "embedded_default", "emt_lattice_constant", "enumerate_derivatives",
           "EMT_ELEMENTS", "alloy_cache_dir"]

EMT_ELEMENTS = ("Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au")  # metals of ASE's EMT parametrisation
_LATTICES = ("fcc", "bcc", "hcp")
_CACHE_VERSION = 1  # bump when the construction changes, so stale caches are not reused
_IDEAL_C_OVER_A = float(np.sqrt(8.0 / 3.0))


def _parent(lattice: str, a: float) -> Atoms:
    """The primitive parent lattice with lattice constant ``a`` (hcp: ideal c/a)."""
    if lattice == "hcp":
        return bulk("X", "hcp", a=a, c=a * _IDEAL_C_OVER_A)
    return bulk("X", lattice, a=a)


def _emt_energy_per_atom(atoms: Atoms) -> float:
    atoms = atoms.copy()
    atoms.calc = EMT()
    return float(atoms.get_potential_energy()) / len(atoms)


@cache
def emt_lattice_constant(element: str, lattice: str) -> tuple[float, float]:
    """(a, E/atom): the lattice constant minimising the EMT energy of pure ``element`` on ``lattice`` and that
    energy (hcp at ideal c/a).  Golden-section/Brent search on a in [0.7, 1.4] x the ASE reference value."""
    if element not in EMT_ELEMENTS:
        raise ValueError(f"EMT has no parameters for {element!r}; choose from {', '.join(EMT_ELEMENTS)}")
    a_ref = bulk(element, "fcc").cell.cellpar()[0] * np.sqrt(2.0)  # conventional fcc a (primitive |a1| * sqrt 2)
    # nearest-neighbour distance d = a_fcc / sqrt 2 is kept roughly fixed across lattices for the bracket
    scale = {"fcc": 1.0, "bcc": 2.0 / np.sqrt(3.0) / np.sqrt(2.0), "hcp": 1.0 / np.sqrt(2.0)}[lattice]
    a0 = a_ref * scale

    def energy(a: float) -> float:
        prim = _parent(lattice, a)
        prim.set_chemical_symbols([element] * len(prim))
        return _emt_energy_per_atom(prim)

    res = minimize_scalar(energy, bounds=(0.8 * a0, 1.25 * a0), method="bounded", options={"xatol": 1e-7})
    return float(res.x), float(res.fun)


@cache
def enumerate_derivatives(lattice: str, max_atoms: int) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """Hart-Forcade derivative superstructures of ``lattice`` (a = 1) with <= ``max_atoms`` atoms, two species.

    Each entry is (cell, fractional positions, occupation: 1 where species B).  Species-independent, cached.
    """
    from icet.tools import enumerate_structures

    prim = _parent(lattice, 1.0)
    prim.set_chemical_symbols(["Au"] * len(prim))
    sizes = range(1, max_atoms // len(prim) + 1)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spglib's error-handling notice, via icet
        for s in enumerate_structures(prim, sizes, ["Ag", "Au"]):
            occ = (np.array(s.numbers) == 79).astype(np.int8)
            out.append((s.cell.array.copy(), s.get_scaled_positions(), occ))
    return tuple(out)


def alloy_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$TNMAT_CACHE``, else ``~/.cache/tnmat``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("TNMAT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tnmat"


def _systems(elements: Sequence[str], n_systems: int) -> list[tuple[str, str]]:
    for e in elements:
        if e not in EMT_ELEMENTS:
            raise ValueError(f"EMT has no parameters for {e!r}; choose from {', '.join(EMT_ELEMENTS)}")
    if len(set(elements)) != len(elements):
        raise ValueError(f"duplicate elements in {tuple(elements)}")
    pairs = list(itertools.combinations(sorted(elements), 2))
    if not 1 <= n_systems <= len(pairs):
        raise ValueError(f"n_systems must be in 1..{len(pairs)} for {len(elements)} elements, got {n_systems}")
    return pairs[:n_systems]


def _alloy_job(job: tuple[tuple[str, str], str, int]) -> tuple[list, list, list, list, list, list]:
    """Structures and EMT mixing energies of one (binary, lattice) pair (module docstring)."""
    (el_a, el_b), lat, max_atoms = job
    a_a, e_a = emt_lattice_constant(el_a, lat)
    a_b, e_b = emt_lattice_constant(el_b, lat)
    calc = EMT()
    out: tuple[list, list, list, list, list, list] = ([], [], [], [], [], [])
    for k, (cell, frac, occ) in enumerate(enumerate_derivatives(lat, max_atoms)):
        x = float(occ.mean())
        a = (1.0 - x) * a_a + x * a_b  # Vegard's rule
        atoms = Atoms([el_b if o else el_a for o in occ], scaled_positions=frac, cell=cell * a, pbc=True)
        atoms.calc = calc
        e = float(atoms.get_potential_energy()) / len(atoms)
        atoms.calc = None
        for col, v in zip(out, (atoms, e - ((1.0 - x) * e_a + x * e_b), f"{el_a}{el_b}-{lat}-{k:04d}",
                                f"{el_a}{el_b}", lat, x), strict=True):
            col.append(v)
    return out


def map_on_cores(fn: Callable[[Any], Any], jobs: Sequence[Any], *, progress: bool, desc: str, unit: str = "job",
                 initializer: Callable[[], None] | None = None) -> Iterator[Any]:
    """``fn`` over ``jobs`` in job order (the data never depend on the number of workers), in forked worker
    processes on every available core (EMT in ASE is pure Python), with a progress bar over jobs."""
    n_workers = min(len(jobs), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit=unit)
    try:
        if n_workers <= 1 or multiprocessing.get_start_method() != "fork":
            results: Iterator[Any] = map(fn, jobs)
            pool = None
        else:
            pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("fork"),
                                       initializer=initializer)
            results = pool.map(fn, jobs)
        for result in results:
            yield result
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def generate_binary_alloys(*, elements: Sequence[str] = EMT_ELEMENTS, n_systems: int = 10, max_atoms: int = 8,
                           lattices: Sequence[str] = _LATTICES, seed: int = 0,
                           cache_dir: str | os.PathLike | None = None, progress: bool = True) -> Dataset:
    """BA10-style binary alloys with EMT mixing energies (module docstring); read from / written to the cache."""
    elements, lattices = tuple(elements), tuple(lattices)
    for lat in lattices:
        if lat not in _LATTICES:
            raise ValueError(f"lattice must be one of {_LATTICES}, got {lat!r}")
    if not 1 <= max_atoms <= 16:
        raise ValueError(f"max_atoms must be in 1..16, got {max_atoms}")
    pairs = _systems(elements, n_systems)
    params = {"pairs": pairs, "max_atoms": max_atoms, "lattices": lattices, "seed": seed, "version": _CACHE_VERSION}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    name = f"alloys-{len(pairs)}x{max_atoms}"
    path = alloy_cache_dir(cache_dir) / f"binary-alloys-{key}.extxyz"
    ds = read_cached_dataset(path, target_keys=("mixing_energy",))
    if ds is not None:
        ds.name, ds.source = name, f"generated (cached at {path})"
        return ds
    jobs = [(p, lat, max_atoms) for p in pairs for lat in lattices]
    for lat in lattices:  # computed once here, inherited by forked workers
        enumerate_derivatives(lat, max_atoms)
    for el in {e for p in pairs for e in p}:
        for lat in lattices:
            emt_lattice_constant(el, lat)
    structures: list[Atoms] = []
    e_mix: list[float] = []
    cols: dict[str, list] = {k: [] for k in ("id", "system", "lattice", "composition")}
    for block in map_on_cores(_alloy_job, jobs, progress=progress, desc="alloys (system, lattice)"):
        structures += block[0]
        e_mix += block[1]
        for k, v in zip(("id", "system", "lattice", "composition"), block[2:], strict=True):
            cols[k] += v
    return generated_dataset(structures, cols, {"mixing_energy": np.array(e_mix)}, name=name, path=path,
                             source="generated: icet enumeration, Vegard lattice constants, ASE EMT", split_seed=seed)


def generated_dataset(structures: list[Atoms], cols: dict[str, list], targets: dict[str, np.ndarray], *, name: str,
                      source: str, path: Path, split_seed: int) -> Dataset:
    """A generated set as a :class:`Dataset`: the metadata columns ``cols`` plus a seeded 80/20 ``split``,
    ``n_atoms`` and ``volume_per_atom``; cached as extxyz at ``path``, written atomically so concurrent
    generators never see a half-written cache (a read-only cache is not an error: the data are in memory)."""
    n = len(structures)
    split = np.full(n, "train", dtype="<U5")
    split[np.random.default_rng(split_seed).permutation(n)[: n // 5]] = "test"
    meta = {k: np.array(v) for k, v in cols.items()}
    meta["split"] = split
    meta["n_atoms"] = np.array([len(s) for s in structures])
    meta["volume_per_atom"] = np.array([s.get_volume() / len(s) for s in structures])
    ds = Dataset(structures=structures, targets=targets, metadata=meta, name=name, source=source)
    # every frame records the set's size, so a cache cut at a frame boundary is recognised when read
    stored = Dataset(structures=structures, targets=targets, metadata={**meta, COUNT_INFO_KEY: np.full(n, n)},
                     name=name, source=source)
    try:
        with atomic_path(path) as tmp:
            stored.to_extxyz(tmp)
    except OSError as exc:
        ds.source += f" (not cached: {path} could not be written, {exc.strerror or exc})"
        return ds
    ds.source += f" (cached at {path})"
    return ds


def read_cached_dataset(path: Path, **read_kwargs) -> Dataset | None:  # noqa: ANN003 (read_structures keywords)
    """The generated set cached at ``path``, or None when there is none or it cannot be verified complete:
    fewer structures than the count recorded when it was written, or unreadable (both warned about), or
    written by an older tnmat without a count (silently); such a cache is removed so that the set is
    generated again."""
    from .readers import read_structures

    if not path.is_file():
        return None
    try:
        ds = read_structures(path, **read_kwargs)
        counts = [a.info.pop(COUNT_INFO_KEY, None) for a in ds.structures]
        why = None if None in counts else f"{len(ds)} structures, {max(counts)} expected"
        if None not in counts and all(int(c) == len(ds) for c in counts):
            return ds
    except Exception as exc:  # a cut or damaged file: any read error means the cache cannot be used
        why = f"unreadable: {type(exc).__name__}"
    if why is not None:
        warnings.warn(f"{path}: incomplete cache of a generated set ({why}); generating it again", RuntimeWarning,
                      stacklevel=3)
    with contextlib.suppress(OSError):
        path.unlink()
    return None


def embedded_default(*, small: bool = False, cache_dir: str | os.PathLike | None = None,
                     progress: bool = True) -> Dataset:
    """The README's default dataset: the BA10-style set of 10 binaries (fcc/bcc/hcp, <= 8 atoms, 15950
    structures); ``small=True``: 2 binaries with <= 4 atoms (seconds)."""
    if small:
        ds = generate_binary_alloys(n_systems=2, max_atoms=4, cache_dir=cache_dir, progress=progress)
        ds.name = "alloys-small"
    else:
        ds = generate_binary_alloys(cache_dir=cache_dir, progress=progress)
        ds.name = "alloys"
    return ds
