"""``tnmat fit`` for models that take structures instead of descriptors (``--model ce``, the cluster
expansion), and ``--ideal-sites``: relaxed structures mapped onto their ideal parent-lattice sites before any
model sees them (the inputs a ground-state search has before relaxing)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from tnmat.commands._common import CLIError

__all__ = ["IDEAL_SITES_HELP", "check_structure_model", "ideal_dataset", "ideal_inputs", "ideal_test_file",
           "run_structures"]

IDEAL_SITES_HELP = ("map every structure of DATA (and --test-file) onto the ideal sites of its parent lattice "
                    "before fitting: PARENT is fcc, bcc, hcp (optionally ':a' in Angstrom) or auto; positions "
                    "on the sites, volume per atom kept (tnmat.data.ideal_sites)")


def ideal_inputs(ds: Any, parent: str, where: str) -> Any:
    """``ds`` with each structure replaced by its ideal parent-lattice configuration; a structure that does
    not map is a one-line :class:`CLIError` naming ``where`` (the file) and the structure index."""
    from tnmat.data import Dataset
    from tnmat.data.ideal_sites import LatticeMappingError, map_to_ideal

    try:
        ideal = map_to_ideal(ds.structures, parent, source=where)
    except (LatticeMappingError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    out = Dataset(structures=ideal, targets=dict(ds.targets), metadata=dict(ds.metadata), name=ds.name,
                  source=f"{ds.source}; mapped to ideal {parent} sites", units=dict(ds.units))
    return out


def ideal_dataset(args: argparse.Namespace, ds: Any, where: str) -> Any:
    """``ds`` mapped to ideal sites when ``--ideal-sites`` is given, else ``ds``."""
    return ideal_inputs(ds, args.ideal_sites, where) if getattr(args, "ideal_sites", None) else ds


def ideal_test_file(args: argparse.Namespace, sp: dict[str, Any]) -> dict[str, Any]:
    """The split with the ``--test-file`` structures mapped to ideal sites too (under ``--ideal-sites``)."""
    if getattr(args, "ideal_sites", None) and sp.get("test_ds") is not None:
        sp["test_ds"] = ideal_inputs(sp["test_ds"], args.ideal_sites, args.test_file)
    return sp


def run_structures(args: argparse.Namespace, ds: Any, target: str, sp: dict[str, Any], reg: Any) -> int:
    """Fit a structure-input model on the training structures and report its test errors (as ``tnmat fit``
    does for descriptor models; the choice of its settings is made on the training structures only)."""
    from tnmat.data.units import target_units
    from tnmat.metrics import rmse_mae
    from tnmat.model import StructureModel

    units = target_units(ds, target)
    test_ds = sp["test_ds"] or ds
    y = ds.targets[target]
    train = sp["train"]
    model = StructureModel(None, reg, target=target, units=units)
    print(f"{args.model} on {ds.name} ({target}, errors in {units}; inputs: structures on ideal lattice sites)")
    print(f"structures: {len(train)} fitted (settings chosen by cross-validation on them), {len(sp['test'])} "
          f"test ({sp['how']})", flush=True)
    t0 = time.perf_counter()
    try:
        model.fit([ds.structures[k] for k in train], y[train])
    except ValueError as exc:
        raise CLIError(f"{args.data}: {exc}") from None
    seconds = time.perf_counter() - t0
    print(f"parameters: {reg.n_parameters_} ({reg.n_nonzero_} nonzero)   fit time: {seconds:.1f} s")
    print(f"chosen: {reg.parent_} parent, cutoffs {', '.join(f'{c:.2f}' for c in reg.cutoffs_)} A, "
          f"fit method {reg.fit_method_}")
    try:
        pred = model.predict([test_ds.structures[k] for k in sp["test"]])
    except ValueError as exc:
        raise CLIError(f"{args.test_file or args.data}: {exc}") from None
    rmse, mae = rmse_mae(test_ds.targets[target][sp["test"]], pred, what=f"{args.model} on the test set")
    print(f"{'test':10s} RMSE {rmse:8.2f} {units}   MAE {mae:8.2f} {units}")
    ids = ds.metadata["id"]
    model.info = {"split": {"test_from": sp["how"], "fitted": [str(ids[k]) for k in train], "validation": [],
                            "test": [str(test_ds.metadata["id"][k]) for k in sp["test"]], "seed": args.random_state},
                  "training": {"stop": "", "fit_seconds": seconds, "convergence_warnings": 0},
                  "errors": {"test": {"rmse": rmse, "mae": mae}},
                  "cross_validation": [dict(r) for r in reg.cv_results_]}
    if args.output:
        model.save(args.output)
        print(f"wrote {args.output}")
    return 0


def check_structure_model(args: argparse.Namespace) -> None:
    """Options that a structure-input model cannot use (before any data is read); nothing for other models."""
    from tnmat.training.registry import takes_structures

    if not takes_structures(args.model):
        return
    for flag, on in (("--local", args.local), ("--factorised", args.factorised), ("--members", args.n_members > 1)):
        if on:
            raise CLIError(f"{flag}: not available with --model {args.model} (it takes structures, not descriptors)")
    if args.target in ("forces", "stress"):
        raise CLIError(f"--target {args.target}: --model {args.model} fits energies only")
