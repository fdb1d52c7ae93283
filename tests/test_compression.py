"""TT-SVD, factorised-input contraction, padding map and the MPO autoencoder (the autoencoder's
MPOs are networks of tnmat.networks trained by the one engine, saved in the one estimator file)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tnmat.compression import (
    full_ranks,
    independent_padded,
    n_input_parameters,
    tt_ranks,
    tt_svd,
    tt_svd_info,
    tt_to_dense,
    unfolding_bounds,
)
from tnmat.legtensor import LegTensor
from tnmat.networks import MPO, MPS, MPOMap, mpo_apply
from tnmat.training import MPOAutoencoder


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny problems: intra-op threads only add overhead (and the test machine is shared)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rand(shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _decaying(shape, seed=0):
    """A tensor with decaying unfolding spectra: a sum of product terms with geometric weights."""
    g = torch.Generator().manual_seed(seed)
    b, sizes = shape[0], shape[1:]
    out = torch.zeros(*shape, dtype=torch.float64)
    for j in range(12):
        term = torch.ones(b, *([1] * len(sizes)), dtype=torch.float64)
        for k, d in enumerate(sizes):
            v = torch.randn(b, d, generator=g, dtype=torch.float64)
            term = term * v.reshape(b, *([1] * k), d, *([1] * (len(sizes) - k - 1)))
        out += 0.5**j * term
    return out + 1e-3 * torch.randn(*shape, generator=g, dtype=torch.float64)


def test_full_rank_ttsvd_is_exact_and_left_orthonormal():
    x = _rand((7, 3, 4, 2, 5))
    cores = tt_svd(x)
    assert tt_ranks(cores) == [1, *full_ranks((3, 4, 2, 5)), 1] == [1, 3, 10, 5, 1]
    assert torch.allclose(tt_to_dense(cores), x, atol=1e-12, rtol=0)
    for c in cores[:-1]:  # U cores are isometries: sum_{l,s} X[l,s,r] X[l,s,r'] = delta
        m = c.reshape(c.shape[0], -1, c.shape[-1])
        eye = torch.eye(m.shape[-1], dtype=m.dtype).expand_as(m.transpose(1, 2) @ m)
        assert torch.allclose(m.transpose(1, 2) @ m, eye, atol=1e-12)
    # norm sits in the last core
    assert torch.allclose(cores[-1].reshape(7, -1).norm(dim=1), x.reshape(7, -1).norm(dim=1), atol=1e-12)


@pytest.mark.parametrize("chi", [1, 2, 3, 5])
def test_truncation_error_equals_discarded_weight_and_obeys_eckart_young(chi):
    x = _decaying((6, 4, 4, 4, 4), seed=chi)
    info = tt_svd_info(x, max_bond=chi)
    err2 = (tt_to_dense(info.cores) - x).reshape(6, -1).pow(2).sum(-1)
    # exact: the cut errors are orthogonal
    assert torch.allclose(err2, info.discarded.sum(-1), rtol=1e-9, atol=1e-13)
    lower, upper = unfolding_bounds(x, [min(chi, r) for r in full_ranks((4, 4, 4, 4))])
    assert torch.all(err2 <= upper * (1 + 1e-9) + 1e-14)
    assert torch.all(err2 >= lower * (1 - 1e-9) - 1e-14)
    if chi < 4:  # a real truncation happened
        assert torch.all(err2 > 0)


def test_tolerance_bounds_relative_error_and_ranks_shrink():
    x = _decaying((5, 4, 4, 4, 4), seed=3)
    norms = x.reshape(5, -1).norm(dim=1)
    prev = None
    for tol in (1e-1, 1e-2, 1e-4):
        info = tt_svd_info(x, tol=tol)
        err = (tt_to_dense(info.cores) - x).reshape(5, -1).norm(dim=1)
        assert torch.all(err <= tol * norms * (1 + 1e-9))
        n_in = n_input_parameters(info.cores)
        if prev is not None:
            assert n_in >= prev  # a tighter tolerance never stores less
        prev = n_in
    assert tt_ranks(tt_svd(x, tol=1e-1))[2] < 16


def test_rows_with_smaller_rank_are_zero_padded_exactly():
    # row 0 is a product state (rank 1 everywhere), row 1 is generic: common ranks, row 0 still exact
    a = [_rand((1, d), seed=k) for k, d in enumerate((3, 3, 3))]
    prod = torch.einsum("bi,bj,bk->bijk", *a)
    x = torch.cat([prod, _rand((1, 3, 3, 3), seed=9)])
    info = tt_svd_info(x, tol=1e-10)
    assert info.kept[0].tolist() == [1, 1]
    assert torch.allclose(tt_to_dense(info.cores), x, atol=1e-12)


def test_n_input_parameters_formula():
    x = _rand((2, 8, 8, 8, 8, 8))
    full = tt_svd(x)
    # ranks (1, 8, 64, 64, 8, 1): 8*8 + 8*8*64 + 64*8*64 + 64*8*8 + 8*8
    assert n_input_parameters(full) == 64 + 4096 + 32768 + 4096 + 64
    chi4 = tt_svd(x, max_bond=4)
    assert n_input_parameters(chi4) == 1 * 8 * 4 + 3 * (4 * 8 * 4) + 4 * 8 * 1
    assert sum(math.prod(c.shape[1:]) for c in chi4) == n_input_parameters(chi4)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="max_bond"):
        tt_svd(_rand((2, 3, 3)), max_bond=0)
    with pytest.raises(ValueError, match="NaN"):
        tt_svd(torch.full((2, 3, 3), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="tol"):
        tt_svd(_rand((2, 3, 3)), tol=1.5)


@pytest.mark.parametrize("net_cls,chi", [(MPS, 5), (MPO, 3)])
def test_factorised_forward_matches_dense_at_full_rank(net_cls, chi):
    sizes = (3, 4, 2, 3)
    net = net_cls(sizes, chi, dtype=torch.float64, seed=1)
    x = _rand((9, *sizes), seed=2)
    dense = net(x)
    fact = net(tt_svd(x))
    assert torch.allclose(fact, dense, atol=1e-10, rtol=0)
    # and against the materialised weight tensor, an independent contraction
    w = net.to_dense()
    n = len(sizes)
    if net_cls is MPS:
        ref = torch.einsum("b...,...->b", x, w)
    else:
        xf = x.reshape(9, -1)
        ref = torch.einsum("bi,ij,bj->b", xf, w.reshape(math.prod(sizes), -1), xf)
    assert n == 4 and torch.allclose(dense, ref, atol=1e-10)
    # truncated input: network output equals the dense output on the truncated tensor
    cores = tt_svd(x, max_bond=2)
    assert torch.allclose(net(cores), net(tt_to_dense(cores)), atol=1e-10)


def test_independent_padded_mapping():
    s, n, nl = 2, 3, 2
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, s, n, nl, dtype=torch.float64, generator=g)
    b2 = torch.einsum("xanl,xbml->xabnml", a, a)  # symmetric under (a, n) <-> (b, m), like B2
    lt = LegTensor(b2, ("a1", "a2", "n1", "n2", "l"))
    out = independent_padded(lt, n_sites=3, site_dim=4)
    n_ind = (s * n) * (s * n + 1) // 2 * nl
    assert out.sizes == (4, 4, 4) and out.legs == ("q1", "q2", "q3")
    flat = out.values.reshape(4, -1)
    assert torch.count_nonzero(flat[:, n_ind:]) == 0
    # the symmetric partner of every dropped entry is kept, so the full tensor is recoverable
    mask = lt.independent_mask([("a1", "a2"), ("n1", "n2")])
    assert int(mask.sum()) == n_ind
    full = torch.zeros(4, *lt.sizes, dtype=torch.float64)
    full[:, mask] = flat[:, :n_ind]
    full = torch.where(mask, full, full.permute(0, 2, 1, 4, 3, 5))
    assert torch.allclose(full, b2)
    with pytest.raises(ValueError, match="do not fit"):
        independent_padded(lt, n_sites=2, site_dim=4)


def test_mpo_apply_matches_dense_operator():
    m = MPOMap((3, 2, 4), (2, 2, 3), 3, init_noise=0.5, generator=torch.Generator().manual_seed(0))
    x = _rand((5, 3, 2, 4), seed=4)
    op = m.to_dense()  # (o1,o2,o3,i1,i2,i3)
    ref = torch.einsum("abcijk,nijk->nabc", op, x)
    assert torch.allclose(m(x), ref, atol=1e-12)
    assert torch.allclose(mpo_apply(list(m.cores), x), ref, atol=1e-12)


def test_autoencoder_identity_init_is_exact_when_d_latent_equals_d_in():
    x = _rand((20, 3, 3, 3), seed=5)
    ae = MPOAutoencoder(d_latent=3, bond_dim_encoder=2, bond_dim_decoder=2, init_noise=0.0, max_epochs=1,
                        learning_rate=1e-12, random_state=0).fit(x)
    z = ae.transform(x)
    assert z.shape == (20, 3, 3, 3)
    assert torch.allclose(ae.inverse_transform(z), x, atol=1e-10)


def test_autoencoder_learns_an_exactly_compressible_problem(tmp_path):
    # x = (P (x) P (x) P) z with z of leg dimension 2: a rank-preserving encoder exists, so the reconstruction
    # error can go to ~0 from a noisy start
    g = torch.Generator().manual_seed(0)
    p = torch.linalg.qr(torch.randn(4, 2, generator=g, dtype=torch.float64))[0]
    z = torch.randn(300, 2, 2, 2, generator=g, dtype=torch.float64)
    x = torch.einsum("ia,jb,kc,nabc->nijk", p, p, p, z)
    ae = MPOAutoencoder(d_latent=2, bond_dim_encoder=2, bond_dim_decoder=2, learning_rate=5e-2, batch_size=60,
                        max_epochs=60, patience=30, init_noise=0.3, random_state=0)
    ae.fit(x[:240], X_val=x[240:])
    err = ae.reconstruction_errors(x[240:])
    assert err["relative"] < 2e-2, err
    assert ae.history_["val_loss"][ae.best_epoch_] < 1e-2 * ae.history_["val_loss"][0]
    assert ae.transform(x[:3]).shape == (3, 2, 2, 2)
    assert ae.compression_ratio_ == pytest.approx(8 / 64)
    # save / load round trip: identical transforms and reconstructions
    path = ae.save(tmp_path / "ae.pt")
    back = MPOAutoencoder.load(path)
    assert back.get_params() == ae.get_params()
    assert torch.equal(back.transform(x[:7]), ae.transform(x[:7]))
    assert np.array_equal(back.inverse_transform(ae.transform(x[:7].numpy())), ae.inverse_transform(
        ae.transform(x[:7].numpy())))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable"):
        MPOAutoencoder.load(bad)


def test_autoencoder_cannot_compress_full_rank_noise_losslessly():
    # white noise has no low-rank structure: a latent of 2 out of 4 per leg must lose most of the norm
    x = _rand((100, 4, 4, 4), seed=7)
    ae = MPOAutoencoder(d_latent=2, bond_dim_encoder=2, bond_dim_decoder=2, learning_rate=1e-2, max_epochs=10,
                        random_state=0).fit(x)
    assert ae.reconstruction_errors(x)["relative"] > 0.5


def test_autoencoder_validates_at_fit_and_transform_needs_fit():
    with pytest.raises(RuntimeError, match="fit"):
        MPOAutoencoder().transform(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="bond_dim_encoder"):
        MPOAutoencoder(bond_dim_encoder=0).fit(np.zeros((4, 3, 3)))
    with pytest.raises(ValueError, match="d_latent"):
        MPOAutoencoder(d_latent=(2, 2, 2)).fit(np.zeros((4, 3, 3)))


def test_one_contraction_of_cores_to_dense():
    from tnmat.networks import dense_from_cores

    assert tt_to_dense is dense_from_cores
    cores = tt_svd(_rand((3, 2, 3, 2), seed=8))
    ref = torch.einsum("bia,bajc,bck->bijk", cores[0][:, 0], cores[1], cores[2][..., 0])
    assert torch.allclose(dense_from_cores(cores), ref, atol=1e-12)


def test_autoencoder_loss_in_the_engine_is_the_reconstruction_mse():
    # with a vanishing learning rate the weights stay put, so the first validation loss of the engine must be
    # mean((decoder(encoder(x)) - x)^2) over every entry of the validation rows, computed independently here
    x = _rand((40, 3, 2, 3), seed=9)
    ae = MPOAutoencoder(d_latent=2, bond_dim_encoder=2, bond_dim_decoder=2, init_noise=0.3, max_epochs=1,
                        learning_rate=1e-300, random_state=0).fit(x[:30], X_val=x[30:])
    enc, dec = ae.encoder_.to_dense(), ae.decoder_.to_dense()  # (o..., i...) operators
    z = torch.einsum("abcijk,nijk->nabc", enc, x[30:])
    x_hat = torch.einsum("ijkabc,nabc->nijk", dec, z)
    assert ae.history_["val_loss"][0] == pytest.approx(float((x_hat - x[30:]).pow(2).mean()), rel=1e-10)


def test_autoencoder_file_is_the_one_estimator_file(tmp_path):
    from tnmat._estimator_file import FORMAT
    from tnmat.training import MPSRegressor, load_estimator

    x = _rand((30, 3, 3), seed=10)
    ae = MPOAutoencoder(d_latent=2, bond_dim_encoder=2, bond_dim_decoder=2, max_epochs=2, random_state=0).fit(x)
    path = ae.save(tmp_path / "ae.tnmat", extra={"descriptor": "toy"})
    assert torch.load(path, weights_only=True)["format"] == FORMAT
    back = load_estimator(path)
    assert isinstance(back, MPOAutoencoder) and back.extra_ == {"descriptor": "toy"}
    assert torch.equal(back.inverse_transform(back.transform(x)), ae.inverse_transform(ae.transform(x)))
    assert back.history_ == ae.history_ and back.best_epoch_ == ae.best_epoch_
    with pytest.raises(ValueError, match="not a MPSRegressor"):
        MPSRegressor.load(path)
