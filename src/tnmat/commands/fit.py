"""``tnmat fit``: descriptors of DATA (cached on request), the official or a random hold-out test set, a
validation part of the rest for early stopping, one model, its validation and test errors."""

from __future__ import annotations

import argparse
import time

from tnmat.commands._common import DATA_HELP, DESCRIPTOR_OPTIONS, QUIET, descriptor, load_data, option
from tnmat.training.registry import MODEL_NAMES

NAME = "fit"
HELP = "fit a tensor-network (or baseline) model and report test errors"
DESCRIPTION = ("Compute (or load cached) descriptors of DATA, split off validation, train, and print validation "
               "and test RMSE/MAE.")
OPTIONS = [
    option("data", help=DATA_HELP),
    option("--model", choices=list(MODEL_NAMES), default="mpo", help="model (default mpo)"),
    option("--bond-dim", type=int, default=8, help="virtual bond dimension chi (default 8)"),
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

    takes = model_spec(args.model).parameters
    wanted = {"random_state": args.seed, "verbose": 0 if args.quiet else 1, "max_epochs": args.epochs,
              "learning_rate": args.learning_rate, "batch_size": args.batch_size, "patience": args.patience,
              "bond_dim": args.bond_dim}
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
    model.fit(X.select(fit_idx), y[fit_idx], X_val=X.select(val), y_val=y[val])
    seconds = time.perf_counter() - t0
    print(f"{args.model} on {ds.name} ({target}; {len(fit_idx)} train / {len(val)} validation / "
          f"{len(test)} test; {'local per-atom' if args.local else 'structure-averaged'} {calc.legs})")
    print(f"parameters: {getattr(reg, 'n_parameters_', None)}   fit time: {seconds:.1f} s")
    for name, idx in (("validation", val), ("test", test)):
        rmse, mae = rmse_mae(y[idx], model.predict(X.select(idx)), what=f"{args.model} on the {name} set")
        print(f"{name:10s} RMSE {rmse:8.2f} {units}   MAE {mae:8.2f} {units}")
    if args.output:
        model.save(args.output)
        print(f"wrote {args.output}")
    return 0
