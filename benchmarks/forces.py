"""Forces and stress on held-out rattled/strained alloy supercells (paper Appendix C).

Compares, on the same density expansion and the same held-out structures (the generator's "test" split):

* direct equivariant models of the forces (per atom, L = 1) and of the stress (per structure, L = 0 + 2):
  ridge on the equivariant features (baseline, alpha chosen on validation), the Fig. 26a MPS (Adam, and the
  ALS sweep fitter) and the Fig. 26b MPO (Adam), with early stopping on validation structures;
* conservative forces / stress of the best energy network (MPS by ALS sweep or Adam, MPO by Adam, on the
  invariants, chosen by the validation energy RMSE): -dE/dr and (1/V) dE/d(epsilon) by autograd (tnmat.forces).

Writes results/forces/metrics.json, metrics.csv, table.md and parity.png (tnmat.plots.forces), and the
ASE check (BFGS relaxation + NVE drift with the best energy network) into metrics.json.

    python benchmarks/forces.py            # the committed run
    python benchmarks/forces.py --quick    # minutes: fewer structures and epochs (smoke test)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from tnmat.data.alloy_forces import RattledAlloys, generate_rattled_alloys
from tnmat.data.readers import structure_forces, structure_stress
from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.equivariant.estimator import EquivariantRegressor
from tnmat.equivariant.model import EquivariantModel
from tnmat.forces import EnergyModel, energy_forces_stress
from tnmat.model import StructureModel
from tnmat.plots.forces import parity_plot
from tnmat.training import MPORegressor, MPSRegressor

EV_A3_TO_GPA = 160.21766208
ALPHAS = (1e-10, 1e-8, 1e-6, 1e-4, 1e-2)


def force_metrics(ref: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """RMSE / MAE over Cartesian components (eV/A) and the mean cosine similarity over atoms."""
    err = pred - ref
    norm = np.linalg.norm(ref, axis=1) * np.linalg.norm(pred, axis=1)
    cos = np.sum(ref * pred, axis=1) / np.where(norm > 0, norm, 1.0)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))),
            "cosine": float(np.mean(cos)), "ref_rms": float(np.sqrt(np.mean(ref**2)))}


def stress_metrics(ref: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """RMSE / MAE over the 9 components (GPa) and the mean cosine similarity of the flattened tensors."""
    r, p = ref.reshape(len(ref), 9) * EV_A3_TO_GPA, pred.reshape(len(pred), 9) * EV_A3_TO_GPA
    norm = np.linalg.norm(r, axis=1) * np.linalg.norm(p, axis=1)
    cos = np.sum(r * p, axis=1) / np.where(norm > 0, norm, 1.0)
    err = p - r
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))),
            "cosine": float(np.mean(cos)), "ref_rms": float(np.sqrt(np.mean(r**2)))}


def fit_direct(target: str, density: AtomicDensity, feats: dict, ys: dict, cfg: dict) -> dict:
    """The three direct equivariant models of one target; returns predictions on test and settings."""
    out = {}
    tr, va, te = feats["train"], feats["val"], feats["test"]
    get = structure_forces if target == "forces" else structure_stress
    # ridge baseline: alpha by the validation RMSE
    best = None
    for alpha in ALPHAS:
        m = EquivariantModel.build(density, target=target, order=2, center_species=False,
                                   regressor=EquivariantRegressor(model="linear", alpha=alpha))
        m.fit(tr, ys["train"])
        p = m.predict(va)
        ref = get(ys["val_ds"])
        rmse = float(np.sqrt(np.mean((np.concatenate(p) - np.concatenate(ref)) ** 2))) if target == "forces" \
            else float(np.sqrt(np.mean((p - ref) ** 2)))
        if best is None or rmse < best[0]:
            best = (rmse, alpha, m)
    out["ridge (equivariant features)"] = {"model": best[2], "settings": {"alpha": best[1], "val_rmse": best[0]}}
    variants = (("MPS (Fig. 26a), Adam", "mps", "adam"), ("MPS (Fig. 26a), ALS sweep", "mps", "sweep"),
                ("MPO zeta=2 (Fig. 26b), Adam", "mpo", "adam"))
    for name, kind, solver in variants:
        bond = cfg[f"{kind}_bond"]
        reg = EquivariantRegressor(model=kind, solver=solver, bond_dim=bond, max_epochs=cfg[f"{kind}_epochs"],
                                   patience=cfg["patience"], learning_rate=cfg["lr"], batch_size=cfg["batch"],
                                   random_state=0)
        m = EquivariantModel.build(density, target=target, order=2, center_species=False, regressor=reg)
        t0 = time.perf_counter()
        m.fit(tr, ys["train"], validation=(va, ys["val"]))
        epochs = {str(L): r.n_epochs_ for L, r in m.regressors.items()}
        out[name] = {"model": m, "settings": {"bond_dim": bond, "epochs": epochs,
                                              "fit_seconds": round(time.perf_counter() - t0, 1)}}
    for v in out.values():
        v["pred"] = v.pop("model").predict(te)
    return out


def fit_energy(density: AtomicDensity, parts: dict, cfg: dict) -> tuple[StructureModel, dict]:
    """The best energy network (MPS by ALS sweep or Adam, MPO by Adam, on the averaged invariants) by the
    validation energy RMSE."""
    calc = Invariants(density, order=2)
    x = {k: calc.compute(parts[k].structures, progress=False) for k in ("train", "val")}
    y = {k: parts[k].targets["energy_per_atom"] for k in ("train", "val")}
    cands = {
        "MPS sweep": MPSRegressor(bond_dim=cfg["energy_bond"], solver="sweep", dtype="float64", random_state=0),
        "MPS": MPSRegressor(solver="adam", bond_dim=cfg["energy_bond"], dtype="float64",
                            max_epochs=cfg["energy_epochs"], patience=100, learning_rate=3e-3, random_state=0),
        "MPO": MPORegressor(solver="adam", bond_dim=4, input_offset=1.0, dtype="float64",
                            max_epochs=cfg["energy_epochs"], patience=100, learning_rate=3e-3, random_state=0),
    }
    scores, best = {}, None
    for name, reg in cands.items():
        m = StructureModel(calc, reg)
        m.fit(x["train"], y["train"], X_val=x["val"], y_val=y["val"])
        rmse = float(np.sqrt(np.mean((m.predict(x["val"]) - y["val"]) ** 2)))
        scores[name] = {"val_energy_rmse_meV_per_atom": 1000 * rmse, "epochs": getattr(reg, "n_epochs_", None)}
        if best is None or rmse < best[0]:
            best = (rmse, name, m)
    return best[2], {"chosen": best[1], "candidates": scores}


def ase_check(model: StructureModel, atoms, steps: int) -> dict:
    """BFGS relaxation of a rattled cell to fmax 0.05 eV/A and the energy drift of an NVE run."""
    from ase import units
    from ase.md.verlet import VelocityVerlet
    from ase.optimize import BFGS

    from tnmat.calculator import TNMatCalculator

    a = atoms.copy()
    a.rattle(0.1, seed=0)
    a.calc = TNMatCalculator(model)
    f0 = float(np.linalg.norm(a.get_forces(), axis=1).max())
    opt = BFGS(a, logfile=None)
    ok = bool(opt.run(fmax=0.05, steps=1000))
    out = {"relax": {"n_atoms": len(a), "fmax_start": f0, "converged": ok, "steps": int(opt.nsteps),
                     "fmax_end": float(np.linalg.norm(a.get_forces(), axis=1).max())}}
    b = atoms.copy()
    b.calc = TNMatCalculator(model)
    rng = np.random.default_rng(0)
    b.set_momenta(rng.normal(0, 1, (len(b), 3)) * np.sqrt(b.get_masses()[:, None] * units.kB * 300))
    dyn = VelocityVerlet(b, timestep=1.0 * units.fs)
    e = []
    dyn.attach(lambda: e.append(b.get_total_energy()), interval=1)
    dyn.run(steps)
    e = np.array(e)
    slope = np.polyfit(np.arange(len(e)) * 1e-3, e, 1)[0]  # eV per ps
    out["nve"] = {"steps": steps, "timestep_fs": 1.0, "T0_K": 300, "n_atoms": len(b),
                  "max_abs_deviation_meV_per_atom": float(1000 * np.abs(e - e[0]).max() / len(b)),
                  "drift_meV_per_atom_per_ps": float(1000 * slope / len(b))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="results/forces")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = dict(n_structures=240, n_systems=3, mps_bond=8, mpo_bond=4, mps_epochs=150, mpo_epochs=200, patience=20,
               lr=3e-3, batch=64, energy_bond=8, energy_epochs=1500, nve_steps=500)
    if args.quick:
        cfg.update(n_structures=60, mps_epochs=10, mpo_epochs=5, energy_epochs=50, nve_steps=50)
    t_start = time.perf_counter()
    ds = generate_rattled_alloys(RattledAlloys(n_structures=cfg["n_structures"], n_systems=cfg["n_systems"]))
    train_all, test = ds.split("train"), ds.split("test")
    val_mask = np.zeros(len(train_all), bool)
    val_mask[np.random.default_rng(0).permutation(len(train_all))[: len(train_all) // 8]] = True
    parts = {"train": train_all.subset(~val_mask), "val": train_all.subset(val_mask), "test": test}
    density = AtomicDensity(species=ds.species, r_cut=4.5, n_max=3, l_max=2)
    results: dict = {"settings": {**cfg, "density": density.get_params(), "order": 2,
                                  "n_structures": {k: len(v) for k, v in parts.items()},
                                  "n_atoms": {k: int(sum(len(a) for a in v.structures)) for k, v in parts.items()}},
                     "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": 1}}
    preds: dict = {"forces": {}, "stress": {}}
    for target, get in (("forces", structure_forces), ("stress", structure_stress)):
        proto = EquivariantModel.build(density, target=target, order=2, center_species=False,
                                       regressor=EquivariantRegressor(model="mpo"))
        feats = {k: proto.featurize(v.structures) for k, v in parts.items()}
        ys = {"train": get(parts["train"]), "val": get(parts["val"]), "val_ds": parts["val"]}
        for name, r in fit_direct(target, density, feats, ys, cfg).items():
            preds[target][name] = r["pred"]
            results.setdefault(target, {})[name] = {"settings": r["settings"]}
    energy_model, energy_info = fit_energy(density, parts, cfg)
    results["energy_model"] = energy_info
    t0 = time.perf_counter()
    grad = energy_forces_stress(EnergyModel(energy_model), test.structures)
    results["energy_model"]["forces_stress_seconds_test"] = round(time.perf_counter() - t0, 2)
    label = f"-grad of energy {energy_info['chosen']}"
    preds["forces"][label], preds["stress"][label] = grad.forces, grad.stress
    e_test = energy_model.predict(test.structures)
    results["energy_model"]["test_energy_rmse_meV_per_atom"] = float(
        1000 * np.sqrt(np.mean((e_test - test.targets["energy_per_atom"]) ** 2)))
    ref_f, ref_s = np.concatenate(structure_forces(test)), structure_stress(test)
    for name, p in preds["forces"].items():
        results["forces"].setdefault(name, {})["metrics"] = force_metrics(ref_f, np.concatenate(p))
    for name, p in preds["stress"].items():
        results["stress"].setdefault(name, {})["metrics"] = stress_metrics(ref_s, np.asarray(p))
    results["ase"] = ase_check(energy_model, test.structures[0], cfg["nve_steps"])
    results["seconds"] = round(time.perf_counter() - t_start, 1)
    write_outputs(Path(args.out + ("-quick" if args.quick else "")), results, preds, ref_f, ref_s)


def write_outputs(out: Path, results: dict, preds: dict, ref_f: np.ndarray, ref_s: np.ndarray) -> None:
    """metrics.json, metrics.csv, table.md and parity.png (each written to a temporary name, renamed)."""
    out.mkdir(parents=True, exist_ok=True)

    def atomic_write(path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)

    atomic_write(out / "metrics.json", json.dumps(results, indent=1))
    rows = [(t, name, m["metrics"]["rmse"], m["metrics"]["mae"], m["metrics"]["cosine"])
            for t in ("forces", "stress") for name, m in results[t].items()]
    tmp = out / "metrics.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["target", "model", "rmse", "mae", "cosine"])
        w.writerows(rows)
    tmp.replace(out / "metrics.csv")
    lines = ["| target | model | RMSE | MAE | cosine |", "|---|---|---|---|---|"]
    units = {"forces": "eV/A", "stress": "GPa"}
    for t, name, rmse, mae, cos in rows:
        lines.append(f"| {t} [{units[t]}] | {name} | {rmse:.4f} | {mae:.4f} | {cos:.3f} |")
    atomic_write(out / "table.md", "\n".join(lines) + "\n")
    panels = {"forces": {k: (ref_f, np.concatenate(v)) for k, v in preds["forces"].items()},
              "stress": {k: (ref_s * EV_A3_TO_GPA, np.asarray(v) * EV_A3_TO_GPA) for k, v in preds["stress"].items()}}
    parity_plot(panels, out / "parity.png", units=units)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
