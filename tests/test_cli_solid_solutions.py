"""The solid-solution commands: tnmat fit --model ce on the relaxed alloy set, predict with the saved cluster
expansion, tnmat hull with a reference, and --ideal-sites on a user's relaxed structure file."""

from __future__ import annotations

import csv
import os
import re

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write

from tnmat.cli import main


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private cache for the generated small relaxed set (built once for the module, a few seconds)."""
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("TNMAT_CACHE")
    os.environ["TNMAT_CACHE"] = str(path)
    from tnmat.data.alloys_relaxed import relaxed_default

    relaxed_default(small=True, progress=False)
    yield path
    if old is None:
        del os.environ["TNMAT_CACHE"]
    else:
        os.environ["TNMAT_CACHE"] = old


@pytest.fixture(scope="module")
def ce_model(cache, tmp_path_factory):
    model = tmp_path_factory.mktemp("model") / "ce.tnmat"
    assert main(["fit", "alloys-relaxed-small", "--model", "ce", "-q", "-o", str(model)]) == 0
    return model


def test_fit_ce_and_predict(ce_model, tmp_path, capsys):
    assert ce_model.is_file()
    preds = tmp_path / "p.csv"
    assert main(["predict", str(ce_model), "alloys-relaxed-small", "-q", "-o", str(preds)]) == 0
    rows = list(csv.DictReader(open(preds)))
    assert len(rows) == 18 and np.isfinite([float(r["predicted_mixing_energy_eV"]) for r in rows]).all()
    assert main(["fit", "alloys-relaxed-small", "--model", "ce", "--local"]) == 2
    assert "--local: not available with --model ce" in capsys.readouterr().err


def test_hull_command(ce_model, tmp_path, capsys):
    out = tmp_path / "hull.csv"
    assert main(["hull", str(ce_model), "--elements", "Cu,Ag,Au", "--max-atoms", "3", "-o", str(out), "-q",
                 "--reference", "alloys-relaxed-small"]) == 0
    text = capsys.readouterr().out
    rows = list(csv.DictReader(open(out)))
    assert len(rows) > 20 and sum(int(r["on_hull"]) for r in rows) >= 3
    assert out.with_suffix(".png").is_file()
    assert re.search(r"\d+ of \d+ ground states found", text)
    assert main(["hull", str(ce_model), "--elements", "Cu", "-o", str(out)]) == 2
    assert "--elements Cu" in capsys.readouterr().err


def test_ideal_sites_option_names_file_and_structure(cache, tmp_path, capsys):
    good = bulk("Cu", "fcc", a=3.6, cubic=True)
    good.symbols[[0]] = "Au"
    good.rattle(0.02, seed=1)
    frames = []
    for k in range(6):
        a = good.copy()
        a.symbols[[1 + k % 3]] = "Au"
        a.info["energy"] = -1.0 * len(a) - 0.01 * k
        frames.append(a)
    bad = bulk("Cu", "bcc", a=2.9, cubic=True).repeat((2, 1, 1))
    bad.info["energy"] = -4.0
    path = tmp_path / "dft.extxyz"
    write(path, [*frames[:3], bad, *frames[3:]])
    assert main(["fit", str(path), "--model", "ce", "--ideal-sites", "fcc", "-q"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: structure 3 (Cu4): " in err and err.count("\n") == 1


def test_learning_curve_with_the_cluster_expansion(cache, tmp_path, capsys):
    args = ["learning-curve", "alloys-relaxed-small", "--models", "ce", "--sizes", "8", "--splits", "1",
            "--test-size", "4", "--results", str(tmp_path / "lc.sqlite"), "--out-dir", str(tmp_path / "lc"), "-q"]
    assert main(args) == 0
    assert "0 failed" in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "lc" / "learning_curve.csv")))
    assert [r["model"] for r in rows] == ["ce"] and float(rows[0]["rmse_mean"]) > 0
