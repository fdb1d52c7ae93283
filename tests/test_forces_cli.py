"""tnmat fit --target forces|stress and tnmat predict of the equivariant models (issue 16)."""

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
