"""Level statistics: Wigner-Dyson ratio surmise (paper eq. 27) and Poisson references, sampled GOE / GUE /
Poisson spectra, KL divergence, and the ratio statistics of real vs complex random-state spectra."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from threadpoolctl import threadpool_limits

from tnmat.entanglement import (
    MEAN_R_TILDE,
    MEAN_R_TILDE_SURMISE,
    entanglement_energies,
    kl_divergence,
    level_spacings,
    mean_r_tilde,
    poisson_r_tilde_pdf,
    poisson_ratio_pdf,
    r_tilde,
    random_matrix_levels,
    random_state,
    schmidt_values,
    spacing_ratios,
    wigner_dyson_r_tilde_pdf,
    wigner_dyson_ratio_pdf,
)


@pytest.fixture(autouse=True)
def _single_blas_thread():
    """Small dense linear algebra: multi-threaded BLAS only adds contention on a shared machine."""
    with threadpool_limits(limits=1):
        yield


def goe(x):
    return wigner_dyson_r_tilde_pdf(x, 1)


def gue(x):
    return wigner_dyson_r_tilde_pdf(x, 2)


def sample_r_tilde(ensemble, *, n=100, count=60, seed=0):
    """r~ from the middle half of ``count`` random n x n spectra (edges have a different local density)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        levels = random_matrix_levels(n, ensemble, rng=rng)
        out.append(r_tilde(spacing_ratios(levels[n // 4: 3 * n // 4])))
    return np.concatenate(out)


@pytest.mark.parametrize("beta", [1, 2, 4])
def test_wigner_dyson_surmise_normalised_symmetric_and_mean(beta):
    mass = quad(lambda r: wigner_dyson_ratio_pdf(r, beta), 0, np.inf)[0]
    assert np.isclose(mass, 1.0, atol=1e-10)
    r = np.array([0.1, 0.5, 2.0, 7.0])
    assert np.allclose(wigner_dyson_ratio_pdf(r, beta), wigner_dyson_ratio_pdf(1 / r, beta) / r**2)
    assert np.isclose(quad(lambda x: wigner_dyson_r_tilde_pdf(x, beta), 0, 1)[0], 1.0, atol=1e-10)
    assert np.isclose(mean_r_tilde(lambda x: wigner_dyson_r_tilde_pdf(x, beta)), MEAN_R_TILDE_SURMISE[beta],
                      atol=1e-12)
    with pytest.raises(ValueError, match="beta"):
        wigner_dyson_ratio_pdf(r, 3)


def test_poisson_reference():
    assert np.isclose(quad(poisson_ratio_pdf, 0, np.inf)[0], 1.0)
    assert np.isclose(mean_r_tilde(poisson_r_tilde_pdf), 2 * math.log(2) - 1, atol=1e-12)
    assert np.isclose(MEAN_R_TILDE["poisson"], 0.3863, atol=1e-4)


def test_spacings_and_ratios_by_hand():
    levels = np.array([0.0, 1.0, 3.0, 3.5, 3.5, 7.0])
    assert np.allclose(level_spacings(levels[::-1]), [1.0, 2.0, 0.5, 0.0, 3.5])
    r = spacing_ratios(levels)  # the ratio after the zero spacing is undefined and dropped
    assert np.allclose(r, [2.0, 0.25, 0.0])
    assert np.allclose(r_tilde(r), [0.5, 0.25, 0.0])
    lam = np.sqrt(np.array([0.5, 0.3, 0.2, 1e-40]))
    assert np.allclose(entanglement_energies(lam), -np.log([0.5, 0.3, 0.2]))  # numerical zero dropped


@pytest.mark.parametrize(("ensemble", "key", "reference"), [("goe", "goe", goe), ("gue", "gue", gue),
                                                           ("poisson", "poisson", poisson_r_tilde_pdf)])
def test_random_matrix_ratio_statistics(ensemble, key, reference):
    rt = sample_r_tilde(ensemble)
    se = rt.std() / math.sqrt(rt.size)
    assert abs(rt.mean() - MEAN_R_TILDE[key]) < 4 * se + 0.003  # 0.003: finite-n bias of the bulk
    kls = {name: kl_divergence(pdf, rt) for name, pdf in
           [("goe", goe), ("gue", gue), ("poisson", poisson_r_tilde_pdf)]}
    assert kls[key] < 0.02
    assert kls[key] == min(kls.values()) and sorted(kls.values())[1] > 0.04


def test_kl_divergence_properties():
    rng = np.random.default_rng(1)
    # exact samples of the Poisson r~ law by inversion of its CDF 2x/(1+x)
    u = rng.random(20000)
    samples = u / (2 - u)
    small = kl_divergence(poisson_r_tilde_pdf, samples)
    assert 0 <= small < 19 / (2 * 20000) * 4  # histogram bias ~ (bins - 1) / (2 N)
    # all samples in one bin: large but finite (the eps floor)
    one = kl_divergence(goe, np.full(100, 0.51))
    assert 5 < one < 20
    # finer binning of the same reference keeps the divergence of exact samples small
    assert kl_divergence(poisson_r_tilde_pdf, samples, bins=50) < 0.01
    with pytest.raises(ValueError, match="no samples"):
        kl_divergence(goe, np.array([2.0, 3.0]))


def test_random_state_entanglement_spectra_real_goe_complex_gue():
    """Entanglement energies of random states: real Gaussian states (reduced density matrix a real
    Wishart matrix, the Laguerre orthogonal ensemble) give GOE-like ratios (beta = 1); complex (Haar)
    states give GUE-like ratios (beta = 2).  The paper's GOE reference is the one for real networks."""
    rng = np.random.default_rng(2)
    results = {}
    for real in (True, False):
        rts = []
        for _ in range(25):
            lam = schmidt_values(random_state((64, 256), rng=rng, complex_=not real), [0])
            xi = entanglement_energies(lam)
            rts.append(r_tilde(spacing_ratios(xi[8:-8])))
        rt = np.concatenate(rts)
        results[real] = (rt.mean(), rt.std() / math.sqrt(rt.size), kl_divergence(goe, rt), kl_divergence(gue, rt))
    mean_r, se_r, kl_goe_r, kl_gue_r = results[True]
    mean_c, se_c, kl_goe_c, kl_gue_c = results[False]
    assert abs(mean_r - MEAN_R_TILDE["goe"]) < 4 * se_r + 0.005
    assert abs(mean_c - MEAN_R_TILDE["gue"]) < 4 * se_c + 0.005
    assert kl_goe_r < kl_gue_r and kl_gue_c < kl_goe_c
