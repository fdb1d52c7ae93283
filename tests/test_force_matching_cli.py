"""tnmat fit of an energy model on data with forces and stress: both fitted by default, weight 0 turns each off."""

from __future__ import annotations

import re

import pytest

from tnmat.cli import main
from tnmat.data.alloy_forces import RattledAlloys, generate_rattled_alloys

DESC = ["--n-max", "2", "--l-max", "1", "--r-cut", "4.0", "-q"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fm")
    ds = generate_rattled_alloys(RattledAlloys(n_structures=16, n_systems=1, min_atoms=8), cache_dir=tmp)
    return ds.to_extxyz(tmp / "rattled.extxyz")


def _force_rmse(text: str) -> float:
    return float(re.search(r"test\s+force RMSE ([0-9.]+) eV/A\s+stress RMSE [0-9.]+ GPa", text).group(1))


@pytest.mark.parametrize("model", ["dense", pytest.param("ttn", marks=pytest.mark.slow)])
def test_fit_uses_forces_by_default_and_force_weight_zero_turns_them_off(data_file, capsys, model):
    assert main(["fit", str(data_file), "--model", model, *DESC]) == 0
    matched = capsys.readouterr().out
    assert "force components fitted with the energies" in matched and "stress of" in matched
    assert main(["fit", str(data_file), "--model", model, "--force-weight", "0", "--stress-weight", "0", *DESC]) == 0
    energy_only = capsys.readouterr().out
    assert "force components fitted" not in energy_only and "stress of" not in energy_only
    # a dozen energies say little about forces; their hundreds of components do
    assert _force_rmse(matched) < 0.7 * _force_rmse(energy_only)


def test_bad_force_weight_is_refused_naming_the_option(data_file, capsys):
    assert main(["fit", str(data_file), "--force-weight", "-1", *DESC]) != 0
    err = capsys.readouterr().err
    assert "--force-weight -1" in err and len(err.strip().splitlines()) == 1


def test_stress_weight_zero_leaves_the_forces(data_file, capsys):
    assert main(["fit", str(data_file), "--model", "dense", "--stress-weight", "0", *DESC]) == 0
    out = capsys.readouterr().out
    assert "force components fitted" in out and "stress of" not in out


def test_structure_weights_are_read_from_the_file(data_file, tmp_path, capsys):
    from ase.io import read, write

    frames = read(data_file, index=":")
    for k, a in enumerate(frames):
        a.info["weight"] = 1.0 + k % 3
    weighted = tmp_path / "weighted.extxyz"
    write(weighted, frames)
    assert main(["fit", str(weighted), "--model", "dense", "--force-weight", "0", "--stress-weight", "0", *DESC]) == 0
    assert "weights: info['weight'] of every structure (range 1-3)" in capsys.readouterr().out
    del frames[0].info["weight"]
    write(weighted, frames)
    assert main(["fit", str(weighted), "--model", "dense", *DESC]) != 0
    assert "lack info['weight']" in capsys.readouterr().err
