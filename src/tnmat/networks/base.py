"""Base class of the tensor-network regression models and input handling.

Every network maps a batch of leg-structured inputs x of shape (batch, d_1, ..., d_N) (the ``values`` of a
:class:`~tnmat.legtensor.LegTensor`) to one scalar per row.  Inputs may also be *factorised*
(paper Fig. 8): a list of N per-row MPS cores of shape (batch, r_{k-1}, d_k, r_k) with r_0 = r_N = 1, which
represents x[b, s_1..s_N] = X_1[b, :, s_1, :] ... X_N[b, :, s_N, :].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from tnmat.legtensor import LegTensor

__all__ = ["TensorNetwork", "Factorised", "is_factorised", "dense_from_cores", "chain_to_dense"]

#: A factorised (MPS) input: one core (batch, r_left, d, r_right) per site.
Factorised = Sequence[torch.Tensor]


def is_factorised(x: object) -> bool:
    """True for a list/tuple of input cores (a factorised input)."""
    return isinstance(x, list | tuple)


def dense_from_cores(cores: Factorised) -> torch.Tensor:
    """Contract a factorised input, cores (batch, r_{k-1}, d_k, r_k) with r_0 = r_N = 1, into its dense tensor
    (batch, d_1, ..., d_N): the one cores-to-dense contraction (unbatched chains use :func:`chain_to_dense`)."""
    if len(cores) == 0:
        raise ValueError("dense_from_cores: empty list of cores")
    b = cores[0].shape[0]
    if cores[0].shape[1] != 1 or cores[-1].shape[-1] != 1:
        raise ValueError("dense_from_cores: boundary ranks must be 1 (first core (b, 1, d, r), last (b, r, d, 1))")
    out = cores[0].reshape(b, -1, cores[0].shape[-1])  # (b, d_1, r_1)
    for k, c in enumerate(cores[1:], start=1):
        if c.ndim != 4 or c.shape[0] != b or c.shape[1] != out.shape[-1]:
            raise ValueError(f"dense_from_cores: core {k} has shape {tuple(c.shape)}, expected "
                             f"({b}, {out.shape[-1]}, d, r)")
        out = torch.einsum("bpr,brds->bpds", out, c).reshape(b, -1, c.shape[-1])
    return out.reshape(b, *[c.shape[2] for c in cores])


def chain_to_dense(cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """Contract open-chain cores (l, p, r) (boundary bonds 1) into the tensor (p_1, ..., p_N) in float64
    (complex128 for complex cores), detached (a batch of one for :func:`dense_from_cores`)."""
    return dense_from_cores([c.detach().to(torch.promote_types(c.dtype, torch.float64)).unsqueeze(0)
                             for c in cores])[0]


class TensorNetwork(nn.Module):
    """A multilinear model y = <W, x> (or y = <x|T|x> for the MPO) over the legs of x.

    Attributes
    ----------
    sizes: physical dimensions d_1..d_N of the input legs.
    bond_dim: the (maximum) virtual bond dimension chi, ``None`` for the dense model.
    """

    sizes: tuple[int, ...]
    bond_dim: int | None

    def __init__(self, sizes: Sequence[int], bond_dim: int | None) -> None:
        super().__init__()
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) == 0 or any(s < 1 for s in sizes):
            raise ValueError(f"{type(self).__name__}: sizes must be a non-empty tuple of positive ints, got {sizes}")
        if bond_dim is not None and (int(bond_dim) != bond_dim or bond_dim < 1):
            raise ValueError(f"{type(self).__name__}: bond_dim must be a positive int, got {bond_dim!r}")
        self.sizes = sizes
        self.bond_dim = None if bond_dim is None else int(bond_dim)

    # ------------------------------------------------------------------ public API
    def forward(self, x: torch.Tensor | LegTensor | Factorised) -> torch.Tensor:
        """One scalar per row: shape (batch,)."""
        if is_factorised(x):
            return self._forward_factorised(self._check_cores(x))
        return self._forward_dense(self._check_dense(x))

    def to_dense(self) -> torch.Tensor:
        """The represented tensor in float64, contracted independently of ``forward``."""
        raise NotImplementedError

    def n_parameters(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters())

    def latent(self, x: torch.Tensor | LegTensor | Factorised) -> list[torch.Tensor]:
        """Intermediate layer outputs (batch, features) (empty for chain networks)."""
        return []

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, bond_dim={self.bond_dim}"

    def row_entries(self) -> int:
        """Largest intermediate tensor of the dense forward, in entries per input row (predictions are
        chunked by it, so a network with large bonds, e.g. a merged ensemble, cannot exhaust memory)."""
        return math.prod(self.sizes)

    # ------------------------------------------------------------------ to implement
    def _forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _forward_factorised(self, cores: list[torch.Tensor]) -> torch.Tensor:
        # generic fallback: densify (exact); chain networks override with the Fig. 8b order
        return self._forward_dense(dense_from_cores(cores))

    # ------------------------------------------------------------------ helpers
    def _param_dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _param_device(self) -> torch.device:
        return next(self.parameters()).device

    def _check_dense(self, x: torch.Tensor | LegTensor) -> torch.Tensor:
        if isinstance(x, LegTensor):
            x = x.values
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(x)
        if tuple(x.shape[1:]) != self.sizes:
            raise ValueError(
                f"{type(self).__name__}: input has shape {tuple(x.shape)}, expected (batch, *{self.sizes})"
            )
        return x.to(dtype=self._param_dtype(), device=self._param_device())

    def _check_cores(self, cores: Factorised) -> list[torch.Tensor]:
        cores = [torch.as_tensor(c) for c in cores]
        name = type(self).__name__
        if len(cores) != len(self.sizes):
            raise ValueError(f"{name}: factorised input has {len(cores)} cores, expected {len(self.sizes)}")
        b = cores[0].shape[0]
        prev = 1
        for k, (c, d) in enumerate(zip(cores, self.sizes, strict=True)):
            if c.ndim != 4 or c.shape[0] != b or c.shape[2] != d or c.shape[1] != prev:
                raise ValueError(
                    f"{name}: factorised input core {k} has shape {tuple(c.shape)}, expected "
                    f"({b}, {prev}, {d}, r_{k + 1})"
                )
            prev = c.shape[3]
        if prev != 1:
            raise ValueError(f"{name}: the last factorised input core must have right bond 1, got {prev}")
        return [c.to(dtype=self._param_dtype(), device=self._param_device()) for c in cores]

