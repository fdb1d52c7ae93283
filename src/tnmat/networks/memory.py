"""Memory of a tensor network from its settings, before it is built: as built or trained by Adam, and as the
direct sum of ensemble members (:func:`tnmat.networks.direct_sum.direct_sum`); the checks against the memory
available are :mod:`tnmat.memory`'s."""

from __future__ import annotations

from collections.abc import Sequence

from tnmat.networks.factory import count_parameters, saturation_bond
from tnmat.networks.tree import padded_sites

__all__ = ["network_bytes", "direct_sum_parameters"]


def direct_sum_parameters(kind: str, sizes: Sequence[int], bond_dim: int, members: int) -> int:
    """Parameters of the direct sum of ``members`` networks of ``kind`` (``mps`` or ``ttn``) at bond
    ``bond_dim``: every virtual bond of the sum is ``members`` times a member's, physical legs are shared
    (:func:`tnmat.networks.direct_sum.direct_sum`)."""
    k, sizes = int(members), tuple(int(s) for s in sizes)
    chi = min(int(bond_dim), saturation_bond(kind, sizes))
    if kind == "mps":
        return count_parameters("mps", sizes, k * chi)
    dims, physical, total = list(padded_sites(sizes)), True, 0
    while len(dims) > 2:
        pairs = [dims[2 * j] * dims[2 * j + 1] for j in range(len(dims) // 2)]
        outs = [min(chi, p) for p in pairs]
        scale = k if physical else k**3  # first layer: one virtual leg; above it three
        total += sum(p * c for p, c in zip(pairs, outs, strict=True)) * scale
        dims, physical = outs, False
    return total + dims[0] * dims[1] * (k if physical else k * k)


def network_bytes(kind: str, sizes: Sequence[int], bond_dim: int, *, adam: bool, itemsize: int = 8) -> int:
    """Bytes of a network of ``kind`` with input legs ``sizes`` built at ``bond_dim`` (float64 cores), four
    copies when trained by Adam (weights, gradients and the two moment estimates)."""
    return count_parameters(kind, sizes, bond_dim) * itemsize * (4 if adam else 1)
