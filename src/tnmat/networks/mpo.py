"""Matrix product operators: the regression model y = <x| T |x> on two copies of the input (paper eq. 18,
Fig. 7b) and the linear map x -> T x between leg-structured tensors (the MPO autoencoder's encoder and
decoder, paper Fig. 18).

T[s_1..s_N; t_1..t_N] = M_1[s_1, t_1] ... M_N[s_N, t_N], cores ``M_k`` of shape (chi_{k-1}, d_out_k, d_in_k,
chi_k) with index order (left, bra/out s_k, ket/in t_k, right), open boundaries chi_0 = chi_N = 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from tnmat.networks._init import make_generator, operator_identity_core
from tnmat.networks.base import TensorNetwork, chain_to_dense
from tnmat.networks.mps import mps_cores_init

__all__ = ["MPO", "MPOMap", "mpo_apply", "operator_to_dense"]


def mpo_apply(cores: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """(T x)[b, o_1..o_N] = sum_i M_1[o_1, i_1] ... M_N[o_N, i_N] x[b, i_1..i_N] for cores (chi_l, d_out, d_in,
    chi_r), contracted site by site with the state (b, outputs done, chi, inputs to do): cost
    b * D * d * chi^2 per site, the operator is never densified."""
    b = x.shape[0]
    state = x.reshape(b, 1, 1, -1)
    for core in cores:
        p = state.shape[1]
        state = state.reshape(b, p, core.shape[0], core.shape[2], -1)
        state = torch.einsum("bpcir,coie->bpoer", state, core).reshape(b, p * core.shape[1], core.shape[-1], -1)
    return state.reshape(b, *[c.shape[1] for c in cores])


def operator_to_dense(cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """The operator of MPO cores (chi_l, d_out, d_in, chi_r) as a float64 tensor (d_out_1..d_out_N,
    d_in_1..d_in_N) (small sizes only): the chain with merged (out, in) legs, then the legs regrouped."""
    n = len(cores)
    merged = [c.reshape(c.shape[0], -1, c.shape[-1]) for c in cores]
    t = chain_to_dense(merged).reshape([s for c in cores for s in (c.shape[1], c.shape[2])])
    return t.permute([2 * k for k in range(n)] + [2 * k + 1 for k in range(n)]).contiguous()


def _half_operator(cores: list[torch.Tensor], *, left: bool) -> torch.Tensor:
    """Contract MPO cores (l, s, t, r) of one side of a cut into (chi_cut, D_half_bra, D_half_ket)."""
    op = cores[0]  # (l, S, T, r) with merged bra/ket groups
    for c in cores[1:]:
        l_, s1, t1, _ = op.shape
        op = torch.einsum("astb,bpqc->asptqc", op, c).reshape(l_, s1 * c.shape[1], t1 * c.shape[2], c.shape[3])
    if left:
        return op[0].permute(2, 0, 1)  # boundary l = 1; cut bond is the right one
    return op[..., 0]  # boundary r = 1; cut bond is the left one


class MPO(TensorNetwork):
    """y = sum_{s,t} x[s] T[s, t] x[t] with T an open-boundary MPO of uniform bond chi (paper eq. 18).

    Initialisation ``"canonical"``: the cores, viewed as an MPS with physical dimension d_k^2, are random
    right isometries, so ||T||_F = 1 exactly; for Gaussian standardised inputs E[y^2] = (tr T)^2 +
    ||T||_F^2 + tr(T^2), of order one.  ``"gaussian"`` is the naive scheme (see ``_init``).
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
        if self.init not in ("canonical", "gaussian"):
            raise ValueError(f"MPO: unknown init {init!r}; choose 'canonical' or 'gaussian'")
        g = make_generator(seed, generator)
        cores = mps_cores_init([d * d for d in self.sizes], self.bond_dim, self.init, g)
        shaped = [c.reshape(c.shape[0], d, d, c.shape[-1]) for c, d in zip(cores, self.sizes, strict=True)]
        self.cores = nn.ParameterList([nn.Parameter(c.to(dtype)) for c in shaped])

    #: largest half-operator (entries chi * D_half^2) the split contraction may build; beyond it, the sweep
    split_limit: int = 2**22

    def _forward_dense(self, x: torch.Tensor) -> torch.Tensor:
        plan = self._split_plan()
        if plan is None:
            return self._forward_sweep(x)
        return self._forward_split(x, plan)

    def _split_plan(self) -> int | None:
        """The cut m minimising the split cost chi_m * D * (D_A + D_B) per row, if that beats twice the sweep
        cost D * sum_k d_k chi_{k-1} chi_k per row, with half operators below ``split_limit`` entries."""
        n = len(self.sizes)
        if n < 2:
            return None
        dims = [c.shape[0] for c in self.cores] + [1]
        sweep = sum(d * dims[k] * dims[k + 1] for k, d in enumerate(self.sizes))
        # the split runs as two large GEMMs, measured ~2x more efficient per flop than the sweep's einsums
        best, best_cost = None, 2.0 * sweep
        for m in range(1, n):
            da, db = math.prod(self.sizes[:m]), math.prod(self.sizes[m:])
            if dims[m] * max(da, db) ** 2 > self.split_limit:
                continue
            cost = dims[m] * (da + db)
            if cost < best_cost:
                best, best_cost = m, cost
        return best

    def _forward_split(self, x: torch.Tensor, m: int) -> torch.Tensor:
        # T = sum_c L_c (x) R_c at bond m; y = <X, sum_c L_c X R_c^T> with X = x as a (D_A, D_B) matrix.
        # The half operators cost O(chi D_half^2) once per call, independent of the batch; per row the cost
        # is chi_m D (D_A + D_B), linear in chi (the sweep is quadratic).
        b = x.shape[0]
        da, db = math.prod(self.sizes[:m]), math.prod(self.sizes[m:])
        left = _half_operator(list(self.cores)[:m], left=True)  # (c, D_A, D_A)
        right = _half_operator(list(self.cores)[m:], left=False)  # (c, D_B, D_B)
        c = left.shape[0]
        xm = x.reshape(b, da, db)
        # y_b = sum_c <X, L_c X R_c^T> = sum_c <L_c^T X, X R_c^T>: two large GEMMs, then one product
        a = (left.transpose(1, 2).reshape(c * da, da) @ xm.permute(1, 0, 2).reshape(da, b * db)).reshape(c, da, b, db)
        bm = (xm.reshape(b * da, db) @ right.permute(2, 0, 1).reshape(db, c * db)).reshape(b, da, c, db)
        return torch.einsum("cibj,bicj->b", a, bm)

    def _forward_sweep(self, x: torch.Tensor) -> torch.Tensor:
        # u = T x by a sweep over the ket legs: state (b, d_1..d_k [bra, done], chi_k, d_{k+1}..d_N [ket, todo]);
        # cost b * D * d_k * chi^2 per site, then y = <x, u>
        b = x.shape[0]
        return (mpo_apply(list(self.cores), x).reshape(b, -1) * x.reshape(b, -1)).sum(-1)


    def _forward_factorised(self, cores: list[torch.Tensor]) -> torch.Tensor:
        # Fig. 8b: input cores contracted into the bra and ket legs of each MPO core, swept left to right;
        # env (b, r_bra, chi, r_ket); for product inputs (r = 1) these are (b, chi, chi) transfer matrices
        b = cores[0].shape[0]
        env = torch.ones(b, 1, 1, 1, dtype=cores[0].dtype, device=cores[0].device)
        for xc, core in zip(cores, self.cores, strict=True):
            t = torch.einsum("bicj,bisk->bcjsk", env, xc)
            t = torch.einsum("bcjsk,cste->bjkte", t, core)
            env = torch.einsum("bjkte,bjtl->bkel", t, xc)
        return env.reshape(b)

    def to_dense(self) -> torch.Tensor:
        return operator_to_dense(list(self.cores))


class MPOMap(nn.Module):
    """The linear map x (batch, d_in_1..d_in_N) -> T x (batch, d_out_1..d_out_N), T an open-boundary MPO of
    uniform bond ``bond_dim`` (the autoencoder's encoder and decoder, paper Fig. 18).  Initialised by
    :func:`~tnmat.networks._init.operator_identity_core` (identity / projection plus ``init_noise``)."""

    def __init__(self, d_in: Sequence[int], d_out: Sequence[int], bond_dim: int, *, init_noise: float,
                 generator: torch.Generator, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        n = len(d_in)
        if n == 0 or len(d_out) != n:
            raise ValueError(f"MPOMap: d_in {tuple(d_in)} and d_out {tuple(d_out)} need the same, non-zero length")
        self.d_in, self.d_out = tuple(int(d) for d in d_in), tuple(int(d) for d in d_out)
        bonds = [1] + [int(bond_dim)] * (n - 1) + [1]
        self.cores = nn.ParameterList([
            nn.Parameter(operator_identity_core(bonds[k], self.d_out[k], self.d_in[k], bonds[k + 1], init_noise,
                                                generator).to(dtype))
            for k in range(n)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mpo_apply(list(self.cores), x)

    def to_dense(self) -> torch.Tensor:
        """The operator as a float64 tensor (d_out_1..d_out_N, d_in_1..d_in_N) (small sizes only)."""
        return operator_to_dense(list(self.cores))

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_out={self.d_out}"
