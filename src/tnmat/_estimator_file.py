"""The one-file format of fitted estimators (``"tnmat.estimator"``), shared by the tensor-network
regressors (:mod:`tnmat.training.persistence`), the GPR baseline (:mod:`tnmat.baselines.gpr`) and the
MPO autoencoder (:mod:`tnmat.compression.autoencoder`).

A file is ``torch.save`` of a dict of plain containers and tensors::

    {"format": "tnmat.estimator", "version", "tnmat_version", "class": <estimator class name>,
     "params": get_params(), "fitted": {...}, "extra": caller's dict, ...class-specific entries}

plus ``"checksum"``: a SHA-256 of every other entry (:func:`content_checksum`: keys, numbers, strings and
each tensor's dtype, shape and bytes), which loading verifies, so a corrupted file is an error naming it
instead of wrong predictions.  Files are written to a temporary name and renamed into place.

It is read back with ``torch.load(weights_only=True)``, so loading never executes pickled code.  This module
sits below all users so that no layer imports another to write or read a file: each estimator class
registers its loader here (:func:`register_loader`, done when its module is imported) and
:func:`load_estimator_file` dispatches on the file's ``"class"``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["FORMAT", "FORMAT_VERSION", "plain", "content_checksum", "write_estimator_file", "register_loader",
           "read_estimator_file", "load_estimator_file"]

FORMAT = "tnmat.estimator"
FORMAT_VERSION = 1

#: A loader rebuilds a fitted estimator from a file's contents; ``path`` is for messages and warnings.
Loader = Callable[[dict[str, Any], Path], Any]
_LOADERS: dict[str, Loader] = {}


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


def _feed(h: Any, obj: Any) -> None:
    """Add ``obj`` (plain containers, see :func:`plain`) to the hash ``h``, type-tagged and in a fixed order."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        # flattened first: a contiguous tensor may keep any stride on a size-1 last axis, which view refuses
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k in sorted(obj, key=repr):
            h.update(repr(k).encode())
            _feed(h, obj[k])
    elif isinstance(obj, list | tuple):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
    else:
        h.update(f"S{type(obj).__name__}:{obj!r}".encode())


def content_checksum(blob: dict[str, Any]) -> str:
    """SHA-256 (hex) of an estimator file's contents, all entries but ``"checksum"`` itself."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in blob.items() if k != "checksum"})
    return h.hexdigest()


def write_estimator_file(path: str | Path, class_name: str, params: dict[str, Any], fitted: dict[str, Any], *,
                         extra: dict[str, Any] | None = None, **entries: Any) -> Path:
    """Write one estimator file (parent folders are created); ``entries`` are class-specific top-level keys."""
    from tnmat import __version__

    blob = {"format": FORMAT, "version": FORMAT_VERSION, "tnmat_version": __version__, "class": class_name,
            "params": plain(params, "params"), "fitted": plain(fitted, "fitted"),
            "extra": plain(dict(extra or {}), "extra"),
            **{k: plain(v, k) for k, v in entries.items()}}
    blob["checksum"] = content_checksum(blob)
    from tnmat.reports import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:  # a run stopped mid-write never leaves a half-written model
        torch.save(blob, tmp)
    return path


def register_loader(class_name: str, loader: Loader) -> None:
    """Make :func:`load_estimator_file` rebuild files whose ``"class"`` is ``class_name`` with ``loader``."""
    _LOADERS[class_name] = loader


def read_estimator_file(path: str | Path) -> dict[str, Any]:
    """The contents of an estimator file, checked to be this format and version (``ValueError`` naming the
    file otherwise; ``FileNotFoundError`` when it does not exist)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip/pickle/EOF errors all mean "not a readable model file"
        raise ValueError(f"{path}: not a readable tnmat model file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tnmat estimator file")
    if blob.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: tnmat estimator format version {blob.get('version')!r} is not supported "
                         f"(this tnmat reads version {FORMAT_VERSION}); refit the model")
    # files written before checksums existed have none; every file written now has one
    if "checksum" in blob and blob["checksum"] != content_checksum(blob):
        raise ValueError(f"{path}: the model file is corrupted (its contents do not match the checksum stored "
                         "when it was written); refit the model or restore the file from a copy")
    return blob


def load_estimator_file(path: str | Path) -> Any:
    """The fitted estimator in ``path``, rebuilt by the loader registered for its class; a file whose
    contents do not fit its class is a ``ValueError`` naming the file."""
    path = Path(path)
    blob = read_estimator_file(path)
    name = blob.get("class")
    loader = _LOADERS.get(name) if isinstance(name, str) else None
    if loader is None:
        raise ValueError(f"{path}: holds a {name!r}, which no imported tnmat module can load "
                         f"(known: {', '.join(sorted(_LOADERS))})")
    try:
        return loader(blob, path)
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{path}: inconsistent tnmat estimator file ({type(exc).__name__}: {exc})") from exc
