"""DenseACE: the full weight tensor contracted with every leg, y = <W, x> (the linear ACE model, paper eq. 16)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tnmat.networks._init import make_generator
from tnmat.networks.base import TensorNetwork

__all__ = ["DenseACE"]


class DenseACE(TensorNetwork):
    """y = sum_s W[s] x[s] with a dense W of shape ``sizes`` (paper eq. 16).

    Initialisation: W ~ N(0, 1) rescaled to unit Frobenius norm, so E_x[y^2] = ||W||^2 = 1 for inputs with
    E[x x^T] = I (standardised, uncorrelated entries).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        dtype: torch.dtype = torch.float32,
        init: str | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(sizes, None)
        self.init = init or "canonical"
        if self.init != "canonical":
            raise ValueError(f"DenseACE: unknown init {init!r}; only 'canonical' (unit-norm Gaussian)")
        g = make_generator(seed, generator)
        w = torch.randn(self.sizes, generator=g, dtype=torch.float64)
        self.weight = nn.Parameter((w / w.norm()).to(dtype))

    def _forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1) @ self.weight.reshape(-1)

    def _forward_factorised(self, cores: list[torch.Tensor]) -> torch.Tensor:
        # sweep the input cores through W: state (b, r, d_{k+1} ... d_N); never forms the dense input
        b = cores[0].shape[0]
        state = self.weight.reshape(1, 1, -1).expand(b, 1, -1)
        for c, d in zip(cores, self.sizes, strict=True):
            state = state.reshape(b, c.shape[1], d, -1)
            state = torch.einsum("bidr,bidj->bjr", state, c)
        return state.reshape(b)

    def to_dense(self) -> torch.Tensor:
        return self.weight.detach().to(torch.float64).clone()
