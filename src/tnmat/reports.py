"""Writing results: atomic file writes, CSV tables and Markdown tables (one home for every report writer).

Every output file is written to a temporary name in the same folder and renamed into place, so a run
stopped mid-write (or a reader looking at the same time) never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write", "remove_stale_temporaries", "WRITTEN", "write_rows_csv", "markdown_table",
           "fmt"]


#: every file :func:`atomic_path` put in place in this process, in order (the command boundary reports them
#: as kept when a later step fails); the most recent 1000
WRITTEN: list[Path] = []
_TMP_TAG = ".tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process, or not a pid at all
        return pid < 2**22
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporaries of ``path`` that :func:`atomic_path` left behind in processes that no longer
    run (killed with SIGKILL, power loss); returns the removed paths."""
    path = Path(path)
    prefix, removed = f".{path.stem}{_TMP_TAG}", []
    try:
        candidates = list(path.parent.glob(f"{glob.escape(prefix)}*{glob.escape(path.suffix)}"))
    except OSError:
        return removed
    for cand in candidates:
        pid = cand.name[len(prefix):len(cand.name) - len(path.suffix)]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                cand.unlink()
                removed.append(cand)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers that look at it still work); when the
    block finishes it is renamed onto ``path`` (atomic on POSIX) and recorded in :data:`WRITTEN`, when it
    fails it is removed.  Temporaries of ``path`` left by killed processes are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.stem}{_TMP_TAG}{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
        WRITTEN.append(path)
        del WRITTEN[:-1000]
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to ``path`` through :func:`atomic_path`; returns the path."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return Path(path)


def write_rows_csv(rows: Iterable[Mapping[str, Any]], path: str | Path, columns: Sequence[str] | None = None, *,
                   lineterminator: str = "\r\n") -> Path:
    """Write dictionaries as CSV; columns default to the union of keys in first-seen order."""
    rows = list(rows)
    if columns is None:
        columns = []
        for r in rows:
            columns += [k for k in r if k not in columns]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator=lineterminator)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in columns})
    return atomic_write(path, buf.getvalue())


def fmt(x: Any, nd: int = 2) -> str:
    """A table cell: floats with ``nd`` decimals, None and non-finite floats as ``-``, the rest as ``str``."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, align: str | None = None) -> list[str]:
    """Lines of a Markdown table; ``align`` has one letter per column, ``l`` (left) or ``r`` (right; the
    default for every column but the first)."""
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header):
        raise ValueError(f"markdown_table: {len(align)} alignments for {len(header)} columns")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines
