"""solver="sweep" in the tensor-network estimators: round trip, bond dimensions, local models, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnmat import LegTensor
from tnmat.entanglement import entanglement_entropy, network_state
from tnmat.training import load_estimator
from tnmat.training.estimators import DenseACERegressor, MERARegressor, MPORegressor, MPSRegressor, TTNRegressor


def _data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3, 2, 3))
    w = np.einsum("a,b,c->abc", *(rng.normal(size=d) for d in (3, 2, 3)))
    return x, np.einsum("nabc,abc->n", x, w) + 0.05 * rng.normal(size=n)


@pytest.mark.parametrize("cls", [MPSRegressor, MPORegressor, TTNRegressor, DenseACERegressor])
def test_sweep_fitted_estimator_save_load_round_trip(cls, tmp_path):
    x, y = _data()
    kw = {} if cls is DenseACERegressor else {"bond_dim": 4}
    est = cls(solver="sweep", dtype="float64", random_state=0, **kw).fit(x, y)
    path = est.save(tmp_path / "m.pt")
    back = load_estimator(path)
    assert type(back) is cls and back.solver == "sweep"
    np.testing.assert_allclose(back.predict(x), est.predict(x), atol=1e-12)
    assert back.bond_dims_ == est.bond_dims_
    assert all(p.is_contiguous() for p in est.network_.parameters())
    if cls is not DenseACERegressor:
        assert max(est.bond_dims_) <= 4 and len(est.history_["train_rmse"]) == est.n_epochs_


def test_sweep_adapts_bond_dimension_and_entanglement_tools_work():
    x, y = _data()
    est = MPSRegressor(solver="sweep", bond_dim=6, dtype="float64", random_state=0).fit(x, y)
    # a rank-one (product) target: the cutoff keeps only what the data support, far below the cap
    assert max(est.bond_dims_) < 6
    assert est.history_["bond_dims"][-1] == est.bond_dims_ or "refit_train_rmse" in est.history_
    cores = network_state(est.network_)
    assert [c.shape[-1] for c in cores[:-1]] == est.bond_dims_
    assert entanglement_entropy(cores, [0]) >= 0.0
    assert est.score(x, y) > 0.95


def test_local_sweep_model_predicts_the_mean_of_its_atoms():
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 5, size=80)
    sidx = np.repeat(np.arange(80), counts)
    vals = rng.normal(size=(len(sidx), 3, 2, 3))
    y = rng.normal(size=80)
    X = LegTensor(torch.as_tensor(vals), ("a", "b", "c"), structure_index=torch.as_tensor(sidx))
    est = MPORegressor(solver="sweep", bond_dim=3, dtype="float64", random_state=0).fit(X, y)
    atoms = LegTensor(torch.as_tensor(vals), ("a", "b", "c"), structure_index=torch.arange(len(sidx)))
    per_atom = est.predict(atoms)
    mean = np.bincount(sidx, weights=per_atom) / counts
    np.testing.assert_allclose(est.predict(X), mean, atol=1e-10)


def test_sweep_parameters_are_checked():
    x, y = _data(40)
    with pytest.raises(ValueError, match="solver='sweep' does not apply to the MERA"):
        MERARegressor(solver="sweep").fit(x, y)
    with pytest.raises(ValueError, match="solver="):
        MPSRegressor(solver="lbfgs").fit(x, y)
    with pytest.raises(ValueError, match="svd_cutoff"):
        MPSRegressor(solver="sweep", svd_cutoff=2.0).fit(x, y)
    with pytest.raises(ValueError, match="alphas"):
        MPSRegressor(solver="sweep", alphas=[-1.0]).fit(x, y)


def test_auto_is_the_default_and_resolves_per_network():
    from tnmat.training.params import resolve_loss, resolve_solver

    assert MPSRegressor().solver == "auto" and MPORegressor().get_params()["loss"] == "auto"
    assert [resolve_solver(k, "auto") for k in ("mps", "mpo", "ttn", "dense", "mera", "feature-map-mps")] == \
        ["sweep"] * 4 + ["adam"] * 2
    assert resolve_loss("sweep", "auto") == "huber" and resolve_loss("adam", "auto") == "squared_error"
