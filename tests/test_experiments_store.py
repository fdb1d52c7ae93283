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


def _filled(path: Path) -> ResultStore:
    s = ResultStore(path)
    for n in (10, 20, 40):
        s.put(f"fit-{n}", {"experiment": "lc", "model": "mps", "n_train": n, "split": "random-0",
                           "params": {"bond_dim": 4}, "metrics": {"test_rmse": 1.0 / n},
                           "timings": {"fit_seconds": 0.5 * n}, "dataset": "toy"})
    s.put("sweep-1", {"experiment": "ent", "entropy": [0.1, 0.2]})
    return s


def test_jsonl_export_import_round_trip_keeps_every_column(tmp_path: Path) -> None:
    src = _filled(tmp_path / "a.sqlite")
    assert src.export_jsonl(tmp_path / "fits.jsonl.gz") == 4
    # the same rows give the same bytes (no time stamp in the gzip header): committed exports diff cleanly
    src.export_jsonl(tmp_path / "again.jsonl.gz")
    assert (tmp_path / "fits.jsonl.gz").read_bytes() == (tmp_path / "again.jsonl.gz").read_bytes()
    dst = ResultStore(tmp_path / "b.sqlite")
    dst.put("fit-10", {"experiment": "lc", "model": "mps", "n_train": 10, "split": "random-0",
                       "metrics": {"test_rmse": 99.0}})  # already there: the stored row wins, as for put
    assert dst.import_jsonl(tmp_path / "fits.jsonl.gz") == 3
    assert dst.import_jsonl(tmp_path / "fits.jsonl.gz") == 0  # idempotent
    got = {r["key"]: r for r in dst.results()}
    for r in src.results():
        if r["key"] != "fit-10":
            assert got[r["key"]] == r  # created_at and versions included
    assert got["fit-10"]["metrics"]["test_rmse"] == 99.0
    assert dst.records() == src.records()
    # a key filter and a plain (uncompressed) file
    assert src.export_jsonl(tmp_path / "two.jsonl", keys=["fit-20", "sweep-1"]) == 2
    third = ResultStore(tmp_path / "c.sqlite")
    assert third.import_jsonl(tmp_path / "two.jsonl") == 2 and third.keys() == {"fit-20", "sweep-1"}


def test_jsonl_import_names_the_bad_line_and_writes_nothing(tmp_path: Path) -> None:
    _filled(tmp_path / "a.sqlite").export_jsonl(tmp_path / "fits.jsonl")
    lines = (tmp_path / "fits.jsonl").read_text().splitlines()
    lines.insert(2, '{"table": "results", "key": "x"}')
    (tmp_path / "bad.jsonl").write_text("\n".join(lines))
    dst = ResultStore(tmp_path / "b.sqlite")
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 3"):
        dst.import_jsonl(tmp_path / "bad.jsonl")
    assert len(dst) == 0
    with pytest.raises(FileNotFoundError, match="no file"):
        dst.import_jsonl(tmp_path / "missing.jsonl")
