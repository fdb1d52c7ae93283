"""Entropies and capacity of entanglement: limits, analytic two-level answers, the Renyi-derivative identity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from tnmat.entanglement import capacity_of_entanglement, renyi_entropy, von_neumann_entropy


@pytest.fixture(autouse=True)
def _single_blas_thread():
    """Small dense linear algebra: multi-threaded BLAS only adds contention on a shared machine."""
    with threadpool_limits(limits=1):
        yield


def spectrum(p):
    return np.sqrt(np.asarray(p, dtype=float))


def test_flat_and_pure_spectra():
    for d in (1, 2, 7):
        lam = spectrum(np.full(d, 1.0 / d))
        assert np.isclose(von_neumann_entropy(lam), math.log(d))
        for alpha in (0.0, 0.5, 2.0, 3.0, math.inf):
            assert np.isclose(renyi_entropy(lam, alpha), math.log(d))
        assert abs(capacity_of_entanglement(lam)) < 1e-14
    pure = spectrum([1.0, 0.0, 0.0])
    assert von_neumann_entropy(pure) == 0.0 and capacity_of_entanglement(pure) == 0.0


def test_two_level_analytic():
    p = 0.2
    lam = spectrum([p, 1 - p])
    h = -p * math.log(p) - (1 - p) * math.log(1 - p)
    assert np.isclose(von_neumann_entropy(lam), h)
    assert np.isclose(renyi_entropy(lam, 2), -math.log(p * p + (1 - p) ** 2))
    assert np.isclose(renyi_entropy(lam, math.inf), -math.log(1 - p))
    assert np.isclose(capacity_of_entanglement(lam), p * (1 - p) * math.log(p / (1 - p)) ** 2)


def test_renyi_limits_and_monotonicity():
    rng = np.random.default_rng(0)
    p = rng.random(12)
    p[3] = 0.0
    p /= p.sum()
    lam = spectrum(p)
    s1 = von_neumann_entropy(lam)
    assert np.isclose(renyi_entropy(lam, 1 + 1e-7), s1, atol=1e-6)
    assert np.isclose(renyi_entropy(lam, 1 - 1e-7), s1, atol=1e-6)
    assert np.isclose(renyi_entropy(lam, 0), math.log(11))  # the zero probability does not count
    alphas = [0, 0.3, 0.9, 1, 1.5, 2, 5, 50, math.inf]
    values = [renyi_entropy(lam, a) for a in alphas]
    assert all(x >= y - 1e-12 for x, y in zip(values, values[1:], strict=False))
    assert np.isclose(renyi_entropy(lam, 1e4), renyi_entropy(lam, math.inf), atol=1e-3)


def test_capacity_is_second_derivative_of_renyi_free_energy():
    """C_E = d^2/dn^2 [(1 - n) S_n] at n = 1 (variance of the entanglement Hamiltonian): an identity
    checked by central finite differences of renyi_entropy, an independent code path."""
    rng = np.random.default_rng(1)
    p = rng.exponential(size=20) ** 3
    p /= p.sum()
    lam = spectrum(p)
    h = 1e-3

    def f(n):
        return (1 - n) * renyi_entropy(lam, n)

    fd = (f(1 + h) - 2 * f(1.0) + f(1 - h)) / h**2
    assert np.isclose(capacity_of_entanglement(lam), fd, rtol=1e-5)


def test_unnormalised_or_bad_spectra_raise():
    with pytest.raises(ValueError, match="normalise"):
        von_neumann_entropy([1.0, 1.0])
    with pytest.raises(ValueError, match="alpha"):
        renyi_entropy([1.0], -1.0)
    with pytest.raises(ValueError, match="1-d"):
        capacity_of_entanglement(np.eye(2))
