"""docs/own_data.md is run as written: its Python block makes the files, its `tnmat` commands run
in order (fit with the user's own test file, predict), and the "more than one machine" section starts a
Dask scheduler and worker as separate processes, runs the learning curve on them, and stops them."""

from __future__ import annotations

import csv
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tnmat.cli import main
from tnmat.model import StructureModel

DOC = Path(__file__).resolve().parents[1] / "docs" / "own_data.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def commands() -> list[list[str]]:
    """Every shell line of the bash blocks, split into words."""
    return [shlex.split(line) for b in blocks("bash") for line in b.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("docs")
    cwd = os.getcwd()
    os.chdir(d)
    try:
        (python,) = blocks("python")
        exec(compile(python, str(DOC), "exec"), {})  # noqa: S102 (the documented example itself)
    finally:
        os.chdir(cwd)
    return d


def _run_tnmat(argv: list[str], cwd: Path) -> None:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        assert main(argv[1:]) == 0, argv
    finally:
        os.chdir(old)


def test_own_data_example_runs_as_documented(workdir, capsys):
    cmds = [c for c in commands() if c[0] == "tnmat" and c[1] != "learning-curve"]
    assert [c[1] for c in cmds] == ["data", "fit", "predict"]
    for argv in cmds:
        _run_tnmat(argv, workdir)
    out = capsys.readouterr().out
    assert "target energy [eV/structure; errors in meV/structure]" in out
    assert "60 fitted" in out and f"15 test (--test-file {'test.extxyz'})" in out
    assert "energy_per_atom, errors in meV/atom" in out and "sweeps:" in out
    info = StructureModel.load(workdir / "model.pt").info
    assert info["split"]["test"] == [f"cell-{k:03d}" for k in range(60, 75)]
    rows = list(csv.DictReader((workdir / "predictions.csv").open()))
    assert [r["id"] for r in rows] == [f"cell-{k:03d}" for k in range(75, 80)]
    assert {"predicted_energy_per_atom_eV", "predicted_energy_eV", "outside_training_range"} <= set(rows[0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_more_than_one_machine_section_on_a_local_dask_cluster(workdir, capsys):
    pytest.importorskip("distributed")
    port = str(_free_port())
    cmds = [[w.replace("8786", port) for w in c] for c in commands()]
    background = [c[:-1] for c in cmds if c[-1] == "&"]
    (lc,) = [c for c in cmds if c[:2] == ["tnmat", "learning-curve"]]
    assert [c[:2] for c in background] == [["dask", "scheduler"], ["dask", "worker"]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    dask = str(Path(sys.executable).with_name("dask"))
    procs = []
    try:
        for c in background:
            procs.append(subprocess.Popen([dask, *c[1:]], cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            time.sleep(1.0)
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        _run_tnmat(lc, workdir)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    out = capsys.readouterr().out
    assert re.search(r"(\d+) fits: \1 run now, 0 already in lc.sqlite, 0 failed", out)
    table = (workdir / "lc" / "learning_curve.csv").read_text()
    assert "gpr-rbf" in table and "mps" in table and "meV/atom" in table
