"""Conservative forces and stress from scalar energy models (tnmat.forces): finite differences, symmetries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

from conftest import random_rotation
from tnmat.data.alloy_forces import RattledAlloys, generate_rattled_alloys
from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.forces import EnergyModel, energy_forces_stress
from tnmat.model import StructureModel
from tnmat.training import MPORegressor, MPSRegressor

SPECIES = ("Al", "Ag", "Au")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    cache = tmp_path_factory.mktemp("rattled")
    return generate_rattled_alloys(RattledAlloys(n_structures=12, n_systems=2), cache_dir=cache)


def _model(data, regressor, *, local: bool = False, center_species: bool = False) -> StructureModel:
    torch.manual_seed(0)
    dens = AtomicDensity(species=SPECIES, r_cut=4.5, n_max=3, l_max=2)
    m = StructureModel(Invariants(dens, order=2, center_species=center_species), regressor, local=local)
    return m.fit(m.featurize(data.structures), data.targets["energy_per_atom"])


@pytest.fixture(scope="module")
def models(data):
    """An MPS on structure-averaged descriptors (float64) and a local MPO with centre species (float32: the
    force code evaluates a float64 copy)."""
    mps = _model(data, MPSRegressor(solver="adam", bond_dim=3, max_epochs=30, dtype="float64", random_state=0))
    mpo = _model(data, MPORegressor(solver="adam", bond_dim=2, max_epochs=10, random_state=0, input_offset=1.0),
                 local=True,
                 center_species=True)
    return {"mps": mps, "mpo": mpo}


def _fd_forces(model, atoms: Atoms, comps, h: float = 1e-5) -> np.ndarray:
    frames = []
    for i, c in comps:
        for sign in (1, -1):
            b = atoms.copy()
            b.positions[i, c] += sign * h
            frames.append(b)
    e = energy_forces_stress(model, frames, forces=False, stress=False).energy.reshape(-1, 2)
    return -(e[:, 0] - e[:, 1]) / (2 * h)


@pytest.mark.parametrize("kind", ["mps", "mpo"])
def test_forces_are_negative_energy_gradient(models, data, kind):
    model = models[kind]
    atoms = data.structures[3]
    res = energy_forces_stress(model, [atoms])
    f = res.forces[0]
    rng = np.random.default_rng(0)
    comps = [(int(i), int(c)) for i, c in zip(rng.integers(0, len(atoms), 6), rng.integers(0, 3, 6), strict=True)]
    fd = _fd_forces(model, atoms, comps)
    exact = np.array([f[i, c] for i, c in comps])
    assert np.abs(exact).max() > 1e-4  # not trivially zero
    assert np.abs(fd - exact).max() <= 1e-6 * np.abs(f).max()
    # the energy is the model's prediction times the number of atoms (energy per atom targets)
    assert res.energy[0] == pytest.approx(model.predict([atoms])[0] * len(atoms), rel=1e-6)


@pytest.mark.parametrize("kind", ["mps", "mpo"])
def test_stress_is_strain_derivative(models, data, kind):
    model = models[kind]
    atoms = data.structures[5]
    s = energy_forces_stress(model, [atoms]).stress[0]
    h = 1e-5
    for i, j in [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2)]:
        frames = []
        for sign in (1, -1):
            x = np.eye(3)
            x[i, j] += sign * h / 2
            x[j, i] += sign * h / 2
            b = atoms.copy()
            b.set_cell(atoms.cell.array @ x, scale_atoms=True)
            frames.append(b)
        e = energy_forces_stress(model, frames, forces=False, stress=False).energy
        fd = (e[0] - e[1]) / (2 * h) / atoms.get_volume()
        assert abs(fd - s[i, j]) <= 1e-6 * np.abs(s).max()
    assert np.allclose(s, s.T)


def test_symmetries(models, data):
    model = models["mpo"]
    atoms = data.structures[2]
    base = energy_forces_stress(model, [atoms])
    f, s = base.forces[0], base.stress[0]
    assert np.abs(f.sum(0)).max() < 1e-10 * np.abs(f).max()  # translation invariance: no net force
    for seed in range(3):
        R = random_rotation(seed)
        rot = atoms.copy()
        rot.set_cell(atoms.cell.array @ R.T, scale_atoms=False)
        rot.positions = atoms.positions @ R.T
        r = energy_forces_stress(model, [rot])
        assert r.energy[0] == pytest.approx(base.energy[0], rel=1e-10)
        assert np.abs(r.forces[0] - f @ R.T).max() < 1e-10 * np.abs(f).max()
        assert np.abs(r.stress[0] - R @ s @ R.T).max() < 1e-10 * np.abs(s).max()
    perm = np.random.default_rng(1).permutation(len(atoms))
    p = energy_forces_stress(model, [atoms[perm]])
    assert np.abs(p.forces[0] - f[perm]).max() < 1e-10 * np.abs(f).max()
    sup = energy_forces_stress(model, [atoms.repeat((2, 1, 1))])
    assert sup.energy[0] == pytest.approx(2 * base.energy[0], rel=1e-10)
    assert np.abs(sup.forces[0] - np.tile(f, (2, 1))).max() < 1e-10 * np.abs(f).max()
    assert np.abs(sup.stress[0] - s).max() < 1e-10 * np.abs(s).max()


def test_batched_equals_single_and_cluster(models, data):
    model = EnergyModel(models["mps"])
    frames = data.structures[:5]
    batch = energy_forces_stress(model, frames, max_atoms=70)
    for k, a in enumerate(frames):
        one = energy_forces_stress(model, [a])
        assert one.energy[0] == pytest.approx(batch.energy[k], rel=1e-12)
        assert np.abs(one.forces[0] - batch.forces[k]).max() < 1e-12
        assert np.abs(one.stress[0] - batch.stress[k]).max() < 1e-14
    cluster = Atoms("AlAgAu", positions=[[0, 0, 0], [2.6, 0, 0], [0.3, 2.5, 0.4]])
    r = energy_forces_stress(model, [cluster])
    assert np.isnan(r.stress[0]).all() and np.abs(r.forces[0].sum(0)).max() < 1e-12


def test_regressor_without_network_is_rejected(models):
    class NoNet:
        pass

    m = StructureModel(models["mps"].descriptor, NoNet())
    with pytest.raises(TypeError, match="torch network"):
        EnergyModel(m)
