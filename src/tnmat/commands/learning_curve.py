"""``tnmat learning-curve``: test error versus training-set size for several models (paper Section IV A,
Fig. 12), resumable, with the CSV, Markdown, figure and portable ``fits.jsonl.gz`` of the stored fits."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tnmat.commands._common import (
    DESCRIPTOR_OPTIONS,
    ENERGIES,
    QUIET,
    CLIError,
    check_output_dir,
    check_results_file,
    descriptor,
    load_data,
    load_test_file,
    option,
    param_options,
)
from tnmat.training.registry import MODEL_NAMES, PRESETS

NAME = "learning-curve"
HELP = "test error versus training-set size for several models"
DESCRIPTION = ("Paper Section IV A / Fig. 12: stratified training subsets of growing size, several random test "
               "splits, hyper-parameters chosen on validation data; every finished fit is stored at once (rerun "
               "to resume).")
OPTIONS = [
    option("data", nargs="?", default="alloys", help="DATA (default: the embedded alloy set)"),
    option("--models", default="mps,mpo,dnn,gpr-rbf,gpr-soap",
           help=f"comma-separated, from {', '.join(MODEL_NAMES)} (default mps,mpo,dnn,gpr-rbf,gpr-soap)"),
    option("--preset", choices=sorted(PRESETS), default="quick",
           help="quick: ~1 minute smoke run; paper: the full protocol (default quick)"),
    option("--sizes", default=None, help="comma-separated training sizes (default from the preset)"),
    option("--splits", type=int, default=None, help="number of random test splits"),
    option("--test-size", type=int, default=None, help="structures per test set"),
    option("--test-file", default=None, metavar="FILE",
           help="test every training size on the structures of FILE (one split, named 'official'; training "
                "subsets drawn from all of DATA; --splits and --test-size do not apply)"),
    option("--target", default=None, help="target key (default: the dataset's energy)"),
    option("--max-epochs", type=int, default=None, help="override the preset's maximum epochs"),
    option("--patience", type=int, default=None, help="override the preset's early-stopping patience"),
    option("--grid", action="append", default=[], metavar="MODEL:NAME=V1,V2",
           help="replace or add one axis of a model's hyper-parameter grid, e.g. mpo:weight_decay=0,1e-3,1e-2 "
                "(repeatable; the values enter the fits' keys)"),
    option("--results", default="results.sqlite", help="SQLite results file (resumable)"),
    option("--out-dir", default="learning_curve",
           help="folder for the CSV, Markdown, PNG and fits.jsonl.gz (every stored fit of this dataset, the "
                "portable form of --results)"),
    option("--import-fits", default=None, metavar="FILE",
           help="first add the fits of FILE (a fits.jsonl.gz written by an earlier run) to --results, so a run "
                "moved to another machine resumes instead of refitting"),
    option("--jobs", type=int, default=1, help="parallel fits (joblib)"),
    option("--dask-scheduler", default=None, help="run the grid on a Dask cluster (tcp://host:port)"),
    option("--report-only", action="store_true",
           help="fit nothing: write the figure, CSV and summary of the fits already in --results (only (model, "
                "size, split) whose whole grid is stored) and say how many remain"),
    option("--seed", type=int, default=0, help="random seed of the splits (default 0)"),
    param_options(("solver",)),
    option("--cache", default=None, help="folder for cached descriptors"),
    ENERGIES,
    DESCRIPTOR_OPTIONS,
    QUIET,
]


def _grid_value(text: str) -> int | float | str:
    """A grid value as typed on the command line: an int, else a float, else the string itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def grid_overrides(specs: list[str], grids: dict, models: list[str]) -> dict:
    """Apply ``--grid MODEL:NAME=V1,V2,...`` options to a copy of the preset's grids: each replaces (or adds)
    one axis of one model's grid.  Unknown models or parameter names are errors, not silently dropped axes."""
    from tnmat.training.registry import check_params

    out = {m: dict(g) for m, g in grids.items()}
    for spec in specs:
        model, sep, rest = spec.partition(":")
        name, eq, values = rest.partition("=")
        model, name = model.strip(), name.strip()
        vals = [_grid_value(v.strip()) for v in values.split(",") if v.strip()]
        if not (sep and eq and model and name and vals):
            raise CLIError(f"--grid {spec!r}: expected MODEL:NAME=V1,V2,... (e.g. mpo:weight_decay=0,1e-3)")
        if model not in models:
            raise CLIError(f"--grid {spec!r}: model {model!r} is not among --models {','.join(models)}")
        try:
            check_params(model, {name: vals[0]})  # the check every grid point gets, done before any fit
        except ValueError as exc:
            raise CLIError(f"--grid {spec!r}: {exc}") from None
        out.setdefault(model, {})[name] = vals
    return out


def settings(args: argparse.Namespace) -> Any:
    """The :class:`~tnmat.experiments.learning_curve.LearningCurveSettings` of the preset and the options
    that override it."""
    from tnmat.experiments.learning_curve import LearningCurveSettings
    from tnmat.training.registry import model_spec, preset_grids

    preset = PRESETS[args.preset]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        model_spec(m)  # unknown names fail here, before any data is loaded
    overrides = {k: v for k, v in (("max_epochs", args.max_epochs), ("patience", args.patience)) if v is not None}
    fixed = {m: {**preset.fixed_params(m), **{k: v for k, v in overrides.items() if k in model_spec(m).parameters}}
             for m in models}
    return LearningCurveSettings(
        models=models, sizes=[int(s) for s in args.sizes.split(",")] if args.sizes else list(preset.sizes),
        n_splits=args.splits if args.splits is not None else preset.splits,
        test_size=args.test_size if args.test_size is not None else preset.test_size,
        seed=args.seed, grids=grid_overrides(args.grid, preset_grids(args.preset), models),
        fixed={m: f for m, f in fixed.items() if f}, solver=args.solver)


def check_settings(cfg: Any, n: int, official: Any, data: str) -> None:
    """The run sizes against the data, before any fit: every size fits in the training pool, test sets are
    possible, and at least one split is run.  Errors name the option and the numbers."""
    if cfg.n_splits < 0:
        raise CLIError(f"--splits {cfg.n_splits}: must be at least 0")
    if not 1 <= cfg.test_size <= n - 2:
        raise CLIError(f"--test-size {cfg.test_size}: must be between 1 and {n - 2} ({data} has {n} structures)")
    if cfg.n_splits == 0 and official is None:
        raise CLIError(f"--splits 0: {data} has no official test split of --test-size {cfg.test_size} "
                       "structures, so there is nothing to fit; give --splits 1 or more")
    small = [m for m in cfg.sizes if m < 2]
    if small:
        raise CLIError(f"--sizes {','.join(map(str, small))}: training sizes must be at least 2")
    pool = n - cfg.test_size
    big = [m for m in cfg.sizes if m > pool]
    if big:
        raise CLIError(f"--sizes {','.join(map(str, big))}: larger than the training pool of {pool} structures "
                       f"({data}: {n} structures less --test-size {cfg.test_size})")


def with_test_file(args: argparse.Namespace, cfg: Any, ds: Any, target: str) -> tuple[Any, Any, Any]:
    """DATA followed by the structures of ``--test-file`` (labelled ``train`` / ``test``), the settings of
    that one split, and the indices of its test structures."""
    import dataclasses

    import numpy as np

    from tnmat.data import Dataset

    if args.splits:
        raise CLIError(f"--splits {args.splits} with --test-file: random splits would move test-file structures "
                       "into training pools; the test file is the one split (leave --splits out)")
    test_ds = load_test_file(args, ds, target)
    both = Dataset.concatenate([ds, test_ds], splits=("train", "test"), name=f"{ds.name}+{test_ds.name}")
    if target not in both.targets:
        raise CLIError(f"{args.data}: no target {target!r} in both DATA and --test-file")
    cfg = dataclasses.replace(cfg, n_splits=0, test_size=len(test_ds))
    return both, cfg, np.arange(len(ds), len(both))


def _open_store(args: argparse.Namespace) -> Any:
    from tnmat.experiments.store import ResultStore

    store = ResultStore(args.results)
    if args.import_fits:
        try:
            added = store.import_jsonl(args.import_fits)
        except (OSError, ValueError) as exc:
            raise CLIError(f"--import-fits: {exc}") from None
        print(f"imported {added} new fits from {args.import_fits} into {args.results}")
    return store


def run(args: argparse.Namespace) -> int:
    """Load -> describe -> run (or resume) the grid -> report -> plot."""
    from tnmat.data.units import check_intensive, target_units
    from tnmat.descriptor_cache import cached_descriptors
    from tnmat.experiments import learning_curve as lc
    from tnmat.experiments.protocol import dataset_label, dataset_title, default_target, stratification_quantities
    from tnmat.experiments.runner import GridOptions
    from tnmat.experiments.splits import official_test

    try:
        cfg = settings(args)
    except ValueError as exc:  # e.g. --sizes 10,x
        raise CLIError(str(exc)) from None
    check_results_file(args.results)
    check_output_dir(args.out_dir, "--out-dir")
    ds = load_data(args.data, geometry=args.geometry, energies=args.energies)
    target = default_target(ds, args.target)
    check_intensive(ds, target)
    if args.test_file:
        ds, cfg, official = with_test_file(args, cfg, ds, target)
    else:
        official = official_test(ds.metadata.get("split"), size=cfg.test_size)
    check_settings(cfg, len(ds), official, args.data)
    store = _open_store(args)
    X = cached_descriptors(descriptor(args, ds.species), ds, cache_dir=args.cache, progress=not args.quiet)
    settings_used = {k: getattr(args, k) for k in ("order", "r_cut", "n_max", "l_max", "sigma", "density")}
    dataset, units = dataset_label(ds.name, args.geometry, target, settings_used), target_units(ds, target)
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:  # the GPR optimiser's, counted once (in this process)
        warnings.simplefilter("always", ConvergenceWarning)
        rows, report = lc.run_learning_curve(
            lc.WithStructures(X, ds.structures), ds.targets[target], stratification_quantities(ds, target), cfg,
            store=store, dataset=dataset, official_test=official, units=units,
            options=GridOptions(jobs=args.jobs, dask_scheduler=args.dask_scheduler, progress=not args.quiet,
                                on_error="continue"), fit=not args.report_only)
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    n_conv = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    if n_conv:
        print(f"note: the GPR hyper-parameter optimiser reported {n_conv} convergence warning(s) (a length scale "
              "or noise level at its bound)")
    return write_report(args, store, rows, report, dataset=dataset, units=units,
                        title=dataset_title(ds.name, args.geometry, target))


def write_report(args: argparse.Namespace, store: Any, rows: list[dict], report: Any, *, dataset: str,
                 units: str, title: str) -> int:
    """The fits export, CSV, Markdown and figure in ``--out-dir``, and the printed summary."""
    from tnmat.experiments import learning_curve as lc
    from tnmat.experiments import learning_curve_report as report_lc
    from tnmat.plots.learning_curve import plot_learning_curve

    out = Path(args.out_dir)
    # the portable copy of every stored fit of this dataset, written even before any split is whole
    fits = out / "fits.jsonl.gz"
    store.export_jsonl(fits, keys=[r["key"] for r in store.results(experiment=lc.EXPERIMENT)
                                   if lc.record_dataset(r) == dataset])
    if args.report_only:
        print(f"report only: {report.n_skipped} of {report.n_tasks} fits stored in {args.results}, "
              f"{report.n_tasks - report.n_skipped} to go (rerun without --report-only to resume)")
        if not rows:
            print(f"no (model, size, split) has all its grid points yet; nothing to report ({fits} written)")
            return 0
    csv_path = report_lc.write_summary_csv(rows, out / "learning_curve.csv")
    md_path = report_lc.write_markdown(rows, out / "learning_curve.md", title=f"Learning curve: {title}", units=units,
                                       accounting=report.accounting)
    png = plot_learning_curve(rows, out / "learning_curve.png", units=units, title=title)
    print(f"{report.n_tasks} fits: {report.n_done} run now, {report.n_skipped} already in {args.results}, "
          f"{report.n_failed} failed")
    for _key, task, err in report.failures[:5]:
        print(f"  failed {task['model']} n_train={task['n_train']} split={task['split']}: {err.splitlines()[-1]}")
    # the random splits' means; the official (or --test-file) split where no random split was run
    family = "random" if any(r.get("splits") == "random" for r in rows) else "official"
    print(f"{'model':16s} {'n_train':>7s} {'RMSE':>16s} {'MAE':>16s} {'params':>9s}   ({family} split"
          f"{'s' if family == 'random' else ''})")
    for r in rows:
        if r.get("splits") == family:
            print(f"{r['model']:16s} {r['n_train']:7d} {r['rmse_mean']:8.2f} +- {r['rmse_std'] or 0:5.2f} "
                  f"{r['mae_mean']:8.2f} +- {r['mae_std'] or 0:5.2f} {r['n_parameters'] or 0:9.0f}")
    print(f"({units}) wrote {csv_path}, {md_path}, {png}, {fits}")
    return 1 if report.n_failed else 0
