"""``tnmat data``: list the built-in datasets, generate the alloy set, or summarise DATA."""

from __future__ import annotations

import argparse

from tnmat.commands._common import ENERGIES, GEOMETRY, check_output_file, load_data, option

NAME = "data"
HELP = "list, generate and summarise datasets"
DESCRIPTION = "List the built-in datasets, generate the alloy set, or summarise DATA."
OPTIONS = [
    option("action", choices=["list", "generate", "summarise"], help="what to do"),
    option("data", nargs="?", default="alloys", help="DATA (default: alloys)"),
    option("-o", "--output", help="with generate: write the structures to this extxyz file"),
    GEOMETRY,
    ENERGIES,
]

BUILT_IN = """built-in datasets:
  alloys        generated fcc/bcc/hcp binary-alloy superstructures (<= 8 atoms) with EMT mixing
                energies, 10 binary systems (the embedded default; cached after first use)
  alloys-small  a quick subset of the same set (seconds)
  nmd18         NOMAD 2018 Kaggle (Al,Ga,In)2O3 set from $TNMAT_NMD18 or a folder path"""


def run(args: argparse.Namespace) -> int:
    """List, or load -> (write) -> summarise."""
    from tnmat import data

    if args.action == "list":
        print(BUILT_IN)
        root = data.nmd18_root(None, required=False)
        if root is not None:
            print(f"  (NMD18 found at {root})")
        return 0
    check_output_file(args.output, "-o/--output")
    ds = load_data(args.data, geometry=args.geometry, energies=args.energies)
    if args.action == "generate" and args.output:
        ds.to_extxyz(args.output)
        print(f"wrote {len(ds)} structures to {args.output}")
    print(ds.summary())
    return 0
