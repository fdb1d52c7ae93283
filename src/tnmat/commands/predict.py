"""``tnmat predict``: a saved model's predictions for every structure of DATA, as CSV (with the errors when
DATA has the target).  A model of an energy per atom also writes the total energy (per atom x atoms); every
structure outside the training range stored with the model (descriptor range,
:class:`tnmat.data.domain.DescriptorRange`; shortest distances, neighbour counts and periodicity,
:class:`tnmat.data.domain_geometry.GeometryRange`) is flagged, counted in the summary and marked in the CSV
with the reason."""

from __future__ import annotations

import argparse

import numpy as np

from tnmat.commands._common import DATA_HELP, ENERGIES, GEOMETRY, check_output_file, load_data, option

NAME = "predict"
HELP = "predict with a saved model"
DESCRIPTION = "Predict the saved model's target for every structure of DATA; write CSV."
OPTIONS = [
    option("model", help="a model file written by 'tnmat fit -o'"),
    option("data", help=DATA_HELP),
    option("-o", "--output", default="predictions.csv", help="CSV file (default predictions.csv)"),
    GEOMETRY,
    ENERGIES,
    option("--forces", metavar="FILE", default=None,
           help="also write the conservative forces -dE/dr of an energy model per atom to this CSV (eV/A; "
                "tnmat.forces), with their errors when DATA has forces"),
    option("-q", "--quiet", action="store_true", help="no progress bar"),
]


def _columns(ds, target: str, pred: np.ndarray) -> dict[str, np.ndarray]:  # noqa: ANN001 (a Dataset)
    """The predicted (and, where DATA has them, true) values per structure in eV (``<target>_eV``; the target's
    name says per what, :func:`tnmat.data.units.value_units`); a per-atom energy is written per atom and as
    the structure's total (``predicted_energy_eV``)."""
    from tnmat.data.units import EXTENSIVE, per_atom_name

    n_atoms = np.array([len(a) for a in ds.structures])
    cols = {f"predicted_{target}_eV": pred}
    total = next((t for t in EXTENSIVE if per_atom_name(t) == target), None)
    if total is not None:
        cols[f"predicted_{total}_eV"] = pred * n_atoms
    for t in (target, total):
        if t is not None and t in ds.targets:
            cols[f"{t}_eV"] = ds.targets[t]
    return cols


def run(args: argparse.Namespace) -> int:
    """Check -> load model and data -> predict (describing on the way) -> write CSV -> report errors."""
    from tnmat.commands.vector_targets import is_equivariant_file, run_predict
    from tnmat.data.domain_geometry import domain_flags
    from tnmat.data.units import target_units, value_units
    from tnmat.metrics import rmse_mae
    from tnmat.model import StructureModel
    from tnmat.reports import write_rows_csv

    check_output_file(args.output, "-o/--output")
    if args.forces:
        check_output_file(args.forces, "--forces")
    if is_equivariant_file(args.model):  # forces / stress model
        return run_predict(args, load_data(args.data, geometry=args.geometry, energies=args.energies))
    model = StructureModel.load(args.model)
    if args.forces:
        check_forces_model(model, args.model)
    ds = load_data(args.data, geometry=args.geometry, energies=args.energies)
    X = model.featurize(ds.structures, progress=not args.quiet)
    pred = model.predict(X)
    t = model.target
    cols = {"id": ds.metadata["id"], "n_atoms": np.array([len(a) for a in ds.structures]),
            **{k: np.char.mod("%.8f", v) for k, v in _columns(ds, t, pred).items()}}
    domain = model.info.get("domain")
    if domain is not None:  # older models carry no training range (or no geometry: descriptors only)
        flags, excess, reasons = domain_flags(domain, X, ds.structures)
        cols["outside_training_range"] = flags.astype(int)
        cols["range_excess"] = np.char.mod("%.4g", excess)
        cols["outside_reason"] = np.array(reasons, dtype=object)
    names = list(cols)
    write_rows_csv(({c: cols[c][k] for c in names} for k in range(len(ds))), args.output, columns=names,
                   lineterminator="\n")
    print(f"wrote {len(ds)} predictions of {t} [{value_units(ds, t)}] to {args.output}")
    if domain is not None:
        n_out = int(cols["outside_training_range"].sum())
        print(f"outside the training range: {n_out} of {len(ds)} structures"
              + (" (their predictions are extrapolations; see columns outside_training_range and outside_reason)"
                 if n_out else ""))
    if t in ds.targets:
        units = target_units(ds, t)
        rmse, mae = rmse_mae(ds.targets[t], pred, what=f"{args.model} on {ds.name}")
        print(f"RMSE {rmse:.2f} {units}   MAE {mae:.2f} {units}")
    if args.forces:
        write_forces(model, ds, args.forces)
    return 0


def check_forces_model(model, path: str) -> None:  # noqa: ANN001 (a StructureModel)
    """Before any work: ``--forces`` needs an energy model (per atom or per structure) with a differentiable
    network; a ``CLIError`` naming the model otherwise."""
    from tnmat.commands._common import CLIError
    from tnmat.forces import EnergyModel, predicts_total_energy

    try:
        predicts_total_energy(model)
        EnergyModel(model)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"--forces: model {path}: {exc}") from None


def write_forces(model, ds, path: str) -> None:  # noqa: ANN001 (a StructureModel, a Dataset)
    """Per-atom conservative forces of an energy model (``-dE/dr`` by autograd, :mod:`tnmat.forces`) as CSV
    rows (id, atom, symbol, fx, fy, fz in eV/A, and the reference forces where DATA has them); prints the
    force errors against those."""
    from tnmat.commands._common import CLIError
    from tnmat.forces import energy_forces_stress, predicts_total_energy
    from tnmat.metrics import rmse_mae
    from tnmat.reports import write_rows_csv

    try:
        extensive = predicts_total_energy(model)
    except ValueError as exc:
        raise CLIError(f"--forces: {exc}") from None
    res = energy_forces_stress(model, ds.structures, extensive=extensive, forces=True, stress=False)
    ref = [a.arrays.get("forces") for a in ds.structures]
    has_ref = all(f is not None for f in ref)
    rows, axes = [], ("x", "y", "z")
    for sid, atoms, f, r in zip(ds.metadata["id"], ds.structures, res.forces, ref, strict=True):
        for i, sym in enumerate(atoms.get_chemical_symbols()):
            row = {"id": sid, "atom": i, "symbol": sym}
            row.update({f"f{c}_eV/A": f"{f[i, k]:.8f}" for k, c in enumerate(axes)})
            if has_ref:
                row.update({f"ref_f{c}_eV/A": f"{r[i, k]:.8f}" for k, c in enumerate(axes)})
            rows.append(row)
    write_rows_csv(rows, path, columns=list(rows[0]) if rows else ["id"], lineterminator="\n")
    print(f"wrote conservative forces of {sum(len(a) for a in ds.structures)} atoms to {path}")
    if has_ref:
        rmse, mae = rmse_mae(np.concatenate(ref).ravel(), np.concatenate(res.forces).ravel(), scale=1.0,
                             what="forces")
        print(f"forces (-dE/dr): RMSE {rmse:.4f} eV/A   MAE {mae:.4f} eV/A")
