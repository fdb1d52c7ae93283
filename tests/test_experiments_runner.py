"""run_grid: resumes after a failure without repeating finished work; joblib and in-process Dask paths."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tnmat.experiments.runner import run_grid
from tnmat.experiments.store import ResultStore, config_key


def square(task: dict) -> dict:
    """Task function that records each call as a file and fails on demand (flag file present)."""
    d = Path(task["dir"])
    (d / f"call-{task['i']}-{uuid.uuid4().hex}").touch()
    if task["i"] == task.get("fail_at") and (d / "FAIL").exists():
        raise RuntimeError(f"deliberate failure at task {task['i']}")
    return {"experiment": "toy", "model": "sq", "n_train": task["i"], "metrics": {"value": task["i"] ** 2}}


def _calls(d: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in d.glob("call-*"))


def _tasks(d: Path, n: int, fail_at: int | None = None) -> list[dict]:
    return [{"dir": str(d), "i": i, "fail_at": fail_at} for i in range(n)]


def test_failure_then_rerun_completes_only_missing_tasks(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.sqlite")
    (tmp_path / "FAIL").touch()
    tasks = _tasks(tmp_path, 8, fail_at=3)
    with pytest.raises(RuntimeError, match="deliberate failure at task 3"):
        run_grid(tasks, square, store=store, progress=False)
    assert _calls(tmp_path) == [0, 1, 2, 3]
    assert len(store.results()) == 3  # everything finished before the crash is kept
    (tmp_path / "FAIL").unlink()
    for p in tmp_path.glob("call-*"):
        p.unlink()
    rep = run_grid(tasks, square, store=store, progress=False)
    assert _calls(tmp_path) == [3, 4, 5, 6, 7]  # finished tasks are not repeated
    assert (rep.n_tasks, rep.n_skipped, rep.n_done, rep.n_failed) == (8, 3, 5, 0)
    assert sorted(r["metrics"]["value"] for r in store.results()) == [i * i for i in range(8)]
    assert store.get(config_key(tasks[5]))["metrics"]["value"] == 25
    rep = run_grid(tasks, square, store=store, progress=False)
    assert rep.n_skipped == 8 and rep.n_done == 0


def test_joblib_two_jobs_resume_after_continue_and_after_raise(tmp_path: Path) -> None:
    # one test for both error modes: starting loky workers (which import torch) dominates the run time
    store = ResultStore(tmp_path / "r.sqlite")
    (tmp_path / "FAIL").touch()
    tasks = _tasks(tmp_path, 10, fail_at=4)
    rep = run_grid(tasks, square, store=store, jobs=2, progress=False, on_error="continue")
    assert (rep.n_done, rep.n_failed) == (9, 1) and "deliberate failure" in rep.failures[0][2]
    assert _calls(tmp_path) == list(range(10))
    (tmp_path / "FAIL").unlink()
    rep = run_grid(tasks, square, store=store, jobs=2, progress=False)
    assert (rep.n_skipped, rep.n_done) == (9, 1)
    assert _calls(tmp_path) == sorted([*range(10), 4])
    assert len(store.results()) == 10

    # on_error="raise": stop at the failure; a rerun runs exactly the tasks not stored
    d = tmp_path / "raise"
    d.mkdir()
    store2 = ResultStore(d / "r.sqlite")
    (d / "FAIL").touch()
    tasks = _tasks(d, 12, fail_at=5)
    with pytest.raises(RuntimeError, match="task"):
        run_grid(tasks, square, store=store2, jobs=2, progress=False)
    stored = {r["n_train"] for r in store2.results()}
    assert 5 not in stored
    (d / "FAIL").unlink()
    for p in d.glob("call-*"):
        p.unlink()
    run_grid(tasks, square, store=store2, jobs=1, progress=False)  # in-process: no second worker start-up
    assert _calls(d) == sorted(set(range(12)) - stored)
    assert {r["n_train"] for r in store2.results()} == set(range(12))


def test_dask_in_process_cluster(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    store = ResultStore(tmp_path / "r.sqlite")
    (tmp_path / "FAIL").touch()
    tasks = _tasks(tmp_path, 6, fail_at=2)
    rep = run_grid(tasks, square, store=store, dask_scheduler="local", progress=False, on_error="continue")
    assert (rep.n_done, rep.n_failed) == (5, 1)
    (tmp_path / "FAIL").unlink()
    rep = run_grid(tasks, square, store=store, dask_scheduler="local", progress=False)
    assert (rep.n_skipped, rep.n_done) == (5, 1)
    assert sorted(r["metrics"]["value"] for r in store.results()) == [i * i for i in range(6)]


def test_generic_records_keep_the_task(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.sqlite")

    def ent(task: dict) -> dict:
        return {"entropy": 0.5 * task["chi"]}

    tasks = [{"experiment": "ess", "chi": c} for c in (2, 4)]
    run_grid(tasks, ent, store=store, progress=False)
    recs = store.records(experiment="ess")
    assert [r["task"]["chi"] for r in recs] == [2, 4] and recs[1]["entropy"] == 2.0
