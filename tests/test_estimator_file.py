"""The one estimator file: every estimator class registers its loader with tnmat._estimator_file, and
loading dispatches on the file's class (no layer imports another to read a file)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import tnmat
from tnmat._estimator_file import load_estimator_file, register_loader, write_estimator_file
from tnmat.baselines import GPRRegressor
from tnmat.training import MPORegressor, load_estimator

SRC = Path(tnmat.__file__).parent


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_persistence_imports_neither_the_base_nor_a_baseline():
    imports = _imports(SRC / "training" / "persistence.py")
    assert not any(m.startswith(("tnmat.baselines", "tnmat.training.base")) for m in imports), imports
    assert "tnmat.training.persistence" not in _imports(SRC / "_estimator_file.py")


def test_round_trip_of_a_network_and_a_kernel_model_through_the_one_loader(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2, 3))
    y = X[:, 0, 0] * X[:, 1, 2] + X[:, 1, 1]
    mpo = MPORegressor(solver="adam", bond_dim=2, max_epochs=3, random_state=0).fit(X, y)
    gpr = GPRRegressor("soap").fit(X.reshape(30, -1), y)
    for est, Xp in ((mpo, X), (gpr, X.reshape(30, -1))):
        path = est.save(tmp_path / f"{type(est).__name__}.tnmat", extra={"note": "x"})
        for back in (load_estimator_file(path), load_estimator(path)):
            assert type(back) is type(est)
            np.testing.assert_allclose(back.predict(Xp), est.predict(Xp), rtol=1e-10, atol=1e-12)
            assert back.extra_ == {"note": "x"}


def test_registered_loader_is_used_and_its_errors_name_the_file(tmp_path):
    path = write_estimator_file(tmp_path / "toy.tnmat", "ToyEstimatorForTest", {"a": 1}, {"b": 2.0})
    register_loader("ToyEstimatorForTest", lambda blob, p: ("toy", blob["params"]["a"], blob["fitted"]["b"], p))
    assert load_estimator_file(path) == ("toy", 1, 2.0, path)
    register_loader("ToyEstimatorForTest", lambda blob, p: blob["fitted"]["missing"])
    with pytest.raises(ValueError, match=r"toy.tnmat: inconsistent tnmat estimator file \(KeyError"):
        load_estimator_file(path)
    other = write_estimator_file(tmp_path / "other.tnmat", "NoSuchEstimatorClass", {}, {})
    with pytest.raises(ValueError, match="other.tnmat: holds a 'NoSuchEstimatorClass'.*MPORegressor"):
        load_estimator_file(other)
