"""Stress (virial) rows of force-matched fits: strain Jacobian, predicted stress = the calculator's, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.calculators.emt import EMT

from test_force_matching import _calc, _cell  # the same small cells and descriptor
from tnmat.forces import energy_forces_stress, per_atom_descriptor
from tnmat.model import StructureModel
from tnmat.training import DenseACERegressor, TTNRegressor
from tnmat.training.force_rows import ForceRows, descriptor_jacobian, force_rows, predict_stress


def _strained_bbar(calc, atoms, eps):
    deform = torch.eye(3, dtype=torch.float64) + eps
    pos = torch.tensor(atoms.positions) @ deform
    cell = torch.tensor(atoms.cell.array) @ deform
    return per_atom_descriptor(calc, pos, atoms.numbers, cell, atoms.pbc).mean(0)


def test_strain_jacobian_equals_central_differences():
    calc, atoms = _calc(), _cell(2)
    jac = descriptor_jacobian(calc, atoms, wrt="strain")
    assert jac.shape == (9, *calc.sizes)
    h = 1e-6
    for k in range(9):
        e = torch.zeros(9, dtype=torch.float64)
        e[k] = h
        fd = (_strained_bbar(calc, atoms, e.reshape(3, 3)) - _strained_bbar(calc, atoms, -e.reshape(3, 3))) / (2 * h)
        assert torch.allclose(jac[k], fd, atol=1e-7 * float(jac.abs().max()))


def _emt_cells(n):
    cells = [_cell(s) for s in range(n)]
    for c in cells:
        ref = c.copy()
        ref.calc = EMT()
        c.arrays["forces"] = ref.get_forces()
        c.info["stress"] = ref.get_stress()
        c.info["e"] = ref.get_potential_energy() / len(c)
    return cells


@pytest.mark.parametrize("cls", [DenseACERegressor, TTNRegressor])
def test_stress_rows_give_the_calculator_stress_and_fit_it(cls):
    calc, cells = _calc(), _emt_cells(12)
    X, y = calc.compute(cells, average=True), np.array([c.info["e"] for c in cells])
    rows = force_rows(calc, cells, stress=True)
    ref = np.stack([rows.stress[k] for k in range(len(cells))])
    kw = {} if cls is DenseACERegressor else {"bond_dim": 4}
    errs = {}
    for sw in (0.0, 10.0):
        est = cls(force_weight=1.0, stress_weight=sw, dtype="float64", **kw).fit(X, y, forces=rows)
        mine = predict_stress(est, rows)
        auto = energy_forces_stress(StructureModel(calc, est, units="eV/atom"), cells).stress
        assert float(np.abs(mine - auto).max()) < 1e-10 * max(1.0, float(np.abs(auto).max()))
        errs[sw] = float(np.sqrt(np.mean((mine - ref) ** 2)))
    assert errs[10.0] < errs[0.0]


def test_incomplete_or_bad_stress_rows_are_refused():
    jac, f = [torch.zeros(6, 2, 3)], [np.zeros((2, 3))]
    with pytest.raises(ValueError, match="together"):
        ForceRows(jac, f, stress=[np.zeros((3, 3))])
    with pytest.raises(ValueError, match="structure 0: stress"):
        ForceRows(jac, f, strain_jacobians=[torch.zeros(9, 2, 3)], stress=[np.zeros((3, 3))], volumes=[-1.0])
    atoms = _cell()
    with pytest.raises(ValueError, match="carry no stress"):
        force_rows(_calc(), [atoms], [np.zeros((8, 3))], stress=True)
