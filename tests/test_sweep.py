"""Sweeping (DMRG-style) fitter: exact recovery, monotone local solves, truncation, dense = factorised, local."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnmat.compression import tt_svd
from tnmat.networks import MERA, MPO, MPS, TTN
from tnmat.training.sweep import SweepConfig, sweep_fit
from tnmat.training.sweep.chain import ChainSweeper, _Env
from tnmat.training.sweep.data import EXACT_TT_TOL, SweepData
from tnmat.training.sweep.solve import regularised_loss, ridge_local_solve, truncated_split

EXACT = dict(alphas=(0.0,), alpha_selection="fixed", svd_cutoff=1e-10, tol=1e-6)


def _planted(cls, sizes, bond, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    true = cls(sizes, bond, dtype=torch.float64, seed=seed + 1)
    x = torch.randn(n, *sizes, generator=g, dtype=torch.float64)
    xv = torch.randn(64, *sizes, generator=g, dtype=torch.float64)
    with torch.no_grad():
        return true, SweepData(x, true(x)), SweepData(xv, true(xv))


@pytest.mark.parametrize("cls,sizes,bond,cap,n", [
    (MPS, (3, 3, 3, 3), 2, 9, 300),
    (TTN, (3, 3, 3, 3), 2, 9, 300),
    (TTN, (2, 3, 2, 2, 3), 3, 6, 400),  # padded to 8 leaves, three layers
    (MPO, (2, 3, 3, 2), 2, 6, 1500),
])
def test_exact_recovery_of_planted_network(cls, sizes, bond, cap, n):
    true, train, val = _planted(cls, sizes, bond, n)
    net = cls(sizes, cap, dtype=torch.float64, seed=7)
    res = sweep_fit(net, train, val, SweepConfig(max_bond_dim=cap, n_sweeps=8, **EXACT))
    with torch.no_grad():
        pred = res.network(val.x) + res.intercept
    assert float((pred - val.y).abs().max()) < 1e-8
    if cls is not MPO:  # a linear model's weight tensor is identified; the MPO only up to T -> T^T
        np.testing.assert_allclose(res.network.to_dense(), true.to_dense(), atol=1e-8)
    assert max(res.bond_dims) <= cap


def test_local_solves_never_increase_the_regularised_loss_and_gauge_is_global():
    true, train, _ = _planted(MPS, (3, 2, 3, 2, 3), 3, 200, seed=3)
    noisy = SweepData(train.x, train.y + 0.3 * torch.randn(len(train.y), generator=torch.Generator().manual_seed(1),
                                                            dtype=torch.float64))
    net = MPS((3, 2, 3, 2, 3), 4, dtype=torch.float64, seed=5)
    sw = ChainSweeper([c.detach() for c in net.cores], net.sizes, 1, [noisy], max_bond=4, cutoff=0.0)
    lam, b_prev, checks = 0.7, [0.0], []

    def solve(phis, step):
        phi = phis[0].reshape(phis[0].shape[0], -1)
        m_now = step["current"]  # the merged pair, or (re-solve after the split) the core carrying the norm
        if step["stage"] == "pair":
            assert torch.equal(m_now, sw.merged(step["site"]).reshape(-1))
        # gauge: the whole norm sits on the tensor being solved
        w = MPS((3, 2, 3, 2, 3), 1, dtype=torch.float64)
        w.cores = torch.nn.ParameterList([torch.nn.Parameter(c) for c in sw.cores])
        checks.append(abs(float(w.to_dense().norm()) - float(m_now.norm())))
        before = regularised_loss(phi, noisy.y, m_now, b_prev[0], lam)
        sol = ridge_local_solve(phi, noisy.y, [lam], select="fixed")
        after = regularised_loss(phi, noisy.y, sol.m, sol.intercept, lam)
        assert after <= before * (1 + 1e-12) + 1e-12
        b_prev[0] = sol.intercept
        return sol.m.reshape(phis[0].shape[1:]), sol.intercept

    for d in ("right", "left", "right", "left"):
        sw.run_pass(d, solve)
    assert max(checks) < 1e-10


def test_truncated_split_honours_cap_and_cutoff():
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(10, 10, generator=g, dtype=torch.float64))
    s = torch.tensor([1.0, 0.5, 0.1, 1e-3, 1e-6, 1e-9] + [0.0] * 4, dtype=torch.float64)
    mat = u[:, :10] @ torch.diag(s) @ v.T
    left, right, disc = truncated_split(mat, 10, 1e-4, absorb="right")
    assert left.shape[1] == 4  # 1, .5, .1, 1e-3 exceed 1e-4
    np.testing.assert_allclose(left.T @ left, torch.eye(4, dtype=torch.float64), atol=1e-12)  # isometric
    assert disc == pytest.approx(float((s[4:] ** 2).sum() / (s**2).sum()))
    left, right, _ = truncated_split(mat, 2, 0.0, absorb="left")
    assert left.shape[1] == 2
    np.testing.assert_allclose(right @ right.T, torch.eye(2, dtype=torch.float64), atol=1e-12)
    # in a sweep: a bond-3 target fitted with cap 2 never exceeds 2
    _, train, val = _planted(MPS, (3, 3, 3, 3), 3, 200)
    res = sweep_fit(MPS((3, 3, 3, 3), 2, dtype=torch.float64, seed=1), train, val,
                    SweepConfig(max_bond_dim=2, n_sweeps=3, **EXACT))
    assert max(max(b) for b in res.history["selection"]["bond_dims"]) <= 2


@pytest.mark.parametrize("copies", [1, 2])
def test_dense_and_factorised_inputs_give_the_same_solve(copies):
    cls = MPS if copies == 1 else MPO
    sizes = (2, 3, 2, 3)
    _, train, val = _planted(cls, sizes, 2, 150, seed=4)
    cores = tt_svd(train.x, tol=EXACT_TT_TOL)
    assert max(c.shape[-1] for c in cores) > 1
    net = cls(sizes, 3, dtype=torch.float64, seed=2)
    init = [c.detach() for c in net.cores]
    if copies == 1:  # the environments themselves: the dense and factorised paths agree
        envs = [_Env(SweepData(train.x, train.y), 1, list(sizes)), _Env(SweepData(cores, train.y), 1, list(sizes))]
        sw = ChainSweeper(init, sizes, 1, [train], max_bond=3, cutoff=0.0)
        for e in envs:
            e.start(sw.cores, "right")
        torch.testing.assert_close(envs[0].phi(0, "right"), envs[1].phi(0, "right"), atol=1e-10, rtol=0)
    cfg = SweepConfig(max_bond_dim=3, n_sweeps=3, alphas=(0.1,), alpha_selection="fixed", svd_cutoff=0.0)
    fits = []
    for x in (train.x, cores):
        net = cls(sizes, 3, dtype=torch.float64, seed=2)
        res = sweep_fit(net, SweepData(x, train.y), None, cfg)
        with torch.no_grad():
            fits.append(res.network(val.x) + res.intercept)
    torch.testing.assert_close(fits[0], fits[1], atol=1e-10, rtol=0)


@pytest.mark.parametrize("cls", [MPS, MPO, TTN])
def test_local_model_structure_prediction_is_the_mean_of_atom_predictions(cls):
    g = torch.Generator().manual_seed(0)
    sizes = (2, 3, 2)
    counts = torch.randint(1, 5, (60,), generator=g)
    groups = torch.repeat_interleave(torch.arange(60), counts)
    x = torch.randn(len(groups), *sizes, generator=g, dtype=torch.float64)
    y = torch.randn(60, generator=g, dtype=torch.float64)
    for data in (SweepData(x, y, groups), SweepData(tt_svd(x, tol=EXACT_TT_TOL), y, groups)):
        net = cls(sizes, 3, dtype=torch.float64, seed=1)
        res = sweep_fit(net, data, None, SweepConfig(max_bond_dim=3, n_sweeps=2, alphas=(1.0,),
                                                    alpha_selection="fixed"))
        with torch.no_grad():
            atom = res.network(x) + res.intercept
        per_structure = torch.zeros(60, dtype=torch.float64).index_add_(0, groups, atom) / counts
        rmse = float(torch.sqrt(((per_structure - y) ** 2).mean()))
        # the fitter's own training error is computed from atom-averaged local features
        # (of the returned pass: the best one, which need not be the last)
        assert rmse == pytest.approx(res.history["selection"]["train_rmse"][res.history["best_pass"] - 1], rel=1e-10)


def test_validation_selection_refit_and_history():
    _, train, val = _planted(MPS, (3, 3, 3, 3), 2, 200, seed=9)
    noisy = SweepData(train.x, train.y + 0.05 * torch.randn(200, generator=torch.Generator().manual_seed(2),
                                                             dtype=torch.float64))
    both = SweepData(torch.cat([noisy.x, val.x]), torch.cat([noisy.y, val.y]))
    net = MPS((3, 3, 3, 3), 4, dtype=torch.float64, seed=1)
    res = sweep_fit(net, noisy, val, SweepConfig(max_bond_dim=4, n_sweeps=6), refit_data=both)
    sel = res.history["selection"]
    assert len(sel["val_rmse"]) >= 1 and len(sel["val_rmse"]) == len(sel["bond_dims"]) == len(sel["seconds"])
    assert "refit" in res.history and "refitted" in res.stop_reason
    assert res.n_passes == res.history["best_pass"] == len(res.history["refit"]["train_rmse"])
    assert all(lam in SweepConfig().alphas for lam in sel["lambdas"])


def test_mera_is_refused_with_the_reason():
    _, train, _ = _planted(MPS, (2, 2, 2, 2), 2, 20)
    with pytest.raises(ValueError, match="MERA cannot be sweep-fitted"):
        sweep_fit(MERA((2, 2, 2, 2), 2, dtype=torch.float64), train)


def test_gcv_matches_leave_one_out_free_formula_on_a_linear_problem():
    # GCV of the local solve equals n RSS / (n - dof)^2 with dof = tr(H) of the centred ridge smoother
    g = torch.Generator().manual_seed(0)
    phi = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = torch.randn(40, generator=g, dtype=torch.float64)
    lam = 0.3
    sol = ridge_local_solve(phi, y, [lam], select="gcv")
    pc, yc = phi - phi.mean(0), y - y.mean()
    h = pc @ torch.linalg.solve(pc.T @ pc + lam * torch.eye(6, dtype=torch.float64), pc.T)
    rss = float(((yc - h @ yc) ** 2).sum())
    dof = float(torch.trace(h)) + 1
    assert sol.gcv == pytest.approx(40 * rss / (40 - dof) ** 2, rel=1e-10)
    np.testing.assert_allclose(sol.m, torch.linalg.solve(pc.T @ pc + lam * torch.eye(6, dtype=torch.float64),
                                                         pc.T @ yc), atol=1e-12)
    # dual form (more unknowns than rows) gives the same ridge solution
    wide = torch.randn(10, 30, generator=g, dtype=torch.float64)
    yw = torch.randn(10, generator=g, dtype=torch.float64)
    sw = ridge_local_solve(wide, yw, [lam], select="fixed")
    wc = wide - wide.mean(0)
    ref = torch.linalg.solve(wc.T @ wc + lam * torch.eye(30, dtype=torch.float64), wc.T @ (yw - yw.mean()))
    np.testing.assert_allclose(sw.m, ref, atol=1e-10)
