"""The one home of the training parameters (tnmat.training.params): defaults written once, the estimators'
signatures and the command line derived from it, and one default policy for Python and the CLI."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

from tnmat.cli import main
from tnmat.data import embedded_default
from tnmat.experiments.splits import holdout_split, official_test
from tnmat.model import StructureModel
from tnmat.training import MPSRegressor, TTNRegressor
from tnmat.training.params import PARAMS, validate_params

SRC = Path(__file__).resolve().parents[1] / "src" / "tnmat"
#: estimators below the training layer cannot read the table (the layering forbids it); their parameters of
#: the same name are their own, each with its reason
OWN_DEFAULTS = {"baselines/ce.py:random_state": "the cluster expansion's CV folds, not a network's seed"}


def _literal_defaults(tree: ast.AST) -> list[tuple[int, str, object]]:
    """(line, name, value) of every literal default of a function argument or dataclass field."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            pairs = list(zip(a.args[len(a.args) - len(a.defaults):], a.defaults, strict=True))
            pairs += [(k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None]
            out += [(d.lineno, arg.arg, d.value) for arg, d in pairs if isinstance(d, ast.Constant)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and isinstance(node.value, ast.Constant):
            out.append((node.lineno, node.target.id, node.value.value))
    return out


def test_no_command_line_parameter_default_is_written_twice():
    """A literal equal to the table's default of a parameter the command line exposes is a copy of that
    default (it would drift when the table changes): read it from the table instead."""
    exposed = {n: p.default for n, p in PARAMS.items() if p.flag is not None and p.default is not None}
    copies = [f"{f.relative_to(SRC)}:{line} {name}={value!r}"
              for f in SRC.rglob("*.py") if f.name != "params.py"
              for line, name, value in _literal_defaults(ast.parse(f.read_text()))
              if name in exposed and type(value) is type(exposed[name]) and value == exposed[name]
              and f"{f.relative_to(SRC)}:{name}" not in OWN_DEFAULTS]
    assert not copies, f"defaults written again outside tnmat/training/params.py: {copies}"


def test_the_scan_finds_a_copied_default():
    tree = ast.parse("def f(*, bond_dim=8, huber_delta=0.02):\n    pass\n")
    assert {(n, v) for _, n, v in _literal_defaults(tree)} == {("bond_dim", 8), ("huber_delta", 0.02)}


def test_signatures_and_cli_defaults_come_from_the_table():
    from tnmat.commands import build_parser

    sig = inspect.signature(TTNRegressor.__init__).parameters
    assert all(sig[n].default == p.default for n, p in PARAMS.items() if n in sig)
    args = build_parser().parse_args(["fit", "alloys-small"])
    for n, p in PARAMS.items():
        if p.flag is not None:
            assert getattr(args, n) == p.default, n


@pytest.mark.parametrize("name, bad", [("bond_dim", 0), ("huber_delta", -1.0), ("solver", "lbfgs"),
                                       ("validation_fraction", 1.0), ("random_state", -1), ("loss", "l1")])
def test_every_constraint_is_checked_naming_the_parameter(name, bad):
    est = MPSRegressor(**{name: bad})
    with pytest.raises(ValueError, match=f"MPSRegressor: {name}="):
        validate_params(est, est._get_param_names())


def test_numpy_integers_are_integers():
    est = MPSRegressor(bond_dim=np.int64(4), n_sweeps=np.int32(3))
    validate_params(est, est._get_param_names(), solver="sweep")


def test_a_setting_of_another_solver_is_refused_not_ignored():
    est = MPSRegressor(max_epochs=5)  # "auto" is the sweep for the MPS
    with pytest.raises(ValueError, match="max_epochs=5 applies to solver='adam' only"):
        validate_params(est, est._get_param_names(), solver="sweep")


def test_tnmat_fit_and_the_default_python_estimator_fit_the_same_model(tmp_path):
    model = tmp_path / "ttn.tnmat"
    assert main(["fit", "alloys-small", "--n-max", "2", "--l-max", "2", "-q", "-o", str(model)]) == 0
    saved = StructureModel.load(model)
    ds = embedded_default(small=True)
    train, _ = holdout_split(len(ds), official=official_test(ds.metadata.get("split")), seed=0)
    X = saved.descriptor.compute(ds.structures, average=True)
    ref = TTNRegressor().fit(X.select(train), ds.targets["mixing_energy"][train])
    assert ref.solver_ == "sweep" and ref.loss_ == "huber"
    np.testing.assert_allclose(saved.regressor.predict(X), ref.predict(X), rtol=0, atol=1e-9)
    assert saved.regressor.bond_dims_ == ref.bond_dims_


def test_stored_tasks_keep_their_meaning():
    from tnmat.training.registry import for_solver, task_estimator

    assert task_estimator("ttn", {}).get_params()["solver"] == "adam"  # written before sweeps were a solver
    old_sweep = task_estimator("ttn", {"solver": "sweep", "learning_rate": 0.01}).get_params()
    assert old_sweep["loss"] == "squared_error" and old_sweep["learning_rate"] == PARAMS["learning_rate"].default
    assert for_solver("ttn", {"bond_dim": 4, "max_epochs": 40}, "auto") == {"bond_dim": 4, "solver": "sweep",
                                                                          "loss": "huber"}
    assert for_solver("mera", {"max_epochs": 40}, "auto") == {"max_epochs": 40}  # Adam: keys as before
    assert for_solver("gpr-rbf", {}, "auto") == {}
