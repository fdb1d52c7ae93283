"""Schmidt spectra: dense reference, MPS routes (canonical / compress / rdm), Choi-vectorised MPOs,
known answers (product, maximally entangled, GHZ, SWAP), gauge invariance, network adapters."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from tnmat.entanglement import (
    choi_dense,
    choi_unvectorise,
    choi_vectorise,
    entanglement_energies,
    entanglement_entropy,
    mps_norm,
    mps_schmidt_values,
    mps_to_dense,
    network_state,
    operator_schmidt_values,
    schmidt_values,
    spectrum_of,
    von_neumann_entropy,
)


@pytest.fixture(autouse=True)
def _single_blas_thread():
    """Small dense linear algebra: multi-threaded BLAS only adds contention on a shared machine."""
    with threadpool_limits(limits=1):
        yield


def random_mps(sizes, chi, rng, complex_=False):
    chis = [1] + [chi] * (len(sizes) - 1) + [1]
    cores = []
    for k, d in enumerate(sizes):
        c = rng.standard_normal((chis[k], d, chis[k + 1]))
        if complex_:
            c = c + 1j * rng.standard_normal(c.shape)
        cores.append(c)
    return cores


def tt_svd(psi):
    """Exact (untruncated) MPS of a dense tensor by sequential SVDs: an independent construction."""
    sizes = psi.shape
    cores, rest, chi = [], psi.reshape(1, -1), 1
    for d in sizes[:-1]:
        u, s, vt = np.linalg.svd(rest.reshape(chi * d, -1), full_matrices=False)
        cores.append(u.reshape(chi, d, -1))
        chi = u.shape[1]
        rest = s[:, None] * vt
    cores.append(rest.reshape(chi, sizes[-1], 1))
    return cores


def all_bipartitions(n):
    """Every bipartition once (the side holding site 0 ... as A), including non-contiguous ones."""
    for r in range(1, n):
        for a in itertools.combinations(range(n), r):
            if 0 in a:
                yield a


def padded_close(x, y, atol=1e-10):
    n = max(len(x), len(y))
    return np.allclose(np.pad(x, (0, n - len(x))), np.pad(y, (0, n - len(y))), atol=atol)


# -- dense ------------------------------------------------------------------------------------------
def test_dense_matches_explicit_matrix_svd_noncontiguous():
    rng = np.random.default_rng(0)
    psi = rng.standard_normal((2, 3, 4, 2))
    lam = schmidt_values(psi, [0, 2])
    mat = psi.transpose(0, 2, 1, 3).reshape(8, 6)
    ref = np.linalg.svd(mat, compute_uv=False)
    assert np.allclose(lam, ref / np.linalg.norm(ref))
    assert np.isclose(np.sum(lam**2), 1.0) and np.all(np.diff(lam) <= 0)
    assert lam.shape == (6,)
    # complementary partition, leg names and torch input give the same spectrum
    assert np.allclose(schmidt_values(psi, [1, 3]), lam)
    assert np.allclose(schmidt_values(torch.from_numpy(psi), ["x", "z"], legs=["x", "y", "z", "w"]), lam)


def test_product_state_has_zero_entropy_everywhere():
    rng = np.random.default_rng(1)
    vs = [rng.standard_normal(d) for d in (3, 2, 4, 2)]
    psi = np.einsum("a,b,c,d->abcd", *vs)
    for a in all_bipartitions(4):
        lam = schmidt_values(psi, a)
        assert abs(von_neumann_entropy(lam)) < 1e-12
        assert np.isclose(lam[0], 1.0)
    assert np.allclose(entanglement_energies(schmidt_values(psi, [0])), [0.0], atol=1e-12)


def test_maximally_entangled_pairs_give_log_d():
    # |psi> = sum_ij |i j i j>: legs (0,2) and (1,3) are maximally entangled pairs of dims 3 and 4
    psi = np.einsum("ik,jl->ijkl", np.eye(3), np.eye(4))
    assert np.isclose(entanglement_entropy(psi, [0]), math.log(3))
    assert np.isclose(entanglement_entropy(psi, [1]), math.log(4))
    assert np.isclose(entanglement_entropy(psi, [0, 1]), math.log(12))
    assert abs(entanglement_entropy(psi, [0, 2])) < 1e-12  # the two pairs are not entangled with each other
    assert np.isclose(entanglement_entropy(psi, [0, 3]), math.log(12))


def test_ghz_state_dense_and_mps():
    n = 5
    psi = np.zeros((2,) * n)
    psi[(0,) * n] = psi[(1,) * n] = 1.0
    # GHZ MPS with bond 2: diagonal cores
    cores = [np.zeros((1 if k == 0 else 2, 2, 1 if k == n - 1 else 2)) for k in range(n)]
    for k, c in enumerate(cores):
        for s in range(2):
            c[0 if k == 0 else s, s, 0 if k == n - 1 else s] = 1.0
    assert np.allclose(mps_to_dense(cores), psi)
    for a in all_bipartitions(n):
        assert np.isclose(entanglement_entropy(psi, a), math.log(2))
        assert np.isclose(entanglement_entropy(cores, a), math.log(2))


# -- MPS routes against the dense reference ---------------------------------------------------------
@pytest.mark.parametrize("complex_", [False, True])
def test_mps_all_bipartitions_all_methods_match_dense(complex_):
    rng = np.random.default_rng(2)
    sizes = (2, 3, 2, 3, 2)
    cores = random_mps(sizes, 3, rng, complex_)
    psi = mps_to_dense(cores)
    for a in all_bipartitions(len(sizes)):
        ref = schmidt_values(psi, a)
        for method in ("auto", "compress", "rdm", "dense"):
            lam = mps_schmidt_values(cores, a, method=method)
            assert lam.shape == ref.shape
            assert np.allclose(lam, ref, atol=1e-7 if method == "rdm" else 1e-12), (a, method)
        if a == tuple(range(len(a))):
            assert np.allclose(mps_schmidt_values(cores, a, method="canonical"), ref, atol=1e-12)


def test_mps_rank_is_limited_by_cut_bonds():
    rng = np.random.default_rng(3)
    cores = random_mps((4, 4, 4, 4, 4), 2, rng)
    # prefix cut: one bond of dim 2; {1, 3} cuts four bonds; {2}: two bonds
    assert np.count_nonzero(mps_schmidt_values(cores, [0, 1]) > 1e-12) == 2
    assert np.count_nonzero(mps_schmidt_values(cores, [2]) > 1e-12) == 4
    assert np.count_nonzero(mps_schmidt_values(cores, [1, 3]) > 1e-12) == 16


def test_gauge_invariance_under_random_bond_transformations():
    rng = np.random.default_rng(4)
    sizes = (3, 2, 4, 2, 3)
    cores = random_mps(sizes, 4, rng)
    gauged = [c.copy() for c in cores]
    for k in range(len(sizes) - 1):
        m = np.eye(4) + 0.5 * rng.standard_normal((4, 4))  # invertible, condition number O(10)
        gauged[k] = np.einsum("asb,bc->asc", gauged[k], m)
        gauged[k + 1] = np.einsum("cb,bsd->csd", np.linalg.inv(m), gauged[k + 1])
    assert not np.allclose(gauged[1], cores[1])
    for a in all_bipartitions(len(sizes)):
        s0 = mps_schmidt_values(cores, a)
        s1 = mps_schmidt_values(gauged, a)
        assert np.allclose(s0, s1, atol=1e-10)
        assert np.isclose(von_neumann_entropy(s0), von_neumann_entropy(s1), atol=1e-10)


def test_compress_route_resolves_tiny_schmidt_values():
    """A state with Schmidt values down to 1e-10 across the non-contiguous cut {0, 2} | {1, 3}: the compress
    route keeps relative precision where the reduced-density-matrix route cannot (lambda^2 ~ 1e-20)."""
    rng = np.random.default_rng(5)
    lam = np.geomspace(1.0, 1e-10, 9)
    lam /= np.linalg.norm(lam)
    u = np.linalg.qr(rng.standard_normal((9, 9)))[0]
    v = np.linalg.qr(rng.standard_normal((9, 9)))[0]
    psi = ((u * lam) @ v.T).reshape(3, 3, 3, 3).transpose(0, 2, 1, 3)  # axes (a0, b1, a2, b3)
    cores = tt_svd(psi)
    got = mps_schmidt_values(cores, [0, 2], method="compress")
    assert np.allclose(got / lam, 1.0, rtol=1e-4)
    rdm = mps_schmidt_values(cores, [0, 2], method="rdm")
    assert np.allclose(rdm[:5], lam[:5], rtol=1e-6)  # large values agree; the tail is noise there


def test_mps_norm_and_large_chain_without_dense():
    rng = np.random.default_rng(6)
    cores = random_mps((4,) * 12, 6, rng)  # 4^12 = 16.7M amplitudes: never materialised
    # norm from the transfer matrix, an independent route
    e = np.ones((1, 1))
    for c in cores:
        e = np.einsum("ab,asc,bsd->cd", e, c, c)
    norm_sq = e.item()
    assert np.isclose(mps_norm(cores), math.sqrt(norm_sq), rtol=1e-10)
    lam = mps_schmidt_values(cores, [0, 5, 11])  # scattered legs, d_A = 64
    assert lam.shape == (64,) and np.isclose(np.sum(lam**2), 1.0)
    # the reduced density matrix route is an independent contraction of the same chain
    assert np.allclose(lam, mps_schmidt_values(cores, [0, 5, 11], method="rdm"), atol=1e-7)
    # a single-site subsystem cut between bonds of dim 6: rank min(4, 36) = 4
    assert np.count_nonzero(mps_schmidt_values(cores, [5]) > 1e-12) == 4


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(7)
    psi = rng.standard_normal((2, 2, 2))
    with pytest.raises(ValueError, match="empty"):
        schmidt_values(psi, [0, 1, 2])
    with pytest.raises(ValueError, match="unknown leg"):
        schmidt_values(psi, ["q"], legs=["a", "b", "c"])
    with pytest.raises(ValueError, match="repeats"):
        schmidt_values(psi, [0, 0])
    with pytest.raises(ValueError, match="out of range"):
        schmidt_values(psi, [3])
    with pytest.raises(ValueError, match="norm"):
        schmidt_values(np.zeros((2, 2)), [0])
    with pytest.raises(ValueError, match="NaN"):
        schmidt_values(np.full((2, 2), np.nan), [0])
    with pytest.raises(ValueError, match="bond mismatch"):
        mps_schmidt_values([np.ones((1, 2, 3)), np.ones((2, 2, 1))], [0])
    with pytest.raises(ValueError, match="cuts one bond"):
        mps_schmidt_values(random_mps((2, 2, 2), 2, rng), [1], method="canonical")


# -- MPO through the Choi isomorphism ----------------------------------------------------------------
def random_mpo(sizes, chi, rng):
    chis = [1] + [chi] * (len(sizes) - 1) + [1]
    return [rng.standard_normal((chis[k], d, d, chis[k + 1])) for k, d in enumerate(sizes)]


def mpo_dense_reference(cores):
    """T[o1..oN, i1..iN] by one einsum over all cores (independent of the Choi route)."""
    n = len(cores)
    letters = "abcdefghijklmnopqrstuvwxyz"
    bonds, outs, ins = letters[: n + 1], letters[n + 1: 2 * n + 1], letters[2 * n + 1: 3 * n + 1]
    terms = [f"{bonds[k]}{outs[k]}{ins[k]}{bonds[k + 1]}" for k in range(n)]
    t = np.einsum(",".join(terms) + "->" + bonds[0] + outs + ins + bonds[n], *cores)
    return t[0, ..., 0]


def test_choi_vectorisation_preserves_operator_and_norm():
    rng = np.random.default_rng(8)
    sizes = (2, 3, 2, 4)
    mpo = random_mpo(sizes, 3, rng)
    t = mpo_dense_reference(mpo)
    mps = choi_vectorise(mpo)
    assert [c.shape[1] for c in mps] == [d * d for d in sizes]
    vec = mps_to_dense(mps)
    assert np.allclose(choi_unvectorise(vec, sizes), t)
    assert np.allclose(choi_dense(t), vec)
    assert np.isclose(mps_norm(mps), np.linalg.norm(t), rtol=1e-12)
    for a in all_bipartitions(len(sizes)):
        assert np.allclose(operator_schmidt_values(mpo, a), operator_schmidt_values(t, a), atol=1e-12)


def test_operator_entanglement_known_answers():
    d = 3
    swap = np.einsum("il,jk->ijkl", np.eye(d), np.eye(d))  # SWAP[o1, o2, i1, i2] = delta(o1, i2) delta(o2, i1)
    v = np.arange(d * d, dtype=float).reshape(d, d)
    assert np.allclose(np.einsum("ijkl,kl->ij", swap, v), v.T)
    lam = operator_schmidt_values(swap, [0])
    assert np.allclose(lam, np.full(d * d, 1.0 / d))  # operator Schmidt rank d^2, flat
    assert np.isclose(von_neumann_entropy(lam), 2 * math.log(d))
    ident = np.einsum("ik,jl->ijkl", np.eye(d), np.eye(d))
    assert abs(von_neumann_entropy(operator_schmidt_values(ident, [0]))) < 1e-12
    rng = np.random.default_rng(9)
    prod_mpo = [rng.standard_normal((1, d, d, 1)) for _ in range(3)]  # O1 (x) O2 (x) O3
    assert abs(von_neumann_entropy(operator_schmidt_values(prod_mpo, [0, 2]))) < 1e-12


# -- adapters for tnmat.networks --------------------------------------------------------------------
def test_network_state_adapters_match_dense():
    networks = pytest.importorskip("tnmat.networks")
    sizes = (3, 2, 4, 2)
    mps = networks.MPS(sizes, 3, dtype=torch.float64, seed=1)
    st = network_state(mps)
    assert isinstance(st, list) and len(st) == 4
    w = mps.to_dense().numpy()
    for a in ([0, 1], [0, 2], [1, 3]):
        assert np.allclose(spectrum_of(st, a), schmidt_values(w, a), atol=1e-10)
    mpo = networks.MPO(sizes, 2, dtype=torch.float64, seed=2)
    st = network_state(mpo)
    assert [c.shape[1] for c in st] == [d * d for d in sizes]
    t = mpo.to_dense().numpy()
    for a in ([0, 1], [0, 2]):
        assert np.allclose(spectrum_of(st, a), operator_schmidt_values(t, a), atol=1e-10)
    dense = networks.DenseACE(sizes, dtype=torch.float64, seed=3)
    st = network_state(dense)
    assert isinstance(st, np.ndarray) and st.shape == sizes
    assert np.isclose(entanglement_entropy(st, ["a1", "n1"], legs=["a1", "a2", "n1", "n2"]),
                      entanglement_entropy(st, [0, 2]))
