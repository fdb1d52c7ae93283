"""Generated BA10-style binary alloys: enumeration counts, Vegard lattice constants, EMT mixing energies, cache."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT
from ase.neighborlist import neighbor_list

from tnmat import data
from tnmat.data.alloys import emt_lattice_constant, enumerate_derivatives


def test_two_atom_fcc_orderings_are_L10_and_L11():
    # Known answer: the only 2-atom binary fcc superstructures are L1_0 (CuAu: 4 like + 8 unlike nearest
    # neighbours) and L1_1 (CuPt: 6 like + 6 unlike); the pure lattices are the two 1-atom ones.
    structs = enumerate_derivatives("fcc", 2)
    assert sorted(len(occ) for _, _, occ in structs) == [1, 1, 2, 2]
    like = []
    for cell, frac, occ in structs:
        if len(occ) != 2:
            continue
        a = Atoms(["Cu" if o else "Au" for o in occ], scaled_positions=frac, cell=cell * 4.0, pbc=True)
        i, j = neighbor_list("ij", a, 4.0 / np.sqrt(2) + 0.1)
        assert np.all(np.bincount(i) == 12)
        like.append(int(np.sum(occ[i[i == 0]] == occ[j[i == 0]])))
    assert sorted(like) == [4, 6]


def test_enumeration_counts_small():
    # Hart-Forcade binary counts up to 4 atoms: fcc 2+2+6+19 = 29, bcc the same (same point group), hcp 3+10.
    assert len(enumerate_derivatives("fcc", 4)) == 29
    assert len(enumerate_derivatives("bcc", 4)) == 29
    assert len(enumerate_derivatives("hcp", 4)) == 13


def test_enumeration_count_ba10():
    # BA10 (Nyshadham et al. 2019): 1595 structures per binary for fcc + bcc + hcp up to 8 atoms.
    counts = {lat: len(enumerate_derivatives(lat, 8)) for lat in ("fcc", "bcc", "hcp")}
    assert counts == {"fcc": 631, "bcc": 631, "hcp": 333}
    assert sum(counts.values()) == 1595


def test_emt_lattice_constant_is_minimum():
    from ase.build import bulk

    for el, lat in (("Cu", "fcc"), ("Ag", "bcc"), ("Pt", "hcp")):
        a, e = emt_lattice_constant(el, lat)

        def energy(s, el=el, lat=lat, a=a):
            at = bulk(el, lat, a=s * a, c=s * a * np.sqrt(8 / 3)) if lat == "hcp" else bulk(el, lat, a=s * a)
            at.calc = EMT()
            return at.get_potential_energy() / len(at)

        assert energy(1.0) == pytest.approx(e, abs=1e-12)
        assert energy(0.99) > e and energy(1.01) > e
    # EMT's fcc Cu lattice constant is ~3.59 A (ASE's EMT fit to experiment, 3.61)
    assert emt_lattice_constant("Cu", "fcc")[0] == pytest.approx(3.59, abs=0.02)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return data.generate_binary_alloys(n_systems=2, max_atoms=4, cache_dir=tmp_path_factory.mktemp("c"),
                                       progress=False)


def test_small_alloys_content(small):
    assert len(small) == 2 * 71
    assert set(small.metadata["system"]) == {"AgAl", "AgAu"}  # first two sorted pairs
    assert small.species == ("Al", "Ag", "Au")
    x, e = small.metadata["composition"], small.targets["mixing_energy"]
    pure = (x == 0) | (x == 1)
    assert pure.sum() == 2 * 3 * 2  # 2 systems x 3 lattices x 2 pure elements
    np.testing.assert_allclose(e[pure], 0.0, atol=1e-12)  # mixing energy of pure elements is 0
    assert np.abs(e[~pure]).max() > 1e-3
    test = small.metadata["split"] == "test"
    assert test.sum() == len(small) // 5
    for k in np.flatnonzero(~pure)[:10]:
        a = small.structures[k]
        el_a, el_b = small.metadata["system"][k][:2], small.metadata["system"][k][2:]
        assert a.get_chemical_symbols().count(el_b) / len(a) == pytest.approx(x[k])
        # Vegard: volume per atom is that of the parent lattice with a = (1-x) a_A + x a_B
        lat = small.metadata["lattice"][k]
        a_vg = (1 - x[k]) * emt_lattice_constant(el_a, lat)[0] + x[k] * emt_lattice_constant(el_b, lat)[0]
        v1 = {"fcc": a_vg**3 / 4, "bcc": a_vg**3 / 2, "hcp": np.sqrt(3) / 2 * a_vg**2 * a_vg * np.sqrt(8 / 3) / 2}[lat]
        assert small.metadata["volume_per_atom"][k] == pytest.approx(v1, rel=1e-10)
        # E_mix recomputed independently
        b = a.copy()
        b.calc = EMT()
        ref = b.get_potential_energy() / len(b) - (1 - x[k]) * emt_lattice_constant(el_a, lat)[1] \
            - x[k] * emt_lattice_constant(el_b, lat)[1]
        assert e[k] == pytest.approx(ref, abs=1e-12)


def test_cache_roundtrip_and_determinism(small, tmp_path):
    again = data.generate_binary_alloys(n_systems=2, max_atoms=4, cache_dir=tmp_path, progress=False)
    cached = data.generate_binary_alloys(n_systems=2, max_atoms=4, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.extxyz"))) == 1
    for ds in (again, cached):
        np.testing.assert_allclose(ds.targets["mixing_energy"], small.targets["mixing_energy"], atol=1e-10)
        assert list(ds.metadata["id"]) == list(small.metadata["id"])
        assert list(ds.metadata["split"]) == list(small.metadata["split"])
        np.testing.assert_allclose(ds.metadata["composition"], small.metadata["composition"])
    for a, b in zip(cached.structures, small.structures, strict=True):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-8)
    other = data.generate_binary_alloys(n_systems=2, max_atoms=4, seed=1, cache_dir=tmp_path, progress=False)
    assert list(other.metadata["split"]) != list(small.metadata["split"])


def test_alloy_bad_parameters(tmp_path):
    with pytest.raises(ValueError, match="EMT has no parameters for 'Fe'"):
        data.generate_binary_alloys(elements=("Fe", "Cu"), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="n_systems must be in 1..1"):
        data.generate_binary_alloys(elements=("Au", "Cu"), n_systems=2, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="lattice must be one of"):
        data.generate_binary_alloys(lattices=("sc",), cache_dir=tmp_path)


def test_embedded_default_small(tmp_path):
    ds = data.embedded_default(small=True, cache_dir=tmp_path, progress=False)
    assert ds.name == "alloys-small" and len(ds) == 142
    assert "mixing_energy" in ds.targets and set(ds.metadata["split"]) == {"train", "test"}
