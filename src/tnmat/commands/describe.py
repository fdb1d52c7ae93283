"""``tnmat describe``: the structure-averaged (or per-atom) invariants of DATA, with timing and a summary."""

from __future__ import annotations

import argparse
import time

from tnmat.commands._common import (
    DATA_HELP,
    DESCRIPTOR_OPTIONS,
    ENERGIES,
    check_output_dir,
    check_output_file,
    descriptor,
    load_data,
    option,
)
from tnmat.reports import atomic_path

NAME = "describe"
HELP = "compute invariant descriptors of a dataset"
DESCRIPTION = "Compute the structure-averaged (or per-atom) invariants B_nu of DATA."
OPTIONS = [
    option("data", help=DATA_HELP),
    DESCRIPTOR_OPTIONS,
    option("--per-atom", action="store_true", help="one row per atom instead of the structure mean"),
    option("-o", "--output", help="write the LegTensor to this .npz file"),
    option("--cache", default=None, help="folder for cached descriptors (read when computed before with the same "
                                         "settings; written atomically)"),
    ENERGIES,
    option("-q", "--quiet", action="store_true", help="no progress bar"),
]


def run(args: argparse.Namespace) -> int:
    """Load -> describe (timed) -> report; the descriptors go to ``--output``."""
    from tnmat.descriptor_cache import cached_descriptors

    check_output_file(args.output, "-o/--output")
    check_output_dir(args.cache, "--cache")
    ds = load_data(args.data, geometry=args.geometry, energies=args.energies)
    calc = descriptor(args, ds.species)
    t0 = time.perf_counter()
    out = cached_descriptors(calc, ds, local=args.per_atom, cache_dir=args.cache, progress=not args.quiet)
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
        with atomic_path(args.output) as tmp:
            out.replace(meta={**out.meta, "dataset": ds.name}).save(tmp)
        print(f"wrote {args.output}")
    return 0
