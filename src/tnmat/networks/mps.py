"""Matrix product state model (paper eq. 17, Figs. 6a / 7a).

W[s_1..s_N] = A_1[s_1] A_2[s_2] ... A_N[s_N], cores ``A_k`` of shape (chi_{k-1}, d_k, chi_k) with open
boundaries chi_0 = chi_N = 1 and uniform virtual bond chi elsewhere; index order (left, physical, right).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from tnmat.networks._init import (
    effective_bonds,
    identity_noise_core,
    identity_noise_eps,
    make_generator,
    right_isometric_core,
)
from tnmat.networks.base import TensorNetwork, chain_to_dense

__all__ = ["MPS", "mps_bonds", "mps_cores_init"]

INITS = ("canonical", "identity", "gaussian")


def mps_bonds(n_sites: int, chi: int) -> list[int]:
    """Bond dimensions (chi_0, ..., chi_N) = (1, chi, ..., chi, 1)."""
    return [1] + [chi] * (n_sites - 1) + [1]


def mps_cores_init(
    phys: Sequence[int], chi: int, init: str, g: torch.Generator, *, feature_sum_one: bool = False, v: float = 1.0
) -> list[torch.Tensor]:
    """Float64 cores (chi_l, p_k, chi_r) for physical dims ``phys`` by the named scheme (see ``_init``).

    ``canonical``: random right isometries, ||W||_F = 1 exactly.  ``identity``: (I + eps G) / sqrt(p_k)
    (without the 1/sqrt(p_k) when ``feature_sum_one``: the local features sum to one, as phi = [1-x, x]).
    ``gaussian``: the naive iid N(0, 1 / (p_k sqrt(chi_l chi_r))) cores, correct only on average (kept to
    show the failure in tests).
    """
    n = len(phys)
    bonds = mps_bonds(n, chi)
    if init == "canonical":
        eff = effective_bonds(list(phys), chi)
        return [right_isometric_core(bonds[k], p, bonds[k + 1], eff[k], eff[k + 1], g) for k, p in enumerate(phys)]
    if init == "identity":
        eps = identity_noise_eps(n, chi, v)
        return [
            identity_noise_core(bonds[k], p, bonds[k + 1], eps, 1.0 if feature_sum_one else p**-0.5, g)
            for k, p in enumerate(phys)
        ]
    if init == "gaussian":
        return [
            torch.randn(bonds[k], p, bonds[k + 1], generator=g, dtype=torch.float64)
            / (p * (bonds[k] * bonds[k + 1]) ** 0.5) ** 0.5
            for k, p in enumerate(phys)
        ]
    raise ValueError(f"unknown init {init!r}; choose one of {INITS}")


class MPS(TensorNetwork):
    """Open-boundary MPS y = sum_s x[s] A_1[s_1] ... A_N[s_N] (paper eq. 17).

    Parameters
    ----------
    sizes: physical dimensions d_k of the legs (one site per leg, in leg order).
    bond_dim: uniform virtual bond chi.
    init: ``"canonical"`` (default; random right-isometric cores, ||W||_F = 1 exactly, see ``_init``),
        ``"identity"`` (truncated identity plus noise, scaled by 1/sqrt(d_k)) or ``"gaussian"`` (naive).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        bond_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        init: str | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(sizes, bond_dim)
        self.init = init or "canonical"
        g = make_generator(seed, generator)
        cores = mps_cores_init(self.sizes, self.bond_dim, self.init, g)
        self.cores = nn.ParameterList([nn.Parameter(c.to(dtype)) for c in cores])

    def row_entries(self) -> int:
        """Largest state of :meth:`_forward_dense` per row: chi_k times the legs d_{k+1} ... d_N."""
        rest = [math.prod(self.sizes[k + 1 :]) for k in range(len(self.sizes))]
        return max(math.prod(self.sizes), *(int(c.shape[-1]) * r for c, r in zip(self.cores, rest, strict=True)))

    def _forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        # Fig. 8b order: contract the input into core 1, then sweep; state (b, chi_k, d_{k+1} ... d_N)
        b = x.shape[0]
        state = x.reshape(b, 1, -1)
        for core, d in zip(self.cores, self.sizes, strict=True):
            state = state.reshape(b, core.shape[0], d, -1)
            state = torch.einsum("bcdr,cde->ber", state, core)
        return state.reshape(b)

    def _forward_factorised(self, cores: list[torch.Tensor]) -> torch.Tensor:
        # transfer matrices of input core x network core, swept left to right: env (b, r_k, chi_k)
        b = cores[0].shape[0]
        env = torch.ones(b, 1, 1, dtype=cores[0].dtype, device=cores[0].device)
        for xc, core in zip(cores, self.cores, strict=True):
            t = torch.einsum("bia,bisj->basj", env, xc)
            env = torch.einsum("basj,asc->bjc", t, core)
        return env.reshape(b)

    def to_dense(self) -> torch.Tensor:
        return chain_to_dense(list(self.cores))
