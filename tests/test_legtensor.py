"""LegTensor: the shared leg-labelled type."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnmat import LegTensor


def make(per_atom: bool = False) -> LegTensor:
    g = torch.Generator().manual_seed(0)
    vals = torch.randn(6, 2, 2, 3, 3, 2, generator=g, dtype=torch.float64)
    vals = 0.5 * (vals + vals.permute(0, 2, 1, 4, 3, 5))  # power-spectrum symmetry a1n1 <-> a2n2
    sidx = torch.tensor([0, 0, 1, 2, 2, 2]) if per_atom else None
    return LegTensor(vals, ("a1", "a2", "n1", "n2", "l"), structure_index=sidx, meta={"x": 1})


def test_validation_errors():
    with pytest.raises(ValueError, match="legs"):
        LegTensor(torch.zeros(3, 2, 2), ("a",))
    with pytest.raises(ValueError, match="unique"):
        LegTensor(torch.zeros(3, 2, 2), ("a", "a"))
    with pytest.raises(ValueError, match="structure_index"):
        LegTensor(torch.zeros(3, 2), ("a",), structure_index=torch.zeros(2))
    with pytest.raises(KeyError, match="no leg"):
        make().axis("q")


def test_independent_entries_count_and_reconstruction():
    t = make()
    pairs = [("a1", "a2"), ("n1", "n2")]
    feats = t.independent_features(pairs)
    # pairs (a n) with a in 2, n in 3: 6 channels -> 6*7/2 = 21 unordered pairs, times 2 l values
    assert feats.shape == (6, 21 * 2)
    mask = t.independent_mask(pairs)
    # every entry is either kept or is the mirror of a kept entry
    mirror = mask.permute(1, 0, 3, 2, 4)
    assert bool((mask | mirror).all())
    # the kept entries carry all information: rebuild the symmetric tensor
    rebuilt = torch.zeros_like(t.values)
    rebuilt[:, mask] = feats
    rebuilt = torch.where(mask, rebuilt, rebuilt.permute(0, 2, 1, 4, 3, 5))
    torch.testing.assert_close(rebuilt, t.values)


def test_structure_mean_and_select_per_atom():
    t = make(per_atom=True)
    mean = t.structure_mean()
    assert len(mean) == 3 and mean.structure_index is None
    torch.testing.assert_close(mean.values[2], t.values[3:6].mean(0))
    sub = t.select([2, 0])
    assert sub.structure_index.tolist() == [0, 0, 0, 1, 1]
    torch.testing.assert_close(sub.values[3:], t.values[:2])


def test_standardise_zero_variance_is_finite():
    t = make().pad({"l": 4})
    st, mean, std = t.standardise()
    assert torch.isfinite(st.values).all()
    assert float(st.values[..., 2:].abs().max()) == 0.0  # padded entries stay exactly zero
    torch.testing.assert_close(st.values[..., :2].std(0, unbiased=False), torch.ones(2, 2, 3, 3, 2,
                                                                                    dtype=torch.float64))


def test_save_load_roundtrip_and_bad_files(tmp_path):
    t = make(per_atom=True)
    path = t.save(tmp_path / "x.npz")
    back = LegTensor.load(path)
    assert back.legs == t.legs and back.meta == {"x": 1}
    torch.testing.assert_close(back.values, t.values)
    assert torch.equal(back.structure_index, t.structure_index)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        LegTensor.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, values=np.zeros(2))
    with pytest.raises(ValueError, match="other.npz"):
        LegTensor.load(other)
    with pytest.raises(FileNotFoundError):
        LegTensor.load(tmp_path / "missing.npz")


def test_permute_moves_axes():
    t = make()
    p = t.permute(["l", "a1", "a2", "n1", "n2"])
    assert p.sizes == (2, 2, 2, 3, 3)
    torch.testing.assert_close(p.values[:, 1, 0, 1, 2, 0], t.values[:, 0, 1, 2, 0, 1])
