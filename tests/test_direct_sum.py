"""direct_sum: a weighted sum of MPSs / TTNs is one network of the same kind with summed bond dimensions.

Truths checked: the merged network's output equals the weighted sum of the members' outputs (dense and
factorised inputs) to 1e-12, its dense weight tensor is the weighted sum of theirs, and its bonds are the
sums of theirs, also for sweep-fitted members with uneven adaptive bonds."""

from __future__ import annotations

import pytest
import torch

from tnmat.networks import MERA, MPO, MPS, TTN
from tnmat.networks.direct_sum import direct_sum
from tnmat.training.sweep import SweepConfig, sweep_fit
from tnmat.training.sweep.data import SweepData
from tnmat.training.sweep.estimator import network_bond_dims

WEIGHTS = [0.5, -1.0, 2.0]


@pytest.mark.parametrize("cls", [MPS, TTN])
@pytest.mark.parametrize("sizes", [(6,), (3, 4), (2, 3, 4, 2), (3, 4, 2, 5, 3)])
def test_output_and_weight_tensor_are_the_weighted_sum(cls, sizes) -> None:
    members = [cls(sizes, b, dtype=torch.float64, seed=s) for s, b in enumerate([2, 3, 4])]
    x = torch.randn(7, *sizes, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    merged = direct_sum(members, WEIGHTS)
    with torch.no_grad():
        ref = sum(w * m(x) for w, m in zip(WEIGHTS, members, strict=True))
        assert torch.allclose(merged(x), ref, atol=1e-12, rtol=0)
        dense = sum(w * m.to_dense() for w, m in zip(WEIGHTS, members, strict=True))
        assert torch.allclose(torch.as_tensor(merged.to_dense()), torch.as_tensor(dense), atol=1e-12, rtol=0)
        cores = [xi.reshape(7, 1, -1, 1) for xi in _product_rows(sizes)]  # factorised product-state input
        ref_f = sum(w * m(cores) for w, m in zip(WEIGHTS, members, strict=True))
        assert torch.allclose(merged(cores), ref_f, atol=1e-12, rtol=0)


def _product_rows(sizes: tuple[int, ...]) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return [torch.randn(7, d, generator=g, dtype=torch.float64) for d in sizes]


@pytest.mark.parametrize("cls", [MPS, TTN])
def test_bonds_of_sweep_fitted_members_add_up(cls) -> None:
    sizes = (3, 3, 4, 2)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, *sizes, generator=g, dtype=torch.float64)
    y = torch.randn(200, generator=g, dtype=torch.float64)
    members = []
    for seed, cap in [(1, 2), (2, 5)]:
        res = sweep_fit(cls(sizes, cap, dtype=torch.float64, seed=seed), SweepData(x, y), None,
                        SweepConfig(max_bond_dim=cap, n_sweeps=2))
        members.append(res.network)
    merged = direct_sum(members)
    bonds = [network_bond_dims(m) for m in members]
    # bottom TTN nodes and inner MPS bonds add; the mean halves the output
    assert network_bond_dims(merged) == [a + b for a, b in zip(*bonds, strict=True)]
    with torch.no_grad():
        assert torch.allclose(merged(x), (members[0](x) + members[1](x)) / 2, atol=1e-12, rtol=0)


def test_unsupported_or_mismatched_networks_are_refused() -> None:
    with pytest.raises(ValueError, match="MPO"):
        direct_sum([MPO((2, 3), 2, dtype=torch.float64, seed=0)] * 2)
    with pytest.raises(ValueError, match="MERA"):
        direct_sum([MERA((2, 3, 2, 2), 2, dtype=torch.float64, seed=0)] * 2)
    with pytest.raises(ValueError, match="legs"):
        direct_sum([MPS((2, 3), 2, seed=0), MPS((2, 4), 2, seed=0)])
    with pytest.raises(ValueError, match="weights"):
        direct_sum([MPS((2, 3), 2, seed=0)] * 2, [1.0])
    with pytest.raises(ValueError, match="no networks"):
        direct_sum([])


def test_row_entries_is_the_largest_intermediate_of_the_dense_forward(monkeypatch) -> None:
    """Predictions are chunked by row_entries (a merged ensemble has large bonds): it must equal the
    largest intermediate the dense forward actually builds, per row."""
    import tnmat.networks.tree as tree

    seen: list[int] = []
    apply = tree._apply_pair

    def spy(x, node, p):
        out = apply(x, node, p)
        seen.append(out[0].numel())
        return out

    monkeypatch.setattr(tree, "_apply_pair", spy)
    sizes = (4, 4, 3, 5, 2)
    merged = direct_sum([TTN(sizes, 4, dtype=torch.float64, seed=s) for s in range(3)])
    with torch.no_grad():
        merged(torch.randn(2, *sizes, dtype=torch.float64))
    assert merged.row_entries() == max(max(seen), 4 * 4 * 3 * 5 * 2)
    mps = direct_sum([MPS(sizes, 4, dtype=torch.float64, seed=s) for s in range(3)])
    states = [int(c.shape[-1]) * int(torch.tensor(sizes[k + 1:]).prod()) for k, c in enumerate(mps.cores)]
    assert mps.row_entries() == max(max(states), 4 * 4 * 3 * 5 * 2)
