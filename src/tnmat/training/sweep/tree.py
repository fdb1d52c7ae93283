"""Two-site sweeps over the binary tree tensor network (TTN, paper Fig. 29a).

Every step merges a node v = (layer l, position j) with its parent P: y is linear in the merged tensor
M[a, b, s, o] (v's two input legs, P's other input leg, P's output), so the local problem is a ridge
regression as for the chains.  The local features Phi_b = dy_b/dM are computed exactly in one backward
pass: v is replaced by the reshape that merges its two legs, P by a per-row copy, and the gradient of
sum_b y_b with respect to the per-row copies is Phi (the prediction is linear in them).  The input of the
active layer, h_l = x contracted with every layer below, is cached per data set: in an upward pass it is
recomputed once per layer, in a downward pass the layers below the active one are those of the upward
pass, so the cache stays valid.

Gauge: every node other than the gauge centre is an isometry towards the centre ((other legs) -> leg
towards the centre has orthonormal columns), so ||W||_F = ||centre||_F.  The centre is moved along the
tree path by QR decompositions before each step and sits on P when the merged pair is solved; the split
M = U S V^T keeps v = U (isometric upwards) and P = S V^T.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from tnmat.networks.tree import padded_sites
from tnmat.training.sweep.data import SweepData
from tnmat.training.sweep.solve import refine_split, truncated_split

__all__ = ["TreeSweeper"]

Node = tuple[int, int]


def _apply_node(x: torch.Tensor, node: torch.Tensor, p: int) -> torch.Tensor:
    """Contract legs p, p+1 of x (rows, *dims) with node (d_a, d_b, c) (the same as the TTN's forward)."""
    n, dims = x.shape[0], x.shape[1:]
    xr = x.reshape(n, dims[:p].numel(), dims[p], dims[p + 1], dims[p + 2:].numel())
    return torch.einsum("zlabr,abc->zlcr", xr, node).reshape(n, *dims[:p], node.shape[-1], *dims[p + 2:])


class TreeSweeper:
    """Two-site ALS over a TTN given as ``nodes[layer][j]`` (d_a, d_b, c); the top layer has one node."""

    def __init__(self, nodes: list[list[torch.Tensor]], sizes: tuple[int, ...], datasets: list[SweepData], *,
                 max_bond: int, cutoff: float, refine_solves: int = 1) -> None:
        self.leaf = padded_sites(sizes)
        self.refine_solves = int(refine_solves)
        self.nodes = [[w.to(torch.float64).clone() for w in layer] for layer in nodes]
        self.max_bond, self.cutoff = int(max_bond), float(cutoff)
        self.data = []
        for d in datasets:  # the TTN is linear in its input: average per-atom rows, densify factorised ones
            x = d.as_dense()
            if d.groups is not None:
                x = d.aggregate(x)
            self.data.append(x.reshape(x.shape[0], *self.leaf))
        self.cache: list[dict[int, torch.Tensor]] = [{0: x} for x in self.data]
        self.discarded: list[float] = []
        self._canonicalise()

    # ---------------------------------------------------------------- gauge
    def _canonicalise(self) -> None:
        """Make every non-top node an upward isometry (exact: R factors pushed into the parents)."""
        for l in range(len(self.nodes) - 1):
            for j in range(len(self.nodes[l])):
                self._push_up((l, j))
        self.centre: Node = (len(self.nodes) - 1, 0)

    def _push_up(self, u: Node) -> None:
        l, j = u
        w = self.nodes[l][j]
        a, b, c = w.shape
        q, r = torch.linalg.qr(w.reshape(a * b, c))
        self.nodes[l][j] = q.reshape(a, b, -1)
        par = self.nodes[l + 1][j // 2]
        self.nodes[l + 1][j // 2] = (torch.einsum("rc,cyo->ryo", r, par) if j % 2 == 0
                                     else torch.einsum("rc,xco->xro", r, par))

    def _push_down(self, u: Node, child_j: int) -> None:
        """Make node u isometric towards its child ``child_j`` (position in the layer below)."""
        l, j = u
        w = self.nodes[l][j]
        side = child_j % 2
        wm = w.permute(1, 2, 0) if side == 0 else w.permute(0, 2, 1)  # child leg last
        s1, s2, x = wm.shape
        q, r = torch.linalg.qr(wm.reshape(s1 * s2, x))
        q = q.reshape(s1, s2, -1)
        self.nodes[l][j] = q.permute(2, 0, 1) if side == 0 else q.permute(0, 2, 1)
        self.nodes[l - 1][child_j] = torch.einsum("abx,rx->abr", self.nodes[l - 1][child_j], r)

    def _ancestors(self, u: Node) -> list[Node]:
        out = [u]
        while out[-1][0] < len(self.nodes) - 1:
            l, j = out[-1]
            out.append((l + 1, j // 2))
        return out

    def _move_centre(self, target: Node) -> None:
        up_c, up_t = self._ancestors(self.centre), self._ancestors(target)
        lca = next(u for u in up_c if u in up_t)
        for u in up_c[: up_c.index(lca)]:
            self._push_up(u)
        down = up_t[: up_t.index(lca) + 1][::-1]  # lca ... target
        for u, child in zip(down[:-1], down[1:], strict=True):
            self._push_down(u, child[1])
        self.centre = target

    # ---------------------------------------------------------------- local features
    def _h(self, i: int, l: int) -> torch.Tensor:
        """Input of layer l (x contracted with the layers below), built lazily from the highest cached layer;
        :meth:`run_pass` drops the cache above layer 0 before every upward pass (see the module docstring)."""
        cache = self.cache[i]
        m = max(k for k in cache if k <= l)
        while m < l:
            x = cache[m]
            for jj, w in enumerate(self.nodes[m]):
                x = _apply_node(x, w, jj)
            m += 1
            cache[m] = x
        return cache[l]

    def _phi(self, i: int, v: Node) -> torch.Tensor:
        """Per-structure local features (n, a, b, s, o) of the pair (v, parent(v))."""
        l, j = v
        x = self._h(i, l)
        n = x.shape[0]
        for jj, w in enumerate(self.nodes[l]):
            if jj == j:
                dims = x.shape[1:]
                x = x.reshape(n, *dims[:jj], dims[jj] * dims[jj + 1], *dims[jj + 2:])
            else:
                x = _apply_node(x, w, jj)
        q = j // 2
        dims = x.shape[1:]
        par = torch.zeros(n, dims[2 * q], dims[2 * q + 1], self.nodes[l + 1][q].shape[2], dtype=torch.float64,
                          requires_grad=True)
        for jj, w in enumerate(self.nodes[l + 1]):
            if jj == q:
                d = x.shape[1:]
                xr = x.reshape(n, d[:jj].numel(), d[jj], d[jj + 1], d[jj + 2:].numel())
                x = torch.einsum("zlabr,zabc->zlcr", xr, par).reshape(n, *d[:jj], par.shape[-1], *d[jj + 2:])
            else:
                x = _apply_node(x, w, jj)
        for layer in self.nodes[l + 2:]:
            for jj, w in enumerate(layer):
                x = _apply_node(x, w, jj)
        (phi,) = torch.autograd.grad(x.sum(), par)
        a, b = self.nodes[l][j].shape[:2]
        if j % 2 == 1:
            phi = phi.permute(0, 2, 1, 3)
        return phi.reshape(n, a, b, phi.shape[2], phi.shape[3])

    # ---------------------------------------------------------------- passes
    def pairs(self, upward: bool) -> list[Node]:
        out = [(l, j) for l in range(len(self.nodes) - 1) for j in range(len(self.nodes[l]))]
        return out if upward else out[::-1]

    def run_pass(self, direction: str, solve: Callable[[list[torch.Tensor], dict], tuple[torch.Tensor, float]]
                 ) -> None:
        """One pass over all (node, parent) pairs: bottom-up (``"right"``) or top-down (``"left"``)."""
        upward = direction == "right"
        if len(self.nodes) == 1:  # two legs: the top node alone is a linear model
            top = self.nodes[0][0]
            phis = [x.reshape(x.shape[0], *top.shape) for x in self.data]
            m, _ = solve(phis, {"node": (0, 0), "direction": direction})
            self.nodes[0][0] = m.reshape(top.shape)
            self.last = None
            return
        if upward:
            self.cache = [{0: x} for x in self.data]
        with torch.enable_grad():
            for v in self.pairs(upward):
                l, j = v
                self._move_centre((l + 1, j // 2))
                phis = [self._phi(i, v) for i in range(len(self.data))]
                a, b, s, o = phis[0].shape[1:]
                m, _ = solve(phis, {"node": v, "direction": direction, "stage": "pair",
                                    "current": self.merged(v).reshape(-1)})
                left, right, disc = truncated_split(m.reshape(a * b, s * o), self.max_bond, self.cutoff,
                                                    absorb="right")
                self.discarded.append(disc)

                def install(lf: torch.Tensor, rt: torch.Tensor, v: Node = v, shape: tuple = (a, b, s, o)) -> None:
                    par = rt.reshape(-1, shape[2], shape[3])
                    self.nodes[v[0]][v[1]] = lf.reshape(shape[0], shape[1], -1)
                    self.nodes[v[0] + 1][v[1] // 2] = par if v[1] % 2 == 0 else par.permute(1, 0, 2).contiguous()

                # re-fit the truncated pair in the data's metric, ending on the parent (sweep_solve.refine_split)
                refine_split([phi.reshape(phi.shape[0], a * b, s * o) for phi in phis], left, right, solve,
                             {"node": (l + 1, j // 2), "direction": direction}, absorb="right",
                             n_solves=self.refine_solves, install=install)
                self.last = v

    def merged_last(self) -> torch.Tensor:
        if self.last is None:
            return self.nodes[0][0]
        return self.merged(self.last)

    def merged(self, v: Node) -> torch.Tensor:
        """The merged tensor M[a, b, s, o] of node v and its parent."""
        l, j = v
        par = self.nodes[l + 1][j // 2]
        if j % 2 == 1:
            par = par.permute(1, 0, 2)
        return torch.einsum("abc,cso->abso", self.nodes[l][j], par)

    def snapshot(self) -> tuple[list[list[torch.Tensor]], Node]:
        return [[w.clone() for w in layer] for layer in self.nodes], self.centre

    def restore(self, state: tuple[list[list[torch.Tensor]], Node]) -> None:
        self.nodes = [[w.clone() for w in layer] for layer in state[0]]
        self.centre = state[1]

    def install(self, net: nn.Module) -> None:
        """Write the isometries into the TTN ``net`` (contiguous copies in its dtype)."""
        dtype = next(net.parameters()).dtype
        for layer, nodes in zip(net.layers, self.nodes, strict=True):
            layer.isometries = nn.ParameterList([nn.Parameter(w.to(dtype).contiguous().clone()) for w in nodes])

    @property
    def bond_dims(self) -> list[int]:
        return [int(w.shape[2]) for layer in self.nodes[:-1] for w in layer]
