"""What every subcommand shares: the one-line error type, resolving a DATA argument to a dataset (the
*load* step), the descriptor options and calculator (the *describe* step), and the option tables.

An option table is data: a list of :func:`option` entries (flags and ``add_argument`` keywords) and
:class:`Group` entries (a titled group of options), turned into a parser by :func:`add_options`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CLIError", "Group", "option", "add_options", "param_options", "param_values",
           "check_param_args", "as_options", "experiment_options", "load_data", "load_test_file", "descriptor",
           "descriptor_settings", "ints", "check_output_file", "check_output_dir", "check_results_file", "DATA_HELP",
           "DESCRIPTOR_OPTIONS",
           "ENERGIES", "GEOMETRY", "QUIET"]

DATA_HELP = "DATA: structure file, NMD18 folder, 'nmd18', 'alloys' or 'rattled-alloys' (EMT forces/stress)"


class CLIError(Exception):
    """An error to report as one line, without a traceback."""


Option = tuple[tuple[str, ...], dict[str, Any]]


def option(*flags: str, **kwargs: Any) -> Option:
    """One row of an option table: the flags and keywords of ``ArgumentParser.add_argument``."""
    return flags, kwargs


@dataclass(frozen=True)
class Group:
    """A titled group of options in ``--help``."""

    title: str
    options: tuple[Option, ...]


def param_options(names: Sequence[str]) -> Group:
    """The command-line options of the training parameters ``names``, derived from their one declaration
    (:data:`tnmat.training.params.PARAMS`: flag, type, choices, default, help); only those with a flag."""
    from tnmat.training.params import PARAMS

    rows = []
    for name in names:
        p = PARAMS[name]
        if p.flag is None:
            continue
        kwargs: dict[str, Any] = {"default": p.default, "dest": name,
                                  "help": f"{p.help} (default {p.default!r})".replace("%", "%%")}
        if p.cli_type is None:
            kwargs["choices"] = [c for c in p.constraint.choices if c is not None]
        else:
            kwargs["type"] = p.cli_type
            kwargs["metavar"] = p.flag.lstrip("-").upper().replace("-", "_")
        rows.append(option(p.flag, **kwargs))
    return Group("training (defaults: tnmat.training.params)", tuple(rows))


def param_values(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The values of the training parameters ``names`` given on the command line (see :func:`param_options`)."""
    return {n: getattr(args, n) for n in names if hasattr(args, n)}


def check_param_args(args: argparse.Namespace, names: Sequence[str]) -> None:
    """The table's constraint of every training parameter given on the command line, before any work; the
    error names the option (``--seed -1: must be ...``)."""
    from tnmat.training.params import PARAMS

    for name in names:
        p = PARAMS[name]
        if p.flag is not None and hasattr(args, name) and not p.constraint.test(getattr(args, name)):
            raise CLIError(f"{p.flag} {getattr(args, name)}: {p.constraint.text}")


def as_options(message: str) -> str:
    """An estimator's error in command-line words: ``name=value`` of a parameter with a flag becomes
    ``--flag value``."""
    import re

    from tnmat.training.params import PARAMS

    def flag(m: re.Match) -> str:
        p = PARAMS.get(m.group(1))
        return f"{p.flag} {m.group(2).strip(chr(39))}" if p is not None and p.flag else m.group(0)

    return re.sub(r"\b(\w+)=('[^']*'|[^\s,;)]+)", flag, message)


def add_options(parser: argparse.ArgumentParser, table: Sequence[Option | Group]) -> argparse.ArgumentParser:
    """Add every row of ``table`` to ``parser`` (groups as argument groups); returns the parser."""
    for row in table:
        target = parser.add_argument_group(row.title) if isinstance(row, Group) else parser
        for flags, kwargs in row.options if isinstance(row, Group) else (row,):
            target.add_argument(*flags, **kwargs)
    return parser


GEOMETRY = option("--geometry", choices=["relaxed", "vegard"], default="relaxed", help="NMD18 geometry")
QUIET = option("-q", "--quiet", action="store_true", help="no progress bars")
ENERGIES = option("--energies", choices=["auto", "total", "per-atom"], default="auto",
                  help="how a structure file's 'energy' values are meant: auto (default) = total energies, the "
                       "ASE convention, refused when they behave like per-atom values; total; per-atom. Models "
                       "fit energy_per_atom (derived) and predict reports both")

def _descriptor_options() -> Group:
    """The descriptor options: ``--descriptor-preset`` and the settings it sets, each overridable (defaults:
    :mod:`tnmat.descriptors.presets`, their one home)."""
    from tnmat.descriptors.presets import DEFAULT_PRESET, PRESETS

    def shown(name: str) -> str:
        return ", ".join(f"{k} {getattr(v, name)}" for k, v in PRESETS.items())

    return Group("descriptor", (
        option("--descriptor-preset", choices=list(PRESETS), default=DEFAULT_PRESET,
               help=f"named descriptor settings (default {DEFAULT_PRESET}; accurate: lowest NMD18 error at several "
                    "times the cost; tnmat.descriptors.presets)"),
        option("--order", type=int, default=None, help=f"body order nu of the invariants (1-4; {shown('order')})"),
        option("--r-cut", type=float, default=None, help=f"cutoff radius in Angstrom ({shown('r_cut')})"),
        option("--n-max", type=int, default=None, help=f"number of radial functions ({shown('n_max')})"),
        option("--l-max", type=int, default=None, help=f"largest angular momentum, inclusive ({shown('l_max')})"),
        option("--sigma", type=float, default=None, help=f"Gaussian width in Angstrom ({shown('sigma')})"),
        option("--density", choices=["gaussian", "delta"], default=None,
               help="gaussian (SOAP) or delta (ACE) neighbour density (default gaussian)"),
        option("--geometry", choices=["relaxed", "vegard"], default="relaxed",
               help="NMD18 geometry: DFT-relaxed or ideal Vegard-law positions (default relaxed)"),
    ))


DESCRIPTOR_OPTIONS = _descriptor_options()


def descriptor_settings(args: argparse.Namespace) -> Any:
    """The :class:`~tnmat.descriptors.presets.DescriptorSettings` of the options: the preset's, with every
    option that was given in its place (also written back to ``args``, so later readers see them)."""
    from dataclasses import fields, replace

    from tnmat.descriptors.presets import preset

    base = preset(args.descriptor_preset)
    given = {f.name: getattr(args, f.name) for f in fields(base) if getattr(args, f.name, None) is not None}
    settings = replace(base, **given)
    for name, value in settings.as_dict().items():
        setattr(args, name, value)
    return settings




def experiment_options(store: str, out_dir: str, out_help: str, *,
                       threads_help: str = "torch threads (default 1)") -> list[Option]:
    """The rows every experiment command shares: results file, output folder, threads, seed, quiet."""
    return [option("--results", default=None, help=f"SQLite results file (default OUT_DIR/{store})"),
            option("--out-dir", default=out_dir, help=out_help),
            option("--threads", type=int, default=1, help=threads_help),
            option("--seed", type=int, default=0, help="random seed"),
            QUIET]


def load_data(spec: str, *, geometry: str = "relaxed", energies: str = "auto"):  # noqa: ANN201 (a Dataset)
    """Resolve a DATA argument to a :class:`tnmat.data.Dataset`: an ASE-readable file (its energies read as
    ``energies`` says, see :func:`tnmat.data.read_structures`), a folder in the NMD18 Kaggle layout,
    ``nmd18`` (the folder from $TNMAT_NMD18) or ``alloys`` / ``alloys-small``."""
    from tnmat import data

    if spec in ("alloys", "alloys-small"):
        return data.embedded_default(small=spec == "alloys-small")
    if spec in ("alloys-relaxed", "alloys-relaxed-small"):  # ideal sites in, relaxed EMT energies out
        from tnmat.data.alloys_relaxed import relaxed_default

        return relaxed_default(small=spec == "alloys-relaxed-small")
    if spec == "rattled-alloys":  # EMT forces and stress (tnmat.data.alloy_forces)
        from tnmat.data.alloy_forces import generate_rattled_alloys

        return generate_rattled_alloys()
    if spec == "nmd18":
        return data.load_nmd18(None, geometry=geometry)
    path = Path(spec)
    if not path.exists():
        raise CLIError(f"{spec}: no such file or folder (use a structure file, an NMD18 folder, 'nmd18' or 'alloys')")
    if path.is_dir():
        return data.load_nmd18(path, geometry=geometry)
    if geometry != "relaxed":
        raise CLIError("--geometry vegard applies to NMD18 data only")
    return data.read_structures(path, energies=energies)


def _writable_parent(path: Path, what: str) -> None:
    parent = path.absolute().parent
    while not parent.exists():  # the folders to be created: the nearest existing one must take them
        parent = parent.parent
    if not parent.is_dir():
        raise CLIError(f"{what} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"{what} {path}: cannot write in {parent} (permission denied)")


def check_output_file(path: str | None, what: str) -> None:
    """Before any work: ``path`` (the value of option ``what``) can be written as a file: not a folder, its
    folder writable (or creatable).  Raises :class:`CLIError` naming the option and path."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise CLIError(f"{what} {path}: is a folder; give a file name")
    if p.exists() and not os.access(p, os.W_OK):
        raise CLIError(f"{what} {path}: the file is not writable (permission denied)")
    _writable_parent(p, what)


def check_output_dir(path: str | None, what: str) -> None:
    """Before any work: ``path`` can be used as an output folder (an existing folder, or creatable)."""
    if path is None:
        return
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CLIError(f"{what} {path}: exists and is not a folder")
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise CLIError(f"{what} {path}: cannot write in this folder (permission denied)")
        return
    _writable_parent(p, what)


_SQLITE_MAGIC = b"SQLite format 3\x00"


def check_results_file(path: str | None, what: str = "--results") -> None:
    """Before any work: ``path`` is a new file, an empty one, or an SQLite database (checked by its header),
    in a writable folder."""
    check_output_file(path, what)
    if path is None or not Path(path).is_file() or Path(path).stat().st_size == 0:
        return
    with open(path, "rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        raise CLIError(f"{what} {path}: not an SQLite results file (give a new file name or an earlier "
                       "results file)")


def descriptor(args: argparse.Namespace, species: Sequence[str]):  # noqa: ANN201 (an Invariants calculator)
    """The invariant calculator of the descriptor options (:data:`DESCRIPTOR_OPTIONS`)."""
    from tnmat.descriptors import AtomicDensity, Invariants

    s = descriptor_settings(args)
    try:
        dens = AtomicDensity(species=tuple(species), r_cut=s.r_cut, n_max=s.n_max, l_max=s.l_max,
                             density=s.density, sigma=s.sigma)
        return Invariants(dens, order=s.order)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None


def load_test_file(args: argparse.Namespace, ds: Any, target: str) -> Any:
    """The structures of ``--test-file``: read as DATA is (``--energies``), with ``target`` present, an
    intensive target, and no species the training data lack; a ``CLIError`` naming the file otherwise."""
    from tnmat.data.units import check_intensive

    test_ds = load_data(args.test_file, energies=args.energies)
    if target not in test_ds.targets:
        raise CLIError(f"--test-file {args.test_file}: no target {target!r} (it has "
                       f"{', '.join(test_ds.targets) or 'none'})")
    check_intensive(test_ds, target)
    extra = sorted(set(test_ds.species) - set(ds.species))
    if extra:
        raise CLIError(f"--test-file {args.test_file}: species {', '.join(extra)} do not occur in the training "
                       f"data {args.data} ({', '.join(ds.species)})")
    return test_ds


def ints(text: str) -> list[int]:
    """A comma-separated list of integers (``"2,4,8"``)."""
    return [int(t) for t in text.split(",") if t.strip()]
