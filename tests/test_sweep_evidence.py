"""Ridge strength by the Bayesian evidence (sweep_solve, ``select="evidence"``).

Independent reference: the Gaussian log marginal likelihood computed directly from the n x n covariance
s^2 (I + Phi Phi^T / lam) with a Cholesky factor, its noise variance s^2 maximised in closed form; the
closed-form eigenvalue score of the solver must equal it (up to one constant) for every lam, for the
primal (p <= n) and the dual (p > n) branch.  Data drawn from the model with a known prior precision must
get that precision back from the grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tnmat.networks import TTN
from tnmat.training.estimators import DenseACERegressor, MPSRegressor
from tnmat.training.sweep import SweepConfig, sweep_fit
from tnmat.training.sweep.data import SweepData
from tnmat.training.sweep.solve import _neg_log_evidence, ridge_local_solve

LAMS = torch.logspace(-3, 3, 13, dtype=torch.float64)


def _direct_score(phi: torch.Tensor, y: torch.Tensor, lam: float) -> float:
    """-2 log p(y | lam) up to the constant n (1 + log 2 pi), noise variance at its maximum-likelihood value."""
    n = len(y)
    c0 = torch.eye(n, dtype=torch.float64) + phi @ phi.T / lam
    chol = torch.linalg.cholesky(c0)
    z = torch.cholesky_solve(y[:, None], chol)[:, 0]
    s2 = float(y @ z) / n
    return n * math.log(s2) + 2 * float(torch.log(torch.diagonal(chol)).sum())


def _eig_score(phi: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    n, p = phi.shape
    if p <= n:
        e, v = torch.linalg.eigh(phi.T @ phi)
        proj = v.T @ (phi.T @ y) / e.clamp_min(1e-300).sqrt()
    else:
        e, u = torch.linalg.eigh(phi @ phi.T)
        proj = u.T @ y
    keep = e > 1e-12 * float(e.max())
    return _neg_log_evidence(e[keep], proj[keep], float(y @ y), LAMS, n)


@pytest.mark.parametrize("p", [6, 90])  # primal and dual branches
def test_evidence_score_equals_the_direct_marginal_likelihood(p: int) -> None:
    g = torch.Generator().manual_seed(p)
    phi = torch.randn(40, p, generator=g, dtype=torch.float64)
    y = phi @ torch.randn(p, generator=g, dtype=torch.float64) * 0.3 + torch.randn(40, generator=g,
                                                                                     dtype=torch.float64)
    fast = _eig_score(phi, y)
    direct = torch.tensor([_direct_score(phi, y, float(lam)) for lam in LAMS], dtype=torch.float64)
    # equal up to one lam-independent constant (the solver drops n log n); scores of order 1e2 from a Cholesky
    # and an eigendecomposition agree to about 1e-11 relative, which is 1.4e-9 absolute on some BLAS builds
    assert torch.allclose(fast - fast[0], direct - direct[0], atol=1e-8, rtol=0)


def test_evidence_recovers_the_prior_precision_of_the_generating_model() -> None:
    """y = Phi m + noise with m ~ N(0, s^2 / lam_true I): the evidence picks lam_true from the grid."""
    rng = np.random.default_rng(0)
    n, p, lam_true, s = 4000, 30, 10.0, 0.5
    phi = torch.as_tensor(rng.normal(size=(n, p)))
    m = torch.as_tensor(rng.normal(scale=s / lam_true**0.5, size=p))
    y = phi @ m + torch.as_tensor(rng.normal(scale=s, size=n))
    sol = ridge_local_solve(phi, y, [1.0, 3.16, 10.0, 31.6, 100.0], select="evidence", fit_intercept=False)
    assert sol.lam == 10.0


def test_evidence_with_an_intercept_is_shift_invariant() -> None:
    g = torch.Generator().manual_seed(3)
    phi = torch.randn(60, 8, generator=g, dtype=torch.float64)
    y = phi @ torch.randn(8, generator=g, dtype=torch.float64) + 0.4 * torch.randn(60, generator=g,
                                                                                   dtype=torch.float64)
    a = ridge_local_solve(phi, y, LAMS.tolist(), select="evidence")
    b = ridge_local_solve(phi + 5.0, y - 7.0, LAMS.tolist(), select="evidence")
    assert a.lam == b.lam
    assert torch.allclose(a.m, b.m, atol=1e-10)


def test_sweep_with_evidence_recovers_a_planted_ttn() -> None:
    """Noise-free target of a known bond-2 TTN: the evidence drives lam to the grid's floor and the sweep
    reproduces the target to 1e-8 (relative RMSE)."""
    g = torch.Generator().manual_seed(0)
    sizes = (3, 3, 3, 3)
    true = TTN(sizes, 2, dtype=torch.float64, seed=5)
    x = torch.randn(300, *sizes, generator=g, dtype=torch.float64)
    with torch.no_grad():
        y = true(x)
    cfg = SweepConfig(max_bond_dim=9, n_sweeps=8, alphas=(1e-12, 1e-6, 1e-2, 1.0), alpha_selection="evidence",
                      svd_cutoff=1e-10, tol=1e-6, fit_intercept=False)
    res = sweep_fit(TTN(sizes, 9, dtype=torch.float64, seed=1), SweepData(x, y), None, cfg)
    with torch.no_grad():
        err = float(torch.sqrt(((res.network(x) + res.intercept - y) ** 2).mean()) / y.std())
    assert err < 1e-8


def test_estimators_validate_and_use_alpha_selection() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 3, 4))
    y = np.einsum("nab,ab->n", x, rng.normal(size=(3, 4))) + 0.1 * rng.normal(size=80)
    with pytest.raises(ValueError, match="alpha_selection"):
        MPSRegressor(solver="sweep", alpha_selection="aic").fit(x, y)
    est = MPSRegressor(solver="sweep", bond_dim=3, dtype="float64", alpha_selection="evidence",
                       random_state=0).fit(x, y)
    dense = DenseACERegressor(solver="sweep", dtype="float64", alpha_selection="evidence").fit(x, y)
    for model in (est, dense):
        assert np.sqrt(np.mean((model.predict(x) - y) ** 2)) < 0.15
