"""ResultStore: round trips, append-only semantics, concurrent writers, stable configuration keys."""

from __future__ import annotations

import csv
import multiprocessing as mp
import pickle
from pathlib import Path

import numpy as np
import pytest

from tnmat.experiments.store import ResultStore, config_key


def _result(i: int) -> dict:
    return {"experiment": "lc", "model": "gpr-rbf", "n_train": 100 + i, "split": "random-0",
            "params": {"lr": 1e-3}, "metrics": {"rmse": 0.01 * i, "mae": np.float64(0.005 * i)},
            "timings": {"fit_seconds": 1.5}}


def test_config_key_is_order_independent_and_distinguishes_values() -> None:
    a = {"model": "mps", "chi": 8, "grid": {"lr": 1e-3, "wd": 0.0}}
    b = {"grid": {"wd": 0.0, "lr": 1e-3}, "chi": 8, "model": "mps"}
    assert config_key(a) == config_key(b)
    assert config_key({**a, "chi": 9}) != config_key(a)
    assert config_key({"x": np.int64(3)}) == config_key({"x": 3})
    assert len(config_key(a)) == 40 and int(config_key(a), 16) >= 0


def test_round_trip_both_tables_and_append_only(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.sqlite")
    assert store.put("k1", _result(1)) is True
    assert store.put("k1", _result(2)) is False  # first writer wins; never overwritten
    got = store.get("k1")
    assert got["metrics"] == {"rmse": 0.01, "mae": 0.005}
    assert got["n_train"] == 101 and got["model"] == "gpr-rbf" and got["experiment"] == "lc"
    assert set(got["versions"]) == {"tnmat", "torch", "numpy", "sklearn", "python"}
    assert store.put("e1", {"spectrum": [0.5, 0.5], "entropy": np.log(2)}, experiment="ent") is True
    rec = store.get("e1")
    assert rec["spectrum"] == [0.5, 0.5] and rec["experiment"] == "ent"
    assert store.has("k1") and store.has("e1") and not store.has("nope") and store.get("nope") is None
    assert [r["key"] for r in store.records(experiment="ent")] == ["e1"]
    assert [r["key"] for r in store.results(experiment="lc")] == ["k1"]
    assert store.keys() == {"k1", "e1"} and len(store) == 2
    # a second store object on the same file (as after a restart) sees everything
    again = ResultStore(tmp_path / "r.sqlite")
    assert again.get("k1")["metrics"] == got["metrics"]


def test_non_finite_metrics_are_refused(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.sqlite")
    bad = _result(1)
    bad["metrics"]["rmse"] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        store.put("k", bad)
    assert not store.has("k")


def test_to_csv_flattens_json_columns(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "r.sqlite")
    for i in range(3):
        store.put(f"k{i}", _result(i))
    path = store.to_csv(tmp_path / "r.csv", experiment="lc")
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    assert [float(r["metrics.rmse"]) for r in rows] == pytest.approx([0.0, 0.01, 0.02])
    assert rows[1]["params.lr"] == "0.001"


def _writer(args: tuple[str, int]) -> int:
    path, worker = args
    store = ResultStore(path)  # one connection per process
    wins = 0
    for i in range(60):
        key = f"k{(i + 7 * worker) % 90}"  # overlapping keys across workers
        wins += store.put(key, {"model": "m", "metrics": {"i": i, "w": worker}, "n_train": i})
        store.put(f"rec-{worker}-{i}", {"value": i})
    return wins


def test_concurrent_writers_lose_nothing_and_never_duplicate(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    ResultStore(path)
    ctx = mp.get_context("fork")  # each child still opens its own connection (pid check)
    with ctx.Pool(4) as pool:
        wins = pool.map(_writer, [(path, w) for w in range(4)])
    store = ResultStore(path)
    expected = {f"k{(i + 7 * w) % 90}" for w in range(4) for i in range(60)}
    assert sum(wins) == len(expected)  # each key inserted exactly once overall
    assert {r["key"] for r in store.results()} == expected
    assert len(store.records()) == 4 * 60


def test_store_pickles_as_its_path(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "p.sqlite")
    store.put("a", {"x": 1})
    clone = pickle.loads(pickle.dumps(store))
    assert clone.get("a")["x"] == 1
