"""Caller-supplied output buffers of :meth:`tnmat.descriptors.Invariants.compute` (``out=``): the checks that
run before any work, so that a wrong buffer fails at once with the field and the expected value named."""

from __future__ import annotations

import ctypes
import os

import torch

__all__ = ["check_out", "memory_writable"]


def memory_writable(t: torch.Tensor) -> bool:
    """Whether the memory under the CPU tensor ``t`` accepts writes (a ``torch.from_numpy`` of a read-only
    ``np.memmap(mode="r")`` does not: the kernels would crash the process with a segmentation fault).

    Its first and last bytes are sent through a pipe and read back onto themselves: ``read(2)`` into a
    read-only page fails with EFAULT instead of faulting, and the bytes keep their values.  True where the
    probe is unavailable (no libc)."""
    nbytes = t.numel() * t.element_size()
    if nbytes == 0 or t.device.type != "cpu":
        return True
    try:
        read = ctypes.CDLL(None, use_errno=True).read
    except (OSError, AttributeError):
        return True
    read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
    read.restype = ctypes.c_ssize_t
    r, w = os.pipe()
    try:
        for addr in {t.data_ptr(), t.data_ptr() + nbytes - 1}:
            os.write(w, ctypes.string_at(addr, 1))
            if read(r, addr, 1) != 1:
                return False
    finally:
        os.close(r)
        os.close(w)
    return True


def check_out(out: object, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, who: str) -> None:
    """Raise a ``TypeError``/``ValueError`` naming the first field of ``out`` that differs from what ``who``
    writes: a strided torch tensor of ``shape``, ``dtype``, on ``device``, C-contiguous, not requiring grad,
    in writable memory."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{who}: out must be a torch.Tensor, got {type(out).__name__} (wrap a numpy array or "
                        "np.memmap with torch.from_numpy)")
    if out.layout != torch.strided:
        raise ValueError(f"{who}: out has layout {out.layout}, expected torch.strided (a dense tensor)")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{who}: out has shape {tuple(out.shape)}, expected {tuple(shape)} "
                         f"(see {who.split('.')[0]}.output_shape)")
    if out.dtype != dtype:
        raise ValueError(f"{who}: out has dtype {out.dtype}, expected {dtype} (the dtype argument)")
    if out.device.type != device.type or (device.index is not None and out.device.index != device.index):
        raise ValueError(f"{who}: out is on device {out.device}, expected {device}")
    if not out.is_contiguous():
        raise ValueError(f"{who}: out is not contiguous, expected a C-contiguous tensor (strides "
                         f"{out.stride()}; out.contiguous() would be a copy that is not written back)")
    if out.requires_grad:
        raise ValueError(f"{who}: out requires grad, expected requires_grad=False (descriptors written into a "
                         "buffer are not differentiable)")
    if not memory_writable(out):
        raise ValueError(f"{who}: out is in read-only memory, expected writable memory (e.g. np.memmap with "
                         "mode 'w+' or 'r+', not 'r')")
