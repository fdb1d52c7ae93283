"""The one-home helpers of the experiments and the CLI: metrics, thread limits, atomic report writers, the
descriptor cache, unit labels, split and protocol rules."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tnmat.data import Dataset
from tnmat.data.units import target_units
from tnmat.descriptor_cache import cached_descriptors, cached_legtensor, descriptor_cache_path
from tnmat.experiments.protocol import dataset_label, default_target, stratification_quantities
from tnmat.experiments.splits import holdout_split, official_test, train_validation_split
from tnmat.legtensor import LegTensor
from tnmat.metrics import rmse_mae
from tnmat.reports import atomic_path, atomic_write, markdown_table, write_rows_csv
from tnmat.threads import limit_threads, thread_limited


# ---------------------------------------------------------------------------------------------- metrics
def test_rmse_mae_against_hand_values():
    rmse, mae = rmse_mae([0.0, 0.0, 0.0, 0.0], [0.003, -0.004, 0.0, 0.0])  # eV -> meV
    assert rmse == pytest.approx(np.sqrt((9 + 16) / 4)) and mae == pytest.approx(7 / 4)
    assert rmse_mae(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]), scale=1.0) == (0.0, 0.0)
    assert rmse >= mae  # RMSE >= MAE always (Jensen)


def test_rmse_mae_refuses_nan_and_mismatched_lengths():
    with pytest.raises(FloatingPointError, match="row 1"):
        rmse_mae([0.0, 1.0], [0.0, np.nan], what="toy")
    with pytest.raises(ValueError, match="3 predictions for 2 targets"):
        rmse_mae([0.0, 1.0], [0.0, 1.0, 2.0])


# ---------------------------------------------------------------------------------------------- threads
def test_limit_threads_restores_also_after_an_error():
    before = torch.get_num_threads()
    with limit_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), limit_threads(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with limit_threads(None):
        assert torch.get_num_threads() == before


def test_thread_limited_uses_the_functions_own_argument():
    before = torch.get_num_threads()

    @thread_limited
    def f(x: int, *, threads: int | None = 1) -> int:
        return torch.get_num_threads()

    assert f(0) == 1 and f(0, threads=None) == before and torch.get_num_threads() == before
    with pytest.raises(TypeError, match="no 'threads'"):
        thread_limited(lambda x: x)


# ---------------------------------------------------------------------------------------------- reports
def test_atomic_write_leaves_no_partial_file(tmp_path: Path):
    target = tmp_path / "sub" / "table.md"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("stopped mid-write")
    assert target.read_text() == "old" and os.listdir(target.parent) == ["table.md"]
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and os.listdir(target.parent) == ["table.md"]


def test_csv_and_markdown_tables(tmp_path: Path):
    path = write_rows_csv([{"a": 1, "b": 2.5}, {"b": 3, "c": "x"}], tmp_path / "t.csv")
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{"a": "1", "b": "2.5", "c": ""}, {"a": "", "b": "3", "c": "x"}]
    lines = markdown_table(["model", "RMSE"], [["mps", "1.0"]])
    assert lines == ["| model | RMSE |", "|---|---:|", "| mps | 1.0 |"]
    with pytest.raises(ValueError, match="alignments"):
        markdown_table(["a", "b"], [], align="l")


# ---------------------------------------------------------------------------------------------- cache
class _Calc:
    """A descriptor stand-in that counts its computations."""

    def __init__(self) -> None:
        self.calls = 0

    def get_params(self) -> dict:
        return {"kind": "count", "n": 2}

    def compute(self, structures, *, average=True, progress=None) -> LegTensor:
        self.calls += 1
        return LegTensor(torch.arange(2.0 * len(structures), dtype=torch.float64).reshape(-1, 2), ("n",))


def _dataset(n: int = 4) -> Dataset:
    from ase import Atoms

    structures = [Atoms("Al", positions=[[0, 0, 0]], cell=[3 + k, 3, 3], pbc=True) for k in range(n)]
    meta = {"volume_per_atom": np.array([a.get_volume() for a in structures]),
            "split": np.array(["train"] * (n - 1) + ["test"])}
    return Dataset(structures, targets={"energy": np.arange(n, dtype=float)}, metadata=meta, name="toy")


def test_descriptor_cache_computes_once_and_writes_atomically(tmp_path: Path):
    calc, ds = _Calc(), _dataset()
    a = cached_descriptors(calc, ds, cache_dir=tmp_path)
    b = cached_descriptors(calc, ds, cache_dir=tmp_path)
    assert calc.calls == 1 and torch.equal(a.values, b.values)
    path = descriptor_cache_path(tmp_path, calc, ds, False)
    assert os.listdir(tmp_path) == [path.name]
    # a cache of another data set size is not used
    cached_descriptors(calc, _dataset(3), cache_dir=tmp_path)
    assert calc.calls == 2
    # no cache folder: computed every time
    cached_legtensor(None, lambda: calc.compute([1]))
    assert calc.calls == 3
    # same name and size, other structures (train.extxyz in another folder): its own cache file
    other = _dataset()
    other.structures[0].positions[0, 0] += 0.1
    cached_descriptors(calc, other, cache_dir=tmp_path)
    assert calc.calls == 4 and descriptor_cache_path(tmp_path, calc, other, False) != path


# ---------------------------------------------------------------------------------------------- units and protocol
def test_unit_labels():
    assert target_units("nmd18", "formation_energy") == "meV/cation"
    assert target_units("nmd18-vegard", "formation_energy") == "meV/cation"
    assert target_units("nmd18", "bandgap") == "meV"
    assert target_units("alloys-small", "mixing_energy") == "meV/atom"
    assert target_units("my_file", "energy") == "meV/structure"
    assert target_units(_dataset(), "formation_energy") == "meV"  # not NMD18: no cation normalisation known


def test_default_target_and_labels():
    ds = _dataset()
    assert default_target(ds) == "energy" and default_target(ds, "energy") == "energy"
    with pytest.raises(ValueError, match="no target 'gap'"):
        default_target(ds, "gap")
    ds.targets["mixing_energy"] = np.zeros(len(ds))
    assert default_target(ds) == "mixing_energy"
    assert dataset_label("nmd18-vegard", "vegard", "formation_energy") == "nmd18-vegard-formation_energy"
    q = stratification_quantities(ds, "energy")
    assert set(q) == {"volume_per_atom", "energy"}


def test_holdout_split_rules():
    labels = np.array(["train", "test", "train", "test", "train"])
    assert official_test(labels).tolist() == [1, 3]
    assert official_test(labels, size=3) is None and official_test(np.array(["train"] * 3)) is None
    train, test = holdout_split(5, official=official_test(labels))
    assert train.tolist() == [0, 2, 4] and test.tolist() == [1, 3]
    train, test = holdout_split(23, seed=1)
    assert len(test) == 23 // 5 and sorted([*train, *test]) == list(range(23))
    assert test.tolist() == sorted(np.random.default_rng(1).permutation(23)[: 23 // 5])  # the former CLI rule
    # the validation draw of `tnmat fit` (the CLI's former rng.permutation(train) rule, kept exactly)
    perm = np.random.default_rng(7).permutation(train)
    n_val = max(1, int(round(0.2 * len(perm))))
    fit, val = train_validation_split(train, val_fraction=0.2, seed=7)
    assert val.tolist() == sorted(perm[:n_val]) and fit.tolist() == sorted(perm[n_val:])
