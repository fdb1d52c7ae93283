"""``tnmat entanglement sweep|dynamics``: the entanglement experiments on trained networks (paper Figs. 14
and 15) on the descriptors of DATA, into a resumable SQLite file, with Markdown, CSV and figures."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from tnmat.commands._common import (
    DESCRIPTOR_OPTIONS,
    descriptor,
    experiment_options,
    ints,
    load_data,
    option,
    param_options,
)

NAME = "entanglement"
HELP = "entanglement of trained networks (bond sweep, spectrum dynamics)"
DESCRIPTION = ("sweep: errors and bipartite entropies versus bond dimension (paper Fig. 14); dynamics: "
               "entanglement spectra of the MPO during training against Marchenko-Pastur, GOE and Poisson "
               "statistics (Fig. 15).  Power spectrum of DATA (default NMD18); results go to a resumable SQLite "
               "file, figures and Markdown to --out-dir.")
SWEEP_CHIS, DYNAMICS_CHIS = "2,4,6,8,12,16", "12,16,20"
OPTIONS = [
    option("action", choices=["sweep", "dynamics"], help="which experiment"),
    option("data", nargs="?", default="nmd18", help="DATA (default: NMD18 from $TNMAT_NMD18)"),
    option("--models", default="mps,mpo,ttn,dense", help="sweep: models (default mps,mpo,ttn,dense)"),
    option("--chis", default=None, help=f"bond dimensions (sweep default {SWEEP_CHIS}, dynamics {DYNAMICS_CHIS})"),
    option("--train-sizes", default="100,1000", help="sweep: training-set sizes (default 100,1000)"),
    option("--splits", type=int, default=10, help="sweep: training/validation splits (default 10)"),
    option("--test-size", type=int, default=600, help="fixed test-set size (default 600)"),
    option("--epochs", type=int, default=200, help="epochs per fit (default 200)"),
    option("--learning-rate", type=float, default=5e-3, help="Adam learning rate (default 5e-3)"),
    option("--batch-size", type=int, default=32, help="mini-batch size (default 32)"),
    param_options(("solver",)),
    option("--runs", type=int, default=4, help="dynamics: independent runs per chi (paper: 100)"),
    option("--snapshots", type=int, default=25, help="dynamics: log-spaced spectrum snapshots"),
    option("--n-train", type=int, default=1000, help="dynamics: training structures (default 1000)"),
    option("--cache", default=None, help="folder for cached descriptors"),
    option("--jobs", type=int, default=1, help="parallel fits"),
    *experiment_options("entanglement.sqlite", "entanglement", "folder for figures and summaries",
                        threads_help="torch/BLAS threads per fit (default 1)"),
    DESCRIPTOR_OPTIONS,
]


def _sweep(args: argparse.Namespace, X: Any, y: Any, common: dict[str, Any], out: Path) -> dict[str, Any]:
    from tnmat.experiments import entanglement as ent
    from tnmat.experiments.entanglement_report import write_sweep_markdown
    from tnmat.plots.entanglement import plot_bond_sweep
    from tnmat.reports import write_rows_csv

    settings = ent.SweepSettings(train_sizes=ints(args.train_sizes), n_splits=args.splits, test_size=args.test_size,
                                 chis=ints(args.chis or SWEEP_CHIS), models=tuple(args.models.split(",")),
                                 seed=args.seed, max_epochs=args.epochs, learning_rate=args.learning_rate,
                                 batch_size=args.batch_size, solver=args.solver)
    summary = ent.run_bond_sweep(X, y, settings, **common)
    summary["files"] = {"figure": plot_bond_sweep(summary, out / "bond_sweep.png"),
                        "markdown": write_sweep_markdown(summary, out / "bond_sweep.md"),
                        "csv": write_rows_csv(summary["rows"], out / "bond_sweep.csv")}
    return summary


def _dynamics(args: argparse.Namespace, X: Any, y: Any, common: dict[str, Any], out: Path) -> dict[str, Any]:
    from tnmat.experiments import entanglement as ent
    from tnmat.experiments.entanglement_report import write_dynamics_markdown
    from tnmat.plots.entanglement import plot_spectrum_dynamics

    settings = ent.DynamicsSettings(chis=ints(args.chis or DYNAMICS_CHIS), n_runs=args.runs, n_epochs=args.epochs,
                                    n_snapshots=args.snapshots, n_train=args.n_train, test_size=args.test_size,
                                    learning_rate=args.learning_rate, batch_size=args.batch_size, seed=args.seed)
    summary = ent.run_spectrum_dynamics(X, y, settings, **common)
    files = plot_spectrum_dynamics(summary["analysis"], out, prefix="dynamics")
    files["markdown"] = write_dynamics_markdown(summary, out / "dynamics.md", bins=settings.bins)
    summary["files"] = files
    return summary


def run(args: argparse.Namespace) -> int:
    """Load -> describe -> run the experiment (thread-limited) -> report and plot into ``--out-dir``."""
    from tnmat.data.units import target_units
    from tnmat.descriptor_cache import cached_descriptors
    from tnmat.experiments.protocol import default_target
    from tnmat.experiments.runner import GridOptions
    from tnmat.experiments.store import ResultStore
    from tnmat.threads import limit_threads

    ds = load_data(args.data, geometry=args.geometry)
    target = default_target(ds)
    X = cached_descriptors(descriptor(args, ds.species), ds, cache_dir=args.cache, progress=not args.quiet)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    common = {"store": ResultStore(args.results or out / "entanglement.sqlite"), "dataset": ds.name,
              "units": target_units(ds, target), "options": GridOptions(jobs=args.jobs, progress=not args.quiet)}
    t0 = time.perf_counter()
    with limit_threads(args.threads):
        summary = (_sweep if args.action == "sweep" else _dynamics)(args, X, ds.targets[target], common, out)
    print(f"entanglement {args.action}: {time.perf_counter() - t0:.0f} s")
    for kind, path in summary["files"].items():
        print(f"  {kind}: {path}")
    return 0
