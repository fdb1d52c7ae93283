"""tnmat.data: Dataset validation, the NMD18 loader (relaxed geometry) and read_structures."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from tnmat import data
from tnmat.data import Dataset


def _cu(a: float = 3.6) -> Atoms:
    return bulk("Cu", "fcc", a=a)


# ------------------------------------------------------------------------------------------- Dataset
def test_dataset_subset_split_species():
    structs = [_cu(), bulk("NaCl", "rocksalt", a=5.6), bulk("Al", "fcc", a=4.05)]
    ds = Dataset(structs, targets={"e": [0.1, 0.2, 0.3]},
                 metadata={"id": ["a", "b", "c"], "split": ["train", "test", "train"]}, name="toy")
    assert len(ds) == 3
    assert ds.species == ("Na", "Al", "Cl", "Cu")  # sorted by atomic number, not alphabetically
    tr = ds.split("train")
    assert list(tr.metadata["id"]) == ["a", "c"]
    np.testing.assert_array_equal(tr.targets["e"], [0.1, 0.3])
    assert [a.info["id"] for a in tr.structures] == ["a", "c"]
    sub = ds.subset(np.array([False, True, True]))
    assert list(sub.metadata["id"]) == ["b", "c"]
    with pytest.raises(ValueError, match="no split 'valid'"):
        ds.split("valid")
    assert "3 structures" in ds.summary() and "1 test" in ds.summary()


def test_dataset_nan_target_names_structure_and_key():
    with pytest.raises(ValueError, match=r"structure s1: target 'gap' is nan"):
        Dataset([_cu(), _cu()], targets={"gap": [1.0, np.nan]}, metadata={"id": ["s0", "s1"]})
    with pytest.raises(ValueError, match=r"structure s0: target 'gap' is inf"):
        Dataset([_cu()], targets={"gap": [np.inf]}, metadata={"id": ["s0"]})


def test_dataset_empty_structure():
    with pytest.raises(ValueError, match="structure empty1: empty structure"):
        Dataset([Atoms()], metadata={"id": ["empty1"]})


def test_dataset_atoms_too_close_names_pair_and_distance():
    a = Atoms("Cu2", positions=[[0, 0, 0], [0.3, 0, 0]], cell=[5, 5, 5], pbc=True)
    with pytest.raises(ValueError, match=r"structure bad: atoms 0 \(Cu\) and 1 \(Cu\) are 0\.3000 A apart"):
        Dataset([a], metadata={"id": ["bad"]})
    # Only the periodic image is close: 0 at x=0.1 and 1 at x=4.8 in a 5 A box are 0.3 A apart across the face.
    b = Atoms("Cu2", positions=[[0.1, 2, 2], [4.8, 2, 2]], cell=[5, 5, 5], pbc=True)
    with pytest.raises(ValueError, match=r"structure img: atoms 0 \(Cu\) and 1 \(Cu\) are 0\.3000 A apart"):
        Dataset([b], metadata={"id": ["img"]})
    # The same positions without periodicity are 4.7 A apart: valid.
    Dataset([Atoms("Cu2", positions=[[0.1, 2, 2], [4.8, 2, 2]])], metadata={"id": ["ok"]})
    # An atom closer than 0.5 A to its own image (tiny cell).
    with pytest.raises(ValueError, match=r"structure tiny: atoms 0 \(H\) and 0 \(H\) are 0\.4000 A apart"):
        Dataset([Atoms("H", cell=[0.4, 3, 3], pbc=True)], metadata={"id": ["tiny"]})


def test_dataset_length_mismatch():
    with pytest.raises(ValueError, match="target 'e' has shape"):
        Dataset([_cu()], targets={"e": [1.0, 2.0]})
    with pytest.raises(ValueError, match="metadata 'id' has 2 entries for 1 structures"):
        Dataset([_cu()], metadata={"id": [1, 2]})


def test_extxyz_roundtrip(tmp_path):
    ds = Dataset([_cu(), bulk("Au", "fcc", a=4.08) * (1, 1, 2)], targets={"mixing_energy": [0.0, -0.01]},
                 metadata={"id": ["p", "q"], "split": ["train", "test"], "system": ["CuAu", "CuAu"]}, name="t")
    path = ds.to_extxyz(tmp_path / "sub" / "t.xyz")
    back = data.read_structures(path)
    np.testing.assert_array_equal(back.targets["mixing_energy"], ds.targets["mixing_energy"])
    assert list(back.metadata["split"]) == ["train", "test"]
    assert list(back.metadata["system"]) == ["CuAu", "CuAu"]
    assert list(back.metadata["id"]) == ["p", "q"]
    for a, b in zip(ds.structures, back.structures, strict=True):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-10)
        np.testing.assert_allclose(a.cell.array, b.cell.array, atol=1e-10)


# ------------------------------------------------------------------------------------------- read_structures
def test_read_structures_energies_per_atom(tmp_path):
    frames = []
    for k, n in enumerate((1, 2, 4)):
        a = _cu() * (n, 1, 1)
        a.calc = SinglePointCalculator(a, energy=-3.5 * len(a) + k)
        frames.append(a)
    write(tmp_path / "e.extxyz", frames)
    ds = data.read_structures(tmp_path / "e.extxyz")  # totals (ASE), the per-atom target derived
    np.testing.assert_allclose(ds.targets["energy_per_atom"], [-3.5 + 0 / 1, -3.5 + 1 / 2, -3.5 + 2 / 4])
    np.testing.assert_allclose(ds.targets["energy"], [-3.5, -7.0 + 1, -14.0 + 2])
    assert list(ds.metadata["id"]) == ["e.extxyz:0", "e.extxyz:1", "e.extxyz:2"]
    np.testing.assert_allclose(ds.metadata["volume_per_atom"], 3.6**3 / 4)
    # index selects frames
    assert len(data.read_structures(tmp_path / "e.extxyz", index="1:")) == 2


def test_read_structures_cif_and_poscar(tmp_path):
    a = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    write(tmp_path / "x.cif", a)
    write(tmp_path / "POSCAR", a, format="vasp")
    ds = data.read_structures([tmp_path / "x.cif", tmp_path / "POSCAR"])
    assert len(ds) == 2 and ds.targets == {} and ds.species == ("Na", "Cl")
    for b in ds.structures:
        np.testing.assert_allclose(b.get_volume(), a.get_volume(), rtol=1e-6)


def test_read_structures_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.xyz"):
        data.read_structures(tmp_path / "nope.xyz")
    bad = tmp_path / "bad.xyz"
    bad.write_text("2\n\nCu 0 0 0\nCu 1.0 zz 0\n")
    with pytest.raises(ValueError, match=r"bad.xyz: cannot read frame 0"):
        data.read_structures(bad)
    # Second frame truncated: the error names frame 1.
    good = _cu() * (2, 1, 1)
    write(tmp_path / "two.xyz", [good, good])
    lines = (tmp_path / "two.xyz").read_text().splitlines()
    (tmp_path / "two.xyz").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match=r"two.xyz: cannot read frame 1"):
        data.read_structures(tmp_path / "two.xyz")
    # A target present in some frames but not all.
    a, b = _cu(), _cu()
    a.calc = SinglePointCalculator(a, energy=1.0)
    write(tmp_path / "part.xyz", [a, b])
    with pytest.raises(ValueError, match=r"part.xyz: frame 1: target 'energy' missing"):
        data.read_structures(tmp_path / "part.xyz")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="not in the NMD18 layout"):
        data.read_structures(tmp_path / "folder")


# ------------------------------------------------------------------------------------------- aims parser
def test_read_aims_geometry_errors(tmp_path):
    p = tmp_path / "geometry.xyz"
    p.write_text("lattice_vector 5 0 0\nlattice_vector 0 5 0\nlattice_vector 0 0 5\natom 0 0 0 Al\natom 1 x 0 O\n")
    with pytest.raises(ValueError, match=r"geometry.xyz:5: malformed line"):
        data.read_aims_geometry(p)
    p.write_text("lattice_vector 5 0 0\natom 0 0 0 Al\n")
    with pytest.raises(ValueError, match="1 lattice_vector lines"):
        data.read_aims_geometry(p)
    p.write_text("atom 0 0 0 Qq\n")
    with pytest.raises(ValueError, match=r"geometry.xyz:1: .*unknown chemical symbol 'Qq'"):
        data.read_aims_geometry(p)
    p.write_text("# only a comment\n")
    with pytest.raises(ValueError, match="no 'atom' lines"):
        data.read_aims_geometry(p)
    with pytest.raises(FileNotFoundError, match="missing.xyz"):
        data.read_aims_geometry(tmp_path / "missing.xyz")
    p.write_text("lattice_vector 4 0 0\nlattice_vector 0 4 0\nlattice_vector 0 0 4\natom_frac 0.5 0.25 0 Al\n")
    np.testing.assert_allclose(data.read_aims_geometry(p).positions, [[2.0, 1.0, 0.0]])


@pytest.mark.filterwarnings("ignore:FHI-aims IO:FutureWarning")  # ASE moving aims IO to a plugin
def test_read_aims_geometry_matches_ase(nmd18_path):
    for split, kid in (("train", 1), ("train", 2400), ("test", 17)):
        path = nmd18_path / split / str(kid) / "geometry.xyz"
        ours = data.read_aims_geometry(path)
        ref = read(path, format="aims")
        assert ours.get_chemical_symbols() == ref.get_chemical_symbols()
        np.testing.assert_allclose(ours.positions, ref.positions, atol=1e-12)
        np.testing.assert_allclose(ours.cell.array, ref.cell.array, atol=1e-12)
        assert ours.pbc.all() and ref.pbc.all()


# ------------------------------------------------------------------------------------------- NMD18
def test_nmd18_root_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("TNMAT_NMD18", raising=False)
    with pytest.raises(FileNotFoundError, match=r"\$TNMAT_NMD18.*train.csv"):
        data.nmd18_root(None)
    assert data.nmd18_root(None, required=False) is None
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}: not an NMD18 folder"):
        data.load_nmd18(tmp_path)
    monkeypatch.setenv("TNMAT_NMD18", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not an NMD18 folder"):
        data.nmd18_root()


def _mini_nmd18(tmp_path, nmd18_path, ids=(1, 2, 3)):
    """A copy of three training rows of NMD18 to corrupt."""
    root = tmp_path / "nmd"
    (root / "train").mkdir(parents=True)
    with open(nmd18_path / "train.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) in ids]
    with open(root / "train.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(keep)
    for i in ids:
        (root / "train" / str(i)).mkdir()
        src = nmd18_path / "train" / str(i) / "geometry.xyz"
        (root / "train" / str(i) / "geometry.xyz").write_text(src.read_text())
    return root


def test_nmd18_bad_inputs(tmp_path, nmd18_path):
    root = _mini_nmd18(tmp_path, nmd18_path)
    ds = data.load_nmd18(root, splits=("train",))
    assert len(ds) == 3
    with pytest.raises(FileNotFoundError, match="test.csv: missing NMD18 label file"):
        data.load_nmd18(root)
    geo = root / "train" / "2" / "geometry.xyz"
    lines = geo.read_text().splitlines()
    geo.write_text("\n".join(lines[:6] + ["atom 1.0 2.0 Ga"] + lines[7:]) + "\n")
    with pytest.raises(ValueError, match=r"train/2/geometry.xyz:7: malformed line"):
        data.load_nmd18(root, splits="train")
    geo.unlink()
    with pytest.raises(FileNotFoundError, match=r"train/2/geometry.xyz: missing geometry for train.csv row id=2"):
        data.load_nmd18(root, splits="train")
    root = _mini_nmd18(tmp_path / "b", nmd18_path)
    text = (root / "train.csv").read_text().splitlines()
    parts = text[3].split(",")
    parts[-1] = "nan"
    (root / "train.csv").write_text("\n".join(text[:3] + [",".join(parts)] + text[4:]) + "\n")
    with pytest.raises(ValueError, match=r"structure train/3: target 'bandgap' is nan"):
        data.load_nmd18(root, splits="train")
    # Atom 1 moved to 0.2 A from atom 0 (lines 0-2 are comments, 3-5 lattice vectors).
    root = _mini_nmd18(tmp_path / "c", nmd18_path)
    geo = root / "train" / "1" / "geometry.xyz"
    lines = geo.read_text().splitlines()
    x = lines[6].split()
    lines[7] = f"atom {float(x[1]) + 0.2} {x[2]} {x[3]} {lines[7].split()[-1]}"
    geo.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"structure train/1: atoms 0 \(Ga\) and 1 \(Al\) are 0\.2000 A apart"):
        data.load_nmd18(root, splits="train")


def test_load_nmd18_counts_targets_compositions(nmd18_path):
    ds = data.load_nmd18(nmd18_path)
    assert len(ds) == 3000
    assert len(ds.split("train")) == 2400 and len(ds.split("test")) == 600
    assert len(set(ds.metadata["id"])) == 3000
    assert ds.species == ("O", "Al", "Ga", "In")
    comp = np.stack([ds.metadata[k] for k in ("x_al", "x_ga", "x_in")], axis=1)
    np.testing.assert_allclose(comp.sum(1), 1.0, atol=1e-12)
    for split in ("train", "test"):
        with open(nmd18_path / f"{split}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        sub = ds.split(split)
        assert list(sub.metadata["kaggle_id"]) == [int(r["id"]) for r in rows]
        fe = [float(r["formation_energy_ev_natom"]) for r in rows]
        np.testing.assert_array_equal(sub.targets["formation_energy"], fe)
        np.testing.assert_array_equal(sub.targets["bandgap"], [float(r["bandgap_energy_ev"]) for r in rows])
        np.testing.assert_array_equal(sub.metadata["spacegroup"], [int(r["spacegroup"]) for r in rows])
        np.testing.assert_allclose(sub.metadata["x_in"], [float(r["percent_atom_in"]) for r in rows], atol=6e-5)
        # Cations are 2/5 of the atoms of an M2O3 sesquioxide.
        n_o = np.array([a.get_chemical_symbols().count("O") for a in sub.structures])
        np.testing.assert_array_equal(2 * n_o, 3 * (sub.metadata["n_atoms"] - n_o))
    vpa = np.array([a.get_volume() / len(a) for a in ds.structures])
    np.testing.assert_allclose(ds.metadata["volume_per_atom"], vpa)
    assert ds.targets["formation_energy"].dtype == np.float64
