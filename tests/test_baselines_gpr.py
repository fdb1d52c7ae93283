"""GPR baselines: kernel identities, marginal-likelihood optimum against scikit-learn and Cholesky,
interpolation of noiseless smooth functions, invariances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone

from tnmat import LegTensor
from tnmat.baselines import GPRRegressor, SoapKernel, local_soap_kernel, soap_kernel
from tnmat.baselines.gpr import _nll_eig


def _per_atom(rng: np.random.Generator, n_struct: int, max_atoms: int, f: int) -> LegTensor:
    counts = rng.integers(1, max_atoms + 1, size=n_struct)
    sidx = np.repeat(np.arange(n_struct), counts)
    vals = rng.normal(size=(len(sidx), 2, f // 2)) + 0.5
    return LegTensor(torch.from_numpy(vals), ("a", "b"), structure_index=torch.from_numpy(sidx))


@pytest.mark.parametrize("zeta", [1, 2, 3])
def test_soap_kernel_symmetric_psd_unit_diagonal(zeta: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 7))  # negative entries on purpose: PSD must come from integer zeta
    K = soap_kernel(X, zeta=zeta)
    assert np.array_equal(K, K.T)
    assert np.allclose(np.diag(K), 1.0)
    assert np.linalg.eigvalsh(K).min() > -1e-10
    # independent reference: explicit cosine formula
    i, j = 3, 17
    ref = (X[i] @ X[j] / np.linalg.norm(X[i]) / np.linalg.norm(X[j])) ** zeta
    assert K[i, j] == pytest.approx(ref, rel=1e-12)
    # scale invariance of each row (the kernel sees directions only)
    assert np.allclose(soap_kernel(X * rng.uniform(0.1, 10, size=(40, 1)), zeta=zeta), K, atol=1e-12)
    assert np.allclose(SoapKernel(zeta)(X), K)


def test_soap_kernel_rejects_zero_row() -> None:
    X = np.ones((3, 4))
    X[1] = 0
    with pytest.raises(ValueError, match="row 1"):
        soap_kernel(X)


def test_marginal_likelihood_gradient_matches_finite_differences_and_cholesky() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 5))
    K0 = soap_kernel(X, zeta=2)
    y = rng.normal(size=30)
    lam, Q = np.linalg.eigh(K0)
    u2 = (Q.T @ y) ** 2
    theta = np.array([0.3, math.log(0.05)])
    nll, g = _nll_eig(theta, lam, u2)
    # value against a direct Cholesky evaluation of -log p(y)
    K = math.exp(theta[0]) * K0 + math.exp(theta[1]) * np.eye(30)
    L = np.linalg.cholesky(K)
    a = np.linalg.solve(K, y)
    ref = 0.5 * y @ a + np.log(np.diag(L)).sum() + 15 * math.log(2 * math.pi)
    assert nll == pytest.approx(ref, rel=1e-10)
    h = 1e-6
    for k in range(2):
        e = np.zeros(2)
        e[k] = h
        fd = (_nll_eig(theta + e, lam, u2)[0] - _nll_eig(theta - e, lam, u2)[0]) / (2 * h)
        assert g[k] == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_eigh_solver_matches_sklearn_optimum() -> None:
    rng = np.random.default_rng(2)
    X = np.abs(rng.normal(size=(80, 6))) + 0.2
    y = np.sin(3 * X[:, 0] / X.sum(1)) + 0.05 * rng.normal(size=80)
    a = GPRRegressor("soap", solver="eigh").fit(X[:60], y[:60])
    b = GPRRegressor("soap", solver="sklearn").fit(X[:60], y[:60])
    assert a.log_marginal_likelihood_value_ == pytest.approx(b.log_marginal_likelihood_value_, abs=1e-4)
    assert a.signal_variance_ == pytest.approx(b.signal_variance_, rel=1e-3)
    assert a.noise_variance_ == pytest.approx(b.noise_variance_, rel=1e-3)
    ma, sa = a.predict(X[60:], return_std=True)
    mb, sb = b.predict(X[60:], return_std=True)
    assert np.allclose(ma, mb, atol=1e-5)
    assert np.allclose(sa, sb, atol=1e-5)


def test_noiseless_smooth_function_is_interpolated_rbf() -> None:
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 1, size=(120, 2))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2
    m = GPRRegressor("rbf").fit(X[:100], y[:100])
    assert np.max(np.abs(m.predict(X[:100]) - y[:100])) < 1e-3 * np.std(y)  # passes through the data
    assert np.sqrt(np.mean((m.predict(X[100:]) - y[100:]) ** 2)) < 1e-2 * np.std(y)
    assert m.noise_variance_ < 1e-4


@pytest.mark.parametrize("zeta", [2, 3])
def test_soap_gpr_recovers_a_function_in_its_feature_space(zeta: int) -> None:
    # (u.u')^zeta is the Gram matrix of the degree-zeta tensor powers of the unit vector u, so any
    # y = <W, u^(x zeta)> (e.g. a quadratic form u^T A u for zeta = 2) is reproduced exactly from
    # enough noiseless samples, at held-out points too.  A constant is in the span for even zeta
    # (1 = |u|^zeta) but not for odd zeta, so the mean subtraction of normalize_y is switched off there.
    rng = np.random.default_rng(3)
    X = np.abs(rng.normal(size=(120, 3))) + 0.1
    u = X / np.linalg.norm(X, axis=1, keepdims=True)
    W = rng.normal(size=(3,) * zeta)
    y = np.einsum("ni,nj,ij->n", u, u, W) if zeta == 2 else np.einsum("ni,nj,nk,ijk->n", u, u, u, W)
    m = GPRRegressor("soap", zeta=zeta, normalize_y=zeta % 2 == 0).fit(X[:60], y[:60])
    err = np.max(np.abs(m.predict(X[60:]) - y[60:]))
    assert err < 1e-3 * np.std(y)
    assert m.noise_variance_ < 1e-5


def test_local_kernel_with_one_atom_per_structure_equals_averaged() -> None:
    rng = np.random.default_rng(4)
    vals = rng.normal(size=(25, 2, 3)) + 0.3
    X1 = LegTensor(torch.from_numpy(vals), ("a", "b"), structure_index=torch.arange(25))
    assert np.allclose(local_soap_kernel(X1, zeta=2), soap_kernel(vals.reshape(25, -1), zeta=2), atol=1e-13)
    y = rng.normal(size=25)
    loc = GPRRegressor("soap", soap_mode="local").fit(X1, y)
    avg = GPRRegressor("soap", soap_mode="averaged").fit(vals.reshape(25, -1), y)
    assert np.allclose(loc.predict(X1), avg.predict(vals.reshape(25, -1)), atol=1e-8)


def test_local_kernel_matches_double_loop_and_is_psd() -> None:
    rng = np.random.default_rng(5)
    A = _per_atom(rng, 7, 4, 6)
    B = _per_atom(rng, 5, 3, 6)
    K = local_soap_kernel(A, B, zeta=3, block=3)  # small block exercises the blocked accumulation

    def kbar(P: np.ndarray, R: np.ndarray) -> float:
        return float(np.mean([(p @ r / np.linalg.norm(p) / np.linalg.norm(r)) ** 3 for p in P for r in R]))

    fa, fb = A.flatten().numpy(), B.flatten().numpy()
    sa, sb = A.structure_index.numpy(), B.structure_index.numpy()
    for a in range(7):
        for b in range(5):
            Pa, Pb = fa[sa == a], fb[sb == b]
            ref = kbar(Pa, Pb) / math.sqrt(kbar(Pa, Pa) * kbar(Pb, Pb))
            assert K[a, b] == pytest.approx(ref, rel=1e-10)
    KA = local_soap_kernel(A, zeta=2)
    assert np.allclose(KA, KA.T) and np.allclose(np.diag(KA), 1.0)
    assert np.linalg.eigvalsh(KA).min() > -1e-10


def test_local_kernel_invariant_to_atom_order_within_structures() -> None:
    rng = np.random.default_rng(6)
    A = _per_atom(rng, 6, 5, 4)
    perm = torch.from_numpy(rng.permutation(len(A)))
    Ap = A.replace(values=A.values[perm], structure_index=A.structure_index[perm])
    assert np.allclose(local_soap_kernel(A, zeta=2), local_soap_kernel(Ap, zeta=2), atol=1e-13)


@pytest.mark.parametrize("kw", [dict(kernel="rbf"), dict(kernel="soap"), dict(kernel="soap", soap_mode="local")])
def test_predictions_invariant_to_permuting_training_rows(kw: dict) -> None:
    rng = np.random.default_rng(7)
    X = _per_atom(rng, 40, 3, 6)
    y = X.structure_mean().flatten().numpy() @ rng.normal(size=6)
    Xtest = _per_atom(rng, 10, 3, 6)
    m1 = GPRRegressor(**kw).fit(X, y)
    perm = rng.permutation(40)
    m2 = GPRRegressor(**kw).fit(X.select(perm), y[perm])
    assert np.allclose(m1.predict(Xtest), m2.predict(Xtest), atol=1e-6)
    assert m1.n_parameters_ == 40 + (3 if kw["kernel"] == "rbf" else 2)


def test_legtensor_per_atom_input_is_structure_averaged() -> None:
    rng = np.random.default_rng(8)
    X = _per_atom(rng, 30, 4, 6)
    y = rng.normal(size=30)
    a = GPRRegressor("soap").fit(X, y)
    b = GPRRegressor("soap").fit(X.structure_mean().flatten().numpy(), y)
    assert np.allclose(a.predict(X), b.predict(X.structure_mean().flatten().numpy()))


def test_validation_happens_at_fit_and_names_the_problem() -> None:
    X, y = np.ones((5, 3)) + np.eye(5, 3), np.arange(5.0)
    est = GPRRegressor("matern")  # no error at construction (sklearn convention)
    assert clone(est).get_params()["kernel"] == "matern"
    with pytest.raises(ValueError, match="kernel"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="zeta"):
        GPRRegressor("soap", zeta=1.5).fit(X, y)
    with pytest.raises(ValueError, match="per-atom"):
        GPRRegressor("soap", soap_mode="local").fit(X, y)
    with pytest.raises(ValueError, match="expected \\(5,\\)"):
        GPRRegressor().fit(X, y[:4])
    Xn = X.copy()
    Xn[2, 1] = np.nan
    with pytest.raises(ValueError, match="row 2"):
        GPRRegressor().fit(Xn, y)
    with pytest.raises(ValueError, match="features"):
        GPRRegressor("soap").fit(X, y).predict(np.ones((2, 4)))


@pytest.mark.slow  # ~50 s on the shared 2-core machine
def test_rbf_estimator_passes_sklearn_check_estimator() -> None:
    # the SOAP kernel cannot pass two checks by construction (it is undefined for all-zero rows, and it
    # sees only directions, so check_regressors_train's unnormalised toy problem is out of its reach)
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = check_estimator(GPRRegressor("rbf"), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in res if r["status"] == "failed"]
    assert not failed


@pytest.mark.parametrize("kw", [dict(kernel="rbf"), dict(kernel="soap"), dict(kernel="soap", solver="sklearn"),
                                dict(kernel="soap", soap_mode="local")])
def test_save_load_round_trip_reproduces_predictions_and_hyperparameters(kw: dict, tmp_path) -> None:
    from tnmat.training import load_estimator

    rng = np.random.default_rng(11)
    X = _per_atom(rng, 30, 3, 6)
    y = X.structure_mean().flatten().numpy() @ rng.normal(size=6) + 0.1 * rng.normal(size=30)
    Xtest = _per_atom(rng, 8, 3, 6)
    m = GPRRegressor(**kw).fit(X, y)
    path = m.save(tmp_path / "gpr.pt", extra={"note": "x"})
    r = load_estimator(path)
    assert type(r) is GPRRegressor and r.get_params() == m.get_params() and r.extra_ == {"note": "x"}
    # the restore refactorises at the stored hyper-parameters (no re-optimisation): same optimum, same predictions
    for name in ("signal_variance_", "noise_variance_", "log_marginal_likelihood_value_", "n_parameters_"):
        assert getattr(r, name) == pytest.approx(getattr(m, name), rel=1e-9), name
    mean, std = m.predict(Xtest, return_std=True)
    mean_r, std_r = r.predict(Xtest, return_std=True)
    np.testing.assert_allclose(mean_r, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(std_r, std, rtol=1e-7, atol=1e-10)


def test_save_requires_a_fitted_model_and_load_rejects_a_corrupted_file(tmp_path) -> None:
    from sklearn.exceptions import NotFittedError

    from tnmat._estimator_file import content_checksum
    from tnmat.training import load_estimator

    with pytest.raises(NotFittedError):
        GPRRegressor().save(tmp_path / "x.pt")
    rng = np.random.default_rng(12)
    F = rng.normal(size=(20, 4))
    path = GPRRegressor("soap").fit(F, F[:, 0]).save(tmp_path / "gpr.pt")
    blob = torch.load(path, weights_only=True)
    blob["fitted"]["route"] = "nonsense"
    blob["checksum"] = content_checksum(blob)  # a consistent checksum: the loader's own check is tested
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="bad.pt: inconsistent"):
        load_estimator(tmp_path / "bad.pt")
