"""Ideal parent-lattice sites of relaxed structures (tnmat.data.ideal_sites)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from tnmat.data.ideal_sites import LatticeMappingError, check_on_lattice, detect_parent, map_to_ideal


def _distorted(seed: int = 0):
    ideal = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1))
    ideal.symbols[[1, 4, 6]] = "Au"
    rng = np.random.default_rng(seed)
    relaxed = ideal.copy()
    eps = rng.normal(0, 0.01, (3, 3))
    relaxed.set_cell(relaxed.cell.array @ (np.eye(3) * 1.04 + (eps + eps.T) / 2), scale_atoms=True)
    relaxed.positions += rng.normal(0, 0.05, relaxed.positions.shape)
    return ideal, relaxed


def test_rattled_strained_cell_maps_to_its_parent_sites():
    ideal, relaxed = _distorted()
    (mapped,) = map_to_ideal([relaxed], "fcc", volumes={"Cu": 3.7**3 / 4, "Au": 3.7**3 / 4})
    assert mapped.get_volume() == pytest.approx(ideal.get_volume(), rel=1e-10)  # Vegard volume: a = 3.7 A
    assert sorted(mapped.get_chemical_symbols()) == sorted(ideal.get_chemical_symbols())
    # every mapped atom sits on an ideal fcc site, with the ideal nearest-neighbour distance
    d = mapped.get_all_distances(mic=True)
    np.testing.assert_allclose(np.sort(d[d > 1e-6])[:10], 3.7 / np.sqrt(2), rtol=1e-8)
    assert detect_parent(relaxed) == "fcc"
    assert check_on_lattice(relaxed, "fcc")[1] == ""


def test_structure_of_another_lattice_is_refused_with_file_and_index():
    _, relaxed = _distorted()
    bcc = bulk("Cu", "bcc", a=2.95, cubic=True).repeat((2, 2, 2))
    with pytest.raises(LatticeMappingError, match=r"^mine.xyz: structure 1 \(Cu16\): ") as info:
        map_to_ideal([relaxed, bcc], "fcc", source="mine.xyz")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="parent lattice 'sc'"):
        map_to_ideal([relaxed], "sc")
