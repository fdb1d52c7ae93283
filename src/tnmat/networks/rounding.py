"""Rounding of an MPS or TTN: the smallest virtual bonds that keep its weight tensor to a relative tolerance.

The weight tensor W of a network does not change under a gauge.  :func:`round_network`

1. orthogonalises every core (MPS, left to right) or node (TTN, leaves to top) towards one centre by QR,
   so the part of the network on one side of any bond e is an isometry L_e and W = L_e R_e;
2. carries from the centre, bond by bond, a factor G_e with G_e G_e^T = R_e R_e^T: its singular values are
   those of W matricised across e (the Schmidt values of the bond), computed by SVDs of small factors
   (never of W, never squared);
3. keeps on every bond the leading singular vectors P_e and inserts the projector P_e P_e^T there.

Inserting the projector Pi_e on bond e moves W by ||W - Pi_e W||_F = eps_e, the norm of the discarded
singular values; all of them together move it by at most sum_e eps_e (each Pi_e has norm 1), so each of the
n bonds discards at most ``rtol * ||W||_F / n``: ||W - W'||_F <= rtol ||W||_F.  With ``rtol=1e-12`` this
is lossless up to rounding errors; it removes what a direct sum (:func:`tnmat.networks.direct_sum`) adds
beyond the rank of W, e.g. the concatenated bottom nodes of a merged TTN, whose output can never exceed
the product of the two legs below.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from tnmat.networks.mps import MPS
from tnmat.networks.tree import MERA, TTN

__all__ = ["round_network"]


def _keep(s: torch.Tensor, tol: float) -> int:
    """Fewest leading singular values whose discarded tail has norm <= tol (at least one)."""
    tail = torch.flip(torch.cumsum(torch.flip(s.square(), [0]), 0), [0])  # tail[k] = sum_{j >= k} s_j^2
    over = torch.nonzero(tail > tol * tol).flatten()
    return max(1, int(over[-1]) + 1 if len(over) else 0)


def _basis(m: torch.Tensor, tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, G): the leading left singular vectors of m kept at ``tol``, and the factor U S of m (all of it,
    to carry on: the discarded part still enters the other bonds' singular values)."""
    u, s, _ = torch.linalg.svd(m, full_matrices=False)
    return u[:, : _keep(s, tol)], u * s


def _round_mps(cores: list[torch.Tensor], rtol: float) -> list[torch.Tensor]:
    n = len(cores)
    for k in range(n - 1):  # left-orthogonal: cores 0..k form an isometry from their legs to bond k
        left, d, right = cores[k].shape
        q, r = torch.linalg.qr(cores[k].reshape(left * d, right))
        cores[k] = q.reshape(left, d, -1)
        cores[k + 1] = torch.einsum("qr,rds->qds", r, cores[k + 1])
    tol = rtol * float(cores[-1].norm()) / max(1, n - 1)
    proj: list[torch.Tensor] = [torch.ones(1, 1, dtype=cores[0].dtype)] * (n + 1)
    g = torch.ones(1, 1, dtype=cores[0].dtype)
    for k in range(n - 1, 0, -1):  # bond k-1 (left of core k): factor of everything to its right
        m = torch.einsum("ldr,rm->ldm", cores[k], g)
        proj[k], g = _basis(m.reshape(m.shape[0], -1), tol)
    # proj[k] is the basis of the bond left of core k; proj[0] and proj[n] are the boundary bonds (1 x 1)
    return [torch.einsum("ldr,li,rj->idj", c, proj[k], proj[k + 1]) for k, c in enumerate(cores)]


def _round_ttn(layers: list[list[torch.Tensor]], rtol: float) -> list[list[torch.Tensor]]:
    n_layers = len(layers)
    for li in range(n_layers - 1):  # leaves to top: every non-top node an isometry (d_a d_b) -> c
        for j, node in enumerate(layers[li]):
            a, b, c = node.shape
            q, r = torch.linalg.qr(node.reshape(a * b, c))
            layers[li][j] = q.reshape(a, b, -1)
            parent = layers[li + 1][j // 2]
            eq = "kc,cbd->kbd" if j % 2 == 0 else "kc,acd->akd"
            layers[li + 1][j // 2] = torch.einsum(eq, r, parent)
    n_bonds = sum(len(nodes) for nodes in layers[:-1])
    top = layers[-1][0]
    tol = rtol * float(top.norm()) / max(1, n_bonds)
    one = torch.ones(1, 1, dtype=top.dtype)
    out_proj = [[one] * len(nodes) for nodes in layers]  # basis of every node's output bond
    factors = [one]  # top-down: factor G of the environment of each node's output bond, in node order
    for li in range(n_layers - 1, 0, -1):
        below = []
        for j, node in enumerate(layers[li]):
            m = torch.einsum("abc,cm->abm", node, factors[j])
            pa, ga = _basis(m.reshape(m.shape[0], -1), tol)
            pb, gb = _basis(m.permute(1, 0, 2).reshape(m.shape[1], -1), tol)
            out_proj[li - 1][2 * j], out_proj[li - 1][2 * j + 1] = pa, pb
            below += [ga, gb]
        factors = below
    rounded = []
    for li, nodes in enumerate(layers):
        row = []
        for j, node in enumerate(nodes):
            # the input bonds are the outputs of the two nodes below (physical legs in the bottom layer)
            w = node if li == 0 else torch.einsum("abc,ai,bj->ijc", node, out_proj[li - 1][2 * j],
                                                  out_proj[li - 1][2 * j + 1])
            row.append(torch.einsum("abc,ck->abk", w, out_proj[li][j]))
        rounded.append(row)
    return rounded


def round_network(net: MPS | TTN, rtol: float = 1e-12) -> MPS | TTN:
    """A copy of ``net`` (MPS or TTN) with the smallest virtual bonds that keep its weight tensor W to
    ||W - W'||_F <= rtol ||W||_F (module docstring); computed in float64, returned in ``net``'s dtype."""
    if not isinstance(net, (MPS, TTN)) or isinstance(net, MERA):
        raise ValueError(f"round_network: {type(net).__name__} is not supported (MPS and TTN only; the MERA's "
                         "disentanglers act across the bonds)")
    if not rtol >= 0:
        raise ValueError(f"round_network: rtol must be >= 0, got {rtol!r}")
    out = copy.deepcopy(net)
    dtype = next(net.parameters()).dtype
    with torch.no_grad():
        if isinstance(net, MPS):
            cores = _round_mps([c.detach().cpu().double() for c in net.cores], rtol)
            out.cores = nn.ParameterList([nn.Parameter(c.to(dtype).contiguous()) for c in cores])
            bonds = [int(c.shape[-1]) for c in cores[:-1]]
        else:
            layers = _round_ttn([[w.detach().cpu().double() for w in layer.isometries] for layer in net.layers],
                                rtol)
            for layer, nodes in zip(out.layers, layers, strict=True):
                layer.isometries = nn.ParameterList([nn.Parameter(w.to(dtype).contiguous()) for w in nodes])
            bonds = [int(w.shape[-1]) for nodes in layers[:-1] for w in nodes]
    out.bond_dim = max(bonds, default=1)
    return out.to(next(net.parameters()).device)
