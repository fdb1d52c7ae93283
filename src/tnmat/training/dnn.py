"""Dense neural-network baseline: a fully connected ReLU network on the flattened, standardised descriptor.

This is the kind of model behind the "SOAP NN" of the NOMAD 2018 Kaggle competition (3rd place; Sutton
et al., npj Comput. Mater. 5, 111 (2019)), which the seed paper quotes as having O(10^6) parameters.  We
could not find the published layer sizes, so the default ``hidden_layer_sizes=(1024, 512, 256)`` is our
choice: on the NMD18 power spectrum (1024 features) it has about 1.7e6 parameters, i.e. the quoted order
of magnitude.  It is trained by the same loop as the tensor networks (Adam on MSE, early stopping).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from tnmat.training.base import NetworkRegressor, _is_int

__all__ = ["MLP", "DNNRegressor"]


class MLP(nn.Module):
    """x (batch, *sizes) -> flatten -> [Linear -> ReLU -> Dropout] * len(hidden) -> Linear -> (batch,).

    He (Kaiming) normal initialisation for the ReLU layers and zero biases keep the activations of order
    one through the depth; the last layer is scaled by 1/sqrt(fan_in) so outputs start of order one."""

    def __init__(self, n_in: int, hidden: Sequence[int], *, dropout: float = 0.0, dtype: torch.dtype = torch.float32,
                 seed: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h, dtype=dtype), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1, dtype=dtype))
        self.net = nn.Sequential(*layers)
        gen = torch.Generator().manual_seed(seed)
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for k, lin in enumerate(linears):
                gain = math.sqrt(2.0) if k < len(linears) - 1 else 1.0
                std = gain / math.sqrt(lin.in_features)
                lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen, dtype=torch.float64) * std)
                lin.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class DNNRegressor(NetworkRegressor):
    """Fully connected ReLU network (see the module docstring), same conventions as
    :class:`~tnmat.training.TensorNetworkRegressor`; with per-atom inputs it is a local (atomic) network
    averaged over each structure's atoms.

    hidden_layer_sizes : widths of the hidden layers (default (1024, 512, 256)).
    dropout : dropout probability after each hidden ReLU (0: none)."""

    _flatten_inputs = True

    def __init__(
        self,
        *,
        hidden_layer_sizes: Sequence[int] = (1024, 512, 256),
        dropout: float = 0.0,
        leg_sizes: Sequence[int] | None = None,
        learning_rate: float = 1e-3,
        batch_size: int = 64,
        max_epochs: int = 1000,
        patience: int | None = 50,
        validation_fraction: float = 0.2,
        weight_decay: float = 0.0,
        lr_schedule: str | None = None,
        standardize_inputs: bool = True,
        standardize_target: bool = True,
        dtype: str = "float32",
        device: str = "cpu",
        random_state: Any = None,
        verbose: int = 0,
        callbacks: Sequence[Any] | None = None,
    ) -> None:
        self._store_params(locals())

    def _check_model_params(self) -> None:
        name = type(self).__name__
        h = self.hidden_layer_sizes
        if isinstance(h, str | bytes) or not all(_is_int(w) and w >= 1 for w in h):
            raise ValueError(f"{name}: hidden_layer_sizes={h!r} is invalid: must be a sequence of positive "
                             "integers (empty: a linear model)")
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{name}: dropout={self.dropout!r} is invalid: must lie in [0, 1)")

    def _build_network(self, sizes: tuple[int, ...], *, dtype: torch.dtype, seed: int) -> torch.nn.Module:
        return MLP(math.prod(sizes), tuple(self.hidden_layer_sizes), dropout=float(self.dropout), dtype=dtype,
                   seed=seed)
