"""tnmat.networks: every network equals the dense tensor it represents; counts; initialisation scale."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

from tnmat.compression import tt_svd  # the project's one TT-SVD
from tnmat.legtensor import LegTensor
from tnmat.networks import (
    KINDS,
    MERA,
    MPO,
    MPS,
    TTN,
    DenseACE,
    FeatureMapMPS,
    compression_threshold,
    count_parameters,
    dense_from_cores,
    feature_map,
    make_network,
    saturation_bond,
)
from tnmat.networks._init import effective_bonds

SIZES = (3, 2, 4, 2, 3)
LEG_KINDS = [k for k in KINDS if k != "feature-map-mps"]
F64 = torch.float64


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _reference(kind: str, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """y from the materialised tensor: <W, x>, or x^T T x for the MPO."""
    xf = x.reshape(len(x), -1)
    if kind == "mpo":
        return torch.einsum("bi,ij,bj->b", xf, w.reshape(xf.shape[1], xf.shape[1]), xf)
    return xf @ w.reshape(-1)


# ---------------------------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("kind", LEG_KINDS)
@pytest.mark.parametrize("sizes", [SIZES, (2, 3, 2), (3,), (2, 2, 3, 2, 2, 2)])
def test_forward_equals_materialised_tensor(kind: str, sizes: tuple[int, ...]) -> None:
    net = make_network(kind, sizes, 3, dtype=F64, seed=1)
    x = _randn(6, *sizes, seed=2)
    w = net.to_dense()
    assert w.shape == (sizes + sizes if kind == "mpo" else sizes) and w.dtype == F64
    torch.testing.assert_close(net(x), _reference(kind, w, x), rtol=1e-12, atol=1e-12)
    # LegTensor input is accepted and gives the same values
    legs = tuple(f"l{k}" for k in range(len(sizes)))
    torch.testing.assert_close(net(LegTensor(x, legs)), net(x), rtol=0, atol=0)


@pytest.mark.parametrize("kind", LEG_KINDS)
def test_factorised_input_equals_dense_input(kind: str) -> None:
    net = make_network(kind, SIZES, 4, dtype=F64, seed=3)
    x = _randn(5, *SIZES, seed=4)
    cores = tt_svd(x)  # exact (full rank)
    torch.testing.assert_close(dense_from_cores(cores), x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(net(cores), net(x), rtol=1e-11, atol=1e-11)
    # product-state inputs (all bonds 1): the outer product of the local vectors
    vs = [_randn(5, 1, d, 1, seed=10 + k) for k, d in enumerate(SIZES)]
    torch.testing.assert_close(net(vs), net(dense_from_cores(vs)), rtol=1e-11, atol=1e-11)


def test_feature_map_mps_equals_dense_tensor_on_embedded_features() -> None:
    n = 7
    net = FeatureMapMPS(n, 3, dtype=F64, seed=5)
    mean, scale = _randn(n, seed=6), 0.5 + _randn(n, seed=7).abs()
    net.set_standardisation(mean, scale)
    x = _randn(9, n, seed=8)
    z = (x - mean) / scale
    phi = feature_map(z)
    big = phi[:, 0]
    for k in range(1, n):  # explicit outer product phi(z_1) (x) ... (x) phi(z_n)
        big = torch.einsum("bi,bj->bij", big, phi[:, k]).reshape(len(x), -1)
    torch.testing.assert_close(net(x), big @ net.to_dense().reshape(-1), rtol=1e-12, atol=1e-12)
    # rows of any shape are flattened
    torch.testing.assert_close(net(x.reshape(9, 7, 1)), net(x), rtol=0, atol=0)


def test_latent_outputs_compose_to_prediction() -> None:
    x = _randn(4, *SIZES, seed=9)
    for cls in (TTN, MERA):
        net = cls(SIZES, 3, dtype=F64, seed=0)
        lat = net.latent(x)
        # 5 sites padded to 8: hidden layers of 4 and 2 legs, bonds min(3, d_a d_b) -> (3,3,3,1), (3,3)
        assert [tuple(t.shape) for t in lat] == [(4, 27), (4, 9)]
        top = net.layers[-1].isometries[0][..., 0]
        torch.testing.assert_close(torch.einsum("bac,ac->b", lat[-1].reshape(4, 3, 3), top), net(x))
    assert MPS(SIZES, 2).latent(x.float()) == []


def test_mpo_split_and_sweep_contractions_agree_with_operator() -> None:
    """Both MPO contraction orders (sweep: u = T x; split at every cut m: sum_c <X, L_c X R_c^T>)."""
    net = MPO(SIZES, 4, dtype=F64, seed=15)
    x = _randn(7, *SIZES, seed=16)
    ref = _reference("mpo", net.to_dense(), x)
    torch.testing.assert_close(net._forward_sweep(x), ref, rtol=1e-12, atol=1e-12)
    for m in range(1, len(SIZES)):
        torch.testing.assert_close(net._forward_split(x, m), ref, rtol=1e-12, atol=1e-12)
    assert net._split_plan() is not None  # the auto path used by forward is the split here


# ---------------------------------------------------------------------------------------------- conventions
def test_mps_represents_any_tensor_from_tt_svd() -> None:
    """Cores (left, physical, right): a TT-SVD of a random W loaded into an MPS with chi >= the TT ranks
    reproduces <W, x> (the TT ranks here are 3, 6, 6, 3)."""
    w = _randn(*SIZES, seed=11)
    tt = [c[0] for c in tt_svd(w.unsqueeze(0))]
    chi = max(c.shape[-1] for c in tt)
    assert chi == 6
    net = MPS(SIZES, chi, dtype=F64, seed=0)
    with torch.no_grad():
        for core, c in zip(net.cores, tt, strict=True):
            core.zero_()
            core[: c.shape[0], :, : c.shape[2]] = c
    x = _randn(8, *SIZES, seed=12)
    torch.testing.assert_close(net(x), x.reshape(8, -1) @ w.reshape(-1), rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(net.to_dense(), w, rtol=1e-11, atol=1e-11)


def test_mpo_core_index_order_bra_then_ket() -> None:
    """Cores (left, bra/out, ket/in, right): T of a non-symmetric MPO built from a TT-SVD of a random
    operator with interleaved (bra_k, ket_k) legs is recovered exactly, including its asymmetry."""
    sizes = (2, 3, 2)
    n = len(sizes)
    t = _randn(*sizes, *sizes, seed=13)  # T[s1, s2, s3, t1, t2, t3]
    inter = t.permute([p for k in range(n) for p in (k, n + k)]).reshape(*(d * d for d in sizes))
    tt = [c[0] for c in tt_svd(inter.unsqueeze(0))]
    chi = max(c.shape[-1] for c in tt)
    net = MPO(sizes, chi, dtype=F64, seed=0)
    with torch.no_grad():
        for core, c, d in zip(net.cores, tt, sizes, strict=True):
            core.zero_()
            core[: c.shape[0], :, :, : c.shape[2]] = c.reshape(c.shape[0], d, d, c.shape[2])
    torch.testing.assert_close(net.to_dense(), t, rtol=1e-11, atol=1e-11)
    x = _randn(5, *sizes, seed=14)
    torch.testing.assert_close(net(x), _reference("mpo", t, x), rtol=1e-11, atol=1e-11)


# ---------------------------------------------------------------------------------------------- gradients, dtypes
@pytest.mark.parametrize("kind", LEG_KINDS + ["feature-map-mps"])
def test_gradcheck_tiny_network(kind: str) -> None:
    sizes = (2, 3, 2)
    net = make_network(kind, sizes, 2, dtype=F64, seed=0)
    names = [n for n, _ in net.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in net.parameters())
    x = _randn(3, *sizes, seed=1).requires_grad_()

    def f(x: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return functional_call(net, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-7)


def test_gradcheck_factorised_input() -> None:
    net = MPO((2, 3, 2), 2, dtype=F64, seed=0)
    cores = tuple(c.requires_grad_() for c in tt_svd(_randn(2, 2, 3, 2, seed=3)))
    assert torch.autograd.gradcheck(lambda *cs: net(list(cs)), cores, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_and_float64_agree(kind: str) -> None:
    n64 = make_network(kind, SIZES, 4, dtype=F64, seed=21)
    n32 = make_network(kind, SIZES, 4, dtype=torch.float32, seed=21)  # same seed, same numbers
    x = _randn(10, *SIZES, seed=22)
    y32 = n32(x.float())
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), n64(x), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------- counts
def test_count_parameters_matches_modules_and_hand_values() -> None:
    for kind in KINDS:
        for sizes in (SIZES, (2, 3, 2), (3,), (4, 4, 4, 4)):
            for chi in (1, 2, 5, 17):
                if kind == "feature-map-mps" and math.prod(sizes) > 64:
                    continue
                net = make_network(kind, sizes, chi, seed=0)
                assert count_parameters(kind, sizes, chi) == sum(p.numel() for p in net.parameters())
                assert net.n_parameters() == count_parameters(kind, sizes, chi)
    # hand-computed: MPS 4*8 + 3*4*64 + 8*4; TTN 2 * (16*8) + 8*8; MERA adds one 16x16 disentangler
    assert count_parameters("mps", (4,) * 5, 8) == 832
    assert count_parameters("ttn", (4,) * 4, 8) == 320
    assert count_parameters("mera", (4,) * 4, 8) == 320 + 256
    assert count_parameters("mpo", (2, 2, 2), 3) == 4 * 3 + 4 * 9 + 4 * 3


@pytest.mark.parametrize("kind", ["mps", "mpo", "ttn", "mera", "feature-map-mps"])
@pytest.mark.parametrize("sizes", [SIZES, (4, 4, 4, 4, 4), (2, 2, 2)])
def test_compression_threshold_brute_force(kind: str, sizes: tuple[int, ...]) -> None:
    """chi_ct from building the modules: the largest chi (up to saturation) with no more parameters than
    the dense tensor; the scan covers every chi up to 3 past the first one that exceeds it."""
    if (kind == "mpo" and math.prod(sizes) > 200) or (kind == "feature-map-mps" and math.prod(sizes) > 64):
        pytest.skip("brute force too slow; the closed form is checked on the smaller sizes")
    reference = math.prod(sizes) ** (2 if kind == "mpo" else 1)
    top = saturation_bond(kind, sizes)
    best, over = 0, 0
    for chi in range(1, top + 1):
        if kind == "feature-map-mps":
            n = sum(c.numel() for c in MPS((2,) * math.prod(sizes), chi).cores)
        else:
            n = make_network(kind, sizes, chi).n_parameters()
        if n <= reference:
            best = chi
        else:
            over += 1
            if over > 3:
                break
    assert compression_threshold(kind, sizes) == best
    if kind == "mps" and sizes == (4, 4, 4, 4, 4):
        assert best == 8  # 832 <= 1024 < 1044 (chi = 9)


# ---------------------------------------------------------------------------------------------- initialisation
def _doubled_env(cores: list[torch.Tensor], *, right: bool) -> list[torch.Tensor]:
    """Environments of the doubled chain sum_s A[s] (x) A[s]: E_x over standardised uncorrelated inputs.
    Returns the N+1 left (or right) environments as chi x chi matrices."""
    envs = [torch.ones(1, 1, dtype=F64)]
    seq = reversed(cores) if right else cores
    for a in seq:
        e = envs[-1]
        if right:
            envs.append(torch.tensordot(a, torch.tensordot(a, e, dims=([2], [1])), dims=([1, 2], [1, 2])))
        else:
            envs.append(torch.tensordot(torch.tensordot(e, a, dims=([0], [0])), a, dims=([0, 1], [0, 1])))
    return envs[::-1] if right else envs


@pytest.mark.parametrize(("n", "chi"), [(n, c) for n in (2, 5, 10, 50) for c in (1, 4, 16)] + [(300, 1), (300, 4)])
def test_mps_init_exact_second_moments_any_length(n: int, chi: int) -> None:
    """For standardised uncorrelated inputs E_x[y^2] = ||W||^2 = 1 and E_x||dy/dA_k||^2 = d_k chi_eff,k
    exactly, for any N and chi (computed by transfer matrices, no sampling, no dense tensor)."""
    d = 3
    net = MPS((d,) * n, chi, dtype=F64, seed=n + chi)
    cores = [c.detach() for c in net.cores]
    left = _doubled_env(cores, right=False)
    right = _doubled_env(cores, right=True)
    assert left[-1].item() == pytest.approx(1.0, rel=1e-9)
    eff = effective_bonds([d] * n, chi)
    grad2 = [d * torch.trace(left[k]).item() * torch.trace(right[k + 1]).item() for k in range(n)]
    assert grad2 == pytest.approx([d * eff[k + 1] for k in range(n)], rel=1e-9)


def test_naive_gaussian_init_fails_where_canonical_does_not() -> None:
    """The naive iid init has the right mean of ||W||^2 but a typical value exponentially off in N."""
    cores = [c.detach() for c in MPS((3,) * 50, 2, dtype=F64, init="gaussian", seed=0).cores]
    norm2 = _doubled_env(cores, right=False)[-1].item()
    assert not 0.1 <= norm2 <= 10


def test_mpo_init_second_moment_long_chain() -> None:
    """MPO, N = 50: ||T||_F = 1, and E[y^2] = (tr T)^2 + ||T||^2 + tr(T^2) for Gaussian standardised x
    (all three by transfer matrices) is of order one."""
    net = MPO((2,) * 50, 4, dtype=F64, seed=1)
    env_t = torch.ones(1, dtype=F64)
    env_n = torch.ones(1, 1, dtype=F64)
    env_tt = torch.ones(1, 1, dtype=F64)
    for m in (c.detach() for c in net.cores):
        env_t = torch.einsum("a,assb->b", env_t, m)
        env_n = torch.einsum("ac,astb,cstd->bd", env_n, m, m)
        env_tt = torch.einsum("ac,astb,ctsd->bd", env_tt, m, m)
    norm2, tr, tr2 = env_n.item(), env_t.item(), env_tt.item()
    assert norm2 == pytest.approx(1.0, rel=1e-9)
    assert 0.1 <= tr**2 + norm2 + tr2 <= 10


@pytest.mark.parametrize("kind", LEG_KINDS)
@pytest.mark.parametrize("n", [2, 5, 10])
def test_output_and_gradient_scale_on_standardised_inputs(kind: str, n: int) -> None:
    for chi in (1, 4, 16):
        net = make_network(kind, (2,) * n, chi, dtype=F64, seed=100 + chi)
        x = _randn(128, *(2,) * n, seed=n)
        y = net(x)
        assert 0.1 <= y.std().item() <= 10, (kind, n, chi)
        y.pow(2).mean().backward()
        for p in net.parameters():
            assert torch.isfinite(p.grad).all() and 0 < p.grad.norm() < 1e3, (kind, n, chi)


@pytest.mark.parametrize("n", [2, 10, 50, 300])
def test_feature_map_mps_init_scale_many_sites(n: int) -> None:
    for chi in (1, 4, 16):
        net = FeatureMapMPS(n, chi, dtype=F64, seed=chi)
        y = net(_randn(128, n, seed=n))
        assert 0.1 <= y.std().item() <= 10 and y.abs().max() < 1e3, (n, chi)
        y.pow(2).mean().backward()
        g = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
        assert torch.isfinite(g).all() and 1e-3 < g.norm() < 1e3, (n, chi)


def test_tree_and_dense_init_unit_norm() -> None:
    for net in (TTN(SIZES, 3, dtype=F64, seed=0), MERA(SIZES, 5, dtype=F64, seed=0), DenseACE(SIZES, dtype=F64, seed=0),
                MPS(SIZES, 50, dtype=F64, seed=0), MPO(SIZES, 7, dtype=F64, seed=0)):
        assert net.to_dense().norm().item() == pytest.approx(1.0, rel=1e-10), type(net).__name__


def test_seed_and_generator_reproducible() -> None:
    a = MPS(SIZES, 3, seed=7).to_dense()
    b = MPS(SIZES, 3, generator=torch.Generator().manual_seed(7)).to_dense()
    c = MPS(SIZES, 3, seed=8).to_dense()
    assert torch.equal(a, b) and not torch.equal(a, c)


# ---------------------------------------------------------------------------------------------- errors
def test_clear_errors() -> None:
    net = MPS(SIZES, 2)
    with pytest.raises(ValueError, match=r"expected \(batch, \*\(3, 2, 4, 2, 3\)\)"):
        net(torch.zeros(2, 3, 2, 4, 2))
    with pytest.raises(ValueError, match="factorised input core 1"):
        net([torch.zeros(2, 1, 3, 2), torch.zeros(2, 3, 2, 1)] + [torch.zeros(2, 1, d, 1) for d in SIZES[2:]])
    with pytest.raises(ValueError, match="unknown network kind"):
        make_network("peps", SIZES, 2)
    with pytest.raises(ValueError, match="bond_dim"):
        MPS(SIZES, 0)
    with pytest.raises(ValueError, match="n_features=7"):
        FeatureMapMPS(7, 2)(torch.zeros(3, 6))


# ---------------------------------------------------------------------------------------------- structure
def test_mera_with_identity_disentanglers_is_the_ttn() -> None:
    """MERA = TTN when every disentangler is the identity (same isometries); Haar ones change y."""
    ttn = TTN(SIZES, 3, dtype=F64, seed=4)
    mera = MERA(SIZES, 3, dtype=F64, disentangler_init="identity", seed=5)
    with torch.no_grad():
        for lt, lm in zip(ttn.layers, mera.layers, strict=True):
            for wt, wm in zip(lt.isometries, lm.isometries, strict=True):
                wm.copy_(wt)
    x = _randn(6, *SIZES, seed=6)
    torch.testing.assert_close(mera(x), ttn(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mera.latent(tt_svd(x))[0], ttn.latent(x)[0], rtol=1e-11, atol=1e-11)
    with torch.no_grad():
        mera.layers[0].disentanglers[0].copy_(MERA(SIZES, 3, dtype=F64, seed=7).layers[0].disentanglers[0])
    assert (mera(x) - ttn(x)).abs().max() > 1e-3


def test_feature_map_identity_cores_give_one() -> None:
    """phi_0 + phi_1 = 1: noiseless identity cores return exactly 1 for any input (the init's anchor)."""
    net = FeatureMapMPS(40, 3, dtype=F64, seed=0)
    with torch.no_grad():
        for c in net.cores:
            c.copy_(torch.eye(c.shape[0], c.shape[2], dtype=F64).unsqueeze(1).expand_as(c))
    torch.testing.assert_close(net(_randn(5, 40, seed=1)), torch.ones(5, dtype=F64), rtol=1e-12, atol=1e-12)
