"""Rounding of MPS and TTN (tnmat.networks.rounding): the weight tensor kept to the stated tolerance, the
bonds of merged copies brought back to the rank of W, Eckart-Young on one bond."""

from __future__ import annotations

import pytest
import torch

from tnmat.networks import MERA, MPS, TTN
from tnmat.networks.direct_sum import direct_sum
from tnmat.networks.rounding import round_network

SIZES = (3, 4, 2, 5, 3)


def _net(kind: type, chi: int, seed: int) -> MPS | TTN:
    net = kind(SIZES, chi, dtype=torch.float64, seed=seed)
    with torch.no_grad():  # break the isometric initial gauge: rounding must not rely on it
        for p in net.parameters():
            p.mul_(1 + 0.5 * torch.rand(p.shape, generator=torch.Generator().manual_seed(seed), dtype=p.dtype))
    return net


def _bonds(net: MPS | TTN) -> list[int]:
    if isinstance(net, MPS):
        return [int(c.shape[-1]) for c in net.cores[:-1]]
    return [int(w.shape[-1]) for layer in net.layers[:-1] for w in layer.isometries]


@pytest.mark.parametrize("kind", [MPS, TTN])
def test_copies_merged_round_back_to_one_network(kind):
    """The mean of three copies of a network is that network: rounding finds its bonds again (or smaller:
    the rank of W across a bond) and the same weight tensor."""
    net = _net(kind, 3, seed=1)
    merged = direct_sum([net, net, net])
    assert max(_bonds(merged)) == 9
    back = round_network(merged)
    assert all(b <= c for b, c in zip(_bonds(back), _bonds(net), strict=True))
    w = net.to_dense()
    assert float((back.to_dense() - w).norm()) < 1e-12 * float(w.norm())
    x = torch.randn(7, *SIZES, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(back(x), net(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", [MPS, TTN])
def test_lossless_rounding_of_an_ensemble_keeps_its_predictions(kind):
    members = [_net(kind, 4, seed=s) for s in range(4)]
    merged = direct_sum(members)
    rounded = round_network(merged)
    w = merged.to_dense()
    assert float((rounded.to_dense() - w).norm()) < 1e-11 * float(w.norm())
    assert sum(p.numel() for p in rounded.parameters()) < sum(p.numel() for p in merged.parameters())
    if kind is TTN:  # a bottom node's output never needs more than the product of its two legs
        for w_node in rounded.layers[0].isometries:
            assert w_node.shape[-1] <= w_node.shape[0] * w_node.shape[1]


@pytest.mark.parametrize("kind", [MPS, TTN])
@pytest.mark.parametrize("rtol", [0.05, 0.3])
def test_truncation_honours_the_tolerance(kind, rtol):
    net = direct_sum([_net(kind, 5, seed=s) for s in range(3)], weights=[1.0, 0.3, 0.05])
    rounded = round_network(net, rtol=rtol)
    w = net.to_dense()
    assert float((rounded.to_dense() - w).norm()) <= rtol * float(w.norm())
    assert sum(_bonds(rounded)) < sum(_bonds(net))


def test_one_bond_is_the_truncated_svd():
    """Two sites, one bond: the rounded MPS is the best rank-r approximation of W (Eckart-Young)."""
    net = direct_sum([MPS((6, 5), 3, dtype=torch.float64, seed=s) for s in range(2)])
    w = net.to_dense()
    s = torch.linalg.svdvals(w)
    rtol = float(s[3:].norm() / w.norm()) * 1.0001  # just enough to drop all but three singular values
    rounded = round_network(net, rtol=rtol)
    assert _bonds(rounded) == [3]
    u, s, vh = torch.linalg.svd(w)
    best = u[:, :3] @ torch.diag(s[:3]) @ vh[:3]
    torch.testing.assert_close(rounded.to_dense(), best, rtol=0, atol=1e-12)


def test_float32_network_stays_float32_and_other_networks_are_refused():
    net = MPS(SIZES, 3, dtype=torch.float32, seed=0)
    assert next(round_network(direct_sum([net, net])).parameters()).dtype == torch.float32
    with pytest.raises(ValueError, match="MERA"):
        round_network(MERA(SIZES, 3, seed=0))
    with pytest.raises(ValueError, match="rtol"):
        round_network(net, rtol=-1.0)
