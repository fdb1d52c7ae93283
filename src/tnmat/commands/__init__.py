"""The commands layer: one module per ``tnmat`` subcommand, each with its option table (``OPTIONS``, data)
and a ``run(args)`` that follows load -> describe -> run -> report -> plot, calling the library below.

:func:`build_parser` assembles the subcommands; :mod:`tnmat.cli` is only the console entry point.
"""

from __future__ import annotations

import argparse

from tnmat.commands import compress, data, describe, entanglement, fit, hull, latent, learning_curve, predict
from tnmat.commands._common import CLIError, add_options, load_data

__all__ = ["COMMANDS", "CLIError", "build_parser", "load_data"]

#: The subcommands, in the order ``tnmat --help`` lists them.
COMMANDS = (data, describe, fit, predict, hull, learning_curve, entanglement, compress, latent)


def build_parser() -> argparse.ArgumentParser:
    """The ``tnmat`` argument parser: one subparser per module of :data:`COMMANDS`."""
    from tnmat import __version__

    parser = argparse.ArgumentParser(
        prog="tnmat", description="Tensor-network regression of materials properties on SO(3)-invariant descriptors.")
    parser.add_argument("--version", action="version", version=f"tnmat {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.DESCRIPTION)
        add_options(p, command.OPTIONS)
        p.set_defaults(func=command.run)
    return parser
