"""Entanglement a tensor network can carry and does carry (paper Section IV B, Figs. 13-14).

* :func:`network_graph`: the graph of a ``dense``, ``mps``, ``mpo`` (Choi-vectorised, site dimensions
  d_k^2) or ``ttn`` network on given legs; :func:`min_cut_bound` the largest entropy it can carry across a
  bipartition (log of the smallest product of severed dimensions, exhaustive over the few nodes).
* :func:`network_entanglement`: per named bipartition, the Schmidt spectrum of a trained network's
  normalised state, its von Neumann entropy and capacity, the Page entropy of a random state of the same
  dimensions and the min-cut bound; :func:`initial_entanglement` the same for untrained networks (the
  baseline against which trained entropies are read).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tnmat.entanglement.entropy import capacity_of_entanglement, spectrum_of, von_neumann_entropy
from tnmat.entanglement.operators import network_state
from tnmat.entanglement.random_states import min_cut_entropy, page_entropy, page_entropy_real_approx

__all__ = ["DEFAULT_BIPARTITIONS", "GRAPH_KINDS", "NetworkGraph", "network_graph", "min_cut_bound",
           "bipartition_dims", "partition_indices", "network_entanglement", "initial_entanglement"]

#: Named bipartitions (subsystem A as leg names; B is the rest), paper Fig. 14 insets.
DEFAULT_BIPARTITIONS: dict[str, tuple[str, ...]] = {"a1a2": ("a1", "a2"), "a1n1": ("a1", "n1")}

#: Networks whose graph :func:`network_graph` draws.
GRAPH_KINDS = ("dense", "mps", "mpo", "ttn")
_CHAIN = ("mps", "mpo")


@dataclass(frozen=True)
class NetworkGraph:
    """Tensor-network graph: ``n_nodes`` tensors, virtual ``edges`` (u, v, dim) and one open leg per input
    leg, ``legs[k] = (node, dim)`` (for the MPO the Choi-fused leg of dimension d_k^2)."""

    n_nodes: int
    edges: tuple[tuple[int, int, int], ...]
    legs: tuple[tuple[int, int], ...]


def network_graph(kind: str, sizes: Sequence[int], bond_dim: int | None) -> NetworkGraph:
    """Graph of a ``dense``, ``mps``, ``mpo`` (Choi-vectorised) or ``ttn`` network on legs ``sizes``.

    Bond sizes follow the modules: uniform chi on the chains; on the tree, c = min(chi, d_a d_b) per node
    and a top node with a scalar output (padding legs of size 1 are left out: they never add to a cut)."""
    sizes = [int(s) for s in sizes]
    if kind not in GRAPH_KINDS:
        raise ValueError(f"network_graph: kind must be one of {GRAPH_KINDS}, got {kind!r}")
    if kind == "dense":
        return NetworkGraph(1, (), tuple((0, d) for d in sizes))
    if bond_dim is None or bond_dim < 1:
        raise ValueError(f"network_graph: kind {kind!r} needs a positive bond_dim, got {bond_dim!r}")
    chi = int(bond_dim)
    if kind in _CHAIN:
        phys = [d * d for d in sizes] if kind == "mpo" else sizes
        n = len(phys)
        return NetworkGraph(n, tuple((k, k + 1, chi) for k in range(n - 1)), tuple((k, d) for k, d in enumerate(phys)))
    from tnmat.networks import padded_sites

    leaves = list(padded_sites(sizes))
    # open items: ("leg", k, dim) for input legs, ("node", id, dim) for outputs of tree nodes
    items: list[tuple[str, int, int]] = [("leg", k, d) for k, d in enumerate(leaves)]
    edges: list[tuple[int, int, int]] = []
    legs: dict[int, tuple[int, int]] = {}
    node = 0
    while len(items) >= 2:
        top = len(items) == 2
        nxt = []
        for j in range(len(items) // 2):
            pair = items[2 * j : 2 * j + 2]
            for typ, ref, dim in pair:
                if typ == "leg":
                    if ref < len(sizes):
                        legs[ref] = (node, dim)
                elif dim > 1:
                    edges.append((ref, node, dim))
            a, b = pair[0][2], pair[1][2]
            nxt.append(("node", node, 1 if top else min(chi, a * b)))
            node += 1
        items = nxt
    return NetworkGraph(node, tuple(edges), tuple(legs[k] for k in range(len(sizes))))


def min_cut_bound(graph: NetworkGraph, partition: Sequence[int]) -> tuple[float, list[int]]:
    """Largest entropy the network can carry across the bipartition (partition | rest) of its legs:
    log of the smallest product of dimensions over the edges and open legs that any cut separating A's
    legs from B's must sever (exhaustive over the 2^n_nodes assignments of tensors to the sides; fine for
    the few-node networks here).  Returns (bound in nats, the severed dimensions); the bound never exceeds
    log min(d_A, d_B) (cutting all of A's or B's legs is a cut)."""
    a = {int(i) for i in partition}
    n_legs = len(graph.legs)
    if not a or len(a) >= n_legs or not a <= set(range(n_legs)):
        raise ValueError(f"min_cut_bound: partition {sorted(a)} is not a proper subset of the {n_legs} legs")
    if graph.n_nodes > 20:
        raise ValueError(f"min_cut_bound: {graph.n_nodes} nodes is too many for the exhaustive search")
    best: tuple[float, list[int]] | None = None
    for sides in itertools.product((0, 1), repeat=graph.n_nodes):
        cut = [d for u, v, d in graph.edges if sides[u] != sides[v]]
        cut += [d for k, (nd, d) in enumerate(graph.legs) if sides[nd] != (0 if k in a else 1)]
        cost = float(sum(math.log(d) for d in cut))
        if best is None or cost < best[0] - 1e-12:
            best = (cost, cut)
    assert best is not None
    d_a = math.prod(graph.legs[k][1] for k in a)
    d_b = math.prod(d for k, (_, d) in enumerate(graph.legs) if k not in a)
    cut = best[1] or [1]
    return min_cut_entropy(cut, d_a, d_b), best[1]


def bipartition_dims(kind: str, sizes: Sequence[int], partition: Sequence[int]) -> tuple[int, int]:
    """(d_A, d_B) of the state the analysis sees: leg sizes, squared for the MPO (Choi vector)."""
    phys = [int(d) ** 2 if kind == "mpo" else int(d) for d in sizes]
    d_a = math.prod(phys[i] for i in partition)
    return d_a, math.prod(phys) // d_a


def partition_indices(legs: Sequence[str], part: Sequence[str]) -> list[int]:
    missing = [p for p in part if p not in legs]
    if missing:
        raise ValueError(f"bipartition names legs {missing} that the descriptor does not have (legs {tuple(legs)})")
    return [list(legs).index(p) for p in part]


def network_entanglement(network: torch.nn.Module, kind: str, legs: Sequence[str],
                         bipartitions: Mapping[str, Sequence[str]] = DEFAULT_BIPARTITIONS, *,
                         spectra: bool = True) -> dict[str, dict[str, Any]]:
    """Per named bipartition: Schmidt values of the normalised network state (MPO: Choi vector), von
    Neumann entropy S, capacity C_E (eq. 28), d_A, d_B, Page entropy (eq. 26, complex; and the real-state
    approximation), log min(d_A, d_B) and the min-cut bound."""
    sizes = tuple(int(s) for s in network.sizes)
    state = network_state(network)
    graph = network_graph(kind, sizes, getattr(network, "bond_dim", None))
    out = {}
    for name, part in bipartitions.items():
        idx = partition_indices(legs, part)
        lam = spectrum_of(state, idx)
        d_a, d_b = bipartition_dims(kind, sizes, idx)
        bound, cut = min_cut_bound(graph, idx)
        rec = {"partition": list(part), "d_a": d_a, "d_b": d_b, "entropy": von_neumann_entropy(lam),
               "capacity": capacity_of_entanglement(lam), "page": page_entropy(d_a, d_b),
               "page_real": page_entropy_real_approx(d_a, d_b), "max_entropy": math.log(min(d_a, d_b)),
               "min_cut": bound, "cut_dims": cut}
        if spectra:
            rec["schmidt"] = [float(v) for v in lam]
        out[name] = rec
    return out


def initial_entanglement(models: Sequence[str], sizes: Sequence[int], legs: Sequence[str], chis: Sequence[int], *,
                         n_seeds: int = 3, bipartitions: Mapping[str, Sequence[str]] = DEFAULT_BIPARTITIONS
                         ) -> list[dict[str, Any]]:
    """Entropies of freshly initialised (untrained) networks, mean over ``n_seeds`` seeds: the baseline
    against which the trained entropies of the sweep are read (an entropy near this value says training
    did not move the state's entanglement).  Rows: model, bond_dim, and S_<bipartition>."""
    from tnmat.networks import make_network

    rows = []
    for model in models:
        for chi in ([None] if model == "dense" else sorted({int(c) for c in chis})):
            ents = [network_entanglement(make_network(model, sizes, chi, dtype=torch.float64, seed=s), model, legs,
                                         bipartitions, spectra=False) for s in range(n_seeds)]
            row: dict[str, Any] = {"model": model, "bond_dim": chi}
            for b in bipartitions:
                row[f"S_{b}"] = float(np.mean([e[b]["entropy"] for e in ents]))
            rows.append(row)
    return rows
