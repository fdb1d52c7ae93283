"""The relaxed alloy set (tnmat.data.alloys_relaxed), on its small variant."""

from __future__ import annotations

import numpy as np
import pytest

from tnmat.data.alloys_relaxed import SMALL, RelaxedAlloys, _jobs, generate_relaxed_alloys, relaxed_structures
from tnmat.data.ideal_sites import check_on_lattice


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return generate_relaxed_alloys(SMALL, cache_dir=tmp_path_factory.mktemp("cache"), progress=False,
                                   keep_excluded=True, name="alloys-relaxed-small")


def test_relaxation_lowers_the_energy_and_keeps_the_lattice(small):
    m = small.metadata
    assert len(small) == 18 and set(m["kind"]) == {"pure", "binary", "ternary"}
    assert np.all(m["relaxed_energy"] <= m["ideal_energy"] + 1e-12)
    assert np.all(small.targets["mixing_energy"] <= m["ideal_mixing_energy"] + 1e-12)
    assert np.all(small.targets["mixing_energy"][m["kind"] == "pure"] == pytest.approx(0.0, abs=1e-12))
    kept = np.asarray(m["on_lattice"]).astype(str) == "True"
    assert kept.any()
    for a, r in zip(small.subset(kept).structures, relaxed_structures(small.subset(kept)), strict=True):
        assert check_on_lattice(r, "fcc")[1] == ""
        assert r.get_chemical_symbols() == a.get_chemical_symbols()
    # inputs are ideal sites at the Vegard volume: every nearest-neighbour distance of a structure is equal
    for a in small.structures:
        d = a.repeat(2).get_all_distances(mic=True) if len(a) < 4 else a.get_all_distances(mic=True)
        nn = np.sort(d[d > 1e-6])
        assert nn[0] == pytest.approx(nn[:3].max(), rel=1e-8)


def test_cached_and_deterministic(small, tmp_path):
    again = generate_relaxed_alloys(SMALL, cache_dir=small.source.split("cached at ")[1].rsplit("/", 1)[0],
                                    progress=False)
    assert "cached at" in again.source
    assert list(again.metadata["id"]) == [i for i, k in zip(small.metadata["id"], small.metadata["on_lattice"],
                                                          strict=True) if str(k) == "True"]
    assert [j[0] for j in _jobs(SMALL)] == [j[0] for j in _jobs(SMALL)]
    with pytest.raises(ValueError, match="EMT elements"):
        RelaxedAlloys(elements=("Cu", "Fe"))
