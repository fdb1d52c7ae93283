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
    from tnmat.commands import _guards
    from tnmat.reports import WRITTEN

    parser = build_parser()
    args = parser.parse_args(argv)
    first = len(WRITTEN)
    try:
        with _guards.terminate_as_interrupt():
            _guards.check_paths(args)
            _guards.check_seed(args)
            return int(args.func(args) or 0)
    except (CLIError, FileNotFoundError) as exc:
        print(f"tnmat {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except _guards.FAILURES as exc:
        print(f"tnmat {args.command}: error: {_guards.failure_message(exc, args, WRITTEN[first:])}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"tnmat {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
