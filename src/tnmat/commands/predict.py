"""``tnmat predict``: a saved model's predictions for every structure of DATA, as CSV (with the errors when
DATA has the target)."""

from __future__ import annotations

import argparse

import numpy as np

from tnmat.commands._common import DATA_HELP, GEOMETRY, load_data, option

NAME = "predict"
HELP = "predict with a saved model"
DESCRIPTION = "Predict the saved model's target for every structure of DATA; write CSV."
OPTIONS = [
    option("model", help="a model file written by 'tnmat fit -o'"),
    option("data", help=DATA_HELP),
    option("-o", "--output", default="predictions.csv", help="CSV file (default predictions.csv)"),
    GEOMETRY,
    option("-q", "--quiet", action="store_true", help="no progress bar"),
]


def run(args: argparse.Namespace) -> int:
    """Load model and data -> predict (describing on the way) -> write CSV -> report errors."""
    from tnmat.commands.vector_targets import is_equivariant_file, run_predict
    from tnmat.data.units import target_units
    from tnmat.metrics import rmse_mae
    from tnmat.model import StructureModel
    from tnmat.reports import write_rows_csv

    if is_equivariant_file(args.model):  # forces / stress model (issue 16)
        return run_predict(args, load_data(args.data, geometry=args.geometry))
    model = StructureModel.load(args.model)
    ds = load_data(args.data, geometry=args.geometry)
    pred = model.predict(ds.structures, progress=not args.quiet)
    ids = ds.metadata.get("id", np.arange(len(ds)))
    truth = ds.targets.get(model.target)
    t = model.target
    columns = ["id", f"predicted_{t}_eV"] + ([f"{t}_eV"] if truth is not None else [])
    rows = [dict(zip(columns, (ids[k], f"{pred[k]:.8f}", *([] if truth is None else [f"{truth[k]:.8f}"])),
                     strict=True)) for k in range(len(ds))]
    out = write_rows_csv(rows, args.output, columns=columns, lineterminator="\n")
    print(f"wrote {len(ds)} predictions to {out}")
    if truth is not None:
        units = target_units(ds, t)
        rmse, mae = rmse_mae(truth, pred, what=f"{args.model} on {ds.name}")
        print(f"RMSE {rmse:.2f} {units}   MAE {mae:.2f} {units}")
    return 0
