"""A force-matched tensor network as an interatomic potential of a pure fcc metal, against its reference (EMT).

Training data: ``--cells`` rattled (0.05 A) and strained (+-2 %) 3x3x3 fcc supercells (27 atoms) of
``--element`` with EMT energies, forces and stress, written to an extxyz file and fitted by the default
``tnmat fit`` (TTN, sweeps, energies + forces + stress).  Then, through :class:`tnmat.calculator.TNMatCalculator`
and EMT side by side:

* the equilibrium lattice constant (A) from a cubic equation-of-state scan (ASE ``EquationOfState``);
* the elastic constants C11, C12, C44 (GPa) from stress-strain fits of the conventional cell at that lattice
  constant (strains -0.5 %, 0, +0.5 %; uniaxial e_xx for C11 and C12, shear e_yz for C44; one atom per
  primitive cell of fcc, so the shear needs no internal relaxation);
* phonon frequencies (THz) at X and L from ASE ``Phonons`` on a 4x4x4 supercell of the primitive cell;
* NVE energy drift: 1 ps of velocity Verlet (1 fs steps, 300 K start) on the 3x3x3 supercell, the drift of the
  total energy in meV/atom/ps (linear fit).

Writes ``results/forces/potential_physics.json``.

    python benchmarks/potential_physics.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.eos import EquationOfState
from ase.io import write
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from ase.phonons import Phonons

from tnmat.calculator import TNMatCalculator
from tnmat.cli import main as tnmat_main
from tnmat.reports import atomic_write

GPA = 1.0 / units.GPa  # eV/A^3 -> GPa


def training_cells(element: str, n: int, seed: int = 0) -> list[Atoms]:
    """Rattled and strained 3x3x3 fcc supercells with their EMT energies, forces and stress."""
    rng = np.random.default_rng(seed)
    base = bulk(element, "fcc", cubic=False).repeat((3, 3, 3))
    out = []
    for k in range(n):
        atoms = base.copy()
        eps = rng.uniform(-0.02, 0.02, (3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + (eps + eps.T) / 2), scale_atoms=True)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f, stress=s)
        atoms.info["id"] = f"{element}-{k}"
        out.append(atoms)
    return out


def lattice_constant(element: str, calc: object) -> float:
    """Equilibrium cubic lattice constant (A) from an equation-of-state scan of the conventional cell."""
    a0 = bulk(element, "fcc", cubic=True).cell[0, 0]
    vols, energies = [], []
    for a in a0 * np.linspace(0.97, 1.03, 9):
        atoms = bulk(element, "fcc", a=a, cubic=True)
        atoms.calc = calc
        vols.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    v0, _, _ = EquationOfState(vols, energies).fit()
    return float(v0 ** (1 / 3))  # the conventional cell: V = a^3


def elastic_constants(element: str, a: float, calc: object, h: float = 0.005) -> dict[str, float]:
    """C11, C12, C44 (GPa) by central differences of the stress under small strains (Voigt, ASE's sign:
    stress = (1/V) dE/d(strain))."""
    def stress(strain: np.ndarray) -> np.ndarray:
        atoms = bulk(element, "fcc", a=a, cubic=True)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
        atoms.calc = calc
        return atoms.get_stress(voigt=True) * GPA

    exx = np.zeros((3, 3))
    exx[0, 0] = h
    eyz = np.zeros((3, 3))
    eyz[1, 2] = eyz[2, 1] = h / 2  # engineering shear strain gamma_yz = h
    d_xx = (stress(exx) - stress(-exx)) / (2 * h)
    d_yz = (stress(eyz) - stress(-eyz)) / (2 * h)
    return {"C11": float(d_xx[0]), "C12": float(d_xx[1]), "C44": float(d_yz[3])}


def phonons(element: str, a: float, calc: object, workdir: Path) -> dict[str, list[float]]:
    """Phonon frequencies (THz, sorted) at X and L of the primitive fcc cell, 4x4x4 supercell."""
    prim = bulk(element, "fcc", a=a)
    ph = Phonons(prim, calc, supercell=(4, 4, 4), delta=0.01, name=str(workdir / "phonon"))
    ph.run()
    ph.read(acoustic=True)
    path = prim.cell.bandpath("XL", npoints=2)
    energies = ph.band_structure(path.kpts)  # eV
    ph.clean()
    thz = energies / (units._hplanck / units._e * 1e12)  # eV -> THz
    return {"X": sorted(float(f) for f in thz[0]), "L": sorted(float(f) for f in thz[1])}


def nve_drift(element: str, calc: object, steps: int = 1000) -> float:
    """Drift of the total energy (meV/atom/ps) over ``steps`` fs of velocity Verlet from 300 K."""
    atoms = bulk(element, "fcc").repeat((3, 3, 3))
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    etot = []
    dyn.attach(lambda: etot.append(atoms.get_total_energy() / len(atoms)), interval=10)
    dyn.run(steps)
    t = np.arange(len(etot)) * 10e-3  # ps
    return float(np.polyfit(t, np.asarray(etot) * 1000, 1)[0])


def properties(element: str, calc: object, workdir: Path) -> dict:
    a = lattice_constant(element, calc)
    return {"a": a, "elastic": elastic_constants(element, a, calc), "phonons": phonons(element, a, calc, workdir),
            "nve_drift_meV_per_atom_ps": nve_drift(element, calc)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--element", default="Cu")
    ap.add_argument("--cells", type=int, default=60, help="training cells (default 60)")
    ap.add_argument("-o", "--output", type=Path,
                    default=Path(__file__).resolve().parents[1] / "results" / "forces" / "potential_physics.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write(tmp / "train.extxyz", training_cells(args.element, args.cells))
        t0 = time.perf_counter()
        rc = tnmat_main(["fit", str(tmp / "train.extxyz"), "--test-file", str(tmp / "train.extxyz"), "-q",
                         "-o", str(tmp / "model.tnmat")])
        if rc:
            raise SystemExit(f"tnmat fit failed ({rc})")
        fit_seconds = time.perf_counter() - t0
        ref = properties(args.element, EMT(), tmp)
        tn = properties(args.element, TNMatCalculator(str(tmp / "model.tnmat")), tmp)
    rel = {k: tn["elastic"][k] / ref["elastic"][k] - 1 for k in ref["elastic"]}
    ph_rel = max(abs(x / y - 1) for p in ("X", "L") for x, y in zip(tn["phonons"][p], ref["phonons"][p],
                                                                     strict=True) if y > 0.1)
    out = {"element": args.element, "training_cells": args.cells, "fit_seconds_with_jacobians": fit_seconds,
           "emt": ref, "tnmat": tn, "elastic_relative_error": rel, "phonon_max_relative_error": ph_rel,
           "units": {"a": "A", "elastic": "GPa", "phonons": "THz", "drift": "meV/atom/ps"},
           "command": "python benchmarks/potential_physics.py"}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.output, json.dumps(out, indent=1))
    print(json.dumps({"elastic_relative_error": rel, "phonon_max_relative_error": ph_rel,
                      "a": [ref["a"], tn["a"]], "drift": tn["nve_drift_meV_per_atom_ps"]}, indent=1))


if __name__ == "__main__":
    main()
