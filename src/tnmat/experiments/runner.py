"""Run a grid of experiment configurations, resumably, with joblib or on a Dask cluster.

Each task is a JSON-serialisable dict; its key is :func:`~tnmat.experiments.store.config_key` of the dict.
Tasks whose key is already in the :class:`~tnmat.experiments.store.ResultStore` are skipped.  The rest run
through ``fn(task) -> dict`` and each result is written the moment it is finished:

* joblib (loky processes, ``jobs`` workers): the worker itself writes to the store before returning, so a
  crash of the parent or of another task loses nothing that finished;
* Dask (``dask_scheduler`` = a scheduler address, a ``distributed.Client``, or ``"local"`` for an in-process
  ``LocalCluster(processes=False)``): the client writes each result as it arrives (``as_completed``), so
  the workers need no access to the results file.

A task that raises is not stored (a rerun retries it).  With ``on_error="raise"`` the first failure stops
the run (after the finished results have been written) and is re-raised; with ``"continue"`` the other
tasks go on and the failures are listed in the returned :class:`GridReport`.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from tnmat.experiments.store import ResultStore, config_key

__all__ = ["GridOptions", "GridReport", "run_grid", "run_grid_with"]


@dataclass(frozen=True)
class GridOptions:
    """How a grid runs (never what it computes, so none of it enters a task's key): ``jobs`` parallel
    joblib workers or a ``dask_scheduler``; ``progress`` bar (None: only on a terminal); ``on_error``
    ``"raise"`` or ``"continue"``."""

    jobs: int = 1
    dask_scheduler: Any = None
    progress: bool | None = None
    on_error: str = "raise"


@dataclass
class GridReport:
    """What a :func:`run_grid` call did: counts of tasks and the failures (key, task, error text)."""

    n_tasks: int
    n_skipped: int = 0
    n_done: int = 0
    failures: list[tuple[str, dict, str]] = field(default_factory=list)
    #: experiment-specific totals over the grid's stored records (e.g. the learning curve's cost accounting)
    accounting: dict[str, Any] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        return len(self.failures)


def _record(task: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(result, Mapping):
        raise TypeError(f"run_grid: the task function must return a dict, got {type(result).__name__}")
    rec = dict(result)
    rec.setdefault("experiment", task.get("experiment"))
    if not ("model" in rec and "metrics" in rec):
        rec.setdefault("task", dict(task))
    return rec


def _run_and_store(fn: Callable[[dict], Mapping[str, Any]], task: dict, key: str,
                   store: ResultStore) -> tuple[str, str | None]:
    """Worker side (joblib): run one task and write its result; errors come back as text, not raised,
    so one failure does not make joblib discard the others' return values."""
    try:
        rec = _record(task, fn(task))
    except Exception:  # noqa: BLE001 - reported to the parent with the traceback
        return key, traceback.format_exc()
    store.put(key, rec)
    return key, None


def _call(fn: Callable[[dict], Mapping[str, Any]], task: dict) -> dict[str, Any]:
    return _record(task, fn(task))


def _dask_client(dask_scheduler: Any):  # noqa: ANN202
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError("run_grid(dask_scheduler=...) needs the optional dependencies dask and distributed: "
                          "pip install 'dask[distributed]'") from exc
    if isinstance(dask_scheduler, Client):
        return dask_scheduler, False
    if dask_scheduler == "local":
        cluster = LocalCluster(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None)
        return Client(cluster), True
    return Client(dask_scheduler), True


def run_grid(tasks: Iterable[Mapping[str, Any]], fn: Callable[[dict], Mapping[str, Any]], *,
             store: ResultStore, jobs: int = 1, dask_scheduler: Any = None, progress: bool | None = None,
             on_error: str = "raise", desc: str = "grid") -> GridReport:
    """Run ``fn`` on every task not yet in ``store`` and store each result at once (module docstring).

    ``fn`` must be picklable for ``jobs > 1`` or Dask (a module-level function or a callable object).
    ``progress=None`` shows the tqdm bar only on a terminal.  Returns a :class:`GridReport`."""
    if on_error not in ("raise", "continue"):
        raise ValueError(f"run_grid: on_error must be 'raise' or 'continue', got {on_error!r}")
    if jobs < 1:
        raise ValueError(f"run_grid: jobs must be >= 1, got {jobs}")
    tasks = [dict(t) for t in tasks]
    keyed: dict[str, dict] = {}
    for t in tasks:
        keyed.setdefault(config_key(t), t)  # duplicates in the grid run once
    report = GridReport(n_tasks=len(keyed))
    todo = [(k, t) for k, t in keyed.items() if not store.has(k)]
    report.n_skipped = len(keyed) - len(todo)
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(keyed), initial=report.n_skipped, desc=desc, disable=not show)

    def fail(key: str, task: dict, err: str) -> None:
        report.failures.append((key, task, err))
        if on_error == "raise":
            bar.close()
            raise RuntimeError(f"run_grid: task {task} failed ({report.n_done} finished results are stored; "
                               f"rerun to resume):\n{err}")

    try:
        if dask_scheduler is not None:
            _run_dask(todo, fn, store, dask_scheduler, report, bar, fail)
        elif jobs == 1:
            for key, task in todo:
                try:
                    rec = _call(fn, task)
                except Exception:  # noqa: BLE001
                    fail(key, task, traceback.format_exc())
                    continue
                store.put(key, rec)
                report.n_done += 1
                bar.update()
        else:
            from joblib import Parallel, delayed

            par = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
            for key, err in par(delayed(_run_and_store)(fn, task, key, store) for key, task in todo):
                if err is not None:
                    fail(key, keyed[key], err)
                    continue
                report.n_done += 1
                bar.update()
    finally:
        bar.close()
    return report


def run_grid_with(tasks: Iterable[Mapping[str, Any]], fn: Callable[[dict], Mapping[str, Any]], *,
                  store: ResultStore, options: GridOptions, desc: str = "grid") -> GridReport:
    """:func:`run_grid` with the run options of a :class:`GridOptions`."""
    return run_grid(tasks, fn, store=store, jobs=options.jobs, dask_scheduler=options.dask_scheduler,
                    progress=options.progress, on_error=options.on_error, desc=desc)


def _run_dask(todo: list[tuple[str, dict]], fn: Callable, store: ResultStore, dask_scheduler: Any,
              report: GridReport, bar: Any, fail: Callable[[str, dict, str], None]) -> None:
    from dask.distributed import as_completed

    client, owned = _dask_client(dask_scheduler)
    try:
        if not todo:
            return
        fn_remote = client.scatter(fn, broadcast=True)  # ship the (possibly data-carrying) function once
        futures = {}
        for key, task in todo:
            fut = client.submit(_call, fn_remote, task, key=f"tnmat-{key}", pure=False)
            futures[fut] = (key, task)
        for fut in as_completed(list(futures)):
            key, task = futures[fut]
            if fut.status == "error":
                exc = fut.exception()
                err = "".join(traceback.format_exception(type(exc), exc, fut.traceback()))
                try:
                    fail(key, task, err)
                except RuntimeError:
                    for other in futures:
                        other.cancel()
                    raise
                continue
            store.put(key, fut.result())
            report.n_done += 1
            bar.update()
    finally:
        if owned:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
