"""TNMatCalculator: a saved tnmat energy model relaxes a rattled alloy cell and conserves energy in NVE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.calculators.calculator import PropertyNotImplementedError
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

from tnmat.calculator import TNMatCalculator
from tnmat.data.alloy_forces import RattledAlloys, generate_rattled_alloys
from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.model import StructureModel
from tnmat.training import MPSRegressor


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("calc")
    ds = generate_rattled_alloys(RattledAlloys(n_structures=48, n_systems=2), cache_dir=tmp)
    torch.manual_seed(0)
    dens = AtomicDensity(species=("Al", "Ag", "Au"), r_cut=4.5, n_max=3, l_max=2)
    # the ALS sweep fit (under a second) gives an energy surface with EMT-like stiffness: BFGS needs ~20 steps
    # least squares with validation-chosen strengths: a stiffer surface than the default fit on 48 cells
    m = StructureModel(Invariants(dens, order=2), MPSRegressor(bond_dim=4, solver="sweep", dtype="float64",
                                                               loss="squared_error", alpha_selection="validation",
                                                               random_state=0))
    m.fit(m.featurize(ds.structures), ds.targets["energy_per_atom"])
    return m.save(tmp / "model.pt"), ds


def test_relaxation_to_fmax(saved):
    path, ds = saved
    atoms = ds.structures[0].copy()
    atoms.rattle(0.2, seed=1)  # far from the model's minimum: the optimiser has work to do
    atoms.calc = TNMatCalculator(path)
    f0 = np.linalg.norm(atoms.get_forces(), axis=1).max()
    e0 = atoms.get_potential_energy()
    opt = BFGS(atoms, logfile=None)
    assert opt.run(fmax=0.05, steps=200)
    assert f0 > 1.0
    assert np.linalg.norm(atoms.get_forces(), axis=1).max() <= 0.05
    assert atoms.get_potential_energy() < e0


def test_nve_conserves_energy(saved):
    path, ds = saved
    atoms = ds.structures[1].copy()
    atoms.calc = TNMatCalculator(path)
    rng = np.random.default_rng(0)
    atoms.set_momenta(rng.normal(0, 1, (len(atoms), 3)) * np.sqrt(atoms.get_masses()[:, None] * units.kB * 600))
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    etot = []
    dyn.attach(lambda: etot.append(atoms.get_total_energy()), interval=1)
    dyn.run(100)
    etot = np.array(etot)
    ekin = atoms.get_kinetic_energy()
    assert ekin > 0.1  # atoms really move
    # velocity Verlet on an exact gradient: fluctuations O(dt^2), no drift (measured ~1e-5 eV here)
    assert np.abs(etot - etot[0]).max() < 1e-3 * ekin


def test_stress_units_and_errors(saved):
    path, ds = saved
    m = StructureModel.load(path)
    atoms = ds.structures[2].copy()
    calc = TNMatCalculator(m)
    atoms.calc = calc
    s = atoms.get_stress()
    assert s.shape == (6,) and np.isfinite(s).all()
    cluster = Atoms("AlAg", positions=[[0, 0, 0], [2.7, 0, 0]])
    cluster.calc = TNMatCalculator(m)
    assert cluster.get_forces().shape == (2, 3)
    with pytest.raises(PropertyNotImplementedError):
        cluster.get_stress()
    bad = Atoms("AlCu", positions=[[0, 0, 0], [2.7, 0, 0]])
    bad.calc = TNMatCalculator(m)
    with pytest.raises(ValueError, match=r"species \['Cu'\]"):
        bad.get_potential_energy()


def test_calculator_reads_per_atom_or_total_from_the_model_units(saved):
    path, ds = saved
    m = StructureModel.load(path)
    atoms = ds.structures[0].copy()
    per_atom = TNMatCalculator(m).get_potential_energy(atoms)
    m.units = "meV/structure"  # the same network read as a total-energy model: E = e, not N e
    total = TNMatCalculator(m).get_potential_energy(atoms.copy())
    assert per_atom == pytest.approx(len(atoms) * total, rel=1e-12)
    m.units = "meV/cation"
    with pytest.raises(ValueError, match="per cation"):
        TNMatCalculator(m)
