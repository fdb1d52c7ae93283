"""ResultStore: an append-only, resumable SQLite file of experiment results.

Every finished fit (or any other experiment record) is written at once under a key that identifies its
configuration (:func:`config_key`); a rerun asks :meth:`ResultStore.has` and skips what is there, so an
interrupted sweep resumes without losing or repeating work.

Concurrency: the database runs in WAL mode with a busy timeout, every write is one short transaction with
``INSERT OR IGNORE`` (the first writer of a key wins, later ones are no-ops), and each process opens its own
connection (the store pickles as its path, so it can be handed to joblib/Dask workers).  WAL needs a local
file system; on a cluster without a shared local disk let the client write (``run_grid`` does for Dask).

Two tables:

* ``results``: one row per learning-curve style fit with columns key, experiment, model, n_train, split,
  params, metrics, timings, versions (JSON) and created_at;
* ``records``: a generic key -> JSON record table for other experiments (entanglement, compression, ...).

:meth:`ResultStore.put` routes a record to ``results`` when it has both a ``"model"`` and a ``"metrics"``
field, otherwise to ``records``; :meth:`ResultStore.get` returns the same dictionary shape back.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import platform
import sqlite3
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tnmat.reports import atomic_write, write_rows_csv

__all__ = ["ResultStore", "config_key", "software_versions"]

_RESULT_COLUMNS = ("key", "experiment", "model", "n_train", "split", "params", "metrics", "timings", "versions",
                   "created_at")
_JSON_COLUMNS = ("params", "metrics", "timings", "versions")
_RECORD_COLUMNS = ("key", "experiment", "record", "versions", "created_at")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY, experiment TEXT, model TEXT, n_train INTEGER, split TEXT,
    params TEXT, metrics TEXT, timings TEXT, versions TEXT, created_at TEXT);
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY, experiment TEXT, record TEXT, versions TEXT, created_at TEXT);
CREATE INDEX IF NOT EXISTS results_experiment ON results(experiment);
CREATE INDEX IF NOT EXISTS records_experiment ON records(experiment);
"""


def _jsonable(obj: Any) -> Any:
    """Numpy/torch scalars and arrays -> plain Python (JSON has no numpy types); NaN/inf are refused."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, str):  # numpy / torch arrays and scalars
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"ResultStore: non-finite number {obj!r} in a record (refusing to store it silently)")
    return obj


def _dumps(obj: Any) -> str:
    return json.dumps(_jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_key(config: Mapping[str, Any]) -> str:
    """Stable identifier of a configuration: sha1 of its sorted, compact JSON (numpy values converted).

    Dictionary order does not matter; 1 and 1.0 are different keys (JSON keeps the distinction)."""
    return hashlib.sha1(_dumps(config).encode()).hexdigest()


def software_versions() -> dict[str, str]:
    """Versions of tnmat, torch, numpy, scikit-learn and Python (what a result was computed with)."""
    import numpy
    import sklearn
    import torch

    import tnmat

    return {"tnmat": tnmat.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "sklearn": sklearn.__version__, "python": platform.python_version()}


class ResultStore:
    """Append-only SQLite store of experiment records, safe for concurrent writers (see module docstring)."""

    def __init__(self, path: str | Path, *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout = float(timeout)
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._versions: dict[str, str] | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection()  # create the schema now, so a bad path fails here and not in a worker

    # ------------------------------------------------------------------ connection handling
    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.timeout = state["path"], state["timeout"]
        self._conn, self._pid, self._versions = None, None, None

    def _connection(self) -> sqlite3.Connection:
        """This process's connection (a fork or unpickle gets a fresh one: connections must not cross)."""
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self._retry(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            self._retry(lambda: conn.executescript(_SCHEMA))
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _retry(self, op):  # noqa: ANN001, ANN202
        """Run ``op``, retrying 'database is locked' (busy_timeout does not cover every lock upgrade)."""
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while True:
            try:
                return op()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def close(self) -> None:
        """Close this process's connection (reopened on the next use)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    # ------------------------------------------------------------------ writing
    def versions(self) -> dict[str, str]:
        if self._versions is None:
            self._versions = software_versions()
        return self._versions

    def put(self, key: str, record: Mapping[str, Any], *, experiment: str | None = None) -> bool:
        """Store ``record`` under ``key`` unless the key exists; returns True when this call wrote it.

        A record with ``"model"`` and ``"metrics"`` goes to the ``results`` table (fields ``experiment``,
        ``model``, ``n_train``, ``split``, ``params``, ``metrics``, ``timings``, ``versions``; anything else is
        kept inside ``params`` under ``"extra"``); any other record goes to ``records`` as JSON."""
        record = dict(record)
        experiment = experiment if experiment is not None else record.get("experiment")
        versions = record.get("versions") or self.versions()
        now = datetime.now(UTC).isoformat(timespec="seconds")
        if "model" in record and "metrics" in record:
            known = {"experiment", "model", "n_train", "split", "params", "metrics", "timings", "versions"}
            params = dict(record.get("params") or {})
            extra = {k: v for k, v in record.items() if k not in known}
            if extra:
                params["extra"] = extra
            split = record.get("split")
            row = (key, experiment, str(record["model"]),
                   None if record.get("n_train") is None else int(record["n_train"]),
                   None if split is None else str(split), _dumps(params), _dumps(record["metrics"]),
                   _dumps(record.get("timings") or {}), _dumps(versions), now)
            sql = f"INSERT OR IGNORE INTO results ({', '.join(_RESULT_COLUMNS)}) VALUES ({', '.join('?' * 10)})"
        else:
            row = (key, experiment, _dumps(record), _dumps(versions), now)
            sql = "INSERT OR IGNORE INTO records (key, experiment, record, versions, created_at) VALUES (?,?,?,?,?)"
        conn = self._connection()
        cur = self._retry(lambda: conn.execute(sql, row))
        return cur.rowcount == 1

    # ------------------------------------------------------------------ reading
    def has(self, key: str) -> bool:
        """True when ``key`` is stored (in either table)."""
        conn = self._connection()
        q = "SELECT 1 FROM results WHERE key=? UNION ALL SELECT 1 FROM records WHERE key=? LIMIT 1"
        return self._retry(lambda: conn.execute(q, (key, key)).fetchone()) is not None

    def keys(self) -> set[str]:
        """All stored keys (both tables)."""
        conn = self._connection()
        rows = self._retry(lambda: conn.execute("SELECT key FROM results UNION SELECT key FROM records").fetchall())
        return {r[0] for r in rows}

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.has(key)

    @staticmethod
    def _result_row(row: tuple) -> dict[str, Any]:
        out = dict(zip(_RESULT_COLUMNS, row, strict=True))
        for c in _JSON_COLUMNS:
            out[c] = json.loads(out[c]) if out[c] is not None else None
        return out

    @staticmethod
    def _record_row(row: tuple) -> dict[str, Any]:
        key, experiment, record, versions, created = row
        out = json.loads(record)
        out.update(key=key, experiment=experiment, versions=json.loads(versions), created_at=created)
        return out

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record for ``key`` (with key, experiment, versions and created_at added) or None."""
        conn = self._connection()
        row = self._retry(lambda: conn.execute(
            f"SELECT {', '.join(_RESULT_COLUMNS)} FROM results WHERE key=?", (key,)).fetchone())
        if row is not None:
            return self._result_row(row)
        row = self._retry(lambda: conn.execute(
            "SELECT key, experiment, record, versions, created_at FROM records WHERE key=?", (key,)).fetchone())
        return None if row is None else self._record_row(row)

    def results(self, experiment: str | None = None, model: str | None = None) -> list[dict[str, Any]]:
        """Rows of the ``results`` table (JSON columns decoded), optionally filtered, in insertion order."""
        conn = self._connection()
        sql = f"SELECT {', '.join(_RESULT_COLUMNS)} FROM results"
        cond, args = [], []
        if experiment is not None:
            cond.append("experiment=?")
            args.append(experiment)
        if model is not None:
            cond.append("model=?")
            args.append(model)
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        rows = self._retry(lambda: conn.execute(sql + " ORDER BY rowid", args).fetchall())
        return [self._result_row(r) for r in rows]

    def records(self, experiment: str | None = None) -> list[dict[str, Any]]:
        """Generic records (the JSON dict plus key/experiment/versions/created_at), in insertion order."""
        return [{**r["record"], **{c: r[c] for c in _RECORD_COLUMNS if c != "record"}}
                for r in self._raw_records(experiment)]

    def export_jsonl(self, path: str | Path, *, experiment: str | None = None,
                     keys: Iterable[str] | None = None) -> int:
        """Write stored rows, one JSON object per line (``"table"`` says which; every column kept, including
        key, versions and created_at), gzip-compressed when ``path`` ends in ``.gz`` (with a zero time stamp,
        so the same rows give the same bytes).  ``keys`` restricts to those keys.  Returns the row count.

        The file is the portable form of a run: small enough to commit next to its figures, and
        :meth:`import_jsonl` on a fresh machine turns it back into a store that a rerun resumes from."""
        wanted = None if keys is None else set(keys)
        lines = []
        for r in self.results(experiment):
            if wanted is None or r["key"] in wanted:
                lines.append(json.dumps({"table": "results", **r}, sort_keys=True))
        for r in self._raw_records(experiment):
            if wanted is None or r["key"] in wanted:
                lines.append(json.dumps({"table": "records", **r}, sort_keys=True))
        data = ("\n".join(lines) + ("\n" if lines else "")).encode()
        path = Path(path)
        if path.suffix == ".gz":
            data = gzip.compress(data, mtime=0)
        atomic_write(path, data)
        return len(lines)

    def import_jsonl(self, path: str | Path) -> int:
        """Insert the rows of an :meth:`export_jsonl` file (plain or .gz) whose keys are not stored yet, keeping
        their versions and created_at; returns how many were new.  A malformed line is an error naming the
        file and line, and nothing of the file is written."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"import_jsonl: no file {path}")
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
        rows: list[tuple[str, tuple]] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                table = obj["table"]
                if table == "results":
                    row = tuple(_dumps(obj[c]) if c in _JSON_COLUMNS else obj[c] for c in _RESULT_COLUMNS)
                elif table == "records":
                    row = tuple(_dumps(obj[c]) if c in ("record", "versions") else obj[c] for c in _RECORD_COLUMNS)
                else:
                    raise ValueError(f"unknown table {table!r}")
                if not isinstance(obj["key"], str):
                    raise ValueError("key is not a string")
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"import_jsonl: {path}, line {n}: not a stored row ({exc})") from None
            rows.append((table, row))
        conn = self._connection()
        before = len(self)

        def write() -> None:
            with conn:  # one transaction: all rows or none
                conn.execute("BEGIN IMMEDIATE")
                for table, row in rows:
                    cols = _RESULT_COLUMNS if table == "results" else _RECORD_COLUMNS
                    conn.execute(f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) "
                                 f"VALUES ({', '.join('?' * len(cols))})", row)

        self._retry(write)
        return len(self) - before

    def _raw_records(self, experiment: str | None = None) -> list[dict[str, Any]]:
        """Rows of the ``records`` table as columns (record and versions JSON-decoded), in insertion order."""
        conn = self._connection()
        sql = f"SELECT {', '.join(_RECORD_COLUMNS)} FROM records"
        args: tuple = ()
        if experiment is not None:
            sql += " WHERE experiment=?"
            args = (experiment,)
        rows = self._retry(lambda: conn.execute(sql + " ORDER BY rowid", args).fetchall())
        return [{**dict(zip(_RECORD_COLUMNS, r, strict=True)), "record": json.loads(r[2]), "versions": json.loads(r[3])}
                for r in rows]

    def to_csv(self, path: str | Path, *, experiment: str | None = None, table: str = "results") -> Path:
        """Write one table as CSV (nested JSON fields flattened to ``metrics.rmse`` style columns)."""
        if table not in ("results", "records"):
            raise ValueError(f"to_csv: table must be 'results' or 'records', got {table!r}")
        rows = self.results(experiment) if table == "results" else self.records(experiment)
        flat = [_flatten(r) for r in rows]
        return write_rows_csv(flat, path)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, name + "."))
        elif isinstance(v, list | tuple):
            out[name] = json.dumps(v)
        else:
            out[name] = v
    return out
