"""Model files that were altered after writing are refused with one line naming the file: forces models carry
a checksum, a deleted checksum is not read as an older format, crafted fitted entries are not set, NaN
weights are refused at load, random corruption gives one line; what a file holds is said when it is the
wrong kind; an empty structure is a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

from tnmat._estimator_file import content_checksum
from tnmat.cli import main

DESC = ["--n-max", "2", "--l-max", "1", "--r-cut", "4", "-q"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small structure file with forces, an energy model and a forces model fitted on it."""
    from tnmat.data.alloy_forces import RattledAlloys, generate_rattled_alloys

    tmp = tmp_path_factory.mktemp("integrity")
    ds = generate_rattled_alloys(RattledAlloys(n_structures=16, n_systems=2), cache_dir=tmp)
    data = ds.to_extxyz(tmp / "d.extxyz")
    energy, forces = tmp / "e.tnmat", tmp / "f.tnmat"
    assert main(["fit", str(data), "--model", "mps", "--bond-dim", "3", "--sweeps", "2", *DESC,
                 "-o", str(energy)]) == 0
    assert main(["fit", str(data), "--target", "forces", "--model", "dense", *DESC, "-o", str(forces)]) == 0
    return {"data": data, "energy": energy, "forces": forces, "tmp": tmp}


def _predict(model, files, capsys) -> tuple[int, str]:
    out = files["tmp"] / "p.csv"
    out.unlink(missing_ok=True)
    rc = main(["predict", str(model), str(files["data"]), "-q", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc != 0 or out.exists()
    return rc, err


def _altered(files, name, change, *, rechecksum: bool) -> object:
    blob = torch.load(files[name], weights_only=True)
    change(blob)
    if rechecksum:
        blob["checksum"] = content_checksum(blob)
    path = files["tmp"] / f"altered-{name}.tnmat"
    torch.save(blob, path)
    return path


def _first_float(tree):
    """The first floating tensor in nested dicts (a weight of the stored model)."""
    for v in tree.values():
        if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel():
            return v
        if isinstance(v, dict) and (t := _first_float(v)) is not None:
            return t
    return None


def test_both_model_kinds_round_trip(files, capsys):
    assert _predict(files["energy"], files, capsys)[0] == 0
    assert _predict(files["forces"], files, capsys)[0] == 0


def test_a_corrupted_forces_model_is_refused(files, capsys):
    def scale(blob):
        _first_float(blob["regressors"]).add_(1.0)

    assert "checksum" in torch.load(files["forces"], weights_only=True)
    rc, err = _predict(_altered(files, "forces", scale, rechecksum=False), files, capsys)
    assert rc == 2 and "is corrupted" in err and err.count("\n") == 1


@pytest.mark.parametrize("name", ["energy", "forces"])
def test_a_deleted_checksum_is_not_an_older_format(name, files, capsys):
    rc, err = _predict(_altered(files, name, lambda b: b.pop("checksum"), rechecksum=False), files, capsys)
    assert rc == 2 and "has no checksum" in err


def test_a_version_1_file_without_checksum_still_loads(files, capsys):
    def old(blob):
        blob.pop("checksum")
        blob["version"] = 1

    assert _predict(_altered(files, "energy", old, rechecksum=False), files, capsys)[0] == 0


@pytest.mark.parametrize("key", ["predict", "__dict__", "network_"])
def test_crafted_fitted_entries_are_refused(key, files, capsys):
    def craft(blob):
        blob["fitted"][key] = "crafted"

    rc, err = _predict(_altered(files, "energy", craft, rechecksum=True), files, capsys)
    assert rc == 2 and "unexpected fitted entries" in err and repr(key) in err and err.count("\n") == 1


def test_crafted_fitted_entries_of_a_forces_model_are_refused(files, capsys):
    def craft(blob):
        next(iter(blob["regressors"].values()))["fitted"]["predict"] = "crafted"

    rc, err = _predict(_altered(files, "forces", craft, rechecksum=True), files, capsys)
    assert rc == 2 and "unexpected fitted entries" in err


@pytest.mark.parametrize("name,where", [("energy", "state_dict"), ("forces", "regressors")])
def test_nan_weights_with_a_valid_checksum_are_refused_at_load(name, where, files, capsys):
    def poison(blob):
        _first_float(blob[where]).view(-1)[0] = float("nan")

    rc, err = _predict(_altered(files, name, poison, rechecksum=True), files, capsys)
    assert rc == 2 and "not finite" in err and err.count("\n") == 1


def test_random_corruption_is_one_line(files, capsys):
    raw = bytearray(files["energy"].read_bytes())
    rng = np.random.default_rng(0)
    for k in rng.integers(0, len(raw), 64):
        raw[k] = (raw[k] + 101) % 256
    bad = files["tmp"] / "random.tnmat"
    bad.write_bytes(bytes(raw))
    rc, err = _predict(bad, files, capsys)
    assert rc == 2 and str(bad) in err and err.count("\n") == 1 and "weights_only" not in err


def test_a_file_with_code_in_its_pickle_is_one_line_without_torch_advice(files, capsys):
    import zipfile

    bad = files["tmp"] / "code.tnmat"
    with zipfile.ZipFile(files["energy"]) as zin, zipfile.ZipFile(bad, "w") as out:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):  # a GLOBAL opcode naming os.system
                data = data[:2] + b"cos\nsystem\n" + data[2:]
            out.writestr(item, data)
    rc, err = _predict(bad, files, capsys)
    assert rc == 2 and "no code from it was run" in err and "weights_only" not in err and err.count("\n") == 1


def test_calculator_on_a_forces_model_says_what_it_is(files):
    from tnmat.calculator import TNMatCalculator

    with pytest.raises(ValueError, match="forces model .*EquivariantModel"):
        TNMatCalculator(files["forces"])


def test_calculator_on_an_empty_structure_is_a_clear_error(files):
    from tnmat.calculator import TNMatCalculator

    calc = TNMatCalculator(files["energy"])
    with pytest.raises(ValueError, match="no atoms"):
        calc.get_potential_energy(Atoms())


def test_predict_forces_with_a_gpr_model_is_refused_before_work(files, capsys):
    gpr, out, forces = files["tmp"] / "g.tnmat", files["tmp"] / "g.csv", files["tmp"] / "gf.csv"
    assert main(["fit", str(files["data"]), "--model", "gpr-rbf", *DESC, "-o", str(gpr)]) == 0
    capsys.readouterr()
    assert main(["predict", str(gpr), str(files["data"]), "-q", "-o", str(out), "--forces", str(forces)]) == 2
    err = capsys.readouterr().err
    assert "--forces" in err and "differentiable network" in err and err.count("\n") == 1
    assert not out.exists() and not forces.exists()
