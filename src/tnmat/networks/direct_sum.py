"""Weighted sums of tensor networks as one network (direct sum of the virtual bonds).

For networks W_1..W_K of the same kind on the same legs, sum_k c_k W_k is again a network of that kind whose
virtual bonds are the direct sums of the members' bonds (bond dimension sum_k chi_k):

* MPS (cores (chi_l, d, chi_r), boundary bonds 1): the first core is the concatenation of the c_k A_k^(1)
  along the right bond, every inner core is block-diagonal in (left, right), the last core is the
  concatenation along the left bond.  A one-site MPS is the plain weighted sum.
* TTN (nodes (d_a, d_b, c)): bottom nodes see the shared physical legs, so they are concatenated along the
  output bond; inner nodes are block-diagonal in all three bonds; the top node (c = 1) is block-diagonal in
  its two inputs and carries the weights.

So an ensemble mean (c_k = 1/K) of sweep-fitted networks is itself a single network of the same kind, and
the entanglement and latent-space tools apply to it unchanged.  The MPO and the MERA are not handled (the
MPO's quadratic form of a sum has cross terms; the MERA's disentanglers act on shared bonds).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from tnmat.networks.mps import MPS
from tnmat.networks.tree import MERA, TTN

__all__ = ["direct_sum"]


def _block(parts: Sequence[torch.Tensor], axes: Sequence[int]) -> torch.Tensor:
    """Block-diagonal stack of same-rank tensors over ``axes`` (the other axes must agree)."""
    shape = list(parts[0].shape)
    for ax in axes:
        shape[ax] = sum(p.shape[ax] for p in parts)
    out = parts[0].new_zeros(shape)
    offset = [0] * len(shape)
    for p in parts:
        idx = tuple(slice(offset[i], offset[i] + p.shape[i]) if i in axes else slice(None)
                    for i in range(len(shape)))
        out[idx] = p
        for ax in axes:
            offset[ax] += p.shape[ax]
    return out


def _mps_cores(members: Sequence[MPS], weights: Sequence[float]) -> list[torch.Tensor]:
    cores = [[c.detach() for c in m.cores] for m in members]
    n = len(cores[0])
    if n == 1:
        return [sum(w * c[0] for w, c in zip(weights, cores, strict=True))]
    out = [_block([w * c[0] for w, c in zip(weights, cores, strict=True)], [2])]
    out += [_block([c[k] for c in cores], [0, 2]) for k in range(1, n - 1)]
    out.append(_block([c[-1] for c in cores], [0]))
    return out


def _ttn_nodes(members: Sequence[TTN], weights: Sequence[float]) -> list[list[torch.Tensor]]:
    layers = []
    n_layers = len(members[0].layers)
    for li in range(n_layers):
        nodes = []
        for j in range(len(members[0].layers[li].isometries)):
            parts = [m.layers[li].isometries[j].detach() for m in members]
            if li == n_layers - 1:  # the top node: block-diagonal inputs, one output, carries the weights
                parts = [w * p for w, p in zip(weights, parts, strict=True)]
                nodes.append(_block(parts, [0, 1]) if n_layers > 1 else sum(parts))
            elif li == 0:  # shared physical legs: concatenate the outputs
                nodes.append(_block(parts, [2]))
            else:
                nodes.append(_block(parts, [0, 1, 2]))
        layers.append(nodes)
    return layers


def direct_sum(members: Sequence[MPS | TTN], weights: Sequence[float] | None = None) -> MPS | TTN:
    """One network computing sum_k weights[k] * members[k](x) (default weights 1/K: the ensemble mean);
    see the module docstring.  The result is a new module (the members are not changed)."""
    if len(members) == 0:
        raise ValueError("direct_sum: no networks given")
    kind = type(members[0])
    if kind not in (MPS, TTN) or isinstance(members[0], MERA):
        raise ValueError(f"direct_sum: {kind.__name__} is not supported (MPS and TTN only)")
    for m in members:
        if type(m) is not kind or tuple(m.sizes) != tuple(members[0].sizes):
            raise ValueError(f"direct_sum: every network must be a {kind.__name__} on legs {members[0].sizes}; "
                             f"got a {type(m).__name__} on {m.sizes}")
    w = [1.0 / len(members)] * len(members) if weights is None else [float(v) for v in weights]
    if len(w) != len(members):
        raise ValueError(f"direct_sum: {len(w)} weights for {len(members)} networks")
    out = copy.deepcopy(members[0])
    dtype = next(out.parameters()).dtype
    with torch.no_grad():
        if kind is MPS:
            out.cores = nn.ParameterList([nn.Parameter(c.to(dtype).contiguous()) for c in _mps_cores(members, w)])
        else:
            for layer, nodes in zip(out.layers, _ttn_nodes(members, w), strict=True):
                layer.isometries = nn.ParameterList([nn.Parameter(t.to(dtype).contiguous()) for t in nodes])
    out.bond_dim = sum(int(m.bond_dim) for m in members)
    return out
