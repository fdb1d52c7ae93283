"""``tnmat fit --target forces|stress`` and ``tnmat predict`` of equivariant models (paper Appendix C).

Forces (per atom, L = 1) and stress (per structure, L = 0 + 2) come from the structures' ``forces`` arrays and
``stress`` (extxyz columns / info, read by :func:`tnmat.data.read_structures`; ``rattled-alloys`` generates
EMT ones).  ``--model`` selects the equivariant network: ``mps`` (Fig. 26a; ``--solver sweep`` (ALS, default) or
``adam``), ``mpo`` (Fig. 26b, zeta = 2; Adam) or ``dense`` (the linear model, a closed-form ridge solve).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tnmat.commands._common import CLIError

__all__ = ["VECTOR_TARGETS", "run_fit", "run_predict", "is_equivariant_file"]

VECTOR_TARGETS = ("forces", "stress")
_KINDS = {"mps": "mps", "mpo": "mpo", "dense": "linear"}


def _targets(ds, target: str):  # noqa: ANN202 (list of arrays or an array)
    from tnmat.data.readers import structure_forces, structure_stress

    try:
        return structure_forces(ds) if target == "forces" else structure_stress(ds)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _errors(ref, pred, target: str) -> str:  # noqa: ANN001
    r = np.concatenate(ref) if target == "forces" else np.asarray(ref).reshape(-1, 9)
    p = np.concatenate(pred) if target == "forces" else np.asarray(pred).reshape(-1, 9)
    from tnmat.data.units import target_units
    from tnmat.metrics import rmse_mae

    scale, unit = (1.0 if target == "forces" else 160.21766208), target_units("", target)  # eV/A^3 -> GPa
    rmse, mae = rmse_mae(r, p, scale=scale, what=f"{target} predictions")
    norm = np.linalg.norm(r, axis=1) * np.linalg.norm(p, axis=1)
    cos = float(np.mean(np.sum(r * p, axis=1) / np.where(norm > 0, norm, 1.0)))
    return f"RMSE {rmse:.4f} {unit}   MAE {mae:.4f} {unit}   cosine {cos:.3f}"


def run_fit(args: argparse.Namespace, ds, calc) -> int:  # noqa: ANN001
    """Split -> describe -> fit the equivariant model -> report validation/test errors (-> save)."""
    from tnmat.equivariant.estimator import EquivariantRegressor
    from tnmat.equivariant.model import EquivariantModel
    from tnmat.experiments.splits import holdout_split, official_test, train_validation_split

    target = args.target
    if args.model not in _KINDS:
        raise CLIError(f"--target {target}: --model must be one of {', '.join(_KINDS)} (equivariant networks), "
                       f"got {args.model!r}")
    _targets(ds, target)  # fail before any descriptor work when forces/stress are missing
    train, test = holdout_split(len(ds), official=official_test(ds.metadata.get("split")), seed=args.random_state)
    fit_idx, val = train_validation_split(train, val_fraction=args.validation_fraction, seed=args.random_state)
    # --solver: "auto" is the sweep for the MPS and Adam for the MPO (the estimator resolves it)
    reg = EquivariantRegressor(model=_KINDS[args.model], solver=args.solver, bond_dim=args.bond_dim,
                               max_epochs=args.max_epochs,
                               patience=args.patience, learning_rate=args.learning_rate, batch_size=args.batch_size,
                               random_state=args.random_state, verbose=0 if args.quiet else 1)
    try:
        model = EquivariantModel.build(calc.density, target=target, order=max(calc.order, 1), center_species=False,
                                       regressor=reg)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    parts = {name: ds.subset(idx) for name, idx in (("train", fit_idx), ("validation", val), ("test", test))}
    feats = {name: model.featurize(p.structures) for name, p in parts.items()}
    t0 = time.perf_counter()
    model.fit(feats["train"], _targets(parts["train"], target),
              validation=(feats["validation"], _targets(parts["validation"], target)))
    seconds = time.perf_counter() - t0
    print(f"{args.model} ({_KINDS[args.model]}) {target} on {ds.name}: {len(fit_idx)} train / {len(val)} "
          f"validation / {len(test)} test structures; fit time {seconds:.1f} s")
    for name in ("validation", "test"):
        print(f"{name:10s} {_errors(_targets(parts[name], target), model.predict(feats[name]), target)}")
    if args.output:
        model.save(args.output)
        print(f"wrote {args.output}")
    return 0


def is_equivariant_file(path: str | Path) -> bool:
    """Whether ``path`` holds an :class:`EquivariantModel` (forces/stress) rather than a scalar model."""
    import torch

    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # not a torch file: let the scalar loader report it
        return False
    return isinstance(blob, dict) and blob.get("format") == "tnmat.equivariant_model"


def run_predict(args: argparse.Namespace, ds) -> int:  # noqa: ANN001
    """Forces (one row per atom) or stress (one row per structure, Voigt) as CSV, errors when known."""
    from tnmat.equivariant.model import EquivariantModel
    from tnmat.reports import write_rows_csv
    from tnmat.so3.cartesian import matrix_to_voigt

    model = EquivariantModel.load(args.model)
    pred = model.predict(ds.structures)
    ids = ds.metadata["id"]
    rows = []
    if model.target == "forces":
        columns = ["id", "atom", "symbol", "fx_eV/A", "fy_eV/A", "fz_eV/A"]
        for k, f in enumerate(pred):
            syms = ds.structures[k].get_chemical_symbols()
            rows += [dict(zip(columns, (ids[k], i, syms[i], *(f"{v:.8f}" for v in f[i])), strict=True))
                     for i in range(len(f))]
    else:
        columns = ["id"] + [f"stress_{c}_eV/A3" for c in ("xx", "yy", "zz", "yz", "xz", "xy")]
        voigt = matrix_to_voigt(np.asarray(pred))
        rows = [dict(zip(columns, (ids[k], *(f"{v:.8e}" for v in voigt[k])), strict=True)) for k in range(len(ds))]
    out = write_rows_csv(rows, args.output, columns=columns, lineterminator="\n")
    print(f"wrote {model.target} of {len(ds)} structures to {out}")
    try:
        ref = _targets(ds, model.target)
    except CLIError:
        return 0  # no reference values in DATA: predictions only
    print(_errors(ref, pred, model.target))
    return 0
