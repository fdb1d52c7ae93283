"""Equivariant tensor networks: the irrep edge M stays open (paper Appendix C, Fig. 26).

* :class:`EquivariantMPS` (Fig. 26a): ``y_M = sum_s W[s] B^L[s, M]`` with ``W`` an MPS over the
  {alpha_k, n_k, l_k, k_k} legs of an equivariant descriptor B^L; the weights never touch M, so
  ``y(D B) = D y(B)`` for every rotation D = D^L(R) acting on M.
* :class:`EquivariantMPO` (Fig. 26b, zeta = 2): ``y_M = sum_{s,t} x[s] T[s, t] B^L[t, M]``, an MPO
  contracting the invariant descriptor x (bra legs) with the equivariant one (ket legs): a function that is
  linear in B^L with weights that depend on the invariants, again equivariant because only invariants
  multiply the M edge.  Bra and ket legs are paired site by site; the shorter list is padded with size-1 legs.

Inputs: the MPS takes (batch, *sizes, M); the MPO takes one packed tensor (batch, D_inv + D_eq * M) (the
training engine moves one tensor per row), built with :meth:`EquivariantMPO.pack`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from tnmat.networks._init import make_generator
from tnmat.networks.mpo import mpo_apply, operator_to_dense
from tnmat.networks.mps import MPS, mps_cores_init

__all__ = ["EquivariantMPS", "EquivariantMPO"]


class EquivariantMPS(nn.Module):
    """``y_M = <W, B[..., M]>`` with W an open-boundary MPS of bond ``bond_dim`` over ``sizes`` (Fig. 26a)."""

    def __init__(self, sizes: Sequence[int], irrep_dim: int, bond_dim: int, *, dtype: torch.dtype = torch.float64,
                 seed: int | None = None) -> None:
        super().__init__()
        if int(irrep_dim) < 1:
            raise ValueError(f"EquivariantMPS: irrep_dim must be >= 1, got {irrep_dim}")
        self.sizes = tuple(int(s) for s in sizes)
        self.irrep_dim = int(irrep_dim)
        self.mps = MPS(self.sizes, bond_dim, dtype=dtype, seed=seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, *sizes, M) -> (batch, M)."""
        if tuple(x.shape[1:]) != (*self.sizes, self.irrep_dim):
            raise ValueError(f"EquivariantMPS: input shape {tuple(x.shape)}, expected (batch, *{self.sizes}, "
                             f"{self.irrep_dim})")
        b = x.shape[0]
        rows = x.movedim(-1, 1).reshape(b * self.irrep_dim, *self.sizes)  # M becomes part of the batch
        return self.mps(rows).reshape(b, self.irrep_dim)


def _pad(a: Sequence[int], n: int) -> tuple[int, ...]:
    return tuple(int(s) for s in a) + (1,) * (n - len(a))


class EquivariantMPO(nn.Module):
    """``y_M = <x| T |B_M>``: MPO with cores (chi, d_k, e_k, chi), d = invariant (bra) leg sizes, e =
    equivariant (ket) leg sizes without M (Fig. 26b).  Canonical initialisation as :class:`~tnmat.networks.MPO`
    (the cores, as an MPS of physical dimension d_k e_k, are random right isometries: ||T||_F = 1)."""

    def __init__(self, inv_sizes: Sequence[int], eq_sizes: Sequence[int], irrep_dim: int, bond_dim: int, *,
                 dtype: torch.dtype = torch.float64, seed: int | None = None) -> None:
        super().__init__()
        n = max(len(inv_sizes), len(eq_sizes))
        self.inv_sizes, self.eq_sizes = tuple(int(s) for s in inv_sizes), tuple(int(s) for s in eq_sizes)
        self.bra, self.ket = _pad(inv_sizes, n), _pad(eq_sizes, n)
        self.irrep_dim, self.bond_dim = int(irrep_dim), int(bond_dim)
        g = make_generator(seed, None)
        cores = mps_cores_init([d * e for d, e in zip(self.bra, self.ket, strict=True)], self.bond_dim, "canonical", g)
        shaped = [c.reshape(c.shape[0], d, e, c.shape[-1]) for c, d, e in zip(cores, self.bra, self.ket, strict=True)]
        self.cores = nn.ParameterList([nn.Parameter(c.to(dtype)) for c in shaped])
        self.n_inv, self.n_eq = math.prod(self.inv_sizes), math.prod(self.eq_sizes)

    @staticmethod
    def pack(x_inv: torch.Tensor, x_eq: torch.Tensor) -> torch.Tensor:
        """(batch, *inv_sizes) and (batch, *eq_sizes, M) -> (batch, D_inv + D_eq M)."""
        b = x_inv.shape[0]
        return torch.cat([x_inv.reshape(b, -1), x_eq.reshape(b, -1)], dim=1)

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        """(batch, D_inv + D_eq M) -> (batch, M)."""
        b, m = packed.shape[0], self.irrep_dim
        if packed.shape[1:] != (self.n_inv + self.n_eq * m,):
            raise ValueError(f"EquivariantMPO: packed input shape {tuple(packed.shape)}, expected (batch, "
                             f"{self.n_inv + self.n_eq * m})")
        x = packed[:, : self.n_inv]
        ket = packed[:, self.n_inv :].reshape(b, self.n_eq, m)
        # u = T^T x by a sweep over the bra legs (the invariant side: its cost does not grow with M), then
        # y_M = <u, B_M>; the cores (chi, d, e, chi) read as an operator from d (input) to e (output)
        u = mpo_apply([c.transpose(1, 2) for c in self.cores], x.reshape(b, *self.bra))
        return torch.einsum("bq,bqm->bm", u.reshape(b, -1), ket)

    def to_dense(self) -> torch.Tensor:
        """T as (D_inv, D_eq) in float64 (small sizes only), by the chain contraction, not :meth:`forward`."""
        return operator_to_dense(list(self.cores)).reshape(self.n_inv, self.n_eq)
