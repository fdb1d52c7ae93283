"""``tnmat fit --order 3 --factorised``: the bispectrum enters the sweep fitter factorised.

The per-atom density expansions of DATA are computed once; the MPS over the bispectrum's legs (slot order
[c] a1 n1 l1 a2 n2 l2 a3 n3 l3) is contracted with them atom by atom
(:class:`tnmat.training.sweep.bispectrum.BispectrumInput`), so neither the dense bispectrum
((S n_max (l_max+1))^3 entries per structure, times S with ``--center-species``) nor a dense weight is built.
The saved model is a standard MPS on the bispectrum legs: ``tnmat predict`` computes the dense bispectrum of
the structures it is given (small settings) and contracts it."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from tnmat.commands._common import CLIError, descriptor_settings


def check_factorised(args: argparse.Namespace) -> None:
    """``--factorised`` applies to the bispectrum under the MPS sweep, structure-averaged, scalar targets."""
    from tnmat.training.registry import model_spec

    descriptor_settings(args)  # the preset's settings, with the options given in their place
    if args.order != 3:
        raise CLIError(f"--factorised: the factorised input is the bispectrum; give --order 3 (got {args.order})")
    from tnmat.training.params import resolve_solver

    if model_spec(args.model).network != "mps" or resolve_solver("mps", args.solver) != "sweep":
        raise CLIError(f"--factorised: fitted by --model mps --solver sweep (got --model {args.model} --solver "
                       f"{args.solver})")
    if args.local:
        raise CLIError("--factorised: the bispectrum model is linear in the input, so --local changes nothing; "
                       "leave it out")


def member_report(history: dict) -> str:
    """One line for ``--members K``: the merged fits, their bonds and how the first member's sweeps ended."""
    return (f"mean of {len(history['member_bond_dims'])} sweep fits merged into one network (member bonds "
            f"{history['member_bond_dims']}); member 1: {history['stop_reason'][0]}")


def run_factorised(args: argparse.Namespace, ds: Any, target: str, sp: dict[str, Any], reg: Any) -> int:
    """Fit ``reg`` (an MPS estimator, solver sweep) on the factorised bispectrum of the split ``sp``; print the
    report ``tnmat fit`` prints (no applicability range: it needs the dense descriptor) and save."""
    from tnmat.data.units import target_units
    from tnmat.descriptors import AtomicDensity, Invariants
    from tnmat.metrics import EV_TO_MEV, rmse_mae
    from tnmat.model import StructureModel
    from tnmat.training.sweep.bispectrum import BispectrumInput

    try:
        dens = AtomicDensity(species=tuple(ds.species), r_cut=args.r_cut, n_max=args.n_max, l_max=args.l_max,
                             density=args.density, sigma=args.sigma)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    calc = Invariants(dens, order=3, center_species=args.center_species)
    units = target_units(ds, target)
    t0 = time.perf_counter()
    X = BispectrumInput.from_structures(ds.structures, dens, center_species=args.center_species)
    test_ds = sp["test_ds"] or ds
    X_test = BispectrumInput.from_structures(test_ds.structures, dens, center_species=args.center_species) \
        if sp["test_ds"] else X
    print(f"{args.model} on {ds.name} ({target}, errors in {units}; factorised bispectrum, legs {X.legs}, "
          f"{len(X.a)} atoms, expansions {time.perf_counter() - t0:.1f} s)")
    held = reg.validation_fraction  # what the estimator holds out (none for --members, see tnmat fit)
    inside = (f"validation {held:g} of them inside the sweep, then refitted on all" if held > 0 else
              "none held out (ridge strengths by the Bayesian evidence)")
    print(f"structures: {len(sp['train'])} fitted, {inside}; {len(sp['test'])} test ({sp['how']})", flush=True)
    y = ds.targets[target]
    t0 = time.perf_counter()
    reg.fit(X.select(sp["train"]), y[sp["train"]])
    seconds = time.perf_counter() - t0
    print(f"parameters: {reg.n_parameters_}   fit time: {seconds:.1f} s")
    print(member_report(reg.history_) if reg.history_.get("member_bond_dims") else
          f"sweeps: {reg.history_['stop_reason'][0]}")
    print(f"bond dimensions {reg.bond_dims_}")
    val = reg.history_["val_rmse"][reg.best_epoch_]
    if val is not None:
        print(f"{'validation':10s} RMSE {val * reg.y_std_ * EV_TO_MEV:8.2f} {units}   (chosen pass, before the refit)")
    y_test = test_ds.targets[target][sp["test"]]
    rmse, mae = rmse_mae(y_test, np.asarray(reg.predict(X_test.select(sp["test"]))),
                         what=f"{args.model} on the test set")
    print(f"{'test':10s} RMSE {rmse:8.2f} {units}   MAE {mae:8.2f} {units}")
    model = StructureModel(calc, reg, local=False, target=target, units=units)
    ids = [str(ds.metadata["id"][k]) for k in sp["train"]]
    model.info = {"split": {"test_from": sp["how"], "fitted": ids, "validation": [],
                            "test": [str(test_ds.metadata["id"][k]) for k in sp["test"]],
                            "validation_fraction": held, "seed": args.random_state},
                  "training": {"stop": reg.history_["stop_reason"][0], "fit_seconds": seconds,
                               "factorised_bispectrum": True},
                  "errors": {"test": {"rmse": rmse, "mae": mae}}}
    if args.output:
        model.save(args.output)
        print(f"wrote {args.output}")
    return 0
