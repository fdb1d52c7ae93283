"""Failures after the work is done are one line that says what was kept: a full disk while writing a model,
predictions, descriptors or the SQLite store; a damaged results file is named."""

from __future__ import annotations

import errno
import sqlite3
from collections import namedtuple
from pathlib import Path

import pytest

from tnmat.cli import main

DESC = ["--n-max", "2", "--l-max", "1", "--r-cut", "4", "-q"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A small structure file and an energy model fitted on it."""
    from tnmat.data import embedded_default

    tmp = tmp_path_factory.mktemp("io")
    data = embedded_default(small=True).subset(range(24)).to_extxyz(tmp / "d.extxyz")
    model = tmp / "m.tnmat"
    assert main(["fit", str(data), "--model", "mps", "--bond-dim", "3", "--sweeps", "2", *DESC,
                 "-o", str(model)]) == 0
    return data, model


def _full(path: object) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", str(path))


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_disk_full_while_saving_a_model(fitted, tmp_path, monkeypatch, capsys):
    import shutil

    import tnmat._estimator_file as ef

    def fail(blob, path):  # what torch reports when its writer hits a full disk
        Path(path).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0\nmore")

    monkeypatch.setattr(ef.torch, "save", fail)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(100, 100, 0))
    out = tmp_path / "m.tnmat"
    assert main(["fit", str(fitted[0]), "--model", "mps", "--bond-dim", "3", "--sweeps", "2", *DESC,
                 "-o", str(out)]) == 1
    err = _one_line(capsys)
    assert "no space left on the device" in err and str(out) in err and "no output file was written" in err
    assert list(tmp_path.iterdir()) == []  # neither the model nor a temporary


def test_disk_full_while_writing_forces_keeps_the_predictions(fitted, tmp_path, monkeypatch, capsys):
    original = Path.write_text

    def write_text(self, data, *args, **kwargs):
        if "forces" in self.name:
            raise _full(self)
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    preds, forces = tmp_path / "p.csv", tmp_path / "forces.csv"
    assert main(["predict", str(fitted[1]), str(fitted[0]), "-q", "-o", str(preds), "--forces", str(forces)]) == 1
    err = _one_line(capsys)
    assert "no space left on the device" in err and f"kept: {preds}" in err
    assert preds.is_file() and not forces.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]


def test_disk_full_while_writing_descriptors(tmp_path, monkeypatch, capsys):
    from tnmat.legtensor import LegTensor

    def save(self, path):
        raise _full(path)

    monkeypatch.setattr(LegTensor, "save", save)
    out = tmp_path / "x.npz"
    assert main(["describe", "alloys-small", *DESC, "-o", str(out)]) == 1
    assert "no space left on the device" in _one_line(capsys)
    assert not out.exists()


def test_disk_full_in_the_results_store(tmp_path, monkeypatch, capsys):
    from tnmat.experiments.store import ResultStore

    def put(self, key, record, *, experiment=None):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ResultStore, "put", put)
    results = tmp_path / "r.sqlite"
    assert main(["learning-curve", "alloys-small", "--models", "gpr-rbf", "--sizes", "20", "--splits", "1",
                 "--test-size", "10", "--results", str(results), "--out-dir", str(tmp_path / "lc"), *DESC]) == 1
    err = _one_line(capsys)
    assert f"writing {results}" in err and "stored before it are kept" in err


def test_a_damaged_results_file_is_named(tmp_path, capsys):
    import numpy as np

    from tnmat.experiments.store import ResultStore

    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        for k in range(20):
            store.put(f"k{k}", {"model": "mps", "text": "y" * 200}, experiment="learning_curve")
    raw = bytearray(path.read_bytes())
    rng = np.random.default_rng(2)
    for k in rng.integers(len(raw) // 2, len(raw), 40):
        raw[k] = int(rng.integers(128, 256))
    path.write_bytes(bytes(raw))
    assert main(["learning-curve", "alloys-small", "--report-only", "--results", str(path),
                 "--out-dir", str(tmp_path / "lc"), "-q"]) == 1
    err = _one_line(capsys)
    assert f"--results {path}: damaged or not a tnmat results file" in err
