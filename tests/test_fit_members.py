"""``tnmat fit --members K`` and ``--alpha-selection``: the merged ensemble saved as one network predicts, on
the structures, exactly the mean of K separately fitted networks with the same seeds and settings."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from tnmat.cli import main
from tnmat.data import embedded_default
from tnmat.experiments.splits import holdout_split, official_test
from tnmat.model import StructureModel
from tnmat.training.estimators import TTNRegressor

SETTINGS = ["--n-max", "2", "--l-max", "2", "--bond-dim", "3", "-q"]


def test_members_model_is_the_python_ensemble(tmp_path, capsys):
    model = tmp_path / "ens.tnmat"
    assert main(["fit", "alloys-small", "--members", "2", *SETTINGS, "-o", str(model)]) == 0
    assert "mean of 2 sweep fits" in capsys.readouterr().out
    saved = StructureModel.load(model)
    ds = embedded_default(small=True)
    train, _ = holdout_split(len(ds), official=official_test(ds.metadata.get("split")), seed=0)
    X = saved.descriptor.compute(ds.structures, average=True)
    ref = TTNRegressor(bond_dim=3, solver="sweep", validation_fraction=0.0, alpha_selection="evidence",
                       n_members=2, random_state=0, loss="huber",  # the command line's default loss
                       ).fit(X.select(train), ds.targets["mixing_energy"][train])
    preds = tmp_path / "p.csv"
    assert main(["predict", str(model), "alloys-small", "-q", "-o", str(preds)]) == 0
    got = np.array([float(r["predicted_mixing_energy_eV"]) for r in csv.DictReader(open(preds))])
    np.testing.assert_allclose(got, ref.predict(X), rtol=0, atol=1e-7)  # the CSV keeps 8 decimals (eV)
    assert saved.regressor.bond_dims_ == ref.bond_dims_
    assert all(b <= m1 + m2 for b, m1, m2 in zip(ref.bond_dims_, *ref.history_["member_bond_dims"], strict=True))


def test_evidence_allows_no_validation_part(capsys):
    assert main(["fit", "alloys-small", "--alpha-selection", "evidence", "--validation-fraction", "0",
                 *SETTINGS]) == 0
    assert "validation none" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--members", "2", "--model", "mpo"], "--members 2: needs --model mps or ttn"),
    (["--members", "2", "--solver", "adam"], "--members 2 applies to --solver sweep only"),
    (["--members", "0"], "--members 0: must be an integer >= 1"),
    (["--alpha-selection", "validation", "--solver", "adam"], "applies to --solver sweep only"),
    (["--validation-fraction", "0", "--alpha-selection", "validation"], "or --alpha-selection evidence"),
])
def test_bad_member_options_are_refused_before_work(args, message, capsys):
    assert main(["fit", "alloys-small", *args, *SETTINGS]) == 2
    assert message in capsys.readouterr().err


def test_loss_huber_model_is_the_python_estimator(tmp_path, capsys):
    model = tmp_path / "huber.tnmat"
    assert main(["fit", "alloys-small", "--loss", "huber", "--huber-delta", "0.1", *SETTINGS, "-o", str(model)]) == 0
    saved = StructureModel.load(model)
    assert saved.regressor.get_params()["loss"] == "huber" and saved.regressor.get_params()["huber_delta"] == 0.1
    ds = embedded_default(small=True)
    train, _ = holdout_split(len(ds), official=official_test(ds.metadata.get("split")), seed=0)
    X = saved.descriptor.compute(ds.structures, average=True)
    ref = TTNRegressor(bond_dim=3, solver="sweep", loss="huber", huber_delta=0.1, random_state=0).fit(
        X.select(train), ds.targets["mixing_energy"][train])
    # float32 networks (the default dtype), and the reweighting amplifies last-bit input differences: 1e-6 eV
    np.testing.assert_allclose(saved.regressor.predict(X), ref.predict(X), rtol=0, atol=1e-6)
    y = ds.targets["mixing_energy"][train]
    sq = TTNRegressor(bond_dim=3, solver="sweep", loss="squared_error", random_state=0).fit(X.select(train), y)
    assert np.abs(sq.predict(X) - ref.predict(X)).max() > 1e-4  # the loss option reached the fit


@pytest.mark.parametrize("args, message", [
    (["--loss", "huber", "--solver", "adam"], "--loss huber applies to --solver sweep only"),
    (["--loss", "huber", "--huber-delta", "0"], "--huber-delta 0.0: must be a finite number in (0, inf)"),
])
def test_bad_loss_options_are_refused_before_work(args, message, capsys):
    assert main(["fit", "alloys-small", *args, *SETTINGS]) == 2
    assert message in capsys.readouterr().err
