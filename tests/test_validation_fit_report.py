"""What `tnmat fit` says about its training: how training ended, progress during long
fits, one set of defaults (CLI = Python), GPR convergence warnings counted instead of leaking."""

from __future__ import annotations

import inspect
import warnings

import pytest

from test_own_data import FAST, emt_frames
from tnmat.cli import main
from tnmat.commands import build_parser
from tnmat.commands.fit import Progress
from tnmat.training.base import NetworkRegressor


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from ase.io import write

    path = tmp_path_factory.mktemp("report") / "emt.extxyz"
    write(path, emt_frames(40))
    return str(path)


def _adam(data: str, *flags: str) -> list[str]:
    args = ["fit", data, *FAST, "--solver", "adam", *flags]
    args[args.index("--model") + 1] = "mps"
    return args


def test_epoch_cap_while_improving_is_reported(data, capsys):
    assert main(_adam(data, "--epochs", "3", "--bond-dim", "2")) == 0
    out = capsys.readouterr().out
    assert "training stopped at the epoch cap (3 epochs), best epoch 3; still improving: raise --epochs" in out


def test_early_stopping_is_reported(data, capsys):
    assert main(_adam(data, "--epochs", "400", "--patience", "1", "--learning-rate", "0.05",
                      "--bond-dim", "2")) == 0
    out = capsys.readouterr().out
    assert "training stopped by early stopping after" in out and "no validation improvement for 1 epochs" in out


def test_sweep_stop_reason_is_reported(data, capsys):
    args = ["fit", data, *FAST]
    args[args.index("--model") + 1] = "mps"
    assert main(args) == 0
    assert "sweeps: " in capsys.readouterr().out


def test_progress_lines_when_not_a_terminal(capsys):
    class Est:
        max_epochs = 10

    cb = Progress(every=0.0)
    cb(Est(), 4, 50, {"event": "epoch_end", "train_loss": 0.5, "val_loss": 0.25})
    cb(Est(), 4, 51, {"event": "step", "loss": 0.5})
    assert capsys.readouterr().err == "  epoch 5/10: train MSE 0.5, validation MSE 0.25\n"


def test_cli_training_defaults_are_the_estimators():
    sig = inspect.signature(NetworkRegressor.__init__).parameters
    args = build_parser().parse_args(["fit", "alloys-small"])
    assert args.max_epochs == sig["max_epochs"].default
    assert args.patience == sig["patience"].default
    assert args.learning_rate == sig["learning_rate"].default
    assert args.batch_size == sig["batch_size"].default
    assert args.validation_fraction == sig["validation_fraction"].default


def test_gpr_convergence_warnings_do_not_leak(data, capsys):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["fit", data, *FAST]) == 0
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    out = capsys.readouterr().out
    assert "test " in out


def test_closed_form_dense_fit_is_reported_as_such(data, capsys):
    args = ["fit", data, *FAST]
    args[args.index("--model") + 1] = "dense"
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "one closed-form ridge solve (ridge strength" in out and "NaN" not in out


def test_a_model_without_sweep_fitter_is_trained_by_adam(data, capsys):
    args = ["fit", data, *FAST, "--epochs", "2"]
    args[args.index("--model") + 1] = "mera"
    assert main(args) == 0  # solver "auto" resolves to Adam for the MERA: its epochs are accepted
    args[args.index("--model") + 1] = "ttn"
    assert main(args) == 2  # ... and refused for the sweep-fitted TTN, naming the option
    assert "--epochs 2 applies to --solver adam only" in capsys.readouterr().err
