"""Forces and stress in tnmat.data: the rattled-alloy generator (against EMT) and read_structures (extxyz)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from tnmat.data import read_structures
from tnmat.data.alloy_forces import RattledAlloys, generate_rattled_alloys
from tnmat.data.readers import structure_forces, structure_stress


@pytest.fixture(scope="module")
def rattled(tmp_path_factory):
    cache = tmp_path_factory.mktemp("rattled")
    return cache, generate_rattled_alloys(RattledAlloys(n_structures=8, n_systems=2), cache_dir=cache)


def test_generator_matches_emt_and_cache(rattled):
    cache, ds = rattled
    f, s = structure_forces(ds), structure_stress(ds)
    for k in (0, 5):
        a = ds.structures[k].copy()
        a.calc = EMT()
        assert np.abs(a.get_forces() - f[k]).max() < 1e-12
        assert np.abs(a.get_stress(voigt=False) - s[k]).max() < 1e-12
        assert a.get_potential_energy() / len(a) == pytest.approx(ds.targets["energy_per_atom"][k], rel=1e-12)
        assert np.abs(f[k].sum(0)).max() < 1e-10 and len(a) >= 16
    again = generate_rattled_alloys(RattledAlloys(n_structures=8, n_systems=2), cache_dir=cache)  # from the cache
    assert "cached" in again.source
    assert max(np.abs(x - y).max() for x, y in zip(structure_forces(again), f, strict=True)) < 1e-7
    assert np.abs(structure_stress(again) - s).max() < 1e-7
    assert set(ds.metadata["split"]) == {"train", "test"}


def test_read_forces_stress_extxyz(tmp_path):
    frames = []
    for k in range(3):
        a = bulk("Cu", cubic=True).repeat(2)
        a.rattle(0.05, seed=k)
        a.calc = EMT()
        a.calc = SinglePointCalculator(a, energy=a.get_potential_energy(), forces=a.get_forces(),
                                       stress=a.get_stress())
        frames.append(a)
    path = tmp_path / "f.extxyz"
    write(path, frames)
    ds = read_structures(path, forces=True, stress=True)
    assert np.abs(structure_forces(ds)[1] - frames[1].get_forces()).max() < 1e-7
    assert np.abs(structure_stress(ds)[2] - frames[2].get_stress(voigt=False)).max() < 1e-7
    # round trip through Dataset.to_extxyz
    back = read_structures(ds.to_extxyz(tmp_path / "back.extxyz"), forces=True, stress=True)
    assert np.abs(structure_forces(back)[0] - structure_forces(ds)[0]).max() < 1e-7


def test_missing_and_ill_shaped(tmp_path):
    a = bulk("Cu", cubic=True)
    b = a.copy()
    b.arrays["forces"] = np.zeros((4, 3))
    write(tmp_path / "mixed.extxyz", [b, a])
    with pytest.raises(ValueError, match=r"mixed.extxyz: frame 1: no forces"):
        read_structures(tmp_path / "mixed.extxyz", forces=True)
    with pytest.raises(ValueError, match=r"mixed.extxyz: frame 0: no stress"):
        read_structures(tmp_path / "mixed.extxyz", stress=True)
    ds = read_structures(tmp_path / "mixed.extxyz")
    with pytest.raises(ValueError, match=r"structure mixed.extxyz:1: no forces"):
        structure_forces(ds)
    c = a.copy()
    c.info["stress"] = np.arange(4.0)
    write(tmp_path / "bad.extxyz", [c])
    with pytest.raises(ValueError, match=r"bad.extxyz: cannot read frame 0"):  # ASE's own check, located
        read_structures(tmp_path / "bad.extxyz")
    write(tmp_path / "bad.traj", [c])  # the trajectory format keeps any info entry: tnmat's check
    with pytest.raises(ValueError, match=r"bad.traj: frame 0: stress has shape \(4,\)"):
        read_structures(tmp_path / "bad.traj")
    d = a.copy()
    d.arrays["forces"] = np.full((4, 3), np.nan)
    write(tmp_path / "nan.extxyz", [d])
    with pytest.raises(ValueError, match=r"nan.extxyz: frame 0: forces contain NaN"):
        read_structures(tmp_path / "nan.extxyz")
