"""The ``tnmat`` command line: a thin layer that parses arguments, calls the library, prints and plots.

Every subcommand has ``--help``.  DATA arguments accept an ASE-readable file (extxyz, CIF, POSCAR, ...),
a folder in the NMD18 Kaggle layout, ``nmd18`` (the folder from $TNMAT_NMD18), or ``alloys`` /
``alloys-small`` (the generated binary-alloy set embedded as the default).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tnmat.training.registry import MODEL_NAMES, PRESETS, model_spec, preset_grids

__all__ = ["main", "build_parser", "load_data"]


class CLIError(Exception):
    """An error to report as one line, without a traceback."""


def load_data(spec: str, *, geometry: str = "relaxed"):
    """Resolve a DATA argument to a :class:`tnmat.data.Dataset` (see module docstring)."""
    from tnmat import data

    if spec in ("alloys", "alloys-small"):
        return data.embedded_default(small=spec == "alloys-small")
    if spec == "nmd18":
        return data.load_nmd18(None, geometry=geometry)
    path = Path(spec)
    if not path.exists():
        raise CLIError(f"{spec}: no such file or folder (use a structure file, an NMD18 folder, 'nmd18' or 'alloys')")
    if path.is_dir():
        return data.load_nmd18(path, geometry=geometry)
    if geometry != "relaxed":
        raise CLIError("--geometry vegard applies to NMD18 data only")
    return data.read_structures(path)


def _add_descriptor_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("descriptor")
    g.add_argument("--order", type=int, default=2, help="body order nu of the invariants (1-4; default 2)")
    g.add_argument("--r-cut", type=float, default=6.0, help="cutoff radius in Angstrom (default 6)")
    g.add_argument("--n-max", type=int, default=4, help="number of radial functions (default 4)")
    g.add_argument("--l-max", type=int, default=3, help="largest angular momentum, inclusive (default 3)")
    g.add_argument("--sigma", type=float, default=0.5, help="Gaussian width in Angstrom (default 0.5)")
    g.add_argument("--density", choices=["gaussian", "delta"], default="gaussian",
                   help="gaussian (SOAP) or delta (ACE) neighbour density")
    g.add_argument("--geometry", choices=["relaxed", "vegard"], default="relaxed",
                   help="NMD18 geometry: DFT-relaxed or ideal Vegard-law positions (default relaxed)")


def _descriptor(args: argparse.Namespace, species: Sequence[str]):
    from tnmat.descriptors import AtomicDensity, Invariants

    try:
        dens = AtomicDensity(species=tuple(species), r_cut=args.r_cut, n_max=args.n_max, l_max=args.l_max,
                             density=args.density, sigma=args.sigma)
        return Invariants(dens, order=args.order)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- commands
def cmd_data(args: argparse.Namespace) -> int:
    from tnmat import data

    if args.action == "list":
        print("built-in datasets:")
        print("  alloys        generated fcc/bcc/hcp binary-alloy superstructures (<= 8 atoms) with EMT mixing")
        print("                energies, 10 binary systems (the embedded default; cached after first use)")
        print("  alloys-small  a quick subset of the same set (seconds)")
        print("  nmd18         NOMAD 2018 Kaggle (Al,Ga,In)2O3 set from $TNMAT_NMD18 or a folder path")
        root = data.nmd18_root(None, required=False) if hasattr(data, "nmd18_root") else None
        if root is not None:
            print(f"  (NMD18 found at {root})")
        return 0
    ds = load_data(args.data, geometry=args.geometry)
    if args.action == "generate":
        if args.output:
            ds.to_extxyz(args.output)
            print(f"wrote {len(ds)} structures to {args.output}")
    print(ds.summary())
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    ds = load_data(args.data, geometry=args.geometry)
    calc = _descriptor(args, ds.species)
    t0 = time.perf_counter()
    out = calc.compute(ds.structures, average=not args.per_atom, progress=not args.quiet)
    seconds = time.perf_counter() - t0
    n_atoms = sum(len(a) for a in ds.structures)
    print(f"{ds.name}: {len(ds)} structures, {n_atoms} atoms, species {', '.join(ds.species)}")
    print(f"descriptor: {out!r}")
    print(f"legs: {', '.join(f'{n}={s}' for n, s in zip(out.legs, out.sizes, strict=True))} "
          f"({out.n_features} entries per {'atom' if args.per_atom else 'structure'})")
    print(f"computed in {seconds:.2f} s ({len(ds) / seconds:.0f} structures/s, {n_atoms / seconds:.0f} atoms/s)")
    vals = out.values
    print(f"values: mean {vals.mean().item():.4g}, std {vals.std().item():.4g}, "
          f"max |B| {vals.abs().max().item():.4g}, finite: {bool(vals.isfinite().all())}")
    if args.output:
        meta = dict(out.meta)
        meta["dataset"] = ds.name
        out.replace(meta=meta).save(args.output)
        print(f"wrote {args.output}")
    return 0


MODELS = list(MODEL_NAMES)


def _units(ds, target: str) -> str:
    """Report units: NMD18 formation energies are per cation (Sutton et al. 2019), alloys per atom."""
    if target == "bandgap":
        return "meV"
    return "meV/cation" if ds.name.startswith("nmd18") else "meV/atom"


def _split_indices(ds, seed: int) -> tuple[np.ndarray, np.ndarray]:
    split = ds.metadata.get("split")
    if split is not None and (split == "test").any() and (split == "train").any():
        return np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    perm = np.random.default_rng(seed).permutation(len(ds))
    n_test = max(1, len(ds) // 5)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _cached_descriptors(calc, ds, *, local: bool, cache: str | None, progress: bool):
    from tnmat import LegTensor
    from tnmat.model import descriptor_cache_key

    path = None
    if cache:
        path = Path(cache) / f"{ds.name}-{descriptor_cache_key(calc, ds.name, local)}.npz"
        if path.exists():
            return LegTensor.load(path)
    out = calc.compute(ds.structures, average=not local, progress=progress)
    if path is not None:
        out.save(path)
    return out


def _errors(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    err = (y_pred - y_true) * 1000.0
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))


def cmd_fit(args: argparse.Namespace) -> int:
    from tnmat.model import StructureModel
    from tnmat.training.registry import make_estimator

    ds = load_data(args.data, geometry=args.geometry)
    if args.target is None:
        args.target = next((t for t in ("formation_energy", "mixing_energy", "energy") if t in ds.targets),
                           next(iter(ds.targets), "energy"))
    if args.target not in ds.targets:
        raise CLIError(f"{ds.name} has no target {args.target!r}; available: {', '.join(ds.targets)}")
    calc = _descriptor(args, ds.species)
    units = _units(ds, args.target)
    X = _cached_descriptors(calc, ds, local=args.local, cache=args.cache, progress=not args.quiet)
    y = ds.targets[args.target]
    train, test = _split_indices(ds, args.seed)
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(train)
    n_val = max(1, int(round(args.validation_fraction * len(perm))))
    val, fit_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    takes = model_spec(args.model).parameters
    params = dict(random_state=args.seed)
    if "max_epochs" in takes:  # trained by epochs (not the GPRs)
        params.update(max_epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size,
                      patience=args.patience, verbose=0 if args.quiet else 1)
    if "bond_dim" in takes:
        params["bond_dim"] = args.bond_dim
    reg = make_estimator(args.model, **params)
    model = StructureModel(calc, reg, local=args.local, target=args.target, units=units)
    t0 = time.perf_counter()
    model.fit(X.select(fit_idx), y[fit_idx], X_val=X.select(val), y_val=y[val])
    seconds = time.perf_counter() - t0
    n_par = getattr(reg, "n_parameters_", None)
    print(f"{args.model} on {ds.name} ({args.target}; {len(fit_idx)} train / {len(val)} validation / "
          f"{len(test)} test; {'local per-atom' if args.local else 'structure-averaged'} {calc.legs})")
    print(f"parameters: {n_par}   fit time: {seconds:.1f} s")
    rows = [("validation", val), ("test", test)]
    for name, idx in rows:
        rmse, mae = _errors(y[idx], model.predict(X.select(idx)))
        print(f"{name:10s} RMSE {rmse:8.2f} {units}   MAE {mae:8.2f} {units}")
    if args.output:
        model.save(args.output)
        print(f"wrote {args.output}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tnmat.model import StructureModel

    model = StructureModel.load(args.model)
    ds = load_data(args.data, geometry=args.geometry)
    pred = model.predict(ds.structures, progress=not args.quiet)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    ids = ds.metadata.get("id", np.arange(len(ds)))
    truth = ds.targets.get(model.target)
    with open(out, "w") as fh:
        fh.write(f"id,predicted_{model.target}_eV" + (f",{model.target}_eV" if truth is not None else "") + "\n")
        for k in range(len(ds)):
            fh.write(f"{ids[k]},{pred[k]:.8f}" + (f",{truth[k]:.8f}" if truth is not None else "") + "\n")
    print(f"wrote {len(ds)} predictions to {out}")
    if truth is not None:
        rmse, mae = _errors(truth, pred)
        print(f"RMSE {rmse:.2f} {model.units}   MAE {mae:.2f} {model.units}")
    return 0


def _stratification_quantities(ds, target: str) -> dict[str, np.ndarray]:
    """Volume, composition and energy, the quantities the training subsets are stratified on."""
    q = {"volume_per_atom": np.asarray(ds.metadata["volume_per_atom"], dtype=float), "energy": ds.targets[target]}
    for key in ("x_al", "x_ga", "x_in", "composition"):
        if key in ds.metadata:
            q[key] = np.asarray(ds.metadata[key], dtype=float)
    return q


def _grid_value(text: str) -> int | float | str:
    """A grid value as typed on the command line: an int, else a float, else the string itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _grid_overrides(specs: list[str], grids: dict, models: list[str]) -> dict:
    """Apply ``--grid MODEL:NAME=V1,V2,...`` options to a copy of the preset's grids: each replaces (or adds)
    one axis of one model's grid.  Unknown models or parameter names are errors, not silently dropped axes."""
    from tnmat.experiments.learning_curve import build_estimator

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
            build_estimator(model, {name: vals[0]})  # the check every grid point gets, done before any fit
        except ValueError as exc:
            raise CLIError(f"--grid {spec!r}: {exc}") from None
        out.setdefault(model, {})[name] = vals
    return out


def _dataset_label(name: str, geometry: str, target: str) -> str:
    """The dataset label of a learning curve (it enters every fit's key): name, geometry unless the name
    already carries it (``nmd18-vegard``), target."""
    parts = [name] if geometry in name.split("-") else [name, geometry]
    return "-".join([*parts, target])


def cmd_learning_curve(args: argparse.Namespace) -> int:
    from tnmat.experiments import learning_curve as lc
    from tnmat.experiments.store import ResultStore
    from tnmat.plots.learning_curve import plot_learning_curve

    preset = PRESETS[args.preset]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(preset.sizes)
    n_splits = args.splits if args.splits is not None else preset.splits
    test_size = args.test_size if args.test_size is not None else preset.test_size
    grids = _grid_overrides(args.grid, preset_grids(args.preset), models)
    overrides = {k: v for k, v in (("max_epochs", args.max_epochs), ("patience", args.patience)) if v is not None}
    fixed = {m: {**preset.fixed_params(m), **overrides} for m in models if not m.startswith("gpr")}
    store = ResultStore(args.results)
    if args.import_fits:
        try:
            added = store.import_jsonl(args.import_fits)
        except (OSError, ValueError) as exc:
            raise CLIError(f"--import-fits: {exc}") from None
        print(f"imported {added} new fits from {args.import_fits} into {args.results}")
    ds = load_data(args.data, geometry=args.geometry)
    target = args.target or next(t for t in ("formation_energy", "mixing_energy", "energy", *ds.targets)
                                 if t in ds.targets)
    calc = _descriptor(args, ds.species)
    X = _cached_descriptors(calc, ds, local=False, cache=args.cache, progress=not args.quiet)
    split = ds.metadata.get("split")
    official = np.flatnonzero(split == "test") if split is not None and (split == "test").any() else None
    if official is not None and len(official) != test_size:
        official = None  # the official test set is used only when it has the requested size
    dataset = _dataset_label(ds.name, args.geometry, target)
    rows, report = lc.run_learning_curve(
        X, ds.targets[target], _stratification_quantities(ds, target), models=models, sizes=sizes, store=store,
        n_splits=n_splits, test_size=test_size, official_test=official, grids=grids, fixed=fixed,
        dataset=dataset, seed=args.seed, jobs=args.jobs, dask_scheduler=args.dask_scheduler,
        progress=not args.quiet, on_error="continue", fit=not args.report_only)
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
    units = _units(ds, target)
    csv_path = lc.write_summary_csv(rows, out / "learning_curve.csv")
    md_path = lc.write_markdown(rows, out / "learning_curve.md", title=f"Learning curve: {dataset}",
                               accounting=report.accounting)
    png = plot_learning_curve(rows, out / "learning_curve.png", units=units, title=dataset)
    print(f"{report.n_tasks} fits: {report.n_done} run now, {report.n_skipped} already in {args.results}, "
          f"{report.n_failed} failed")
    for _key, task, err in report.failures[:5]:
        print(f"  failed {task['model']} n_train={task['n_train']} split={task['split']}: {err.splitlines()[-1]}")
    print(f"{'model':16s} {'n_train':>7s} {'RMSE':>16s} {'MAE':>16s} {'params':>9s}")
    for r in rows:
        if r.get("splits") != "random":
            continue
        print(f"{r['model']:16s} {r['n_train']:7d} {r['rmse_mean']:8.2f} +- {r['rmse_std'] or 0:5.2f} "
              f"{r['mae_mean']:8.2f} +- {r['mae_std'] or 0:5.2f} {r['n_parameters'] or 0:9.0f}")
    print(f"({units}) wrote {csv_path}, {md_path}, {png}, {fits}")
    return 1 if report.n_failed else 0


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def cmd_entanglement(args: argparse.Namespace) -> int:
    from tnmat.experiments import entanglement as ent

    common = dict(store_path=args.results, cache_dir=args.cache, seed=args.seed, jobs=args.jobs,
                  threads=args.threads, progress=not args.quiet, learning_rate=args.learning_rate,
                  batch_size=args.batch_size)
    root = None if args.data == "nmd18" else args.data
    if args.action == "sweep":
        summary = ent.entanglement_sweep(
            root, args.out_dir, train_sizes=_ints(args.train_sizes), n_splits=args.splits,
            test_size=args.test_size, chis=_ints(args.chis), models=args.models.split(","),
            max_epochs=args.epochs, **common)
    else:
        summary = ent.entanglement_dynamics(
            root, args.out_dir, chis=_ints(args.chis or "12,16,20"), n_runs=args.runs, n_epochs=args.epochs,
            n_snapshots=args.snapshots, n_train=args.n_train, test_size=args.test_size, **common)
    print(f"entanglement {args.action}: {summary.get('seconds', 0):.0f} s")
    for kind, path in summary["files"].items():
        print(f"  {kind}: {path}")
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    from tnmat.experiments import compression as comp

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = args.results or str(out / "compression.sqlite")
    common = dict(store=store, n_train=args.n_train, n_test=args.n_test, seed=args.seed, threads=args.threads,
                  cache_dir=args.cache, progress=not args.quiet)
    if args.action == "ttsvd":
        comp.run_ttsvd_experiment(chi_in=_ints(args.chi_in), bond_dim=args.bond_dim or 4,
                                  max_epochs=args.epochs, figure=out / "fig17_ttsvd.png", **common)
    else:
        comp.run_autoencoder_experiment(d_latent=_ints(args.d_latent), bond_dim_ae=args.bond_dim_ae,
                                        bond_dim_mps=args.bond_dim or 10, max_epochs=args.epochs,
                                        ae_max_epochs=args.ae_epochs, model_dir=out / "models", **common)
    tables = comp.compression_tables(store)
    (out / f"{args.action}.md").write_text(tables)
    print(tables)
    print(f"wrote {out / (args.action + '.md')} (results in {store})")
    return 0


def cmd_latent(args: argparse.Namespace) -> int:
    from tnmat.experiments.latent import run_latent_experiment

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rec = run_latent_experiment(store=args.results or str(out / "latent.sqlite"),
                                nmd18_root=None if args.data == "nmd18" else args.data, n_train=args.n_train,
                                bond_dim=args.bond_dim, max_epochs=args.epochs, seed=args.seed,
                                figure=out / "fig16_latent_tsne.png", threads=args.threads,
                                progress=not args.quiet)
    summary = {k: v for k, v in rec.items() if not isinstance(v, list | dict)} if isinstance(rec, dict) else rec
    print(summary)
    print(f"wrote {out / 'fig16_latent_tsne.png'}")
    return 0


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from tnmat import __version__

    parser = argparse.ArgumentParser(
        prog="tnmat",
        description="Tensor-network regression of materials properties on SO(3)-invariant descriptors.",
    )
    parser.add_argument("--version", action="version", version=f"tnmat {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("data", help="list, generate and summarise datasets",
                       description="List the built-in datasets, generate the alloy set, or summarise DATA.")
    p.add_argument("action", choices=["list", "generate", "summarise"], help="what to do")
    p.add_argument("data", nargs="?", default="alloys", help="DATA (default: alloys)")
    p.add_argument("-o", "--output", help="with generate: write the structures to this extxyz file")
    p.add_argument("--geometry", choices=["relaxed", "vegard"], default="relaxed", help="NMD18 geometry")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("describe", help="compute invariant descriptors of a dataset",
                       description="Compute the structure-averaged (or per-atom) invariants B_nu of DATA.")
    p.add_argument("data", help="DATA: structure file, NMD18 folder, 'nmd18' or 'alloys'")
    _add_descriptor_args(p)
    p.add_argument("--per-atom", action="store_true", help="one row per atom instead of the structure mean")
    p.add_argument("-o", "--output", help="write the LegTensor to this .npz file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("fit", help="fit a tensor-network (or baseline) model and report test errors",
                       description="Compute (or load cached) descriptors of DATA, split off validation, train, "
                                   "and print validation and test RMSE/MAE.")
    p.add_argument("data", help="DATA: structure file, NMD18 folder, 'nmd18' or 'alloys'")
    p.add_argument("--model", choices=MODELS, default="mpo", help="model (default mpo)")
    p.add_argument("--bond-dim", type=int, default=8, help="virtual bond dimension chi (default 8)")
    p.add_argument("--target", default=None, help="target key (default: formation_energy for NMD18, "
                                                  "mixing_energy for alloys, else energy)")
    p.add_argument("--local", action="store_true",
                   help="per-atom model averaged over atoms (paper eq. 1) instead of the averaged descriptor")
    p.add_argument("--epochs", type=int, default=400, help="maximum epochs (default 400)")
    p.add_argument("--patience", type=int, default=40, help="early-stopping patience in epochs (default 40)")
    p.add_argument("--learning-rate", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    p.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
    p.add_argument("--validation-fraction", type=float, default=0.2, help="of the training split (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--cache", default=None, help="folder for cached descriptors (default: no cache)")
    _add_descriptor_args(p)
    p.add_argument("-o", "--output", help="save the fitted model (descriptor settings included) here")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("predict", help="predict with a saved model",
                       description="Predict the saved model's target for every structure of DATA; write CSV.")
    p.add_argument("model", help="a model file written by 'tnmat fit -o'")
    p.add_argument("data", help="DATA: structure file, NMD18 folder, 'nmd18' or 'alloys'")
    p.add_argument("-o", "--output", default="predictions.csv", help="CSV file (default predictions.csv)")
    p.add_argument("--geometry", choices=["relaxed", "vegard"], default="relaxed", help="NMD18 geometry")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("learning-curve", help="test error versus training-set size for several models",
                       description="Paper Section IV A / Fig. 12: stratified training subsets of growing size, "
                                   "several random test splits, hyper-parameters chosen on validation data; "
                                   "every finished fit is stored at once (rerun to resume).")
    p.add_argument("data", nargs="?", default="alloys", help="DATA (default: the embedded alloy set)")
    p.add_argument("--models", default="mps,mpo,dnn,gpr-rbf,gpr-soap",
                   help=f"comma-separated, from {', '.join(MODELS)} (default mps,mpo,dnn,gpr-rbf,gpr-soap)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick",
                   help="quick: ~1 minute smoke run; paper: the full protocol (default quick)")
    p.add_argument("--sizes", default=None, help="comma-separated training sizes (default from the preset)")
    p.add_argument("--splits", type=int, default=None, help="number of random test splits")
    p.add_argument("--test-size", type=int, default=None, help="structures per test set")
    p.add_argument("--target", default=None, help="target key (default: the dataset's energy)")
    p.add_argument("--max-epochs", type=int, default=None, help="override the preset's maximum epochs")
    p.add_argument("--patience", type=int, default=None, help="override the preset's early-stopping patience")
    p.add_argument("--grid", action="append", default=[], metavar="MODEL:NAME=V1,V2",
                   help="replace or add one axis of a model's hyper-parameter grid, e.g. "
                        "mpo:weight_decay=0,1e-3,1e-2 (repeatable; the values enter the fits' keys)")
    p.add_argument("--results", default="results.sqlite", help="SQLite results file (resumable)")
    p.add_argument("--out-dir", default="learning_curve",
                   help="folder for the CSV, Markdown, PNG and fits.jsonl.gz (every stored fit of this dataset, "
                        "the portable form of --results)")
    p.add_argument("--import-fits", default=None, metavar="FILE",
                   help="first add the fits of FILE (a fits.jsonl.gz written by an earlier run) to --results, so "
                        "a run moved to another machine resumes instead of refitting")
    p.add_argument("--jobs", type=int, default=1, help="parallel fits (joblib)")
    p.add_argument("--dask-scheduler", default=None, help="run the grid on a Dask cluster (tcp://host:port)")
    p.add_argument("--report-only", action="store_true",
                   help="fit nothing: write the figure, CSV and summary of the fits already in --results (only "
                        "(model, size, split) whose whole grid is stored) and say how many remain")
    p.add_argument("--seed", type=int, default=0, help="random seed of the splits (default 0)")
    p.add_argument("--cache", default=None, help="folder for cached descriptors")
    _add_descriptor_args(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_learning_curve)

    p = sub.add_parser("entanglement", help="entanglement of trained networks (bond sweep, spectrum dynamics)",
                       description="sweep: errors and bipartite entropies versus bond dimension (paper Fig. 14); "
                                   "dynamics: entanglement spectra of the MPO during training against Marchenko-"
                                   "Pastur, GOE and Poisson statistics (Fig. 15).  NMD18 power spectrum; results "
                                   "go to a resumable SQLite file, figures and Markdown to --out-dir.")
    p.add_argument("action", choices=["sweep", "dynamics"], help="which experiment")
    p.add_argument("data", nargs="?", default="nmd18", help="NMD18 folder (default: $TNMAT_NMD18)")
    p.add_argument("--models", default="mps,mpo,ttn,dense", help="sweep: models (default mps,mpo,ttn,dense)")
    p.add_argument("--chis", default="2,4,6,8,12,16", help="bond dimensions (dynamics default 12,16,20)")
    p.add_argument("--train-sizes", default="100,1000", help="sweep: training-set sizes (default 100,1000)")
    p.add_argument("--splits", type=int, default=10, help="sweep: training/validation splits (default 10)")
    p.add_argument("--test-size", type=int, default=600, help="fixed test-set size (default 600)")
    p.add_argument("--epochs", type=int, default=200, help="epochs per fit (default 200)")
    p.add_argument("--learning-rate", type=float, default=5e-3, help="Adam learning rate (default 5e-3)")
    p.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    p.add_argument("--runs", type=int, default=4, help="dynamics: independent runs per chi (paper: 100)")
    p.add_argument("--snapshots", type=int, default=25, help="dynamics: log-spaced spectrum snapshots")
    p.add_argument("--n-train", type=int, default=1000, help="dynamics: training structures (default 1000)")
    p.add_argument("--results", default=None, help="SQLite results file (default OUT_DIR/entanglement.sqlite)")
    p.add_argument("--out-dir", default="entanglement", help="folder for figures and summaries")
    p.add_argument("--cache", default=None, help="folder for cached descriptors")
    p.add_argument("--jobs", type=int, default=1, help="parallel fits")
    p.add_argument("--threads", type=int, default=1, help="torch/BLAS threads per fit (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_entanglement)

    p = sub.add_parser("compress", help="compress large descriptors (TT-SVD inputs, MPO autoencoder)",
                       description="ttsvd: supervised MPO on TT-SVD-factorised inputs versus chi_in (paper Fig. "
                                   "17); autoencoder: MPO autoencoder at several latent dimensions and an MPS on "
                                   "the encoded inputs (Table I).  Many-species alloy set, n_max = l_max = 8.")
    p.add_argument("action", choices=["ttsvd", "autoencoder"], help="which experiment")
    p.add_argument("--chi-in", default="1,2,4,8,16,32", help="ttsvd: input bond dimensions")
    p.add_argument("--d-latent", default="6,4,2", help="autoencoder: latent site dimensions")
    p.add_argument("--bond-dim", type=int, default=None, help="supervised model bond (ttsvd MPO 4, MPS 10)")
    p.add_argument("--bond-dim-ae", type=int, default=6, help="autoencoder encoder/decoder bond (default 6)")
    p.add_argument("--n-train", type=int, default=1600, help="training structures (default 1600)")
    p.add_argument("--n-test", type=int, default=1000, help="test structures (default 1000)")
    p.add_argument("--epochs", type=int, default=60, help="epochs of the supervised fits")
    p.add_argument("--ae-epochs", type=int, default=20, help="autoencoder epochs")
    p.add_argument("--results", default=None, help="SQLite results file (default OUT_DIR/compression.sqlite)")
    p.add_argument("--out-dir", default="compression", help="folder for figures and tables")
    p.add_argument("--cache", default=None, help="folder for cached descriptors")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("latent", help="t-SNE of a trained MERA's latent spaces (paper Fig. 16)",
                       description="Train a MERA on NMD18 power spectra and embed the input and every hidden "
                                   "layer's output with t-SNE, coloured by composition, spacegroup and energy.")
    p.add_argument("data", nargs="?", default="nmd18", help="NMD18 folder (default: $TNMAT_NMD18)")
    p.add_argument("--n-train", type=int, default=1000, help="training structures (default 1000)")
    p.add_argument("--bond-dim", type=int, default=4, help="MERA bond dimension (default 4)")
    p.add_argument("--epochs", type=int, default=300, help="maximum epochs (default 300)")
    p.add_argument("--results", default=None, help="SQLite results file (default OUT_DIR/latent.sqlite)")
    p.add_argument("--out-dir", default="latent", help="folder for the figure")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_latent)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tnmat`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, FileNotFoundError, ValueError) as exc:
        print(f"tnmat {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

