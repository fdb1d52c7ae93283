"""The ``tnmat`` console entry point: parse, run the subcommand, report errors as one line.

The subcommands live in :mod:`tnmat.commands` (one module each).  DATA arguments accept an ASE-readable
file (extxyz, CIF, POSCAR, ...), a folder in the NMD18 Kaggle layout, ``nmd18`` (the folder from
$TNMAT_NMD18), or ``alloys`` / ``alloys-small`` (the generated binary-alloy set embedded as the default).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tnmat.commands import CLIError, build_parser

__all__ = ["main", "build_parser"]


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
