"""Thread limits for torch and the BLAS/OpenMP pools, as a context manager that restores the old setting.

Small-batch training and SVD-heavy analysis run faster single-threaded on a shared machine, but a library
call must not change the process-wide setting behind its caller's back, so the limit holds only inside
the ``with`` block.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

__all__ = ["limit_threads", "thread_limited"]

T = TypeVar("T")


@contextlib.contextmanager
def limit_threads(threads: int | None) -> Iterator[None]:
    """Run the block with at most ``threads`` torch and BLAS/OpenMP threads (``None``: leave them as they
    are); the previous torch setting and the pools' limits are restored on exit, also after an error."""
    if threads is None:
        yield
        return
    if int(threads) < 1:
        raise ValueError(f"limit_threads: threads must be >= 1, got {threads}")
    old = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: torch's own pool is the one that matters most
        limiter: contextlib.AbstractContextManager = contextlib.nullcontext()
    else:
        limiter = threadpool_limits(int(threads))
    torch.set_num_threads(int(threads))
    try:
        with limiter:
            yield
    finally:
        torch.set_num_threads(old)


def thread_limited(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator: run ``fn`` under :func:`limit_threads` of its own ``threads`` argument (for experiment
    functions that take one), so the limit ends when the function returns."""
    sig = inspect.signature(fn)
    if "threads" not in sig.parameters:
        raise TypeError(f"thread_limited: {fn.__qualname__} has no 'threads' parameter")

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        with limit_threads(bound.arguments["threads"]):
            return fn(*args, **kwargs)

    return wrapper
