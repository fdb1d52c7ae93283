"""Construction by name, closed-form parameter counts and the compression threshold (paper Sec. IV B)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from tnmat.networks.base import TensorNetwork
from tnmat.networks.dense import DenseACE
from tnmat.networks.feature_map import FeatureMapMPS
from tnmat.networks.mpo import MPO
from tnmat.networks.mps import MPS
from tnmat.networks.tree import MERA, TTN, padded_sites

__all__ = ["KINDS", "NETWORKS", "make_network", "count_parameters", "compression_threshold", "saturation_bond"]

#: network kind -> class (the one list of network kinds; the model table in :mod:`tnmat.training.registry`
#: names one row per kind).  DenseACE takes no bond dimension; FeatureMapMPS has one site per feature.
NETWORKS: dict[str, type[TensorNetwork]] = {
    "dense": DenseACE, "mps": MPS, "mpo": MPO, "ttn": TTN, "mera": MERA, "feature-map-mps": FeatureMapMPS,
}
KINDS: tuple[str, ...] = tuple(NETWORKS)


def _check_kind(kind: str) -> str:
    kind = kind.lower().replace("_", "-")
    if kind not in KINDS:
        raise ValueError(f"unknown network kind {kind!r}; choose one of {KINDS}")
    return kind


def make_network(kind: str, sizes: Sequence[int], bond_dim: int | None = None, **kw) -> TensorNetwork:
    """Build a network by name.  ``sizes`` are the leg sizes of the input; for ``feature-map-mps`` the
    network has prod(sizes) sites (one per flattened feature).  Extra keywords go to the constructor."""
    kind = _check_kind(kind)
    cls = NETWORKS[kind]
    if kind == "dense":
        return cls(sizes, **kw)
    if bond_dim is None:
        raise ValueError(f"make_network: kind {kind!r} needs bond_dim")
    if kind == "feature-map-mps":
        return cls(math.prod(sizes), bond_dim, **kw)
    return cls(sizes, bond_dim, **kw)


def count_parameters(kind: str, sizes: Sequence[int], bond_dim: int | None = None) -> int:
    """Number of parameters in closed form.

    MPS: sum_k chi_{k-1} d_k chi_k with chi_0 = chi_N = 1 (N = 1: d_1); MPO: the same with d_k^2;
    feature-map-mps: the MPS formula with N = prod(sizes) sites of d = 2; dense: prod(sizes);
    TTN / MERA: per layer, sum over nodes d_a d_b min(chi, d_a d_b) (top node: d_a d_b) plus, for MERA,
    (d_a d_b)^2 per disentangler on the shifted pairs (see ``tree``)."""
    kind = _check_kind(kind)
    sizes = tuple(int(s) for s in sizes)
    if kind == "dense":
        return math.prod(sizes)
    if bond_dim is None:
        raise ValueError(f"count_parameters: kind {kind!r} needs bond_dim")
    chi = int(bond_dim)
    if kind in ("mps", "mpo", "feature-map-mps"):
        phys = {"mps": sizes, "mpo": tuple(d * d for d in sizes)}.get(kind, (2,) * math.prod(sizes))
        n = len(phys)
        if n == 1:
            return phys[0]
        return chi * (phys[0] + phys[-1]) + chi * chi * sum(phys[1:-1])
    dims = list(padded_sites(sizes))
    total = 0
    while len(dims) > 2:
        if kind == "mera":
            total += sum((dims[2 * j + 1] * dims[2 * j + 2]) ** 2 for j in range(len(dims) // 2 - 1))
        pairs = [dims[2 * j] * dims[2 * j + 1] for j in range(len(dims) // 2)]
        total += sum(p * min(chi, p) for p in pairs)
        dims = [min(chi, p) for p in pairs]
    return total + dims[0] * dims[1]


def saturation_bond(kind: str, sizes: Sequence[int]) -> int:
    """The bond dimension beyond which the network's function class no longer grows: for chains the
    largest min(prod d_left, prod d_right) over the bonds (d -> d^2 for the MPO); for trees the largest
    product of the two input dimensions of a non-top node at unbounded chi."""
    kind = _check_kind(kind)
    sizes = tuple(int(s) for s in sizes)
    if kind in ("mps", "mpo", "feature-map-mps"):
        phys = {"mps": sizes, "mpo": tuple(d * d for d in sizes)}.get(kind, (2,) * math.prod(sizes))
        return max([min(math.prod(phys[:k]), math.prod(phys[k:])) for k in range(1, len(phys))], default=1)
    if kind in ("ttn", "mera"):
        dims = list(padded_sites(sizes))
        best = 1
        while len(dims) > 2:
            dims = [dims[2 * j] * dims[2 * j + 1] for j in range(len(dims) // 2)]
            best = max(best, *dims)
        return best
    return 1


def compression_threshold(kind: str, sizes: Sequence[int], *, reference: int | None = None) -> int:
    """chi_ct: the largest chi <= ``saturation_bond(kind, sizes)`` whose parameter count is at or below the
    dense tensor's (paper Sec. IV B); 0 if even chi = 1 exceeds it.

    ``reference`` defaults to the size of the tensor the network represents: prod(sizes) for
    mps/ttn/mera/dense, prod(sizes)^2 for the MPO's operator, and prod(sizes) (the linear model on the
    same features) for feature-map-mps, whose own 2^N tensor is no meaningful comparison.  The count is
    non-decreasing in chi, so a scan is exact."""
    kind = _check_kind(kind)
    if kind == "dense":
        raise ValueError("compression_threshold: the dense model has no bond dimension")
    if reference is None:
        reference = math.prod(sizes) ** (2 if kind == "mpo" else 1)
    best = 0
    for chi in range(1, saturation_bond(kind, sizes) + 1):
        if count_parameters(kind, sizes, chi) > reference:
            break
        best = chi
    return best


