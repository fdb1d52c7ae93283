"""Binary tree tensor network (TTN) and binary MERA (paper Fig. 29).

Sites are padded to n = max(2, next power of two) with dummy legs of size 1 appended after the real legs
(x of shape (batch, *sizes) is reshaped to (batch, *sizes, 1, ..., 1), which is free).  Layer l maps n_l
legs to n_l / 2 legs:

* TTN: isometries ("nodes") of shape (d_a, d_b, c) on the pairs (2j, 2j+1), c = min(chi, d_a d_b): a bond
  never needs more than the product of the dimensions it summarises, so dummy pairs cost nothing.
* MERA: first disentanglers U[out_a, out_b, in_a, in_b] on the shifted pairs (2j+1, 2j+2) (open boundary:
  the first and last legs are not disentangled), then the isometries as in the TTN.
The top layer (two legs) has one node (d_a, d_b, 1) giving the scalar.  ``latent`` returns the output of
every hidden layer, the tensor (batch, c_1, ..., c_{n_l/2}) flattened to (batch, prod c): for a dense input
the layer output is a general tensor, not a product of node vectors (the latent space of Fig. 16).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from tnmat.legtensor import LegTensor
from tnmat.networks._init import haar_orthogonal, isometry, make_generator
from tnmat.networks.base import Factorised, TensorNetwork, dense_from_cores, is_factorised

__all__ = ["TTN", "MERA", "padded_sites"]


def padded_sites(sizes: Sequence[int]) -> tuple[int, ...]:
    """Leaf dimensions after padding with size-1 legs to max(2, next power of two) sites."""
    n = 2
    while n < len(sizes):
        n *= 2
    return tuple(sizes) + (1,) * (n - len(sizes))


def _apply_pair(x: torch.Tensor, node: torch.Tensor, p: int) -> torch.Tensor:
    """Contract legs p, p+1 of x (batch, *dims) with node (d_a, d_b, c) into one leg c at position p."""
    b, dims = x.shape[0], x.shape[1:]
    xr = x.reshape(b, -1, dims[p], dims[p + 1], dims[p + 2 :].numel())
    out = torch.einsum("zlabr,abc->zlcr", xr, node)
    return out.reshape(b, *dims[:p], node.shape[-1], *dims[p + 2 :])


def _apply_gate(x: torch.Tensor, gate: torch.Tensor, p: int) -> torch.Tensor:
    """Apply U[out_a, out_b, in_a, in_b] to legs p, p+1 of x (batch, *dims)."""
    b, dims = x.shape[0], x.shape[1:]
    xr = x.reshape(b, -1, dims[p], dims[p + 1], dims[p + 2 :].numel())
    return torch.einsum("zlabr,cdab->zlcdr", xr, gate).reshape(x.shape)


class TreeLayer(nn.Module):
    """One layer: optional disentanglers on the shifted pairs, then isometries on the pairs."""

    def __init__(self, disentanglers: list[torch.Tensor], isometries: list[torch.Tensor]) -> None:
        super().__init__()
        self.disentanglers = nn.ParameterList([nn.Parameter(u) for u in disentanglers])
        self.isometries = nn.ParameterList([nn.Parameter(w) for w in isometries])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map x (batch, d_0, ..., d_{n-1}) to (batch, c_0, ..., c_{n/2-1})."""
        for j, u in enumerate(self.disentanglers):
            x = _apply_gate(x, u, 2 * j + 1)
        for j, w in enumerate(self.isometries):
            x = _apply_pair(x, w, j)
        return x


class _Tree(TensorNetwork):
    """Shared implementation of the TTN (``mera=False``) and the binary MERA (``mera=True``)."""

    _mera: bool = False

    def __init__(
        self,
        sizes: Sequence[int],
        bond_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        init: str | None = None,
        disentangler_init: str = "haar",
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(sizes, bond_dim)
        self.init = init or "isometric"
        if self.init != "isometric":
            raise ValueError(f"{type(self).__name__}: unknown init {init!r}; only 'isometric'")
        if disentangler_init not in ("haar", "identity"):
            raise ValueError(f"{type(self).__name__}: disentangler_init must be 'haar' or 'identity'")
        g = make_generator(seed, generator)
        self.leaf_sizes = padded_sites(self.sizes)
        dims = list(self.leaf_sizes)
        layers = []
        while len(dims) >= 2:
            gates: list[torch.Tensor] = []
            if self._mera and len(dims) > 2:
                for j in range(len(dims) // 2 - 1):
                    a, b = dims[2 * j + 1], dims[2 * j + 2]
                    u = haar_orthogonal(a * b, g) if disentangler_init == "haar" else torch.eye(a * b).double()
                    gates.append(u.reshape(a, b, a, b).to(dtype))
            nodes: list[torch.Tensor] = []
            top = len(dims) == 2
            new_dims = []
            for j in range(len(dims) // 2):
                a, b = dims[2 * j], dims[2 * j + 1]
                if top:
                    w = torch.randn(a * b, 1, generator=g, dtype=torch.float64)
                    w = w / w.norm()
                    c = 1
                else:
                    c = min(self.bond_dim, a * b)
                    w = isometry(a * b, c, g)  # orthonormal columns: norm preserved top-down
                nodes.append(w.reshape(a, b, c).to(dtype))
                new_dims.append(c)
            layers.append(TreeLayer(gates, nodes))
            dims = new_dims
        self.layers = nn.ModuleList(layers)

    def row_entries(self) -> int:
        """Largest intermediate of :meth:`_forward_dense` per row: the layers contract pair after pair, so
        after pair j the row holds the outputs c_0..c_j next to the legs not yet contracted."""
        dims = list(self.leaf_sizes)
        peak = math.prod(dims)
        for layer in self.layers:
            for j, w in enumerate(layer.isometries):
                dims[j : j + 2] = [int(w.shape[-1])]
                peak = max(peak, math.prod(dims))
        return peak

    # ------------------------------------------------------------------ contraction
    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.leaf_sizes)

    def _forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        x = self._pad(x)
        for layer in self.layers:
            x = layer(x)
        return x.reshape(x.shape[0])

    def latent(self, x: torch.Tensor | LegTensor | Factorised) -> list[torch.Tensor]:
        """Outputs of the hidden layers (all but the last), each flattened to (batch, prod of its legs)."""
        if is_factorised(x):
            x = dense_from_cores(self._check_cores(x))
        else:
            x = self._check_dense(x)
        x = self._pad(x)
        outs = []
        for layer in self.layers[:-1]:
            x = layer(x)
            outs.append(x.reshape(x.shape[0], -1))
        return outs

    def to_dense(self) -> torch.Tensor:
        # top-down: W over the top layer's input legs, then each node's output leg expanded into its two
        # input legs (adjoint of the isometries) and the disentanglers applied transposed
        w = torch.ones(1, dtype=torch.float64, device=self._param_device())
        for layer in reversed(self.layers):
            for j in reversed(range(len(layer.isometries))):
                node = layer.isometries[j].detach().to(torch.float64)
                dims = w.shape
                wr = w.reshape(dims[:j].numel(), dims[j], dims[j + 1 :].numel())
                w = torch.einsum("lcr,abc->labr", wr, node).reshape(*dims[:j], node.shape[0], node.shape[1],
                                                                      *dims[j + 1 :])
            for j in reversed(range(len(layer.disentanglers))):
                u = layer.disentanglers[j].detach().to(torch.float64)
                p, dims = 2 * j + 1, w.shape
                wr = w.reshape(dims[:p].numel(), dims[p], dims[p + 1], dims[p + 2 :].numel())
                w = torch.einsum("labr,abcd->lcdr", wr, u).reshape(dims)
        return w.reshape(self.sizes)


class TTN(_Tree):
    """Binary tree tensor network with maximum bond chi (paper Fig. 29a); see the module docstring.

    Init: random isometric nodes (orthonormal columns of the (d_a d_b, c) matrix) and a unit-norm top node,
    so ||W||_F = 1 exactly and E_x[y^2] = 1 for standardised uncorrelated inputs.
    """

    _mera = False

    def __init__(self, sizes: Sequence[int], bond_dim: int, *, dtype: torch.dtype = torch.float32,
                 init: str | None = None, seed: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(sizes, bond_dim, dtype=dtype, init=init, seed=seed, generator=generator)

    def _forward_factorised(self, cores: list[torch.Tensor]) -> torch.Tensor:
        # each layer maps an input MPS to an MPS with half the sites: merge the two cores of a pair and
        # contract the node into their physical legs (cost linear in batch and sites)
        b = cores[0].shape[0]
        one = torch.ones(b, 1, 1, 1, dtype=cores[0].dtype, device=cores[0].device)
        cores = list(cores) + [one] * (len(self.leaf_sizes) - len(cores))
        for layer in self.layers:
            cores = [
                torch.einsum("biaj,bjck,ace->biek", cores[2 * j], cores[2 * j + 1], w)
                for j, w in enumerate(layer.isometries)
            ]
        return cores[0].reshape(b)


class MERA(_Tree):
    """Binary MERA with maximum bond chi (paper Fig. 29b): per layer, disentanglers on the shifted
    neighbouring pairs followed by isometries; see the module docstring.

    Init: Haar-orthogonal disentanglers (``disentangler_init="identity"`` starts as a TTN), isometric nodes,
    unit-norm top node, so ||W||_F = 1 exactly.  Factorised inputs are contracted after densifying them
    (exact; MERA's disentanglers would grow the input bonds otherwise).
    """

    _mera = True
