"""``tnmat fit``: descriptors of DATA (cached on request), the official or a random hold-out test set, a
validation part of the rest for early stopping, one model, its validation and test errors."""

from __future__ import annotations

import argparse
import time

from tnmat.commands._common import DATA_HELP, DESCRIPTOR_OPTIONS, QUIET, descriptor, load_data, option
from tnmat.training.registry import MODEL_NAMES

#: the best tensor network measured (results/sweep/sweep_nmd18.json, docs/results/sweep.md)
DEFAULT_MODEL = "ttn"
DEFAULT_WHY = "lowest test MAE of the sweep-fitted networks on NMD18, results/sweep/sweep_nmd18.json"

NAME = "fit"
HELP = "fit a tensor-network (or baseline) model and report test errors"
DESCRIPTION = ("Compute (or load cached) descriptors of DATA, split off validation, train, and print validation "
               "and test RMSE/MAE.")
OPTIONS = [
    option("data", help=DATA_HELP),
    option("--model", choices=list(MODEL_NAMES), default=DEFAULT_MODEL,
           help=f"model (default {DEFAULT_MODEL}: {DEFAULT_WHY})"),
    option("--bond-dim", type=int, default=8, help="virtual bond dimension chi (the cap under --solver sweep; "
                                                   "default 8)"),
    option("--solver", choices=["sweep", "adam"], default="sweep",
           help="tensor networks: 'sweep' (two-site alternating least squares, adaptive bonds, ridge strength and "
                "passes chosen on the validation part, then refitted on all training structures; default) or "
                "'adam' (mini-batch gradient descent, --epochs/--patience/--learning-rate/--batch-size)"),
    option("--sweeps", type=int, default=6, help="most passes of --solver sweep (default 6)"),
    option("--target", default=None, help="target key (default: formation_energy for NMD18, mixing_energy for "
                                            "alloys, else energy); 'forces' or 'stress' fit an equivariant "
                                            "model (--model mps, mpo or dense) to the structures' forces/stress"),
    option("--local", action="store_true",
           help="per-atom model averaged over atoms (paper eq. 1) instead of the averaged descriptor"),
    option("--epochs", type=int, default=400, help="maximum epochs (default 400)"),
    option("--patience", type=int, default=40, help="early-stopping patience in epochs (default 40)"),
    option("--learning-rate", type=float, default=3e-3, help="Adam learning rate (default 3e-3)"),
    option("--batch-size", type=int, default=64, help="mini-batch size (default 64)"),
    option("--validation-fraction", type=float, default=0.2, help="of the training split (default 0.2)"),
    option("--seed", type=int, default=0, help="random seed (default 0)"),
    option("--cache", default=None, help="folder for cached descriptors (default: no cache)"),
    DESCRIPTOR_OPTIONS,
    option("-o", "--output", help="save the fitted model (descriptor settings included) here"),
    QUIET,
]


def estimator(args: argparse.Namespace):  # noqa: ANN201 (a fresh estimator)
    """The estimator of ``--model`` with those command-line settings the model takes (the model table
    says which: a GPR has no epochs, a dense model no bond dimension)."""
    from tnmat.training.registry import make_estimator, model_spec

    spec = model_spec(args.model)
    takes = spec.parameters
    wanted = {"random_state": args.seed, "verbose": 0 if args.quiet else 1, "max_epochs": args.epochs,
              "learning_rate": args.learning_rate, "batch_size": args.batch_size, "patience": args.patience,
              "bond_dim": args.bond_dim}
    # the sweep applies to the multilinear networks (not the MERA's loops, not the feature map)
    if spec.network in ("mps", "mpo", "ttn", "dense"):
        wanted.update(solver=args.solver, n_sweeps=args.sweeps, validation_fraction=args.validation_fraction)
    return make_estimator(args.model, **{k: v for k, v in wanted.items() if k in takes})


def run(args: argparse.Namespace) -> int:
    """Load -> describe -> split -> fit -> report (-> save)."""
    from tnmat.data.units import target_units
    from tnmat.descriptor_cache import cached_descriptors
    from tnmat.experiments.protocol import default_target
    from tnmat.experiments.splits import holdout_split, official_test, train_validation_split
    from tnmat.metrics import rmse_mae
    from tnmat.model import StructureModel

    ds = load_data(args.data, geometry=args.geometry)
    if args.target in ("forces", "stress"):  # vector / tensor targets: equivariant models (issue 16)
        from tnmat.commands.vector_targets import run_fit

        return run_fit(args, ds, descriptor(args, ds.species))
    target = default_target(ds, args.target)
    calc = descriptor(args, ds.species)
    units = target_units(ds, target)
    X = cached_descriptors(calc, ds, local=args.local, cache_dir=args.cache, progress=not args.quiet)
    y = ds.targets[target]
    train, test = holdout_split(len(ds), official=official_test(ds.metadata.get("split")), seed=args.seed)
    fit_idx, val = train_validation_split(train, val_fraction=args.validation_fraction, seed=args.seed)
    reg = estimator(args)
    model = StructureModel(calc, reg, local=args.local, target=target, units=units)
    t0 = time.perf_counter()
    refit = getattr(reg, "solver", None) == "sweep"
    if refit:  # selection on the same validation part inside the estimator, then a refit on all of train
        model.fit(X.select(train), y[train])
    else:
        model.fit(X.select(fit_idx), y[fit_idx], X_val=X.select(val), y_val=y[val])
    seconds = time.perf_counter() - t0
    print(f"{args.model} on {ds.name} ({target}; {len(fit_idx)} train / {len(val)} validation / "
          f"{len(test)} test; {'local per-atom' if args.local else 'structure-averaged'} {calc.legs})")
    print(f"parameters: {getattr(reg, 'n_parameters_', None)}   fit time: {seconds:.1f} s")
    if refit and hasattr(reg, "bond_dims_"):
        h = reg.history_
        best = h["val_rmse"][reg.best_epoch_] if h["val_rmse"] and h["val_rmse"][0] is not None else None
        print(f"sweeps: {h['stop_reason'][0]}; bond dimensions {reg.bond_dims_}")
        if best is not None:
            from tnmat.metrics import EV_TO_MEV

            print(f"{'validation':10s} RMSE {best * reg.y_std_ * EV_TO_MEV:8.2f} {units}   (chosen pass, "
                  "before the refit)")
    for name, idx in ((("validation", val),) if not refit else ()) + (("test", test),):
        rmse, mae = rmse_mae(y[idx], model.predict(X.select(idx)), what=f"{args.model} on the {name} set")
        print(f"{name:10s} RMSE {rmse:8.2f} {units}   MAE {mae:8.2f} {units}")
    if args.output:
        model.save(args.output)
        print(f"wrote {args.output}")
    return 0
