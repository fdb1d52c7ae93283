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

