"""The one-file format of fitted estimators (``"tnmat.estimator"``), shared by the tensor-network
regressors (:mod:`tnmat.training.persistence`), the GPR baseline (:mod:`tnmat.baselines.gpr`) and the
MPO autoencoder (:mod:`tnmat.compression.autoencoder`).

A file is ``torch.save`` of a dict of plain containers and tensors::

    {"format": "tnmat.estimator", "version", "tnmat_version", "class": <estimator class name>,
     "params": get_params(), "fitted": {...}, "extra": caller's dict, ...class-specific entries}

plus ``"checksum"``: a SHA-256 of every other entry (:func:`content_checksum`: keys, numbers, strings and
each tensor's dtype, shape and bytes), which loading verifies, so a corrupted file is an error naming it
instead of wrong predictions.  Every file of version 2 carries it (a file without one was altered); version 1
files were written with or without one and are still read.  Stored weights must be finite, and a loader sets
only the fitted attributes its class writes.  Files are written to a temporary name and renamed into place.
The forces/stress model formats use the same writer and reader (:func:`write_checked_file`,
:func:`read_checked_file`).

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

__all__ = ["FORMAT", "FORMAT_VERSION", "plain", "content_checksum", "write_estimator_file", "save_blob",
           "register_loader", "read_estimator_file", "load_estimator_file", "write_checked_file", "read_checked_file"]

FORMAT = "tnmat.estimator"
#: version 2: every file carries its checksum (version 1 files were written with or without one)
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

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
    return save_blob(blob, path)


def save_blob(blob: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` of ``blob`` to ``path`` through a temporary name (a run stopped mid-write never leaves
    a half-written model); torch's write failures (a full disk) are raised as ``OSError`` naming the file."""
    import errno
    import shutil

    from tnmat.reports import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            torch.save(blob, tmp)
        except RuntimeError as exc:  # torch reports a failed write (ENOSPC, EIO) as a RuntimeError
            full = shutil.disk_usage(tmp.parent).free < (1 << 20)
            raise OSError(errno.ENOSPC if full else errno.EIO, f"could not write {path}: "
                          f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'write failed'}",
                          str(path)) from exc
    return path


def write_checked_file(path: str | Path, blob: dict[str, Any], *, version: int = FORMAT_VERSION) -> Path:
    """Write ``blob`` (plain containers) with its format ``version`` and checksum through
    :func:`save_blob`: the writer of the model formats other than ``"tnmat.estimator"``."""
    blob = {**plain(blob, "file"), "version": version}
    blob["checksum"] = content_checksum(blob)
    return save_blob(blob, path)


def read_checked_file(path: str | Path, fmt: str, what: str, *, finite: tuple[str, ...] = ()) -> dict[str, Any]:
    """The contents of a file written by :func:`write_checked_file` with ``"format": fmt``; ``ValueError``
    naming the file when it is unreadable, another format (``what`` says which is wanted), fails its
    checksum (which files of version 2 and later must carry) or holds non-finite numbers under ``finite``."""
    path = Path(path)
    blob = _load_blob(path)
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise ValueError(f"{path}: not a {what} file")
    version = blob.get("version", 1)  # files written before versions and checksums were recorded
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version!r} is not supported (this tnmat reads up to "
                         f"{FORMAT_VERSION}); update tnmat or refit the model")
    check_checksum(blob, path, required=version >= 2)
    check_finite(blob, path, finite)
    return blob


def _load_blob(path: Path) -> Any:
    """``torch.load`` of a model file with ``weights_only=True`` (no code from the file runs); one-line errors
    naming the file when it is missing or unreadable."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip/pickle/EOF errors all mean "not a readable model file"
        raise ValueError(f"{path}: not a readable tnmat model file ({_load_error(exc)})") from None


def _load_error(exc: BaseException) -> str:
    """A one-line reason for a failed ``torch.load`` (torch appends paragraphs of advice, including to load
    without ``weights_only``, which a damaged or hostile file must never get)."""
    import pickle

    if isinstance(exc, pickle.UnpicklingError):
        return ("its data are not plain model data: damaged, or not written by tnmat; no code from it was run")
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first.split('. ')[0]}"


def register_loader(class_name: str, loader: Loader) -> None:
    """Make :func:`load_estimator_file` rebuild files whose ``"class"`` is ``class_name`` with ``loader``."""
    _LOADERS[class_name] = loader


def read_estimator_file(path: str | Path) -> dict[str, Any]:
    """The contents of an estimator file, checked to be this format and version (``ValueError`` naming the
    file otherwise; ``FileNotFoundError`` when it does not exist)."""
    path = Path(path)
    blob = _load_blob(path)
    if isinstance(blob, dict) and blob.get("format") == "tnmat.equivariant_model":
        raise ValueError(f"{path}: a tnmat {blob.get('target', 'forces/stress')} model (EquivariantModel, fitted "
                         "by 'tnmat fit --target forces|stress'), not an energy model: it predicts its target "
                         "directly; use 'tnmat predict' or EquivariantModel.load")
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tnmat estimator file")
    if blob.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"{path}: tnmat estimator format version {blob.get('version')!r} is not supported "
                         f"(this tnmat reads version {FORMAT_VERSION}); refit the model")
    check_checksum(blob, path, required=blob["version"] >= 2)
    check_finite(blob, path, ("fitted", "state_dict"))
    return blob


def check_checksum(blob: dict[str, Any], path: Path, *, required: bool) -> None:
    """``ValueError`` naming ``path`` when ``blob``'s stored checksum does not match its contents, or is
    missing from a format that always writes one (``required``)."""
    if "checksum" not in blob:
        if required:
            raise ValueError(f"{path}: the model file has no checksum, which every file of its format version "
                             "carries; it was altered after writing (refit the model or restore the file)")
        return
    if blob["checksum"] != content_checksum(blob):
        raise ValueError(f"{path}: the model file is corrupted (its contents do not match the checksum stored "
                         "when it was written); refit the model or restore the file from a copy")


def check_finite(blob: dict[str, Any], path: Path, keys: tuple[str, ...]) -> None:
    """``ValueError`` naming ``path`` and the entry when a number or floating tensor under ``keys`` of
    ``blob`` is NaN or infinite (a model that cannot predict finite values)."""

    def bad(obj: Any, where: str) -> str | None:
        if isinstance(obj, torch.Tensor):
            return where if obj.is_floating_point() and not bool(torch.isfinite(obj).all()) else None
        if isinstance(obj, float):
            return where if not np.isfinite(obj) else None
        items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list | tuple) else ()
        return next((w for k, v in items if (w := bad(v, f"{where}[{k!r}]")) is not None), None)

    for key in keys:
        where = bad(blob.get(key), key)
        if where is not None:
            raise ValueError(f"{path}: the model's stored weights are not finite ({where} holds NaN or inf); "
                             "it cannot predict: refit the model")


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
