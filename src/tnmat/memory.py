"""Memory estimates made before work: the memory available, the size of a descriptor array and of the
direct sum of fitted ensemble members (network sizes from their settings: :mod:`tnmat.networks.memory`), so
that settings that cannot
fit are refused at once instead of after hours of work.  Each estimate counts only the array or the weights
themselves at the requested sizes (bond caps included), not the work space around them.  An ensemble's
direct sum is estimated twice: before any fit at the members' bond cap, and exactly from the first fitted
member before the others are fitted."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["InsufficientMemory", "available_memory", "format_bytes", "check_memory", "descriptor_bytes",
           "direct_sum_bytes"]


class InsufficientMemory(ValueError):
    """Settings whose estimated memory exceeds the memory available."""


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (psutil when installed, else ``MemAvailable`` of
    /proc/meminfo); None when neither can tell."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def format_bytes(n: float) -> str:
    """``n`` bytes as a short decimal size (``1.5 GB``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


def check_memory(need: float, what: str, *, available: int | None = None) -> None:
    """Raise :class:`InsufficientMemory` naming ``what`` (the option or setting that asks for it), the
    estimate and the memory available when ``need`` bytes exceed it; unknown available memory passes."""
    have = available_memory() if available is None else available
    if have is not None and need > have:
        raise InsufficientMemory(f"{what}: needs at least {format_bytes(need)} of memory, {format_bytes(have)} "
                                 "is available; choose smaller settings")


def descriptor_bytes(sizes: Sequence[int], rows: int, itemsize: int = 8) -> int:
    """Bytes of a descriptor array of ``rows`` rows with legs of ``sizes`` (float64 by default)."""
    return int(rows) * math.prod(int(s) for s in sizes) * itemsize


def direct_sum_bytes(network: object, members: int) -> int:
    """Bytes of the direct sum of ``members`` networks shaped like the fitted MPS or TTN ``network``
    (block tensors as :func:`tnmat.networks.direct_sum.direct_sum` allocates them: every virtual leg
    ``members`` times longer)."""
    k = int(members)
    if hasattr(network, "cores"):
        cores = list(network.cores)
        scales = [1] if len(cores) == 1 else [k] + [k * k] * (len(cores) - 2) + [k]
        tensors = cores
    else:
        layers = [list(layer.isometries) for layer in network.layers]
        top = len(layers) - 1
        tensors = [t for layer in layers for t in layer]
        scales = [(1 if top == 0 else k * k) if li == top else k if li == 0 else k**3
                  for li, layer in enumerate(layers) for _ in layer]
    return sum(t.numel() * t.element_size() * s for t, s in zip(tensors, scales, strict=True))
