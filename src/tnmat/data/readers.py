"""Read any ASE-readable structure file (extxyz, CIF, POSCAR, ...) or an NMD18 folder into a :class:`Dataset`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import iread

from .dataset import Dataset
from .units import EXTENSIVE, energies_look_per_atom, per_atom_name

__all__ = ["read_structures", "TARGETS_INFO_KEY", "ENERGIES", "NAME_KEYS", "structure_forces", "structure_stress"]

#: ``info`` key in which :meth:`Dataset.to_extxyz` lists the target names, so a written file reads back with
#: the same targets (everything else scalar and present in every frame becomes metadata).
TARGETS_INFO_KEY = "tnmat_targets"
#: ``info`` key in which :meth:`Dataset.to_extxyz` states each target's unit (``"formation_energy=eV/cation"``)
UNITS_INFO_KEY = "tnmat_units"
#: ``info`` key in which a cached generated set records its size (:mod:`tnmat.data.alloys`; not metadata)
COUNT_INFO_KEY = "tnmat_n_structures"
#: How the ``energy``/``free_energy`` values of a file are read: ``auto`` = totals (the ASE convention), with
#: an error when they behave like per-atom values; ``total`` = totals, unchecked; ``per-atom`` = per atom.
ENERGIES = ("auto", "total", "per-atom")
#: ``info`` keys that name a structure (its id in tables and prediction CSVs), in order of preference.
NAME_KEYS = ("id", "name", "label", "structure_id")


def _lookup(atoms: Atoms, key: str) -> float | None:
    """``key`` from the attached calculator's results (extxyz/ASE store energies there), else ``atoms.info``."""
    calc = atoms.calc
    if calc is not None and key in getattr(calc, "results", {}):
        val = calc.results[key]
    elif key in atoms.info:
        val = atoms.info[key]
    else:
        return None
    arr = np.asarray(val, dtype=np.float64)
    if arr.shape != ():
        raise ValueError(f"{key!r} is not a scalar (shape {arr.shape})")
    return float(arr)


def _vector_data(atoms: Atoms, where: str) -> None:
    """Move forces (N, 3) and stress (Voigt 6 or 3x3) from the calculator results or ``arrays``/``info`` to
    ``atoms.arrays["forces"]`` and ``atoms.info["stress"]`` (Voigt, ASE order), checking shape and values."""
    results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    f = results.get("forces", atoms.arrays.get("forces"))
    if f is not None:
        f = np.asarray(f, dtype=np.float64)
        if f.shape != (len(atoms), 3):
            raise ValueError(f"{where}: forces have shape {f.shape}, expected ({len(atoms)}, 3)")
        if not np.isfinite(f).all():
            raise ValueError(f"{where}: forces contain NaN or inf")
        atoms.arrays["forces"] = f
    s = results.get("stress", atoms.info.get("stress"))
    if s is not None:
        s = np.asarray(s, dtype=np.float64)
        if s.shape == (3, 3):
            if np.abs(s - s.T).max() > 1e-8 * (1 + np.abs(s).max()):
                raise ValueError(f"{where}: stress is a 3x3 matrix but not symmetric")
            s = s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        if s.shape != (6,):
            raise ValueError(f"{where}: stress has shape {s.shape}, expected (6,) Voigt or (3, 3)")
        if not np.isfinite(s).all():
            raise ValueError(f"{where}: stress contains NaN or inf")
        atoms.info["stress"] = s


def structure_forces(ds: Dataset) -> list[np.ndarray]:
    """Forces (N_k, 3) in eV/A of every structure of ``ds`` (``atoms.arrays["forces"]``, as set by
    :func:`read_structures` and the rattled-alloy generator); ``ValueError`` naming the first structure
    without them."""
    out = []
    for a, sid in zip(ds.structures, ds.metadata["id"], strict=True):
        f = a.arrays.get("forces")
        if f is None:
            raise ValueError(f"{ds.name}: structure {sid}: no forces (read the file with forces=True)")
        out.append(np.asarray(f, dtype=np.float64))
    return out


def structure_stress(ds: Dataset) -> np.ndarray:
    """Stress tensors (n, 3, 3) in eV/A^3 (ASE sign) of every structure of ``ds`` (``atoms.info["stress"]``,
    Voigt); ``ValueError`` naming the first structure without one."""
    out = np.zeros((len(ds), 3, 3))
    for k, (a, sid) in enumerate(zip(ds.structures, ds.metadata["id"], strict=True)):
        s = a.info.get("stress")
        if s is None:
            raise ValueError(f"{ds.name}: structure {sid}: no stress (read the file with stress=True)")
        s = np.asarray(s, dtype=np.float64)
        out[k] = s[[[0, 5, 4], [5, 1, 3], [4, 3, 2]]]
    return out


def _structure_name(atoms: Atoms, default: str) -> str | int:
    """The structure's own name (the first of :data:`NAME_KEYS` in ``info``), else ``default``."""
    for key in NAME_KEYS:
        val = atoms.info.get(key)
        if isinstance(val, str | int | np.integer) and not isinstance(val, bool) and str(val).strip():
            return val.item() if isinstance(val, np.generic) else val
    return default


def _energy_targets(targets: dict[str, np.ndarray], n_atoms: np.ndarray, energies: str,
                    paths: Sequence[Path]) -> None:
    """Complete each total/per-atom energy pair in ``targets`` (in place): totals are read as ``energies``
    says, the intensive partner is derived (or checked, when the file has both)."""
    if energies not in ENERGIES:
        raise ValueError(f"energies={energies!r}: expected one of {', '.join(ENERGIES)}")
    where = ", ".join(str(p) for p in paths)
    for total in EXTENSIVE:
        pa = per_atom_name(total)
        if total in targets and energies == "per-atom":
            if pa in targets:
                raise ValueError(f"{where}: energies='per-atom' but the file has both {total!r} and {pa!r}")
            targets[pa] = targets.pop(total)
        elif total in targets and energies == "auto" and energies_look_per_atom(targets[total], n_atoms):
            raise ValueError(
                f"{where}: the {total!r} values look like energies per atom, not the total energies ASE stores "
                f"(over {n_atoms.min()} to {n_atoms.max()} atoms they stay near {np.median(targets[total]):.4g} "
                f"eV instead of growing with the number of atoms); if they are per atom, read with "
                f"energies='per-atom' (tnmat: --energies per-atom) or store them as {pa!r}; if they are "
                f"totals, use energies='total' (--energies total)")
        if total in targets and pa in targets:
            bad = np.flatnonzero(~np.isclose(targets[pa] * n_atoms, targets[total], rtol=1e-6, atol=1e-6))
            if len(bad):
                raise ValueError(f"{where}: frame {bad[0]}: {pa!r} x {n_atoms[bad[0]]} atoms = "
                                 f"{targets[pa][bad[0]] * n_atoms[bad[0]]:.6f} eV differs from the total "
                                 f"{total!r} {targets[total][bad[0]]:.6f} eV")
        elif total in targets:
            targets[pa] = targets[total] / n_atoms
        elif pa in targets:
            targets[total] = targets[pa] * n_atoms


def _stated_units(frames: list[tuple[Path, int, Atoms]], targets: dict[str, np.ndarray]) -> dict[str, str]:
    """Target units stated in the frames' ``info["tnmat_units"]`` (files written by tnmat), where every frame
    states the same; the derived energy pair always has its fixed units."""
    stated = {a.info.get(UNITS_INFO_KEY) for _, _, a in frames}
    out: dict[str, str] = {}
    if len(stated) == 1 and isinstance(next(iter(stated)), str):
        for item in next(iter(stated)).split(","):
            key, eq, unit = item.partition("=")
            if eq and key in targets:
                out[key] = unit
    for total in EXTENSIVE:  # per-atom and total values are what the reader made of them, whatever was stated
        out.pop(total, None)
        out.pop(per_atom_name(total), None)
    return out


def _frames(path: Path, index: str | int | slice) -> list[Atoms]:
    out: list[Atoms] = []
    if isinstance(index, int):
        index = slice(index, index + 1 if index != -1 else None)
    try:
        for atoms in iread(str(path), index=index):
            out.append(atoms)
    except Exception as exc:  # ASE raises many types for malformed input; re-raise one, with the file and frame
        raise ValueError(f"{path}: cannot read frame {len(out)} ({type(exc).__name__}: {exc})") from exc
    if not out:
        raise ValueError(f"{path}: no structures read (index {index!r})")
    return out


def _checked_frames(paths: list[Path], index: str | int | slice, *, forces: bool,
                    stress: bool) -> list[tuple[Path, int, Atoms]]:
    """(file, frame number, Atoms) of every frame, with forces/stress checked (shape, finiteness, presence
    where required); errors name the file and frame."""
    frames: list[tuple[Path, int, Atoms]] = []
    for p in paths:
        if p.is_dir():
            raise ValueError(f"{p}: a folder; pass structure files (or a single NMD18 folder)")
        frames.extend((p, k, a) for k, a in enumerate(_frames(p, index)))
    for p, k, a in frames:
        where = f"{p}: frame {k}"
        _vector_data(a, where)
        if forces and "forces" not in a.arrays:
            raise ValueError(f"{where}: no forces (forces=True requires a forces array in every frame)")
        if stress and "stress" not in a.info:
            raise ValueError(f"{where}: no stress (stress=True requires a stress in every frame)")
    return frames


def _read_targets(frames: list[tuple[Path, int, Atoms]], target_keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The targets of :func:`read_structures`: each key found in every frame (absent from all: skipped; from
    some: ``ValueError`` naming the file and frame), plus those a tnmat-written file lists."""
    keys = list(dict.fromkeys(target_keys))
    for entry in (a.info.get(TARGETS_INFO_KEY) for _, _, a in frames):
        if isinstance(entry, str) and entry:
            keys.extend(k for k in entry.split(",") if k not in keys)
    targets: dict[str, np.ndarray] = {}
    for key in keys:
        vals = []
        for p, k, a in frames:
            try:
                vals.append(_lookup(a, key))
            except ValueError as exc:
                raise ValueError(f"{p}: frame {k}: target {exc}") from None
        if all(v is None for v in vals):
            continue
        miss = next(((p, k) for (p, k, _), v in zip(frames, vals, strict=True) if v is None), None)
        if miss is not None:
            raise ValueError(f"{miss[0]}: frame {miss[1]}: target {key!r} missing (present in other frames)")
        targets[key] = np.array(vals, dtype=np.float64)
    return targets


def _metadata(frames: list[tuple[Path, int, Atoms]], targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """id, split, n_atoms, volume_per_atom and every scalar ``info`` entry common to all frames."""
    structures = [a for _, _, a in frames]
    meta: dict[str, np.ndarray] = {
        "id": np.array([_structure_name(a, f"{p.name}:{k}") for p, k, a in frames]),
        "split": np.array([str(a.info.get("split", "train")) for a in structures]),
        "n_atoms": np.array([len(a) for a in structures]),
        "volume_per_atom": np.array([a.get_volume() / len(a) if a.pbc.all() and len(a) else np.nan
                                     for a in structures]),
    }
    skip = set(meta) | set(targets) | {TARGETS_INFO_KEY, UNITS_INFO_KEY, COUNT_INFO_KEY, "stress"}
    common = set.intersection(*(set(a.info) for a in structures)) - skip
    for key in sorted(common):
        vals = [a.info[key] for a in structures]
        if all(np.ndim(v) == 0 and isinstance(v, (int, float, str, np.generic)) for v in vals):
            meta[key] = np.array(vals)
    return meta


def read_structures(paths: str | os.PathLike | Sequence[str | os.PathLike], *,
                    target_keys: Sequence[str] = ("energy", "free_energy", "energy_per_atom", "free_energy_per_atom"),
                    energies: str = "auto", index: str | int | slice = ":", forces: bool = False,
                    stress: bool = False) -> Dataset:
    """Read structure file(s) into one :class:`Dataset`.

    Targets: each of ``target_keys`` found in a frame's calculator results or ``info`` (a key absent from
    every frame is skipped; present in some but not all raises), plus the keys a file written by
    :meth:`Dataset.to_extxyz` lists in ``info["tnmat_targets"]``.

    Energies (:mod:`tnmat.data.units`): ``energy`` and ``free_energy`` are a structure's *total* energy, as
    ASE defines it; the intensive targets ``energy_per_atom`` / ``free_energy_per_atom`` are derived from them
    (or read, when the file stores them under those names, and the totals derived).  ``energies`` says how the
    file's ``energy`` values are meant (:data:`ENERGIES`): ``"auto"`` (default) reads them as totals and raises
    ``ValueError`` naming the file when they behave like per-atom values
    (:func:`~tnmat.data.units.energies_look_per_atom`); ``"total"`` trusts them; ``"per-atom"`` reads them as
    energies per atom.

    Metadata: ``id`` (the first of ``info["id"]``, ``info["name"]``, ``info["label"]``,
    ``info["structure_id"]``, else ``"{file name}:{frame}"``), ``split`` (``info["split"]`` or ``"train"``;
    label some frames ``"test"`` and ``tnmat fit`` tests on exactly those), ``n_atoms``, ``volume_per_atom``
    (NaN when not periodic), and every other scalar ``info`` entry present in all frames.

    Forces and stress (from the calculator results, e.g. extxyz ``forces`` columns and ``stress`` info, or
    from ``arrays["forces"]`` / ``info["stress"]``) are kept on each structure as ``atoms.arrays["forces"]``
    (N, 3) and ``atoms.info["stress"]`` (Voigt (xx, yy, zz, yz, xz, xy), eV/A^3; a symmetric 3x3 is converted);
    read them with :func:`structure_forces` / :func:`structure_stress`.  ``forces=True`` / ``stress=True``
    require them in every frame.  Ill-shaped or non-finite forces/stress raise ``ValueError`` naming the file
    and frame.

    A folder in the NMD18 layout (``train.csv``) is loaded by :func:`tnmat.data.load_nmd18`.
    Raises ``FileNotFoundError`` naming a missing path and ``ValueError`` naming the file (and frame) of
    unreadable or malformed input.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("read_structures: no paths given")
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or folder")
    if len(paths) == 1 and paths[0].is_dir():
        if (paths[0] / "train.csv").is_file() or (paths[0] / "test.csv").is_file():
            from .nmd18 import load_nmd18

            return load_nmd18(paths[0])
        raise ValueError(f"{paths[0]}: a folder, but not in the NMD18 layout (no train.csv/test.csv)")
    frames = _checked_frames(paths, index, forces=forces, stress=stress)
    targets = _read_targets(frames, target_keys)
    _energy_targets(targets, np.array([len(a) for _, _, a in frames]), energies, paths)
    structures = [a for _, _, a in frames]
    n = len(structures)
    meta = _metadata(frames, targets)
    for a in structures:
        a.calc = None  # targets now live in Dataset.targets; a stale calculator would shadow them
    names = sorted({p.name for p in paths})
    name = Path(names[0]).stem if len(names) == 1 else f"{Path(names[0]).stem}+{len(names) - 1}"
    return Dataset(structures=structures, targets=targets, metadata=meta, name=name,
                   source=", ".join(str(p) for p in paths) + f" ({n} frames)", units=_stated_units(frames, targets))
