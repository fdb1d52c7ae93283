"""The entanglement bond sweep (paper Fig. 14) with sweep-fitted networks: solver="sweep" enters the task keys
(stored Adam fits keep theirs), the fitted networks honour the bond cap, and their entropies obey the
min-cut bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tnmat.experiments import entanglement as ex
from tnmat.experiments.runner import GridOptions
from tnmat.experiments.store import ResultStore, config_key
from tnmat.legtensor import LegTensor

LEGS = ("a1", "a2", "n1", "n2", "l")


def _data(n: int = 60, d: int = 2, seed: int = 0) -> tuple[LegTensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *(d,) * 5))
    w = rng.standard_normal((d,) * 5)
    return LegTensor(torch.from_numpy(x), LEGS), np.einsum("bijklm,ijklm->b", x, w) * 0.01


def test_adam_keys_unchanged_and_sweep_keys_distinct():
    adam = ex.SweepSettings(train_sizes=(12,), n_splits=1, chis=(2,), solver="adam")
    sweep = ex.SweepSettings(train_sizes=(12,), n_splits=1, chis=(2,), solver="sweep")
    assert "solver" not in adam.training("mps") and sweep.training("mps")["solver"] == "sweep"
    auto = ex.SweepSettings(train_sizes=(12,), n_splits=1, chis=(2,))
    assert "max_epochs" not in auto.training("mps") and auto.training("mps")["loss"] == "huber"
    assert auto.training("mera") == adam.training("mera")  # "auto" is Adam for the MERA: the same keys
    ka = {config_key(t) for t in ex.bond_sweep_tasks(adam, dataset="toy")}
    ks = {config_key(t) for t in ex.bond_sweep_tasks(sweep, dataset="toy")}
    assert not ka & ks


def test_sweep_fitted_bond_sweep_honours_the_cap_and_min_cut(tmp_path):
    X, y = _data()
    settings = ex.SweepSettings(train_sizes=(40,), n_splits=2, test_size=20, chis=(1, 2), models=("mps", "ttn"),
                                dtype="float64", solver="sweep")
    summary = ex.run_bond_sweep(X, y, settings, store=ResultStore(tmp_path / "s.sqlite"), dataset="toy",
                                options=GridOptions(progress=False))
    assert summary["n_failed"] == 0 and summary["n_fitted"] == 2 * 2 * 2
    for r in ResultStore(tmp_path / "s.sqlite").results(experiment=ex.SWEEP_EXPERIMENT):
        assert r["params"]["solver"] == "sweep"
        for e in r["metrics"]["entanglement"].values():
            assert -1e-12 <= e["entropy"] <= e["min_cut"] + 1e-9
            assert e["min_cut"] <= math.log(min(e["d_a"], e["d_b"])) + 1e-12
            if r["model"] == "mps" and r["params"]["bond_dim"] == 1:  # the cap holds: a product state
                assert e["min_cut"] == pytest.approx(0.0, abs=1e-12) and e["entropy"] == pytest.approx(0.0, abs=1e-9)
            assert sum(v * v for v in e["schmidt"]) == pytest.approx(1.0)
