"""One-file persistence of fitted estimators (``torch.save`` of plain containers, read back with
``torch.load(weights_only=True)`` so loading never executes pickled code).

Layout (format ``"tnmat.estimator"``, version :data:`FORMAT_VERSION`)::

    {"format", "version", "tnmat_version", "class": "MPSRegressor",
     "params": get_params() (callbacks dropped, random_state kept only when an int),
     "fitted": {x_mean_, x_std_ (tensors), y_mean_, y_std_, legs_, leg_sizes_, per_atom_, ...},
     "history": {"train_loss": [...], "val_loss": [...], "lr": [...], "seconds": [...]},
     "state_dict": network weights (CPU), "extra": caller's dict (descriptor settings, ...)}
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tnmat._estimator_file import FORMAT, FORMAT_VERSION, write_estimator_file
from tnmat._estimator_file import plain as _plain
from tnmat.training._data import DTYPES, resolve_device

__all__ = ["FORMAT", "FORMAT_VERSION", "save_estimator", "restore_estimator"]

_FITTED_SCALARS = ("y_mean_", "y_std_", "intercept_", "best_epoch_", "n_epochs_", "n_steps_", "fit_seconds_",
                   "n_parameters_", "n_features_in_", "per_atom_", "legs_from_legtensor_", "stopped_early_")
_FITTED_ARRAYS = ("x_mean_", "x_std_", "legs_", "leg_sizes_")


def save_estimator(est: Any, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
    """Write a fitted :class:`~tnmat.training.NetworkRegressor` to ``path`` (parent folders are created)."""
    params = est.get_params(deep=False)
    params["callbacks"] = None  # callables are not data; the caller re-attaches them
    if not isinstance(params.get("random_state"), int | np.integer | type(None)):
        params["random_state"] = None
    fitted = {k: getattr(est, k) for k in _FITTED_SCALARS if hasattr(est, k)}
    fitted.update(x_mean_=est.x_mean_.cpu(), x_std_=est.x_std_.cpu(), legs_=list(est.legs_),
                  leg_sizes_=list(est.leg_sizes_))
    return write_estimator_file(path, type(est).__name__, params, fitted, extra=extra,
                                history=_plain(est.history_, "history"),
                                state_dict={k: v.detach().cpu() for k, v in est.network_.state_dict().items()})


def restore_estimator(cls: type, blob: dict[str, Any], path: Path) -> Any:
    """Inverse of :func:`save_estimator` from the file's contents (the loader every NetworkRegressor class
    registers with :func:`tnmat._estimator_file.register_loader`).  A device that is not available falls
    back to cpu with a warning."""
    params, fitted = dict(blob["params"]), blob["fitted"]
    if params.get("device") not in (None, "cpu", "auto"):
        try:
            resolve_device(params["device"], cls.__name__)
        except ValueError:
            warnings.warn(f"{path}: saved for device {params['device']!r}, which is not available; "
                          "loading on cpu", RuntimeWarning, stacklevel=4)
            params["device"] = "cpu"
    for key in ("leg_sizes", "hidden_layer_sizes"):
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    est = cls(**params)
    unknown = sorted(set(fitted) - set(_FITTED_SCALARS) - set(_FITTED_ARRAYS))
    if unknown:  # only attributes save_estimator writes are set: a crafted entry never shadows a method
        raise ValueError(f"unexpected fitted entries {', '.join(map(repr, unknown))}")
    for k, v in fitted.items():
        setattr(est, k, v)
    est.legs_, est.leg_sizes_ = tuple(fitted["legs_"]), tuple(int(s) for s in fitted["leg_sizes_"])
    est.device_ = resolve_device(est.device, cls.__name__)
    net = est._build_network(est._network_sizes(est.leg_sizes_), dtype=DTYPES[est.dtype], seed=0)
    net.load_state_dict(blob["state_dict"])
    est.network_ = net.to(est.device_).eval()
    est.history_ = {k: list(v) for k, v in blob["history"].items()}
    est.extra_ = dict(blob.get("extra") or {})
    if not (math.isfinite(float(est.y_mean_)) and math.isfinite(float(est.y_std_))):
        raise ValueError("target scaling is not finite")
    return est
