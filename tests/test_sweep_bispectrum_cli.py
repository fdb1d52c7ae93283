"""``tnmat fit --order 3 --factorised``: the CLI path of the factorised bispectrum."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from tnmat.cli import main
from tnmat.threads import limit_threads


def test_factorised_bispectrum_fit_save_predict(tmp_path, capsys):
    model = tmp_path / "b3.tnmat"
    args = ["fit", "alloys-small", "--order", "3", "--factorised", "--center-species", "--model", "mps",
            "--bond-dim", "3", "--sweeps", "2", "--n-max", "2", "--l-max", "1", "-q", "-o", str(model)]
    with limit_threads(1):
        assert main(args) == 0
        text = capsys.readouterr().out
        assert "factorised bispectrum" in text and "'c', 'a1', 'n1', 'l1'" in text
        test_mae = float(re.search(r"test\s+RMSE\s+\S+ meV/atom\s+MAE\s+(\S+)", text).group(1))
        preds = tmp_path / "p.csv"
        # predict contracts the dense bispectrum of the structures with the saved MPS
        assert main(["predict", str(model), "alloys-small", "-q", "-o", str(preds)]) == 0
    rows = list(csv.DictReader(open(preds)))
    from tnmat.model import StructureModel

    m = StructureModel.load(model)
    test_ids = set(m.info["split"]["test"])
    err = [abs(float(r["predicted_mixing_energy_eV"]) - float(r["mixing_energy_eV"])) for r in rows
           if r["id"] in test_ids]
    assert len(err) == len(test_ids) > 0
    assert np.mean(err) * 1000 == pytest.approx(test_mae, abs=0.006)


def test_factorised_members_merge_into_one_saved_mps(tmp_path, capsys):
    """--members 2 on the factorised bispectrum: evidence strengths, nothing held out, one merged MPS whose
    bonds are at most the members' sums; the saved model predicts what the fit reported."""
    model = tmp_path / "b3x2.tnmat"
    args = ["fit", "alloys-small", "--order", "3", "--factorised", "--model", "mps", "--members", "2",
            "--bond-dim", "3", "--sweeps", "2", "--n-max", "2", "--l-max", "1", "-q", "-o", str(model)]
    with limit_threads(1):
        assert main(args) == 0
    text = capsys.readouterr().out
    assert "none held out" in text and "mean of 2 sweep fits merged into one network" in text
    from tnmat.model import StructureModel

    reg = StructureModel.load(model).regressor
    members = reg.history_["member_bond_dims"]
    assert all(b <= m1 + m2 for b, m1, m2 in zip(reg.bond_dims_, *members, strict=True))


@pytest.mark.parametrize("bad, why", [(["--order", "2"], "--order 3"), (["--model", "ttn"], "--model mps"),
                                      (["--local"], "--local")])
def test_factorised_option_errors(bad, why, capsys):
    base = ["fit", "alloys-small", "--order", "3", "--factorised", "--model", "mps", "-q"]
    assert main(base + bad) == 2
    assert why in capsys.readouterr().err
