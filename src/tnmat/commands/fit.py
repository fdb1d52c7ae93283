"""``tnmat fit``: descriptors of DATA (cached on request), a test set (``--test-file``, the structures labelled
``split=test``, or a seeded random fifth), a validation part of the rest for models that use one, one model,
its validation and test errors; what was used for fitting, validation and testing is printed and stored with
the model (``StructureModel.info``), with the training descriptors' range (``predict`` flags structures
outside it)."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

import numpy as np

from tnmat.commands._common import (
    DATA_HELP,
    DESCRIPTOR_OPTIONS,
    ENERGIES,
    QUIET,
    CLIError,
    as_options,
    check_output_dir,
    check_output_file,
    check_param_args,
    descriptor,
    load_data,
    load_test_file,
    option,
    param_options,
    param_values,
)
from tnmat.commands.fit_forces import report_force_errors, training_forces
from tnmat.commands.fit_structures import IDEAL_SITES_HELP, ideal_dataset, ideal_test_file, run_structures
from tnmat.training.base import NetworkRegressor
from tnmat.training.registry import MODEL_NAMES, model_spec

#: the best tensor network measured (results/sweep/sweep_nmd18.json, docs/results/sweep.md)
DEFAULT_MODEL = "ttn"
DEFAULT_WHY = ("lowest test MAE of the single networks on NMD18's official split, "
               "results/sweep/sweep_nmd18_huber.json")
#: the training parameters on the command line (flags, defaults, help: tnmat.training.params, as in Python)
CLI_PARAMS = ("bond_dim", "solver", "loss", "huber_delta", "n_sweeps", "alpha_selection", "n_members", "max_epochs",
              "patience", "learning_rate", "batch_size", "validation_fraction", "random_state", "force_weight",
              "stress_weight")

NAME = "fit"
HELP = "fit a tensor-network (or baseline) model and report test errors"
DESCRIPTION = ("Compute (or load cached) descriptors of DATA, split off test and validation structures, train, "
               "and print validation and test RMSE/MAE.  Energies in structure files are totals (ASE); the "
               "model fits energy_per_atom.")
OPTIONS = [
    option("data", help=DATA_HELP),
    option("--model", choices=list(MODEL_NAMES), default=DEFAULT_MODEL,
           help=f"model (default {DEFAULT_MODEL}: {DEFAULT_WHY})"),
    option("--target", default=None, help="target key (default: formation_energy for NMD18, mixing_energy for "
                                            "alloys, else energy_per_atom); 'forces' or 'stress' fit an "
                                            "equivariant model (--model mps, mpo or dense) to the structures' "
                                            "forces/stress"),
    option("--local", action="store_true",
           help="per-atom model averaged over atoms (paper eq. 1) instead of the averaged descriptor"),
    option("--test-file", default=None, metavar="FILE",
           help="test on the structures of FILE and train on all of DATA (default: DATA's structures with "
                "info['split'] == 'test' when some have it, else a seeded random fifth of DATA)"),
    option("--cache", default=None, help="folder for cached descriptors (default: no cache)"),
    option("--factorised", action="store_true",
           help="with --order 3 --model mps --solver sweep: fit on the per-atom density expansions, contracting "
                "the bispectrum factor by factor (the dense bispectrum and a dense weight are never built; "
                "docs/results/sweep_bispectrum.md)"),
    option("--center-species", action="store_true",
           help="with --factorised: add the centre atom's species as a leg of the bispectrum"),
    option("--ideal-sites", default=None, metavar="PARENT", help=IDEAL_SITES_HELP),
    ENERGIES,
    param_options(CLI_PARAMS),
    DESCRIPTOR_OPTIONS,
    option("-o", "--output", help="save the fitted model (descriptor settings, split and training range "
                                  "included) here"),
    QUIET,
]


def estimator(args: argparse.Namespace):  # noqa: ANN201 (a fresh estimator)
    """The estimator of ``--model`` with those command-line settings the model takes (the model table
    says which: a GPR has no epochs, a dense model no bond dimension); every other parameter keeps the
    estimator's default, so ``tnmat fit`` and the Python estimator fit the same model."""
    from tnmat.training.registry import make_estimator, model_spec

    spec = model_spec(args.model)
    takes = spec.parameters
    wanted = {"random_state": args.random_state, "verbose": 0 if args.quiet else 1}
    if issubclass(spec.estimator, NetworkRegressor):  # the table's parameters (a GPR's "solver" is its own)
        wanted.update(param_values(args, CLI_PARAMS), validation_fraction=held_out(args),
                      alpha_selection=alpha_selection(args))
    if not args.quiet and "callbacks" in takes:
        wanted["callbacks"] = [Progress()]
    return make_estimator(args.model, **{k: v for k, v in wanted.items() if k in takes})


class Progress:
    """An epoch callback that prints one progress line to stderr every ``every`` seconds (long fits are
    never silent, also when stderr is not a terminal and no progress bar is drawn)."""

    def __init__(self, every: float = 30.0) -> None:
        self.every, self.last = every, time.perf_counter()

    def __call__(self, est: Any, epoch: int, step: int, logs: dict) -> None:
        now = time.perf_counter()
        if logs.get("event") == "epoch_end" and now - self.last >= self.every:
            self.last = now
            print(f"  epoch {epoch + 1}/{est.max_epochs}: train MSE {logs['train_loss']:.4g}, validation MSE "
                  f"{logs['val_loss']:.4g}", file=sys.stderr, flush=True)


def uses_validation(model: str) -> bool:
    """Whether a model needs validation data (early stopping, or the sweep's selection); the GPRs do not."""
    from tnmat.training.registry import model_spec

    return "validation_fraction" in model_spec(model).parameters


def held_out(args: argparse.Namespace) -> float:
    """The share of training structures held out for validation: none for an ensemble (its members must
    share one input scaling, and the evidence needs no held-out rows)."""
    return 0.0 if args.n_members > 1 else args.validation_fraction


def alpha_selection(args: argparse.Namespace) -> str:
    """How the sweep chooses its ridge strengths: the evidence for an ensemble, else --alpha-selection."""
    return "evidence" if args.n_members > 1 else args.alpha_selection


def check_options(args: argparse.Namespace) -> None:
    """Option checks done before any data is read or work starts (each error names its option)."""
    from tnmat.training.registry import model_spec

    if args.n_members > 1 and model_spec(args.model).network not in ("mps", "ttn"):
        raise CLIError(f"--members {args.n_members}: needs --model mps or ttn (got --model {args.model})")
    check_param_args(args, CLI_PARAMS)
    est = estimator(args)
    if hasattr(est, "_check_params"):  # the estimator's one validation, before any data is read
        try:
            est._check_params()
        except ValueError as exc:
            raise CLIError(as_options(str(exc))) from None
    f = args.validation_fraction
    evidence = getattr(est, "solver_", None) == "sweep" and alpha_selection(args) == "evidence"
    if f == 0 and uses_validation(args.model) and not evidence:
        raise CLIError(f"--validation-fraction 0: model {args.model} uses validation data (early stopping or "
                       "the sweep's selection); give a fraction in (0, 1), or --alpha-selection evidence")
    check_output_file(args.output, "-o/--output")
    check_output_dir(args.cache, "--cache")
    if args.factorised:
        from tnmat.commands.fit_factorised import check_factorised

        check_factorised(args)
    elif args.center_species:
        raise CLIError("--center-species: available with --factorised (the bispectrum's centre-species leg)")
    from tnmat.commands.fit_structures import check_structure_model

    check_structure_model(args)


def _splits(args: argparse.Namespace, ds: Any, target: str) -> dict[str, Any]:
    """Indices (into DATA) of the fitted, validation and test structures (test: into the test file, when one
    is given), and how the test set was chosen."""
    from tnmat.experiments.splits import holdout_split, official_test, train_validation_split

    test_ds = None
    if args.test_file:
        test_ds = load_test_file(args, ds, target)
        train, test, how = np.arange(len(ds)), np.arange(len(test_ds)), f"--test-file {args.test_file}"
    else:
        official = official_test(ds.metadata.get("split"))
        train, test = holdout_split(len(ds), official=official, seed=args.random_state)
        how = ("the structures labelled split=test" if official is not None
               else f"a random fifth of {args.data} (seed {args.random_state})")
    if len(train) < 2:
        raise CLIError(f"{args.data}: {len(train)} training structure(s); at least 2 are needed")
    if uses_validation(args.model) and held_out(args) > 0:
        fit_idx, val = train_validation_split(train, val_fraction=held_out(args), seed=args.random_state)
    else:  # the GPRs choose their hyper-parameters by marginal likelihood: every training structure is fitted
        fit_idx, val = train, train[:0]
    return {"train": train, "fit": fit_idx, "val": val, "test": test, "test_ds": test_ds, "how": how}


def _stop_report(reg: Any, args: argparse.Namespace) -> str | None:
    """How training ended: epochs run and why (patience, epoch cap while still improving), or the sweep's
    stop reason; None for models without either (GPR)."""
    h = getattr(reg, "history_", None)
    if not isinstance(h, dict):
        return None
    if h.get("member_bond_dims"):  # --members: one line for the merged fits
        from tnmat.commands.fit_factorised import member_report

        return member_report(h)
    if h.get("stop_reason"):
        return f"sweeps: {h['stop_reason'][0]}"
    if h.get("lambdas"):  # the dense model under the sweep solver: one closed-form ridge solve
        return f"one closed-form ridge solve (ridge strength {h['lambdas'][-1]:g} chosen on the validation part)"
    n, best = getattr(reg, "n_epochs_", None), getattr(reg, "best_epoch_", None)
    if n is None:
        return None
    if getattr(reg, "stopped_early_", False):
        return (f"training stopped by early stopping after {n} epochs: no validation improvement for "
                f"{reg.patience} epochs (best epoch {best + 1})")
    if n < reg.max_epochs:
        return f"training stopped after {n} epochs: the loss became NaN/inf; weights of epoch {best + 1} kept"
    still = best is not None and best >= n - max(1, n // 20)
    return (f"training stopped at the epoch cap ({n} epochs), best epoch {best + 1}"
            + ("; still improving: raise --epochs" if still else ""))


def _fit(model: Any, X: Any, y: np.ndarray, sp: dict[str, Any], refit: bool, forces: Any = None,
         weights: np.ndarray | None = None) -> int:
    """Fit ``model`` on the split (with the training structures' force rows ``forces`` and the per-structure
    ``weights`` of DATA, if any); returns how many convergence warnings the fit raised (GPR optimiser), which
    are counted and reported once instead of leaking through."""
    from sklearn.exceptions import ConvergenceWarning

    from tnmat.commands.fit_forces import forces_for

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        if refit or not len(sp["val"]):  # the sweep selects on its own validation part, then refits on all
            model.fit(X.select(sp["train"]), y[sp["train"]], forces=forces,
                      structure_weight=None if weights is None else weights[sp["train"]])
        else:
            model.fit(X.select(sp["fit"]), y[sp["fit"]], X_val=X.select(sp["val"]), y_val=y[sp["val"]],
                      forces=forces_for(forces, sp["train"], sp["fit"]),
                      forces_val=forces_for(forces, sp["train"], sp["val"]),
                      structure_weight=None if weights is None else weights[sp["fit"]])
    other = [w for w in caught if not issubclass(w.category, ConvergenceWarning)]
    for w in other:  # anything else is passed on unchanged
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return len(caught) - len(other)


def _weights(ds: Any, reg: Any) -> np.ndarray | None:
    """DATA's per-structure weights (``info["weight"]``) for a sweep fit, printed when used; None without."""
    from tnmat.commands.fit_forces import structure_weights

    try:
        w = structure_weights(ds)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if w is None:
        return None
    if getattr(reg, "_solver", lambda: None)() != "sweep":
        raise CLIError(f"{ds.name}: the structures carry info['weight']; per-structure weights need a sweep-fitted "
                       "model (--model mps, mpo, ttn or dense, --solver sweep)")
    print(f"weights: info['weight'] of every structure (range {w.min():g}-{w.max():g}) multiply its rows")
    return w


def _ids(ds: Any, idx: np.ndarray) -> list[str]:
    return [str(ds.metadata["id"][k]) for k in idx]


def _applicability(X: Any, X_test: Any, data: tuple[Any, Any], sp: dict[str, Any], r_cut: float) -> dict:
    """The training range (descriptors and real-space geometry) of the fitted structures, and a line saying
    how many test structures lie outside it; ``data`` = (training dataset, test dataset)."""
    from tnmat.data.domain_geometry import domain_flags, training_domain

    ds, test_ds = data
    domain = training_domain(X.select(sp["train"]), [ds.structures[k] for k in sp["train"]], r_cut)
    n_out = int(domain_flags(domain, X_test.select(sp["test"]), [test_ds.structures[k] for k in sp["test"]])[0].sum())
    print(f"applicability: {n_out} of {len(sp['test'])} test structures outside the training range (descriptors: "
          f"margin {domain['margin']:g} of each entry's span; shortest distances, neighbour counts, periodicity)")
    return domain


def run(args: argparse.Namespace) -> int:
    """Check -> load -> describe -> split -> fit -> report (-> save)."""
    from tnmat.commands._guards import check_fit_memory
    from tnmat.data.units import check_intensive, target_units
    from tnmat.descriptor_cache import cached_descriptors
    from tnmat.experiments.protocol import default_target
    from tnmat.metrics import EV_TO_MEV, rmse_mae
    from tnmat.model import StructureModel

    check_options(args)
    ds = ideal_dataset(args, load_data(args.data, geometry=args.geometry, energies=args.energies), args.data)
    if args.target in ("forces", "stress"):  # vector / tensor targets: equivariant models
        from tnmat.commands.vector_targets import run_fit

        return run_fit(args, ds, descriptor(args, ds.species))
    target = default_target(ds, args.target)
    check_intensive(ds, target)
    sp = ideal_test_file(args, _splits(args, ds, target))
    y = ds.targets[target]
    if np.ptp(y[sp["train"]]) == 0:
        raise CLIError(f"{args.data}: target {target!r} is the same ({y[sp['train'][0]]:.6g} eV) for every "
                       "training structure; there is nothing to learn (fit a target that varies)")
    if model_spec(args.model).inputs == "structures":  # the cluster expansion: structures in, no descriptors
        return run_structures(args, ds, target, sp, estimator(args))
    if args.factorised:
        from tnmat.commands.fit_factorised import run_factorised

        return run_factorised(args, ds, target, sp, estimator(args))
    calc, units = descriptor(args, ds.species), target_units(ds, target)
    check_fit_memory(args, calc.sizes)
    X = cached_descriptors(calc, ds, local=args.local, cache_dir=args.cache, progress=not args.quiet)
    test_ds = sp["test_ds"] or ds
    X_test = calc.compute(test_ds.structures, average=not args.local) if sp["test_ds"] else X
    y_test = test_ds.targets[target]
    reg = estimator(args)
    refit = hasattr(reg, "_solver") and reg._solver() == "sweep"  # the resolved solver of "auto"
    model = StructureModel(calc, reg, local=args.local, target=target, units=units)
    n_val = "none" if not len(sp["val"]) else (f"{args.validation_fraction:g} of them inside the sweep, then "
                                                "refitted on all" if refit else str(len(sp["val"])))
    kind = "local per-atom" if args.local else "structure-averaged"
    print(f"{args.model} on {ds.name} ({target}, errors in {units}; {kind} {calc.legs})")
    print(f"structures: {len(sp['train'] if refit else sp['fit'])} fitted, validation {n_val}, "
          f"{len(sp['test'])} test ({sp['how']})", flush=True)
    t0 = time.perf_counter()
    forces = training_forces(args, reg, calc, ds, sp["train"])
    weights = _weights(ds, reg)
    n_conv = _fit(model, X, y, sp, refit, forces, weights)
    seconds = time.perf_counter() - t0
    print(f"parameters: {getattr(reg, 'n_parameters_', None)}   fit time: {seconds:.1f} s")
    stop = _stop_report(reg, args)
    if stop:
        print(stop)
    if n_conv:
        print(f"note: the GPR hyper-parameter optimiser reported {n_conv} convergence warning(s) (a length scale "
              "or noise level at its bound)")
    if refit and hasattr(reg, "bond_dims_"):
        h = reg.history_
        print(f"bond dimensions {reg.bond_dims_}")
        if h.get("val_rmse") and h["val_rmse"][0] is not None:
            print(f"{'validation':10s} RMSE {h['val_rmse'][reg.best_epoch_] * reg.y_std_ * EV_TO_MEV:8.2f} "
                  f"{units}   (chosen pass, before the refit)")
    errors = {}
    for name, Xs, ys in ((("validation", X.select(sp["val"]), y[sp["val"]]),) if len(sp["val"]) and not refit
                         else ()) + (("test", X_test.select(sp["test"]), y_test[sp["test"]]),):
        rmse, mae = rmse_mae(ys, model.predict(Xs), what=f"{args.model} on the {name} set")
        errors[name] = {"rmse": rmse, "mae": mae}
        print(f"{name:10s} RMSE {rmse:8.2f} {units}   MAE {mae:8.2f} {units}")
    if units.endswith("/atom"):  # test structures with forces (and stress): the energy model's derivatives
        errors["test"].update(report_force_errors(model, [test_ds.structures[int(i)] for i in sp["test"]]))
    domain = _applicability(X, X_test, (ds, test_ds), sp, calc.density.r_cut)
    model.info = {"split": {"test_from": sp["how"], "fitted": _ids(ds, sp["train"] if refit else sp["fit"]),
                            "validation": _ids(ds, sp["val"]), "test": _ids(test_ds, sp["test"]),
                            "validation_fraction": args.validation_fraction, "seed": args.random_state},
                  "training": {"stop": stop or "", "fit_seconds": seconds, "convergence_warnings": n_conv},
                  "errors": errors, "domain": domain}
    if args.output:
        model.save(args.output)
        print(f"wrote {args.output}")
    return 0
