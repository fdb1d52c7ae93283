"""The one-file format of fitted estimators (``"tnmat.estimator"``), shared by the tensor-network
regressors (:mod:`tnmat.training.persistence`) and the GPR baseline (:mod:`tnmat.baselines.gpr`).

A file is ``torch.save`` of a dict of plain containers and tensors::

    {"format": "tnmat.estimator", "version", "tnmat_version", "class": <estimator class name>,
     "params": get_params(), "fitted": {...}, "extra": caller's dict, ...class-specific entries}

It is read back with ``torch.load(weights_only=True)``, so loading never executes pickled code.  This module
sits below both users so that neither layer imports the other to write a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["FORMAT", "FORMAT_VERSION", "plain", "write_estimator_file"]

FORMAT = "tnmat.estimator"
FORMAT_VERSION = 1


def plain(obj: Any, where: str) -> Any:
    """``obj`` as plain containers that ``torch.load(weights_only=True)`` accepts (numpy -> python/tensor)."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj))
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str | int):
                raise TypeError(f"{where}: key {k!r} is not a str/int")
            out[k] = plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, list | tuple):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(f"{where}: a {type(obj).__name__} cannot be saved (use plain dict/list/str/number/tensor)")


def write_estimator_file(path: str | Path, class_name: str, params: dict[str, Any], fitted: dict[str, Any], *,
                         extra: dict[str, Any] | None = None, **entries: Any) -> Path:
    """Write one estimator file (parent folders are created); ``entries`` are class-specific top-level keys."""
    from tnmat import __version__

    blob = {"format": FORMAT, "version": FORMAT_VERSION, "tnmat_version": __version__, "class": class_name,
            "params": plain(params, "params"), "fitted": plain(fitted, "fitted"),
            "extra": plain(dict(extra or {}), "extra"),
            **{k: plain(v, k) for k, v in entries.items()}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, path)
    return path
