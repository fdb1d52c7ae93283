"""Random-state references: Page entropy (complex, sampled), the real-state approximation (exact
quadrature at m = 2), min-cut bound, Marchenko-Pastur density/CDF/spectrum against sampled states."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from threadpoolctl import threadpool_limits

from tnmat.entanglement import (
    ks_distance,
    marchenko_pastur_cdf,
    marchenko_pastur_pdf,
    marchenko_pastur_spectrum,
    mean_random_entropy,
    min_cut_entropy,
    mps_schmidt_values,
    page_entropy,
    page_entropy_real_approx,
    random_state,
    schmidt_values,
    von_neumann_entropy,
)


@pytest.fixture(autouse=True)
def _single_blas_thread():
    """Small dense linear algebra: multi-threaded BLAS only adds contention on a shared machine."""
    with threadpool_limits(limits=1):
        yield


def test_page_formula_values():
    # harmonic-sum form of paper eq. 26 against the digamma evaluation
    for m, n in [(1, 5), (2, 2), (3, 7), (4, 4), (16, 64)]:
        ref = sum(1.0 / k for k in range(n + 1, m * n + 1)) - (m - 1) / (2 * n)
        assert np.isclose(page_entropy(m, n), ref, rtol=1e-13, atol=1e-14)
        assert page_entropy(n, m) == page_entropy(m, n)
    assert np.isclose(page_entropy(2, 2), 1.0 / 3.0)
    assert page_entropy(1, 9) == 0.0
    # Page's large-n limit log m - m / (2n)
    assert np.isclose(page_entropy(4, 10**6), math.log(4) - 4 / (2 * 10**6), atol=1e-9)


@pytest.mark.parametrize("dims", [(2, 2), (4, 4), (8, 32)])
def test_page_entropy_matches_sampled_haar_states(dims):
    rng = np.random.default_rng(sum(dims))
    mean, se = mean_random_entropy(*dims, real=False, n_samples=1500, rng=rng)
    assert abs(mean - page_entropy(*dims)) < 4 * se


def _real_m2_exact(n):
    """Mean entropy of real random 2 x n states by quadrature of the fixed-trace real Wishart density
    P(t) ~ (t (1 - t))^((n - 3)/2) |2t - 1| of the eigenvalue pair (t, 1 - t)."""
    a = (n - 3) / 2

    def h(t):
        return -(t * math.log(t) + (1 - t) * math.log(1 - t)) if 0 < t < 1 else 0.0

    z = quad(lambda t: abs(2 * t - 1), 0, 1, weight="alg", wvar=(a, a))[0]
    s = quad(lambda t: h(t) * abs(2 * t - 1), 0, 1, weight="alg", wvar=(a, a), epsabs=1e-13, limit=200)[0]
    return s / z


def test_real_states_quadrature_reference_agrees_with_sampling():
    rng = np.random.default_rng(3)
    mean, se = mean_random_entropy(2, 4, real=True, n_samples=4000, rng=rng)
    assert abs(mean - _real_m2_exact(4)) < 4 * se
    assert _real_m2_exact(4) < page_entropy(2, 4) - 0.04  # real states are less entangled


def test_real_page_approximation_error_is_as_documented():
    errors = {n: _real_m2_exact(n) - page_entropy_real_approx(2, n) for n in (2, 4, 8, 16)}
    assert 0.02 < errors[2] < 0.03 and 0.005 < errors[4] < 0.007 and 0.001 < errors[8] < 0.002
    assert errors[16] < errors[8] / 3  # the O(1/n) term is exact: error falls like n^-2
    rng = np.random.default_rng(4)
    mean, se = mean_random_entropy(16, 64, real=True, n_samples=300, rng=rng)
    assert abs(mean - page_entropy_real_approx(16, 64)) < 4 * se + 1e-3
    assert mean < page_entropy(16, 64) - 5 * se


def test_min_cut_bound():
    assert np.isclose(min_cut_entropy([4, 4]), math.log(16))
    assert np.isclose(min_cut_entropy(4), math.log(4))
    assert np.isclose(min_cut_entropy([4, 4, 4], 16, 64), math.log(16))
    with pytest.raises(ValueError):
        min_cut_entropy([0])
    # entropies of random MPS never exceed the min-cut bound of the bonds they cut
    rng = np.random.default_rng(5)
    chi = 3
    cores = [rng.standard_normal((1 if k == 0 else chi, 4, 1 if k == 4 else chi)) for k in range(5)]
    assert von_neumann_entropy(mps_schmidt_values(cores, [0, 1])) <= min_cut_entropy([chi], 16, 64) + 1e-12
    assert von_neumann_entropy(mps_schmidt_values(cores, [2])) <= min_cut_entropy([chi, chi], 4, 256) + 1e-12


@pytest.mark.parametrize("ratio", [0.25, 0.5, 1.0])
def test_marchenko_pastur_density_normalised_with_unit_mean(ratio):
    lo, hi = (1 - math.sqrt(ratio)) ** 2, (1 + math.sqrt(ratio)) ** 2
    mass = quad(lambda x: marchenko_pastur_pdf(x, ratio), lo, hi, limit=200)[0]
    mean = quad(lambda x: x * marchenko_pastur_pdf(x, ratio), lo, hi, limit=200)[0]
    assert np.isclose(mass, 1.0, atol=1e-6) and np.isclose(mean, 1.0, atol=1e-6)
    for x in np.linspace(lo, hi, 7)[1:-1]:
        direct = quad(lambda t: marchenko_pastur_pdf(t, ratio), lo, x, limit=200)[0]
        assert np.isclose(marchenko_pastur_cdf(x, ratio), direct, atol=1e-5)


@pytest.mark.parametrize("complex_", [False, True])
def test_sampled_entanglement_spectra_follow_marchenko_pastur(complex_):
    rng = np.random.default_rng(6)
    m, n = 64, 256
    xs = []
    for _ in range(20):
        lam = schmidt_values(random_state((m, n), rng=rng, complex_=complex_), [0])
        xs.append(m * lam**2)
    xs = np.concatenate(xs)
    d_mp = ks_distance(xs, lambda x: marchenko_pastur_cdf(x, m / n))
    d_wrong = ks_distance(xs, lambda x: marchenko_pastur_cdf(x, 1.0))
    assert d_mp < 0.03 < d_wrong


def test_marchenko_pastur_spectrum_matches_mean_sorted_spectrum():
    rng = np.random.default_rng(7)
    m, n = 32, 128
    spectra = [schmidt_values(random_state((m, n), rng=rng), [0]) ** 2 for _ in range(60)]
    mean = np.mean(spectra, axis=0)
    ref = marchenko_pastur_spectrum(m, n)
    assert np.isclose(ref.sum(), 1.0) and np.all(np.diff(ref) < 0)
    assert np.allclose(mean[2:-2], ref[2:-2], rtol=0.05)  # bulk; edges carry m^(-2/3) finite-size shifts
    assert np.allclose(marchenko_pastur_spectrum(n, m), ref)
    assert np.isclose(von_neumann_entropy(np.sqrt(ref)), page_entropy(m, n), atol=0.01)
