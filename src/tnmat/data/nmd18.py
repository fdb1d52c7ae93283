"""NMD18: the NOMAD 2018 Kaggle set of (Al_x Ga_y In_z)2 O3 alloys (Sutton et al., npj Comput. Mater. 5, 111, 2019).

Layout of the folder (unchanged from the dataset authors' release)::

    ROOT/train.csv, ROOT/test.csv            one row per structure, both WITH labels
    ROOT/{train,test}/{id}/geometry.xyz      FHI-aims text: 3 x ``lattice_vector x y z``, ``atom x y z Sym``

Targets (eV, float64):

- ``formation_energy``: the CSV column ``formation_energy_ev_natom`` unchanged.  Despite the column name,
  the dataset's authors (Sutton et al., Tables 1-3) and the seed paper (Sommer & Dunham, eq. 21) quote it
  per CATION, so errors on it are meV/cation.
- ``bandgap``: ``bandgap_energy_ev``.

Metadata: ``id`` (unique string ``"{split}/{kaggle id}"``; the Kaggle ids restart at 1 in each split),
``kaggle_id``, ``split``, ``spacegroup``, ``x_al``/``x_ga``/``x_in`` (cation fractions counted exactly from the
geometry and checked against the CSV's 4-digit values), ``n_atoms``, ``volume_per_atom`` (A^3, of the
geometry actually returned), ``geometry_method`` (``"relaxed"``, or the Vegard path, see
:mod:`tnmat.data.vegard`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from .dataset import Dataset

__all__ = ["nmd18_root", "load_nmd18", "read_aims_geometry", "NMD18_ENV"]

NMD18_ENV = "TNMAT_NMD18"
_LAYOUT = ("ROOT/train.csv, ROOT/test.csv and ROOT/{train,test}/{id}/geometry.xyz "
           "(the NOMAD 2018 Kaggle layout, github.com/csutton7/nomad_2018_kaggle_dataset)")
_CATIONS = ("Al", "Ga", "In")


def nmd18_root(root: str | os.PathLike | None = None, *, required: bool = True) -> Path | None:
    """The NMD18 folder: ``root`` if given, else ``$TNMAT_NMD18``; checked to contain ``train.csv``.

    With ``required=False`` a missing location returns ``None`` instead of raising ``FileNotFoundError``.
    """
    if root is None:
        env = os.environ.get(NMD18_ENV)
        if not env:
            if not required:
                return None
            raise FileNotFoundError(
                f"NMD18 location not given: pass a folder (tnmat: DATA argument; Python: load_nmd18(root)) or set "
                f"${NMD18_ENV}. Expected layout: {_LAYOUT}")
        root = env
    path = Path(root).expanduser()
    if not (path / "train.csv").is_file() and not (path / "test.csv").is_file():
        if not required:
            return None
        raise FileNotFoundError(f"{path}: not an NMD18 folder (no train.csv or test.csv). Expected layout: {_LAYOUT}")
    return path


def read_aims_geometry(path: str | os.PathLike) -> Atoms:
    """Parse an FHI-aims ``geometry.xyz``/``geometry.in``: ``lattice_vector x y z`` (0 or 3 lines),
    ``atom x y z Sym`` (Cartesian, A) and ``atom_frac x y z Sym`` (fractional).  ``#`` comments and the
    per-atom keywords ``initial_moment``, ``initial_charge``, ``constrain_relaxation`` are skipped; anything else
    raises ``ValueError`` naming the file and line.  Periodic iff three lattice vectors are given.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: geometry file not found") from None
    cell: list[list[float]] = []
    syms: list[str] = []
    coords: list[list[float]] = []
    frac: list[bool] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tok = line.split()
        key = tok[0]
        try:
            if key == "lattice_vector":
                if len(tok) != 4:
                    raise ValueError("expected 'lattice_vector x y z'")
                cell.append([float(t) for t in tok[1:4]])
            elif key in ("atom", "atom_frac"):
                if len(tok) != 5:
                    raise ValueError(f"expected '{key} x y z Symbol'")
                xyz = [float(t) for t in tok[1:4]]
                if tok[4] not in atomic_numbers or tok[4] == "X":
                    raise ValueError(f"unknown chemical symbol {tok[4]!r}")
                coords.append(xyz)
                syms.append(tok[4])
                frac.append(key == "atom_frac")
            elif key in ("initial_moment", "initial_charge", "constrain_relaxation"):
                continue
            else:
                raise ValueError(f"unknown keyword {key!r}")
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: malformed line {raw.strip()!r}: {exc}") from None
    if len(cell) not in (0, 3):
        raise ValueError(f"{path}: {len(cell)} lattice_vector lines, expected 3 (periodic) or 0 (molecule)")
    if not syms:
        raise ValueError(f"{path}: no 'atom' lines (empty structure)")
    xyz = np.array(coords, dtype=np.float64)
    if any(frac):
        if not cell:
            raise ValueError(f"{path}: atom_frac needs lattice vectors")
        f = np.array(frac)
        xyz[f] = xyz[f] @ np.array(cell)
    if not np.isfinite(xyz).all() or (cell and not np.isfinite(cell).all()):
        raise ValueError(f"{path}: non-finite coordinates")
    if cell:
        return Atoms(syms, positions=xyz, cell=np.array(cell), pbc=True)
    return Atoms(syms, positions=xyz)


def _read_csv(path: Path) -> list[dict[str, str]]:
    need = ("id", "spacegroup", "number_of_total_atoms", "percent_atom_al", "percent_atom_ga", "percent_atom_in",
            "formation_energy_ev_natom", "bandgap_energy_ev")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path}: no rows")
    missing = [c for c in need if c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return rows


def _float(row: dict[str, str], col: str, path: Path, lineno: int) -> float:
    try:
        return float(row[col])
    except (TypeError, ValueError):
        raise ValueError(f"{path}:{lineno}: column {col!r} is {row[col]!r}, not a number") from None


def load_nmd18(root: str | os.PathLike | None = None, *, geometry: str = "relaxed",
               splits: Sequence[str] = ("train", "test")) -> Dataset:
    """Load NMD18 from ``root`` (or ``$TNMAT_NMD18``) as a :class:`Dataset` (see the module docstring).

    ``geometry="relaxed"`` returns the DFT-relaxed structures of the release; ``"vegard"`` the seed paper's
    unrelaxed variant (ideal positions, Vegard-law cells) built by :func:`tnmat.data.vegard.vegard_structures`.
    """
    if geometry not in ("relaxed", "vegard"):
        raise ValueError(f"geometry must be 'relaxed' or 'vegard', got {geometry!r}")
    if isinstance(splits, str):
        splits = (splits,)
    for s in splits:
        if s not in ("train", "test"):
            raise ValueError(f"NMD18 splits are 'train' and 'test', got {s!r}")
    base = nmd18_root(root)
    if geometry == "vegard":
        # Prototypes and Vegard fits need the whole set (most end members are in train): build all, then select.
        from .vegard import vegard_structures

        full = load_nmd18(base, geometry="relaxed")
        ideal, methods = vegard_structures(full.structures, full.metadata)
        meta = dict(full.metadata)
        meta["geometry_method"] = np.asarray(methods)
        meta["volume_per_atom"] = np.array([a.get_volume() / len(a) for a in ideal])
        out = Dataset(structures=ideal, targets=full.targets, metadata=meta, name="nmd18-vegard", source=str(base),
                      units=dict(full.units))
        return out.subset(np.flatnonzero(np.isin(meta["split"], list(splits))))
    structures: list[Atoms] = []
    keys = ("id", "kaggle_id", "split", "spacegroup", "x_al", "x_ga", "x_in", "n_atoms")
    cols: dict[str, list] = {k: [] for k in keys}
    fe: list[float] = []
    bg: list[float] = []
    for split in splits:
        csv_path = base / f"{split}.csv"
        if not csv_path.is_file():
            raise FileNotFoundError(f"{csv_path}: missing NMD18 label file. Expected layout: {_LAYOUT}")
        for lineno, row in enumerate(_read_csv(csv_path), start=2):
            kid = row["id"].strip()
            geo = base / split / kid / "geometry.xyz"
            if not geo.is_file():
                raise FileNotFoundError(f"{geo}: missing geometry for {csv_path.name} row id={kid}")
            atoms = read_aims_geometry(geo)
            syms = atoms.get_chemical_symbols()
            n_cat = sum(s in _CATIONS for s in syms)
            bad = sorted(set(syms) - {*_CATIONS, "O"})
            if bad or n_cat == 0:
                raise ValueError(f"{geo}: species {sorted(set(syms))} are not an (Al,Ga,In)2O3 alloy")
            n_csv = _float(row, "number_of_total_atoms", csv_path, lineno)
            if round(n_csv) != len(atoms):
                raise ValueError(f"{geo}: {len(atoms)} atoms but {csv_path.name} row id={kid} says {n_csv:g}")
            fracs = [syms.count(c) / n_cat for c in _CATIONS]
            csv_cols = ("percent_atom_al", "percent_atom_ga", "percent_atom_in")
            for c, x, col in zip(_CATIONS, fracs, csv_cols, strict=True):
                if abs(x - _float(row, col, csv_path, lineno)) > 1e-3:
                    raise ValueError(f"{geo}: {c} cation fraction {x:.4f} disagrees with {csv_path.name} "
                                     f"row id={kid} ({col} = {row[col]})")
            structures.append(atoms)
            cols["id"].append(f"{split}/{kid}")
            cols["kaggle_id"].append(int(kid))
            cols["split"].append(split)
            cols["spacegroup"].append(int(_float(row, "spacegroup", csv_path, lineno)))
            for k, x in zip(("x_al", "x_ga", "x_in"), fracs, strict=True):
                cols[k].append(x)
            cols["n_atoms"].append(len(atoms))
            fe.append(_float(row, "formation_energy_ev_natom", csv_path, lineno))
            bg.append(_float(row, "bandgap_energy_ev", csv_path, lineno))
    meta = {k: np.array(v) for k, v in cols.items()}
    meta["geometry_method"] = np.full(len(structures), "relaxed")
    name = "nmd18"
    meta["volume_per_atom"] = np.array([a.get_volume() / len(a) for a in structures])
    return Dataset(structures=structures, targets={"formation_energy": np.array(fe), "bandgap": np.array(bg)},
                   metadata=meta, name=name, source=str(base), units={"formation_energy": "eV/cation", "bandgap": "eV"})
