"""tnmat fit --target forces|stress and tnmat predict of the equivariant models."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from tnmat.cli import main
from tnmat.data.alloy_forces import RattledAlloys, generate_rattled_alloys
from tnmat.data.readers import structure_forces, structure_stress


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    ds = generate_rattled_alloys(RattledAlloys(n_structures=16, n_systems=2), cache_dir=tmp)
    return ds, ds.to_extxyz(tmp / "rattled.extxyz")


DESC = ["--n-max", "2", "--l-max", "2", "--r-cut", "4.0", "-q"]


def test_fit_predict_forces(data_file, tmp_path, capsys):
    ds, path = data_file
    model = tmp_path / "f.pt"
    assert main(["fit", str(path), "--target", "forces", "--model", "dense", *DESC, "-o", str(model)]) == 0
    out = capsys.readouterr().out
    assert "test       RMSE" in out and "cosine" in out
    csv_path = tmp_path / "f.csv"
    assert main(["predict", str(model), str(path), "-o", str(csv_path), "-q"]) == 0
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == sum(len(a) for a in ds.structures)
    assert rows[0]["id"] == ds.metadata["id"][0] and rows[0]["symbol"] == ds.structures[0][0].symbol
    f = np.array([[float(r[c]) for c in ("fx_eV/A", "fy_eV/A", "fz_eV/A")] for r in rows])
    ref = np.concatenate(structure_forces(ds))
    # the direct model is not conservative (no sum rule), but it must track the EMT forces
    cos = np.sum(f * ref, axis=1) / (np.linalg.norm(f, axis=1) * np.linalg.norm(ref, axis=1))
    assert np.isfinite(f).all() and np.mean(cos) > 0.8


def test_fit_predict_stress_mps(data_file, tmp_path, capsys):
    ds, path = data_file
    model = tmp_path / "s.pt"
    assert main(["fit", str(path), "--target", "stress", "--model", "mps", "--bond-dim", "2", "--solver", "adam",
                 "--epochs", "3", *DESC, "-o", str(model)]) == 0
    csv_path = tmp_path / "s.csv"
    assert main(["predict", str(model), str(path), "-o", str(csv_path), "-q"]) == 0
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == len(ds) and "stress_yz_eV/A3" in rows[0]
    assert structure_stress(ds).shape == (len(ds), 3, 3)


def test_errors(data_file, tmp_path, capsys):
    ds, path = data_file
    assert main(["fit", str(path), "--target", "forces", "--model", "ttn", *DESC]) != 0
    assert "--model must be one of mps, mpo, dense" in capsys.readouterr().err
    plain = tmp_path / "plain.extxyz"
    from ase.io import write

    write(plain, [a.copy() for a in ds.structures[:4]])
    from tnmat.data import read_structures

    nf = read_structures(plain)  # forces are kept on the structures; drop them to get a file without
    for a in nf.structures:
        a.arrays.pop("forces", None)
    nf.to_extxyz(tmp_path / "noforces.extxyz")
    assert main(["fit", str(tmp_path / "noforces.extxyz"), "--target", "forces", "--model", "dense", *DESC]) != 0
    assert "no forces" in capsys.readouterr().err


def test_predict_writes_conservative_forces_of_an_energy_model(data_file, tmp_path, capsys):
    from tnmat.forces import energy_forces_stress
    from tnmat.model import StructureModel

    ds, path = data_file
    model = tmp_path / "e.pt"
    assert main(["fit", str(path), "--model", "mps", "--bond-dim", "2", *DESC, "-o", str(model)]) == 0
    csv_path, f_path = tmp_path / "e.csv", tmp_path / "forces.csv"
    assert main(["predict", str(model), str(path), "-o", str(csv_path), "--forces", str(f_path), "-q"]) == 0
    assert "forces (-dE/dr): RMSE" in capsys.readouterr().out
    rows = [r for r in csv.DictReader(open(f_path)) if r["id"] == ds.metadata["id"][0]]
    assert len(rows) == len(ds.structures[0]) and "ref_fx_eV/A" in rows[0]
    # the written force on atom 0 is minus the central difference of the model's total energy E = N e
    # (evaluated in float64, as the forces are)
    m, h = StructureModel.load(model), 1e-4
    moved = []
    for sign in (1, -1):
        atoms = ds.structures[0].copy()
        atoms.positions[0, 1] += sign * h
        moved.append(atoms)
    e = energy_forces_stress(m, moved, forces=False, stress=False).energy
    assert float(rows[0]["fy_eV/A"]) == pytest.approx(-(e[0] - e[1]) / (2 * h), rel=1e-5, abs=1e-8)
