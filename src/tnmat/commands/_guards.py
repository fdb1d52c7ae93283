"""Checks every command gets before any work, and the one-line report of failures at the command boundary.

* :func:`check_paths`: no output file of a command is one of its input files (or another of its outputs),
  compared as resolved paths and by ``os.path.samefile``, so ``fit data.extxyz -o data.extxyz`` is refused
  before it can overwrite its data; ``--test-file`` equal to DATA is warned about (the test errors would
  measure the training fit).
* :func:`check_seed`: ``--seed`` within numpy's range, named in the message.
* :func:`check_fit_memory`: the descriptors and network a fit would build, estimated against the memory
  available (:mod:`tnmat.memory`), refused naming the option that asks for it and the estimate.
* :func:`failure_message`: disk full, I/O and SQLite errors as one line that says which files were completely
  written before the failure (every output goes through :func:`tnmat.reports.atomic_path`, which keeps
  that list) and that the file being written was left unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from tnmat.commands._common import CLIError

__all__ = ["INPUTS", "OUTPUTS", "check_paths", "check_seed", "check_fit_memory", "failure_message", "FAILURES",
           "terminate_as_interrupt"]

#: argparse destinations read as input files, and how the message names them ("model" is a file for predict
#: only; elsewhere ``--model`` names a model kind)
INPUTS = {"data": "DATA", "model": "MODEL", "test_file": "--test-file", "import_fits": "--import-fits"}
#: argparse destinations written as output files (``--results`` is read and extended: never an input file)
OUTPUTS = {"output": "-o/--output", "forces": "--forces", "results": "--results"}

#: the exceptions :func:`failure_message` turns into one line
FAILURES = (OSError, sqlite3.Error, MemoryError, UnicodeDecodeError)


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name one file: equal once resolved, or the same inode (hard links, bind mounts)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _paths(args: argparse.Namespace, table: Mapping[str, str]) -> list[tuple[str, Path]]:
    """The (option name, path) pairs of ``table`` that ``args`` sets to a file name."""
    out = []
    for dest, flag in table.items():
        value = getattr(args, dest, None)
        if isinstance(value, str) and value:
            out.append((flag, Path(value)))
    return out


def check_paths(args: argparse.Namespace) -> None:
    """Refuse (``CLIError``) an output file that is an input file or another output, before any work; warn
    (stderr) when ``--test-file`` is DATA itself."""
    inputs = [(f, p) for f, p in _paths(args, INPUTS) if p.is_file()
              and (f != "MODEL" or getattr(args, "command", None) == "predict")]
    outputs = _paths(args, OUTPUTS)
    for k, (flag, out) in enumerate(outputs):
        for in_flag, src in inputs:
            if _same(out, src):
                raise CLIError(f"{flag} {out}: is the input {in_flag} {src}; writing it would destroy that input "
                               "(give another file name)")
        for other_flag, other in outputs[:k]:
            if _same(out, other):
                raise CLIError(f"{flag} {out}: is also {other_flag}; give each output its own file name")
    named = dict(inputs)
    if "DATA" in named and "--test-file" in named and _same(named["DATA"], named["--test-file"]):
        print(f"warning: --test-file {named['--test-file']} is DATA itself: every test structure is also "
              "fitted, so the test errors measure the fit, not a prediction", file=sys.stderr)


def check_seed(args: argparse.Namespace) -> None:
    """``--seed`` (where a command has one) must be an integer in [0, 2**32), numpy's seed range."""
    seed = getattr(args, "seed", getattr(args, "random_state", None))  # tnmat fit: --seed is random_state
    if isinstance(seed, int) and not 0 <= seed < 2**32:
        raise CLIError(f"--seed {seed}: must be an integer in [0, 4294967295]")


def check_fit_memory(args: argparse.Namespace, sizes: tuple[int, ...]) -> None:
    """Before any descriptor or fit work of ``tnmat fit``: the network of ``--model`` at ``--bond-dim`` on
    descriptor legs ``sizes`` (four copies under Adam), and the direct sum of ``--members`` networks at that
    bond cap, must fit in the memory available (``CLIError`` naming the option and the estimate)."""
    from tnmat.memory import InsufficientMemory, check_memory
    from tnmat.networks.memory import direct_sum_parameters, network_bytes
    from tnmat.training.registry import model_spec

    kind = model_spec(args.model).network
    if kind in (None, "dense"):  # no bond dimension: the descriptors' own check covers the dense weights
        return
    from tnmat.training.params import resolve_solver

    adam = resolve_solver(kind, args.solver) == "adam"
    try:
        check_memory(network_bytes(kind, sizes, args.bond_dim, adam=adam),
                     f"--bond-dim {args.bond_dim} (--model {args.model}{', trained by Adam' if adam else ''})")
        if args.n_members > 1 and kind in ("mps", "ttn"):
            check_memory(direct_sum_parameters(kind, sizes, args.bond_dim, args.n_members) * 8,
                         f"--members {args.n_members} (their merged network at --bond-dim {args.bond_dim})")
    except InsufficientMemory as exc:
        raise CLIError(str(exc)) from None


def failure_message(exc: BaseException, args: argparse.Namespace, kept: Iterable[Path]) -> str:
    """One line for an I/O, SQLite or memory failure: what failed, which files were completely written
    before it (``kept``), and that the file being written was left as it was."""
    kept = [str(p) for p in dict.fromkeys(kept)]
    done = f"kept: {', '.join(kept)}" if kept else "no output file was written"
    results = getattr(args, "results", None) or ("the SQLite results file in --out-dir"
                                                  if hasattr(args, "results") else "a SQLite file")
    if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
        return (f"no space left on the device writing {results}; the fits stored before it are kept in it; "
                f"{done}")
    if isinstance(exc, sqlite3.Error | UnicodeDecodeError):
        return (f"--results {results}: damaged or not a tnmat results file ({type(exc).__name__}: "
                f"{_first_line(exc)[:80]}); give a new file name or restore it from a copy; {done}")
    if isinstance(exc, MemoryError):
        return f"out of memory ({_first_line(exc) or 'MemoryError'}); {done}; choose smaller settings"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"no space left on the device{where}; the file being written was not created or changed; {done}"
    if isinstance(exc, OSError):
        return f"{_first_line(exc)}; {done}"
    return f"{type(exc).__name__}: {_first_line(exc)}; {done}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM (``kill``) is raised as ``KeyboardInterrupt``, so temporaries are removed
    and stores closed as on Ctrl-C; the previous handler is restored after it (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
