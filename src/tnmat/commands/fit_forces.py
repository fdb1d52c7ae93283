"""Forces in ``tnmat fit``: force-matched fitting when the training structures carry forces, and force / stress
errors of the fitted energy model on the test structures.

An energy model (per atom, structure-averaged or local) of the sweep-fitted MPS, TTN or dense kind is fitted to
the energies and, with ``--force-weight`` > 0 (the default), to the forces of every training structure
(:mod:`tnmat.training.force_rows`), and with ``--stress-weight`` > 0 (the default) to the stress of periodic
structures that carry one (``info["stress"]``); ``--force-weight 0 --stress-weight 0`` fits energies only.  The
descriptor Jacobians cost about 0.012 s per atom on one core (r_cut 6 A, n_max 4, l_max 3)."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

__all__ = ["training_forces", "forces_for", "force_errors", "report_force_errors", "structure_weights"]

#: network kinds whose prediction is linear in the input (force rows enter the local solves exactly)
FORCE_KINDS = ("mps", "ttn", "dense")


def _has_forces(structures: list[Any]) -> bool:
    return bool(structures) and all("forces" in a.arrays and np.shape(a.arrays["forces"]) == (len(a), 3)
                                    for a in structures)


def training_forces(args: argparse.Namespace, reg: Any, calc: Any, ds: Any, idx: np.ndarray) -> Any:
    """:class:`~tnmat.training.force_rows.ForceRows` of the structures ``idx`` when the fit uses forces (the
    data carry them, the model is a sweep-fitted MPS, TTN or dense, ``--force-weight`` > 0), else None."""
    from tnmat.training.force_rows import force_rows

    kind = getattr(reg, "_kind", lambda: None)()
    if kind not in FORCE_KINDS or reg._solver() != "sweep" or args.factorised:
        return None
    structures = [ds.structures[int(i)] for i in idx]
    fw, sw = float(reg.force_weight), float(reg.stress_weight)
    stress = sw > 0 and all("stress" in a.info and np.all(a.pbc) for a in structures)
    if not _has_forces(structures) or (fw == 0 and not stress):
        return None
    if fw > 0:
        print(f"forces: {3 * sum(len(a) for a in structures)} force components fitted with the energies "
              f"(--force-weight {fw:g}; 0: none)")
    if stress:
        print(f"stress: the stress of {len(structures)} cells fitted with the energies (--stress-weight {sw:g}; "
              "0: none)")
    print("descriptor Jacobians ...", flush=True)
    return force_rows(calc, structures, stress=stress, progress=not args.quiet)


def forces_for(rows: Any, train: np.ndarray, idx: np.ndarray) -> Any:
    """The entries of ``rows`` (one per structure of ``train``) for the structures ``idx`` (None: none)."""
    if rows is None:
        return None
    pos = {int(s): k for k, s in enumerate(train)}
    return rows.subset([pos[int(i)] for i in idx])


def force_errors(model: Any, structures: list[Any]) -> dict[str, float] | None:
    """Force RMSE (eV/A) and, for structures with a reference stress, stress RMSE (GPa, 9 components) of the
    model's -dE/dr and (1/V) dE/d(epsilon) (:mod:`tnmat.forces`); None when the structures carry no forces or
    the model has no differentiable energy."""
    from ase.stress import voigt_6_to_full_3x3_stress

    from tnmat.forces import energy_forces_stress

    if not _has_forces(structures):
        return None
    try:
        res = energy_forces_stress(model, structures, stress=True)
    except (TypeError, ValueError):  # a GPR, or a per-cation target: no forces
        return None
    err = np.concatenate([(f - a.arrays["forces"]).ravel() for f, a in zip(res.forces, structures, strict=True)])
    out = {"force_rmse": float(np.sqrt(np.mean(err**2)))}
    with_stress = [k for k, a in enumerate(structures) if "stress" in a.info and np.all(a.pbc)]
    if len(with_stress) == len(structures):
        ref = np.stack([voigt_6_to_full_3x3_stress(np.asarray(structures[k].info["stress"])) for k in with_stress])
        out["stress_rmse"] = float(160.21766208 * np.sqrt(np.mean((res.stress[with_stress] - ref) ** 2)))
    return out


def report_force_errors(model: Any, structures: list[Any]) -> dict[str, float]:
    """Print (and return) :func:`force_errors` of the test structures; {} when there are none."""
    fe = force_errors(model, structures)
    if fe:
        print(f"{'test':10s} force RMSE {fe['force_rmse']:.4f} eV/A" + (
            f"   stress RMSE {fe['stress_rmse']:.3f} GPa" if "stress_rmse" in fe else ""))
    return fe or {}


def structure_weights(ds: Any) -> np.ndarray | None:
    """Per-structure fit weights from ``atoms.info["weight"]`` (None when no structure has one); a
    ``ValueError`` when only some have one or a weight is not a finite number > 0."""
    have = ["weight" in a.info for a in ds.structures]
    if not any(have):
        return None
    if not all(have):
        raise ValueError(f"{ds.name}: {have.count(False)} of {len(have)} structures lack info['weight'] (give every "
                         "structure a weight, or none)")
    w = np.array([float(a.info["weight"]) for a in ds.structures])
    if not np.isfinite(w).all() or not (w > 0).all():
        raise ValueError(f"{ds.name}: info['weight'] must be finite numbers > 0 (structure "
                         f"{int(np.flatnonzero(~(np.isfinite(w) & (w > 0)))[0])})")
    return w
