"""Dense neural-network baseline: a fully connected ReLU network on the flattened, standardised descriptor.

This is the kind of model behind the "SOAP NN" of the NOMAD 2018 Kaggle competition (3rd place; Sutton
et al., npj Comput. Mater. 5, 111 (2019)), which the seed paper quotes as having O(10^6) parameters.  We
could not find the published layer sizes, so the default ``hidden_layer_sizes=(1024, 512, 256)`` is our
choice: on the NMD18 power spectrum (1024 features) it has about 1.7e6 parameters, i.e. the quoted order
of magnitude.  Its estimator, :class:`tnmat.training.DNNRegressor`, trains it by the same loop as the tensor networks
(Adam on MSE, early stopping).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP"]


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
