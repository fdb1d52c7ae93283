"""Files on disk: a generated set's cache cut short is regenerated, a cache that cannot be written is not
reported as written, temporaries of killed runs are removed, SIGTERM removes the one being written,
non-finite descriptors are refused naming --sigma."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tnmat.cli import main
from tnmat.reports import atomic_path


def test_a_cache_cut_at_a_frame_boundary_is_regenerated(tmp_path):
    from tnmat.data.alloys import generate_binary_alloys

    full = generate_binary_alloys(n_systems=1, max_atoms=2, cache_dir=tmp_path, progress=False)
    (path,) = tmp_path.glob("binary-alloys-*.extxyz")
    text = path.read_text()
    starts = [k for k, line in enumerate(text.splitlines(keepends=True)) if line.strip().isdigit()]
    lines = text.splitlines(keepends=True)
    path.write_text("".join(lines[: starts[len(starts) // 2]]))  # the first half of the frames
    with pytest.warns(RuntimeWarning, match="incomplete cache .*structures, .* expected"):
        again = generate_binary_alloys(n_systems=1, max_atoms=2, cache_dir=tmp_path, progress=False)
    assert len(again) == len(full) > 2 and "tnmat_n_structures" not in again.metadata
    assert all("tnmat_n_structures" not in a.info for a in again.structures)
    assert path.read_text() == text  # written again, complete


def test_a_cache_that_cannot_be_written_is_not_reported_as_written(tmp_path):
    from tnmat.data.alloys import generate_binary_alloys

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    ds = generate_binary_alloys(n_systems=1, max_atoms=2, cache_dir=blocker / "cache", progress=False)
    assert "not cached" in ds.source and "cached at" not in ds.source
    assert not (blocker / "cache").exists()


def test_temporaries_of_killed_runs_are_removed(tmp_path):
    target = tmp_path / "x.npz"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".x.tmp{int(dead.stdout)}.npz"
    stale.write_bytes(b"half written")
    alive = tmp_path / f".x.tmp{os.getppid()}.npz"  # a running process' temporary is left alone
    alive.write_bytes(b"being written")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"complete")
    assert target.read_bytes() == b"complete" and not stale.exists() and alive.exists()


def test_sigterm_removes_the_temporary_being_written(tmp_path):
    code = textwrap.dedent(f"""
        import os, signal, time
        from pathlib import Path
        from tnmat.commands._guards import terminate_as_interrupt
        from tnmat.reports import atomic_path
        try:
            with terminate_as_interrupt(), atomic_path(Path({str(tmp_path / 'big.npz')!r})) as tmp:
                tmp.write_bytes(b"0" * 1000)
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
        except KeyboardInterrupt:
            raise SystemExit(130)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    res = subprocess.run([sys.executable, "-c", code], env=env, timeout=60)
    assert res.returncode == 130
    assert list(tmp_path.iterdir()) == []


def test_non_finite_descriptors_are_refused_naming_sigma(tmp_path, capsys):
    out = tmp_path / "x.npz"
    assert main(["describe", "alloys-small", "--sigma", "1e-9", "--n-max", "2", "--l-max", "1", "-q",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--sigma 1e-09" in err and "not finite" in err and err.count("\n") == 1
    assert not out.exists()


def test_a_cache_written_without_a_count_is_regenerated_silently(tmp_path, recwarn):
    from tnmat.data.alloys import generate_binary_alloys

    full = generate_binary_alloys(n_systems=1, max_atoms=2, cache_dir=tmp_path, progress=False)
    (path,) = tmp_path.glob("binary-alloys-*.extxyz")
    text = path.read_text()
    full.to_extxyz(path)  # the layout of an older tnmat: no recorded count
    assert "tnmat_n_structures" not in path.read_text()
    again = generate_binary_alloys(n_systems=1, max_atoms=2, cache_dir=tmp_path, progress=False)
    assert len(again) == len(full) and path.read_text() == text
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
