"""ASE calculator around a fitted tnmat energy model: energy, forces and stress for relaxations and MD.

    from ase.optimize import BFGS
    from tnmat.calculator import TNMatCalculator

    atoms.calc = TNMatCalculator("model.pt")   # a StructureModel saved by `tnmat fit` / StructureModel.save
    BFGS(atoms).run(fmax=0.05)

Energies are ``N e(B)`` with ``e`` the model's energy per atom, or ``e`` itself for a model fitted on total
energies (``extensive``; by default read from the model's target units: per atom -> False, per structure ->
True; a per-cation model such as NMD18's formation energy is refused, its ``N e`` would not be the energy of
the cell); forces and stress are its exact derivatives (:mod:`tnmat.forces`).  Stress is given for fully
periodic structures only.  A runnable relaxation + NVE example is in docs/results/forces.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from tnmat.forces import EnergyModel, energy_forces_stress, predicts_total_energy
from tnmat.so3.cartesian import matrix_to_voigt

__all__ = ["TNMatCalculator"]


class TNMatCalculator(Calculator):
    """ASE calculator for a tnmat :class:`~tnmat.model.StructureModel` (or the path of a saved one).

    Properties: ``energy`` / ``free_energy`` (eV), ``forces`` (eV/A), ``stress`` (Voigt, eV/A^3, periodic
    structures).  Species the model was not fitted on raise ``ValueError`` naming them."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model: Any, *, extensive: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(model, str | Path):
            from tnmat.model import StructureModel

            model = StructureModel.load(model)
        self.energy_model = EnergyModel(model)
        self.extensive = predicts_total_energy(model) if extensive is None else bool(extensive)

    def calculate(self, atoms: Atoms | None = None, properties: Any = ("energy",),
                  system_changes: Any = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if len(atoms) == 0:
            raise ValueError("TNMatCalculator: the structure has no atoms (an energy needs at least one)")
        species = set(self.energy_model.descriptor.density.species)
        unknown = sorted(set(atoms.get_chemical_symbols()) - species)
        if unknown:
            raise ValueError(f"TNMatCalculator: species {unknown} are not in the model's species {sorted(species)}")
        periodic = bool(np.all(atoms.pbc))
        if "stress" in properties and not periodic:
            raise PropertyNotImplementedError("TNMatCalculator: stress needs a fully periodic structure")
        res = energy_forces_stress(self.energy_model, [atoms], extensive=self.extensive, forces=True,
                                   stress=periodic)
        e = float(res.energy[0])
        self.results = {"energy": e, "free_energy": e, "forces": res.forces[0]}
        if periodic:
            self.results["stress"] = matrix_to_voigt(res.stress[0])
