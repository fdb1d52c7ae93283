"""Force-matched sweep fits on rattled-alloys: energy-only against energies + forces, through the ASE calculator.

The data, split, descriptor and estimator settings are those of ``tnmat fit rattled-alloys`` (400 cells of Ag-Al,
Ag-Au, Ag-Cu; the generator's 80 test cells; invariants of order 2, r_cut 6 A, n_max 4, l_max 3; estimator
defaults, sweeps with the Huber loss, 20 % of the training cells held out inside the fit, then a refit on all).

1. ``force_weight`` and ``stress_weight`` chosen on validation cells: the 320 training cells split 80/20
   (seed 0); TTN fits on the 256 for every force weight in ``--weights`` (stress weight 0), then for every
   stress weight in ``--stress-weights`` at the chosen force weight; energy, force and stress RMSE on the 64
   others.  Chosen: the force weight with the lowest validation force RMSE among those whose validation energy
   RMSE is no worse than energy-only's; the stress weight with the lowest sum of the energy, force and stress
   RMSE, each relative to the stress-free fit's (all with the Huber loss, the sweeps' energy-only default); then
   the chosen weights with the squared error (what loss="auto" means with force rows).
2. Test: TTN, MPS and the dense (linear-ACE-style ridge) model, energy-only, forces (chosen weight) and forces +
   stress (chosen weights, loss "auto" and "huber"), fitted on the 320 training cells; energy (meV/atom), force
   (eV/A) and stress (GPa, 9 components) RMSE on the 80 test cells from :class:`tnmat.calculator.TNMatCalculator`
   against EMT, and the fit times (one thread).

Writes results/forces/forces_matched.json.

    python benchmarks/forces_matched.py            # the committed run
    python benchmarks/forces_matched.py --quick    # a smoke test (60 cells, small descriptor)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from ase.stress import voigt_6_to_full_3x3_stress

from tnmat.calculator import TNMatCalculator
from tnmat.data.alloy_forces import RattledAlloys, generate_rattled_alloys
from tnmat.data.alloys import alloy_cache_dir
from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.model import StructureModel
from tnmat.training import DenseACERegressor, MPSRegressor, TTNRegressor
from tnmat.training.force_rows import ForceRows, descriptor_jacobian, force_rows, predict_forces, predict_stress

EV_A3_TO_GPA = 160.21766208
MODELS = {"ttn": TTNRegressor, "mps": MPSRegressor, "dense": DenseACERegressor}
TARGETS = {"force_rmse_eV_per_A": 0.035, "energy_rmse_meV_per_atom": 2.48, "stress_rmse_GPa": 0.19}


def cached_force_rows(calc: Invariants, ds, key: str) -> tuple[ForceRows, dict]:
    """Descriptor Jacobians (positions and strain) of every structure, cached beside the data set, and the
    seconds they took."""
    pos_path, strain_path = (alloy_cache_dir() / f"{name}-{key}.pt" for name in ("force-rows", "strain-rows"))
    if not pos_path.is_file():
        t0 = time.perf_counter()
        rows = force_rows(calc, ds.structures, progress=True)
        torch.save({"jacobians": rows.jacobians, "forces": rows.forces, "legs": list(rows.legs),
                    "seconds": time.perf_counter() - t0}, pos_path)
    if not strain_path.is_file():
        t0 = time.perf_counter()
        strain = [descriptor_jacobian(calc, a, wrt="strain") for a in ds.structures]
        torch.save({"strain": strain, "seconds": time.perf_counter() - t0}, strain_path)
    # our own cache files (numpy arrays inside): not restricted to weights
    p, s = torch.load(pos_path, weights_only=False), torch.load(strain_path, weights_only=False)
    stress = [voigt_6_to_full_3x3_stress(np.asarray(a.info["stress"])) for a in ds.structures]
    rows = ForceRows(p["jacobians"], p["forces"], tuple(p["legs"]), s["strain"], stress,
                     [a.get_volume() for a in ds.structures])
    return rows, {"positions": round(p["seconds"], 1), "strain": round(s["seconds"], 1)}


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def fit(kind: str, fw: float, sw: float, X, y, rows: ForceRows, loss: str = "auto") -> tuple[object, float]:
    """One estimator with ``tnmat fit``'s defaults, the weights and ``loss``; returns it and the fit seconds."""
    est = MODELS[kind](force_weight=fw, stress_weight=sw, loss=loss)
    t0 = time.perf_counter()
    est.fit(X, y, forces=rows if fw > 0 or sw > 0 else None)
    return est, time.perf_counter() - t0


def _validation_errors(fw: float, sw: float, X, y, rows: ForceRows, fit_idx, val, loss: str = "huber") -> dict:
    est, sec = fit("ttn", fw, sw, X.select(fit_idx), y[fit_idx], rows.subset(fit_idx), loss)
    vrows = rows.subset(val)
    f_pred = np.concatenate([f.ravel() for f in predict_forces(est, vrows)])
    f_ref = np.concatenate([f.ravel() for f in vrows.forces])
    out = {"force_weight": fw, "stress_weight": sw, "loss": est.loss_,
           "energy_rmse_meV_per_atom": 1000 * rmse(est.predict(X.select(val)), y[val]),
           "force_rmse_eV_per_A": rmse(f_pred, f_ref),
           "stress_rmse_GPa": EV_A3_TO_GPA * rmse(predict_stress(est, vrows), np.stack(vrows.stress)),
           "fit_seconds": round(sec, 2), "bond_dims": getattr(est, "bond_dims_", [])}
    print(f"validation {out}", flush=True)
    return out


def validation_scan(weights: list[float], stress_weights: list[float], X, y, rows: ForceRows, n_train: int) -> dict:
    """TTN on 80 % of the training cells, errors on the other 20 % (module docstring): the force weights at
    stress weight 0, then the stress weights at the chosen force weight."""
    perm = np.random.default_rng(0).permutation(n_train)
    n_val = n_train // 5
    val, fit_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    forces = {fw: _validation_errors(fw, 0.0, X, y, rows, fit_idx, val) for fw in weights}
    e0 = forces[weights[0]]["energy_rmse_meV_per_atom"]
    ok = [fw for fw in weights if forces[fw]["energy_rmse_meV_per_atom"] <= e0] or weights
    fw = min(ok, key=lambda w: forces[w]["force_rmse_eV_per_A"])
    stress = {0.0: forces[fw], **{sw: _validation_errors(fw, sw, X, y, rows, fit_idx, val) for sw in stress_weights
                                  if sw > 0}}
    keys = ("energy_rmse_meV_per_atom", "force_rmse_eV_per_A", "stress_rmse_GPa")
    sw = min(stress, key=lambda w: sum(stress[w][k] / stress[0.0][k] for k in keys))
    loss_check = _validation_errors(fw, sw, X, y, rows, fit_idx, val, loss="squared_error")
    return {"loss_check": loss_check, "n_fit": len(fit_idx), "n_validation": len(val),
            "force_weights": list(forces.values()), "stress_weights": list(stress.values()),
            "chosen_force_weight": fw, "chosen_stress_weight": sw,
            "rule": "force weight: the lowest validation force RMSE among the weights whose validation energy RMSE "
                    "is no worse than energy-only's; stress weight (at that force weight): the lowest sum of the "
                    "validation energy, force and stress RMSE, each relative to the stress-free fit's"}


def test_errors(model: StructureModel, test) -> dict:
    """Energy, forces and stress of every test cell from TNMatCalculator, RMSE against EMT."""
    calc = TNMatCalculator(model)
    e, f, s, e_ref, f_ref, s_ref = [], [], [], [], [], []
    t0 = time.perf_counter()
    for atoms, ref_e in zip(test.structures, test.targets["energy_per_atom"], strict=True):
        a = atoms.copy()
        a.calc = calc
        e.append(a.get_potential_energy() / len(a))
        f.append(a.get_forces().ravel())
        s.append(voigt_6_to_full_3x3_stress(a.get_stress()).ravel())
        e_ref.append(ref_e)
        f_ref.append(atoms.arrays["forces"].ravel())
        s_ref.append(voigt_6_to_full_3x3_stress(atoms.info["stress"]).ravel())
    return {"energy_rmse_meV_per_atom": 1000 * rmse(e, e_ref),
            "force_rmse_eV_per_A": rmse(np.concatenate(f), np.concatenate(f_ref)),
            "stress_rmse_GPa": EV_A3_TO_GPA * rmse(np.concatenate(s), np.concatenate(s_ref)),
            "calculator_seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--weights", default="0,0.1,1,10,100")
    ap.add_argument("--stress-weights", default="0,1,10,100")
    ap.add_argument("--models", default="ttn,mps,dense")
    ap.add_argument("--out", default="results/forces/forces_matched.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    weights = [float(w) for w in args.weights.split(",")]
    sett = RattledAlloys(n_structures=60, n_systems=1) if args.quick else RattledAlloys()
    dens = dict(r_cut=4.0, n_max=2, l_max=1) if args.quick else dict(r_cut=6.0, n_max=4, l_max=3)
    t_start = time.perf_counter()
    ds = generate_rattled_alloys(sett)
    calc = Invariants(AtomicDensity(species=ds.species, sigma=0.5, **dens), order=2)
    key = hashlib.sha256(json.dumps([ds.name, ds.source, calc.get_params()], sort_keys=True,
                                    default=str).encode()).hexdigest()[:16]
    rows, jac_seconds = cached_force_rows(calc, ds, key)
    n_atoms = int(rows.n_atoms.sum())
    X = calc.compute(ds.structures, average=True)
    y = ds.targets["energy_per_atom"]
    train = np.flatnonzero(np.asarray(ds.metadata["split"]) != "test")
    test = np.flatnonzero(np.asarray(ds.metadata["split"]) == "test")
    Xtr, ytr, rtr = X.select(train), y[train], rows.subset(train)
    out: dict = {"settings": {"data": ds.name, "n_train": len(train), "n_test": len(test), "descriptor":
                              calc.get_params(), "weights": weights,
                              "n_train_atoms": int(rtr.n_atoms.sum())},
                 "targets": TARGETS, "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                                 "torch_threads": 1},
                 "jacobian_seconds_all_structures": jac_seconds, "n_atoms_all_structures": n_atoms,
                 "jacobian_seconds_per_atom": round(jac_seconds["positions"] / n_atoms, 4)}
    scan = validation_scan(weights, [float(w) for w in args.stress_weights.split(",")], Xtr, ytr, rtr, len(train))
    out["validation"] = scan
    fw, sw = scan["chosen_force_weight"], scan["chosen_stress_weight"]
    test_ds = ds.subset(np.isin(np.arange(len(ds)), test))
    out["test"] = {}
    for kind in args.models.split(","):
        for w, s, loss in dict.fromkeys([(0.0, 0.0, "auto"), (fw, 0.0, "auto"), (fw, sw, "auto"), (fw, sw, "huber")]):
            est, sec = fit(kind, w, s, Xtr, ytr, rtr, loss)
            res = test_errors(StructureModel(calc, est, target="energy_per_atom", units="eV/atom"), test_ds)
            res.update(fit_seconds=round(sec, 2), force_weight=w, stress_weight=s, loss=est.loss_,
                       bond_dims=getattr(est, "bond_dims_", []))
            out["test"][f"{kind} force_weight={w:g} stress_weight={s:g} loss={est.loss_}"] = res
            print(f"test {kind} fw={w:g} sw={s:g} {est.loss_}: {res}", flush=True)
    out["seconds"] = round(time.perf_counter() - t_start, 1)
    path = Path(args.out.replace(".json", "-quick.json") if args.quick else args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
