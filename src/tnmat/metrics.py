"""Regression errors: the one place where RMSE and MAE are computed (used by training, experiments and the CLI).

Targets are stored in eV (per cation, per atom or per structure, see :mod:`tnmat.data.units`); errors are
reported in meV, i.e. ``scale = 1000``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["rmse_mae", "EV_TO_MEV"]

#: eV -> meV, the scale of every reported error.
EV_TO_MEV = 1000.0


def rmse_mae(y_true: Any, y_pred: Any, *, scale: float = EV_TO_MEV, what: str = "prediction") -> tuple[float, float]:
    """(RMSE, MAE) of ``scale * (y_pred - y_true)``: sqrt(mean e^2) and mean |e|.

    Arrays, lists or CPU tensors of equal length; a non-finite error is a ``FloatingPointError`` naming the
    first bad row (``what`` says whose predictions), never a silent NaN."""
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"{what}: {p.size} predictions for {t.size} targets")
    if t.size == 0:
        raise ValueError(f"{what}: no rows to score")
    err = (p - t) * float(scale)
    bad = np.flatnonzero(~np.isfinite(err))
    if bad.size:
        raise FloatingPointError(f"{what}: non-finite error at row {int(bad[0])} (prediction {p[bad[0]]}, "
                                 f"target {t[bad[0]]})")
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))
