"""The Huber loss of the sweep fitter (iteratively reweighted least squares): weighted local solves are
row duplication, the fixed point is the stationary point of the Huber objective, planted outliers do not
pull the fit, and the estimators validate, record and save the setting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnmat.networks import MPS, TTN
from tnmat.training.estimators import DenseACERegressor, MPSRegressor, TTNRegressor
from tnmat.training.sweep import SweepConfig, huber_loss, huber_weights, sweep_fit
from tnmat.training.sweep.data import SweepData
from tnmat.training.sweep.solve import LocalRows, regularised_loss, ridge_local_solve


def test_integer_row_weights_equal_duplicated_rows():
    g = torch.Generator().manual_seed(0)
    for p in (5, 40):  # primal and dual branches
        phi = torch.randn(12, p, generator=g, dtype=torch.float64)
        y = torch.randn(12, generator=g, dtype=torch.float64)
        k = torch.randint(1, 4, (12,), generator=g)
        rep = torch.repeat_interleave(torch.arange(12), k)
        # (the evidence is not compared: it counts rows, and k copies are k noisy observations, not one
        # observation with noise variance s^2 / k)
        a = ridge_local_solve(phi, y, [0.3], select="fixed", weights=k.double())
        b = ridge_local_solve(phi[rep], y[rep], [0.3], select="fixed")
        torch.testing.assert_close(a.m, b.m, rtol=1e-8, atol=1e-9)
        assert abs(a.intercept - b.intercept) < 1e-9
        assert abs(a.train_mse - b.train_mse) < 1e-10
    with pytest.raises(ValueError, match="finite positive"):
        ridge_local_solve(phi, y, [1.0], select="fixed", weights=torch.zeros(12))


def test_weighted_validation_choice_is_the_weighted_mse():
    g = torch.Generator().manual_seed(1)
    phi, y = torch.randn(30, 6, generator=g, dtype=torch.float64), torch.randn(30, generator=g, dtype=torch.float64)
    pv, yv = torch.randn(9, 6, generator=g, dtype=torch.float64), torch.randn(9, generator=g, dtype=torch.float64)
    wv = torch.rand(9, generator=g, dtype=torch.float64) + 0.1
    lams = [0.01, 1.0, 100.0]
    sol = ridge_local_solve(phi, y, lams, select="validation", val=LocalRows(pv, yv, wv))
    scores = []
    for lam in lams:
        s = ridge_local_solve(phi, y, [lam], select="fixed")
        scores.append(float((wv * (pv @ s.m + s.intercept - yv) ** 2).sum() / wv.sum()))
    assert sol.lam == lams[int(np.argmin(scores))]
    assert abs(sol.val_mse - min(scores)) < 1e-12


def _outlier_data(sizes, n, seed, frac=0.1):
    """A planted bond-2 MPS target with small noise, and a fraction of rows shifted by +-20 (gross outliers)."""
    g = torch.Generator().manual_seed(seed)
    true = MPS(sizes, 2, dtype=torch.float64, seed=seed + 1)
    x = torch.randn(n, *sizes, generator=g, dtype=torch.float64)
    with torch.no_grad():
        clean = true(x)
    clean = clean / clean.std()
    y = clean + 0.01 * torch.randn(n, generator=g, dtype=torch.float64)
    bad = torch.randperm(n, generator=g)[: int(frac * n)]
    y[bad] += 20.0 * torch.sign(torch.randn(len(bad), generator=g, dtype=torch.float64))
    return x, y, clean


@pytest.mark.parametrize("cls", [MPS, TTN])
def test_huber_sweeps_ignore_planted_outliers_that_pull_least_squares(cls):
    sizes = (3, 3, 3, 3)
    x, y, clean = _outlier_data(sizes, 400, seed=2)
    errs = {}
    for loss in ("squared_error", "huber"):
        net = cls(sizes, 4, dtype=torch.float64, seed=7)
        cfg = SweepConfig(max_bond_dim=4, n_sweeps=12, alphas=(1e-3,), alpha_selection="fixed", loss=loss,
                          huber_delta=0.1, tol=0.0, patience=12)
        res = sweep_fit(net, SweepData(x, y), None, cfg)
        with torch.no_grad():
            errs[loss] = float(((res.network(x) + res.intercept - clean) ** 2).mean().sqrt())
    # least squares is pulled by the 40 outliers (rms shift 20 * sqrt(0.1) ~ 6 spread over 81 weights);
    # the Huber fit sees them with weight ~ 0.1 / 20 and recovers the clean target
    assert errs["squared_error"] > 0.5
    assert errs["huber"] < 0.05, errs


def test_dense_huber_reaches_the_stationary_point_of_the_huber_objective():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(300, 6, generator=g, dtype=torch.float64)
    beta = torch.randn(6, generator=g, dtype=torch.float64)
    y = x @ beta + 0.3 * torch.randn(300, generator=g, dtype=torch.float64) ** 3  # heavy-tailed noise
    lam, delta = 0.5, 0.2
    est = DenseACERegressor(solver="sweep", alphas=[lam], n_sweeps=60, loss="huber", huber_delta=delta,
                            validation_fraction=0.0, standardize_inputs=False, standardize_target=False,
                            dtype="float64").fit(x.numpy(), y.numpy())
    m = next(est.network_.parameters()).detach().reshape(-1)
    r = x @ m + float(est.intercept_) - y
    # d/dm [sum_b rho(r_b) + lam/2 ||m||^2] = sum_b psi(r_b) phi_b + lam m = 0, psi(r) = r min(1, delta/|r|)
    psi = r * huber_weights(r, delta)
    grad = x.T @ psi + lam * m
    assert float(grad.abs().max()) < 1e-6 * float((x.T @ r).abs().max())
    assert abs(float(psi.sum())) < 1e-8  # the intercept's stationarity
    # and it is a minimum: perturbations raise the objective
    def obj(mm: torch.Tensor) -> float:
        return float(huber_loss(x @ mm + float(est.intercept_) - y, delta)) * len(y) + lam / 2 * float(mm @ mm)

    for _ in range(5):
        assert obj(m + 1e-3 * torch.randn(6, generator=g, dtype=torch.float64)) > obj(m)


def test_each_reweighted_local_solve_never_increases_its_weighted_regularised_loss():
    x, y, _ = _outlier_data((3, 2, 3), 200, seed=4)
    phi_rows = x.reshape(200, -1)
    w = huber_weights(torch.randn(200, generator=torch.Generator().manual_seed(5), dtype=torch.float64), 0.3)
    sol = ridge_local_solve(phi_rows, y, [0.7], select="fixed", weights=w)
    best = regularised_loss(phi_rows, y, sol.m, sol.intercept, 0.7, w)
    g = torch.Generator().manual_seed(6)
    for _ in range(10):
        m2 = sol.m + 1e-2 * torch.randn(sol.m.shape, generator=g, dtype=torch.float64)
        assert regularised_loss(phi_rows, y, m2, sol.intercept, 0.7, w) >= best


def test_estimators_validate_record_and_save_the_loss(tmp_path):
    x, y, _ = _outlier_data((3, 3, 3), 120, seed=6)
    xs = x.numpy()
    with pytest.raises(ValueError, match="loss='absolute'"):
        MPSRegressor(solver="sweep", loss="absolute").fit(xs, y.numpy())
    with pytest.raises(ValueError, match="huber_delta=0"):
        MPSRegressor(solver="sweep", loss="huber", huber_delta=0).fit(xs, y.numpy())
    with pytest.raises(ValueError, match="solver='sweep' only"):
        MPSRegressor(solver="adam", loss="huber").fit(xs, y.numpy())
    est = TTNRegressor(solver="sweep", bond_dim=4, loss="huber", huber_delta=0.1, random_state=0,
                       dtype="float64").fit(xs, y.numpy())
    assert "Huber loss" in est.history_["stop_reason"][0] or "reached" in est.history_["stop_reason"][0]
    path = tmp_path / "huber.tnmat"
    est.save(path)
    back = TTNRegressor.load(path)
    assert back.get_params()["loss"] == "huber" and back.get_params()["huber_delta"] == 0.1
    np.testing.assert_allclose(back.predict(xs), est.predict(xs), rtol=0, atol=1e-10)


def test_huber_objective_never_increases_over_the_passes():
    """At a fixed strength each weighted solve minimises a majoriser of sum_b 2 rho(r_b) + lam ||W||^2 (rho
    the Huber function), so with untruncated bonds the objective cannot rise from pass to pass."""
    sizes, lam, delta = (3, 2, 3), 0.5, 0.1
    x, y, _ = _outlier_data(sizes, 150, seed=8, frac=0.2)
    objective = []
    for passes in range(6):  # 0: one least-squares pass, the reference
        net = MPS(sizes, 6, dtype=torch.float64, seed=9)  # bonds 3 and 3 are the full ranks: no truncation
        cfg = SweepConfig(max_bond_dim=6, n_sweeps=max(1, passes), alphas=(lam,), alpha_selection="fixed",
                          loss="huber" if passes else "squared_error", huber_delta=delta, tol=-1.0,
                          patience=max(1, passes), refine_solves=1)
        res = sweep_fit(net, SweepData(x, y), None, cfg)
        with torch.no_grad():
            r = res.network(x) + res.intercept - y
            w2 = float((res.network.to_dense() ** 2).sum())
        objective.append(2 * len(y) * float(huber_loss(r, delta)) + lam * w2)
    assert all(b <= a * (1 + 1e-10) for a, b in zip(objective[1:], objective[2:], strict=False)), objective
    assert objective[-1] < 0.8 * objective[0]  # well below the least-squares fit's Huber objective
