"""Faults: output paths checked before any work, corrupted model files refused with the file
named (never a prediction), unreadable caches recomputed, and kill -9 during fit / describe --cache /
learning-curve leaving nothing that breaks a rerun (killed subprocesses)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase.io import write

from test_own_data import FAST, emt_frames
from tnmat.cli import main
from tnmat.model import StructureModel

DESC = ["--r-cut", "4.5", "--n-max", "3", "--l-max", "2"]


@pytest.fixture(scope="module")
def emt(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    write(d / "emt.extxyz", emt_frames(40))
    assert main(["fit", str(d / "emt.extxyz"), *FAST, "-o", str(d / "m.pt")]) == 0
    return d


def _flip(src: Path, dst: Path, start: int, n: int) -> None:
    raw = bytearray(src.read_bytes())
    for k in range(start, min(start + n, len(raw))):
        raw[k] ^= 0xFF
    dst.write_bytes(bytes(raw))


@pytest.mark.parametrize("where", [0.3, 0.5, 0.7, 0.9])
def test_corrupted_model_file_is_refused_naming_it(emt, tmp_path, capsys, where):
    size = (emt / "m.pt").stat().st_size
    bad = tmp_path / "bad.pt"
    _flip(emt / "m.pt", bad, int(where * size), 200)
    out = tmp_path / "p.csv"
    assert main(["predict", str(bad), str(emt / "emt.extxyz"), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and ("corrupted" in err or "not a readable" in err)
    assert not out.exists()


def test_one_flipped_bit_in_the_weights_is_caught(emt, tmp_path, capsys):
    """One exponent bit of one stored float: the checksum, not a FloatingPointError or a wild number."""
    import torch

    blob = torch.load(emt / "m.pt", weights_only=True)
    names = [k for k, v in blob["fitted"].items() if isinstance(v, torch.Tensor) and v.dtype == torch.float64]
    t = blob["fitted"][names[0]].clone()
    t.view(torch.int64).view(-1)[0] ^= 1 << 61
    blob["fitted"][names[0]] = t
    torch.save(blob, tmp_path / "bit.pt")
    assert main(["predict", str(tmp_path / "bit.pt"), str(emt / "emt.extxyz"), "-o", str(tmp_path / "p.csv")]) == 2
    assert f"{tmp_path / 'bit.pt'}: the model file is corrupted" in capsys.readouterr().err


def test_saved_model_round_trip_keeps_checksum_valid(emt):
    model = StructureModel.load(emt / "m.pt")
    assert model.target == "energy_per_atom" and model.units == "meV/atom"


def _timed_main(argv: list[str]) -> tuple[int, float]:
    t0 = time.perf_counter()
    return main(argv), time.perf_counter() - t0


@pytest.mark.parametrize(("argv", "msg"), [
    (["fit", "{data}", *FAST, "-o", "{dir}"], "-o/--output {dir}: is a folder"),
    (["fit", "{data}", *FAST, "-o", "{file}/m.pt"], "is not a folder"),
    (["fit", "{data}", *FAST, "--cache", "{file}"], "--cache {file}: exists and is not a folder"),
    (["predict", "{model}", "{data}", "-o", "{dir}"], "-o/--output {dir}: is a folder"),
    (["describe", "{data}", *DESC, "-o", "{dir}"], "-o/--output {dir}: is a folder"),
    (["data", "generate", "{data}", "-o", "{dir}"], "-o/--output {dir}: is a folder"),
    (["learning-curve", "{data}", "--models", "gpr-rbf", "--results", "{dir}"], "--results {dir}: is a folder"),
    (["learning-curve", "{data}", "--models", "gpr-rbf", "--results", "{file}"],
     "--results {file}: not an SQLite results file"),
    (["learning-curve", "{data}", "--models", "gpr-rbf", "--results", "{dir}/r.sqlite", "--out-dir", "{file}"],
     "--out-dir {file}: exists and is not a folder"),
])
def test_output_paths_are_checked_before_any_work(emt, tmp_path, capsys, argv, msg):
    (tmp_path / "plain.txt").write_text("not a database\n")
    fill = {"data": str(emt / "emt.extxyz"), "model": str(emt / "m.pt"), "dir": str(tmp_path),
            "file": str(tmp_path / "plain.txt")}
    rc, _ = _timed_main([a.format(**fill) for a in argv])
    captured = capsys.readouterr()
    assert rc == 2 and msg.format(**fill) in captured.err
    assert "fit time" not in captured.out and "computed in" not in captured.out  # nothing was run


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_folder_is_refused_first(emt, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["fit", str(emt / "emt.extxyz"), *FAST, "-o", str(ro / "m.pt")]) == 2
        assert "permission denied" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def test_unreadable_descriptor_cache_is_recomputed(emt, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["describe", str(emt / "emt.extxyz"), *DESC, "--cache", str(cache), "-q"]) == 0
    (f,) = cache.glob("*.npz")
    f.write_bytes(b"")  # what an in-place write killed at the wrong moment used to leave
    with pytest.warns(UserWarning, match="unreadable"):
        assert main(["describe", str(emt / "emt.extxyz"), *DESC, "--cache", str(cache), "-q"]) == 0
    assert f.stat().st_size > 0
    capsys.readouterr()


def _kill_then_rerun(argv: list[str], delays: tuple[float, ...], cwd: Path, done: Path) -> None:
    """Start ``tnmat argv`` and kill -9 it after each delay in turn (fresh process each time), then rerun to
    the end: the rerun must succeed and write ``done``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "tnmat.cli", *argv]
    for delay in delays:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert done.exists()


@pytest.mark.slow
def test_kill_during_fit_and_describe_cache_leaves_nothing_that_breaks_a_rerun(emt, tmp_path):
    data = str(emt / "emt.extxyz")
    _kill_then_rerun(["fit", data, *FAST, "--cache", "c", "-o", "m.pt"], (3.0, 4.0, 5.5), tmp_path,
                     tmp_path / "m.pt")
    _kill_then_rerun(["describe", data, *DESC, "--cache", "d", "-q", "-o", "x.npz"], (3.0, 4.0), tmp_path,
                     tmp_path / "x.npz")
    assert not list(tmp_path.glob("*.tmp*")) or all(p.name.startswith(".") for p in tmp_path.glob("*.tmp*"))


@pytest.mark.slow
def test_kill_during_learning_curve_leaves_nothing_that_breaks_a_rerun(emt, tmp_path):
    argv = ["learning-curve", str(emt / "emt.extxyz"), "--models", "gpr-rbf", "--sizes", "10,20", "--splits", "2",
            "--test-size", "10", *DESC, "--results", "r.sqlite", "--out-dir", "lc", "--cache", "c", "-q"]
    _kill_then_rerun(argv, (3.5, 5.0, 7.0), tmp_path, tmp_path / "lc" / "learning_curve.csv")
    assert np.isfinite(float((tmp_path / "lc" / "learning_curve.csv").read_text().splitlines()[1].split(",")[4]))
