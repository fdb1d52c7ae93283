"""``tnmat hull``: a fitted model's convex hull of an enumerated set of configurations (what a cluster-expansion
user does with a model), written as CSV plus a composition-energy (binary) or ternary figure; with
``--reference DATA`` the model's hull of DATA's structures (of those elements) is scored against the hull of
their reference energies: ground states found, false ground states, hull-distance MAE near the hull."""

from __future__ import annotations

import argparse
from pathlib import Path

from tnmat.commands._common import QUIET, CLIError, check_output_file, load_data, option

NAME = "hull"
HELP = "predicted convex hull and ground states of an enumerated set of configurations"
DESCRIPTION = ("Enumerate every derivative structure of --lattice over --elements with at most --max-atoms atoms "
               "(ideal sites at the Vegard volume), predict their energies with MODEL, and write the lower convex "
               "hull of (composition, energy): each structure's distance above it, ground states on it "
               "(energies in meV/atom).")
OPTIONS = [
    option("model", help="a model file written by tnmat fit -o"),
    option("--elements", required=True, help="comma-separated elements, e.g. Cu,Ag,Au (2 or more)"),
    option("--lattice", choices=["fcc", "bcc"], default="fcc", help="parent lattice (default fcc)"),
    option("--max-atoms", type=int, default=8, help="largest cell enumerated, in atoms (default 8; 1-12)"),
    option("-o", "--output", default="hull.csv", help="CSV of the enumerated structures (default hull.csv)"),
    option("--figure", default=None, help="figure file (default: the CSV's name with .png; 2 or 3 elements)"),
    option("--reference", default=None, metavar="DATA",
           help="score the model's hull of DATA's structures of these elements against the hull of their "
                "target energies"),
    option("--window", type=float, default=50.0,
           help="--reference: hull-distance MAE over structures within this many meV/atom of the reference "
                "hull (default 50)"),
    QUIET,
]


def _elements(args: argparse.Namespace) -> list[str]:
    from ase.data import atomic_numbers

    els = [e.strip() for e in args.elements.split(",") if e.strip()]
    bad = [e for e in els if e not in atomic_numbers]
    if bad or len(els) < 2 or len(set(els)) != len(els):
        raise CLIError(f"--elements {args.elements}: give 2 or more distinct element symbols"
                       + (f" ({', '.join(bad)} unknown)" if bad else ""))
    return els


def _check(args: argparse.Namespace) -> tuple[list[str], Path]:
    els = _elements(args)
    if not 1 <= args.max_atoms <= 12:
        raise CLIError(f"--max-atoms {args.max_atoms}: must be in 1..12")
    if not args.window > 0:
        raise CLIError(f"--window {args.window:g}: must be > 0 meV/atom")
    check_output_file(args.output, "-o/--output")
    figure = Path(args.figure) if args.figure else Path(args.output).with_suffix(".png")
    check_output_file(str(figure), "--figure")
    if not Path(args.model).is_file():
        raise CLIError(f"{args.model}: no such model file")
    return els, figure


def _score(args: argparse.Namespace, model: object, els: list[str]) -> None:
    """Print the model's hull of --reference's structures (of these elements) against their reference hull."""
    import numpy as np

    from tnmat.experiments.hull import fractions, score_hull

    ds = load_data(args.reference)
    keep = [k for k, a in enumerate(ds.structures) if set(a.get_chemical_symbols()) <= set(els)]
    if not keep:
        raise CLIError(f"--reference {args.reference}: no structure holds only {', '.join(els)}")
    sub = ds.subset(keep)
    if model.target not in sub.targets:
        raise CLIError(f"--reference {args.reference}: no target {model.target!r}")
    x = fractions(sub.structures, els)
    pred = np.asarray(model.predict(sub.structures))
    try:
        s = score_hull(x, sub.targets[model.target], pred, [str(i) for i in sub.metadata["id"]],
                       window=args.window / 1000.0)
    except ValueError as exc:
        raise CLIError(f"--reference {args.reference}: {exc}") from None
    print(f"reference hull of {len(sub)} structures of {args.reference}: {s.n_found} of "
          f"{s.n_reference_ground_states} ground states found ({100 * s.found_fraction:.0f} %), "
          f"{len(s.false_ground_states)} false ground state(s)"
          + (f" (worst {s.worst_false_meV:.2f} meV/atom above the reference hull)" if s.false_ground_states else "")
          + f"; hull-distance MAE {s.hull_distance_mae_meV:.2f} meV/atom over the {s.n_in_window} structures "
            f"within {args.window:g} meV/atom of the hull")


def run(args: argparse.Namespace) -> int:
    """Check -> load model -> enumerate -> predict -> hull -> CSV, figure (-> score)."""
    import numpy as np

    from tnmat.experiments.hull import enumerate_configurations, hull_rows
    from tnmat.model import StructureModel
    from tnmat.reports import write_rows_csv

    els, figure = _check(args)
    model = StructureModel.load(args.model)
    structures = enumerate_configurations(els, args.lattice, args.max_atoms)
    print(f"{len(structures)} {args.lattice} derivative structures of {'-'.join(els)} with <= {args.max_atoms} "
          "atoms", flush=True)
    energies = np.asarray(model.predict(structures, progress=not args.quiet))
    rows = hull_rows(structures, energies, els)
    write_rows_csv(rows, args.output, lineterminator="\n")
    ground = [r for r in rows if r["on_hull"]]
    print(f"wrote {args.output}: {len(ground)} predicted ground states: "
          + ", ".join(f"{r['formula']} ({r['energy_meV_per_atom']:.1f})" for r in ground[:12])
          + (" ..." if len(ground) > 12 else "") + " meV/atom")
    if len(els) in (2, 3):
        from tnmat.plots.hull import plot_hull

        plot_hull(rows, els, figure, title=f"{Path(args.model).name}: {'-'.join(els)} {args.lattice}, "
                                           f"<= {args.max_atoms} atoms")
        print(f"wrote {figure}")
    if args.reference:
        _score(args, model, els)
    return 0
