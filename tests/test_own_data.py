"""A user's own structure file: total energies (ASE) vs per-atom energies give the same fit,
units are stated from one place, a total energy is never fitted silently by an intensive model, and the
user's own test file / split labels are used and stored with the model."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from tnmat import data
from tnmat.cli import main
from tnmat.data.units import energies_look_per_atom, target_units, value_units
from tnmat.model import StructureModel

FAST = ["--model", "gpr-rbf", "-q", "--r-cut", "4.5", "--n-max", "3", "--l-max", "2"]


def emt_frames(n: int = 60, seed: int = 0) -> list:
    """``n`` Cu/Au fcc cells of 1..12 atoms, strained and rattled, with EMT total energies (ASE convention)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.6, cubic=bool(k % 2)) * (1, 1, int(rng.integers(1, 4)))
        a.set_chemical_symbols(["Au" if rng.random() < 0.4 else "Cu" for _ in range(len(a))])
        a.set_cell(a.cell * (1 + 0.02 * rng.standard_normal()), scale_atoms=True)
        a.rattle(0.03, seed=k)
        a.calc = EMT()
        a.get_potential_energy()
        frames.append(a)
    return frames


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same structures stored three ways: totals in 'energy' (ASE), per-atom values as 'energy_per_atom',
    per-atom values (wrongly) in 'energy'; plus a separate test file of totals."""
    d = tmp_path_factory.mktemp("own")
    frames = emt_frames(60)
    write(d / "total.extxyz", frames)
    pa, wrong = [], []
    for a in frames:
        e = a.get_potential_energy() / len(a)
        b = a.copy()
        b.info["energy_per_atom"] = e
        pa.append(b)
        c = a.copy()
        c.calc = SinglePointCalculator(c, energy=e)
        wrong.append(c)
    write(d / "per_atom.extxyz", pa)
    write(d / "wrong.extxyz", wrong)
    write(d / "test.extxyz", emt_frames(15, seed=1))
    return d


def _test_rmse(out: str) -> float:
    line = next(ln for ln in out.splitlines() if ln.startswith("test "))
    assert "meV/atom" in line
    return float(line.split()[2])


def test_total_and_per_atom_energies_give_the_same_test_error(files, capsys):
    rmse = []
    for name, extra in (("total", []), ("per_atom", []), ("wrong", ["--energies", "per-atom"])):
        assert main(["fit", str(files / f"{name}.extxyz"), *FAST, *extra]) == 0
        out = capsys.readouterr().out
        assert "energy_per_atom, errors in meV/atom" in out
        rmse.append(_test_rmse(out))
    assert rmse[0] == rmse[1] == rmse[2]


def test_total_energy_target_is_refused_for_an_intensive_model(files, capsys):
    assert main(["fit", str(files / "total.extxyz"), *FAST, "--target", "energy"]) == 2
    err = capsys.readouterr().err
    assert "'energy' is the total energy" in err and "energy_per_atom" in err and "total" in err


def test_reader_derives_and_checks_energy_pairs(files, tmp_path):
    tot = data.read_structures(files / "total.extxyz")
    pa = data.read_structures(files / "per_atom.extxyz")
    n = tot.metadata["n_atoms"]
    np.testing.assert_allclose(tot.targets["energy_per_atom"] * n, tot.targets["energy"], rtol=1e-12)
    np.testing.assert_allclose(pa.targets["energy"], tot.targets["energy"], rtol=1e-9, atol=1e-12)
    # both stored but inconsistent: an error naming the file and frame
    frames = read(files / "total.extxyz", ":")
    for a in frames:
        a.info["energy_per_atom"] = a.get_potential_energy() / len(a)
    frames[3].info["energy_per_atom"] = 99.0
    write(tmp_path / "both.extxyz", frames)
    with pytest.raises(ValueError, match=r"both\.extxyz: frame 3: 'energy_per_atom'"):
        data.read_structures(tmp_path / "both.extxyz")
    with pytest.raises(ValueError, match="energies='bogus'"):
        data.read_structures(files / "total.extxyz", energies="bogus")


def test_per_atom_values_stored_as_totals_are_flagged(tmp_path, capsys):
    """DFT-like absolute energies (-3.5 eV/atom) written per atom into 'energy': a clear error naming the file
    and the option that reads them right."""
    rng = np.random.default_rng(0)
    frames = []
    for k in range(12):
        a = bulk("Cu", "fcc", a=3.6) * (1, 1, 1 + k % 4)
        a.rattle(0.02, seed=k)
        a.calc = SinglePointCalculator(a, energy=-3.5 + 0.05 * rng.standard_normal())
        frames.append(a)
    write(tmp_path / "dft.extxyz", frames)
    with pytest.raises(ValueError, match=r"dft\.extxyz: the 'energy' values look like energies per atom"):
        data.read_structures(tmp_path / "dft.extxyz")
    assert main(["data", "summarise", str(tmp_path / "dft.extxyz")]) == 2
    assert "--energies per-atom" in capsys.readouterr().err
    ds = data.read_structures(tmp_path / "dft.extxyz", energies="per-atom")
    assert np.allclose(ds.targets["energy_per_atom"], [a.calc.results["energy"] for a in frames])
    # the totals themselves are not flagged
    n = np.array([len(a) for a in frames])
    assert not energies_look_per_atom(ds.targets["energy"], n)
    assert energies_look_per_atom(ds.targets["energy_per_atom"], n)


def test_units_from_one_place(files, capsys):
    assert (value_units("x", "energy"), target_units("x", "energy")) == ("eV/structure", "meV/structure")
    assert target_units("x", "energy_per_atom") == "meV/atom"
    assert target_units("nmd18-vegard", "formation_energy") == "meV/cation"
    assert target_units("alloys", "mixing_energy") == "meV/atom"
    assert main(["data", "summarise", str(files / "total.extxyz")]) == 0
    out = capsys.readouterr().out
    assert "target energy [eV/structure; errors in meV/structure]" in out
    assert "target energy_per_atom [eV/atom; errors in meV/atom]" in out


def test_own_test_file_is_used_printed_and_stored(files, tmp_path, capsys):
    model = tmp_path / "m.pt"
    assert main(["fit", str(files / "total.extxyz"), *FAST, "--test-file", str(files / "test.extxyz"),
                 "-o", str(model)]) == 0
    out = capsys.readouterr().out
    assert f"60 fitted, validation none, 15 test (--test-file {files / 'test.extxyz'})" in out
    info = StructureModel.load(model).info
    assert len(info["split"]["fitted"]) == 60 and info["split"]["validation"] == []
    assert info["split"]["test"] == [f"test.extxyz:{k}" for k in range(15)]
    assert info["split"]["test_from"].startswith("--test-file")


def test_split_labels_in_the_file_choose_the_test_set(files, tmp_path, capsys):
    frames = read(files / "total.extxyz", ":")
    for k, a in enumerate(frames):
        a.info["split"] = "test" if k % 6 == 0 else "train"
        a.info["name"] = f"s{k:02d}"
    write(tmp_path / "labelled.extxyz", frames)
    assert main(["fit", str(tmp_path / "labelled.extxyz"), *FAST, "-o", str(tmp_path / "m.pt")]) == 0
    assert "50 fitted, validation none, 10 test (the structures labelled split=test)" in capsys.readouterr().out
    assert StructureModel.load(tmp_path / "m.pt").info["split"]["test"] == [f"s{k:02d}" for k in range(0, 60, 6)]


def test_test_file_with_unseen_species_names_it(files, tmp_path, capsys):
    ni = [bulk("Ni", "fcc", a=3.5), bulk("Ni", "fcc", a=3.4)]
    for a in ni:
        a.calc = SinglePointCalculator(a, energy=-0.1)
    write(tmp_path / "ni.extxyz", ni)
    assert main(["fit", str(files / "total.extxyz"), *FAST, "--test-file", str(tmp_path / "ni.extxyz")]) == 2
    err = capsys.readouterr().err
    assert "ni.extxyz" in err and "species Ni" in err


@pytest.mark.parametrize(("value", "model", "msg"), [
    ("1.5", "gpr-rbf", "--validation-fraction 1.5: must be a finite number in [0, 1)"),
    ("-0.1", "gpr-rbf", "--validation-fraction -0.1: must be a finite number in [0, 1)"),
    ("0", "mera", "--validation-fraction 0: model mera uses validation data"),
])
def test_validation_fraction_is_range_checked(files, capsys, value, model, msg):
    args = ["fit", str(files / "total.extxyz"), *FAST, "--validation-fraction", value]
    args[args.index("--model") + 1] = model
    assert main(args) == 2
    assert msg in capsys.readouterr().err


def test_validation_fraction_zero_is_allowed_for_gpr(files, capsys):
    assert main(["fit", str(files / "total.extxyz"), *FAST, "--validation-fraction", "0"]) == 0
    assert "validation none" in capsys.readouterr().out


def test_constant_target_is_a_clear_error(tmp_path, capsys):
    frames = emt_frames(10)
    for a in frames:
        a.calc = SinglePointCalculator(a, energy=-1.0 * len(a))
    write(tmp_path / "flat.extxyz", frames)
    assert main(["fit", str(tmp_path / "flat.extxyz"), *FAST]) == 2
    assert "'energy_per_atom' is the same (-1 eV) for every training structure" in capsys.readouterr().err


def test_predict_writes_per_atom_and_total_names_and_range_flags(files, tmp_path, capsys):
    """Per-atom and total energies, the structures' own names, and the two far-outside structures of the
    issue (positions in Bohr read as Angstrom; one atom in a 0.9 A cell) flagged in the CSV and counted."""
    import csv

    model = tmp_path / "m.pt"
    assert main(["fit", str(files / "total.extxyz"), *FAST, "-o", str(model)]) == 0
    frames = read(files / "test.extxyz", ":4")
    for k, a in enumerate(frames):
        a.info["name"] = f"mine-{k}"
    bohr = frames[1].copy()
    bohr.set_cell(bohr.cell * 0.529177, scale_atoms=True)
    bohr.info["name"] = "bohr"
    tiny = bulk("Cu", "sc", a=0.9)
    tiny.info["name"] = "tiny"
    for a in frames:
        a.calc = None
    write(tmp_path / "new.extxyz", [*frames, bohr, tiny])
    out = tmp_path / "p.csv"
    assert main(["predict", str(model), str(tmp_path / "new.extxyz"), "-o", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "outside the training range: 2 of 6 structures" in printed
    assert "energy_per_atom [eV/atom]" in printed
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == ["mine-0", "mine-1", "mine-2", "mine-3", "bohr", "tiny"]
    assert [r["outside_training_range"] for r in rows] == ["0"] * 4 + ["1", "1"]
    for r in rows:
        assert float(r["predicted_energy_eV"]) == pytest.approx(
            float(r["predicted_energy_per_atom_eV"]) * int(r["n_atoms"]), rel=1e-7, abs=1e-7)


def test_learning_curve_with_own_test_file(files, tmp_path, capsys):
    """Every size is tested on the test file's 15 structures (one split), training subsets come from DATA."""
    args = ["learning-curve", str(files / "total.extxyz"), "--test-file", str(files / "test.extxyz"),
            "--models", "gpr-rbf", "--sizes", "20,60", "-q", "--r-cut", "4.5", "--n-max", "3", "--l-max", "2",
            "--results", str(tmp_path / "r.sqlite"), "--out-dir", str(tmp_path / "lc")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 fits: 2 run now" in out and "(official split)" in out and "(meV/atom)" in out
    lines = (tmp_path / "lc" / "learning_curve.csv").read_text().splitlines()
    assert [ln.split(",")[:4] for ln in lines[1:]] == [["gpr-rbf", "20", "official", "1"],
                                                      ["gpr-rbf", "60", "official", "1"]]
    assert main([*args, "--splits", "2"]) == 2
    assert "--splits 2 with --test-file" in capsys.readouterr().err


def test_units_survive_an_extxyz_round_trip(tmp_path, capsys):
    """NMD18 written to extxyz and read back still reports meV/cation (the issue saw meV/atom)."""
    ds = data.Dataset(structures=[bulk("Al", "fcc", a=4.05), bulk("Al", "fcc", a=4.1)],
                      targets={"formation_energy": np.array([0.1, 0.2])}, name="nmd18",
                      units={"formation_energy": "eV/cation"})
    back = data.read_structures(ds.to_extxyz(tmp_path / "mine.extxyz"))
    assert back.name == "mine" and target_units(back, "formation_energy") == "meV/cation"
    assert main(["data", "summarise", str(tmp_path / "mine.extxyz")]) == 0
    assert "target formation_energy [eV/cation; errors in meV/cation]" in capsys.readouterr().out
