"""Two-site sweeps over chain networks: the MPS (y = <W, x>) and the MPO (y = <x|T|x>), paper eqs. 17-18.

The MPO is treated as an MPS with physical index (s, t) of size d_k^2 on the doubled input x (x) x: each
core of T appears once in <x|T|x>, so the prediction is linear in any merged pair as for the MPS.

Environments (DMRG style) are cached per data set and updated by one core per step:

* dense MPS inputs: during a right pass, x contracted with the left cores, XL (rows, chi_k, d_k ... d_N),
  and the cores-only right blocks (chi_j, d_j ... d_N); mirrored during a left pass;
* factorised inputs (MPS, and every MPO input, dense rows being decomposed exactly per row): per-row left
  and right transfer environments (rows, r, chi) for the MPS, (rows, r_bra, chi, r_ket) for the MPO.

Gauge: before a right pass every core right of the active pair is right-orthonormal; the split puts U on
the left core and S V^T on the right one, and the left pass mirrors it, so the active pair always holds
the whole norm (||W||_F = ||M||_F) and the local ridge penalty equals the global one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from tnmat.training.sweep.data import SweepData
from tnmat.training.sweep.solve import refine_split, truncated_split

__all__ = ["ChainSweeper", "right_canonicalise"]

#: largest number of float64 entries of a per-row local feature block built at once (rows are chunked)
CHUNK_ENTRIES = 2**24


def right_canonicalise(cores: list[torch.Tensor]) -> list[torch.Tensor]:
    """Same tensor, cores 1..N-1 right-orthonormal (sum_{s,r} A[a,s,r] A[a',s,r] = delta), norm on core 0."""
    cores = [c.to(torch.float64).clone() for c in cores]
    for k in range(len(cores) - 1, 0, -1):
        a, p, b = cores[k].shape
        q, r = torch.linalg.qr(cores[k].reshape(a, p * b).T)  # (p b, a') and (a', a)
        cores[k] = q.T.reshape(-1, p, b)
        cores[k - 1] = torch.einsum("lsa,ba->lsb", cores[k - 1], r)
    return cores


class _Env:
    """Cached environments of one data set for the current pass."""

    def __init__(self, data: SweepData, copies: int, phys: list[int]) -> None:
        self.data = data
        self.copies = copies
        self.dense = copies == 1 and not data.factorised
        self.phys = phys
        self.n = data.n_rows
        if self.dense:
            self.x = data.x.reshape(self.n, -1)
        else:
            self.xc = data.as_cores()

    # ---------------------------------------------------------------- pass set-up
    def start(self, cores: list[torch.Tensor], direction: str) -> None:
        n, N = self.n, len(cores)
        if self.dense:
            if direction == "right":
                self.cur = self.x.reshape(n, 1, -1)  # XL
                blocks = [torch.ones(1, 1, dtype=torch.float64)]
                for c in reversed(cores[2:]):
                    blocks.append(torch.einsum("asb,bR->asR", c, blocks[-1]).reshape(c.shape[0], -1))
                self.blocks = {N - j: b for j, b in enumerate(blocks)}  # right blocks RB[j], j = N..2
            else:
                self.cur = self.x.reshape(n, -1, 1)  # XR
                blocks = [torch.ones(1, 1, dtype=torch.float64)]
                for c in cores[:-2]:
                    blocks.append(torch.einsum("La,asb->Lsb", blocks[-1], c).reshape(-1, c.shape[2]))
                self.blocks = dict(enumerate(blocks))  # left blocks LB[j], j = 0..N-2
            return
        ones = torch.ones(n, *([1] * (1 + self.copies)), dtype=torch.float64)
        if direction == "right":
            self.cur = ones  # left env L[k]
            envs = {N: ones}
            for j in range(N - 1, 1, -1):
                envs[j] = self._grow_right(envs[j + 1], cores[j], j)
        else:
            self.cur = ones  # right env R[k + 2]
            envs = {0: ones}
            for j in range(0, N - 2):
                envs[j + 1] = self._grow_left(envs[j], cores[j], j)
        self.envs = envs

    # ---------------------------------------------------------------- factorised transfer steps
    def _grow_left(self, env: torch.Tensor, core: torch.Tensor, j: int, rows: slice = slice(None)) -> torch.Tensor:
        x = self.xc[j][rows]
        if self.copies == 1:
            return torch.einsum("nasj,asb->njb", torch.einsum("nia,nisj->nasj", env, x), core)
        d = self.phys[j]
        t = torch.einsum("niaj,nisk->najsk", env, x)
        t = torch.einsum("najsk,astb->njkbt", t, core.reshape(core.shape[0], d, d, -1))
        return torch.einsum("njkbt,njtl->nkbl", t, x)

    def _grow_right(self, env: torch.Tensor, core: torch.Tensor, j: int) -> torch.Tensor:
        x = self.xc[j]
        if self.copies == 1:
            return torch.einsum("nisb,asb->nia", torch.einsum("nisj,njb->nisb", x, env), core)
        d = self.phys[j]
        t = torch.einsum("nkbl,njtl->nkbjt", env, x)  # env (n, i', b, j')
        t = torch.einsum("nkbjt,astb->nkajs", t, core.reshape(core.shape[0], d, d, -1))
        return torch.einsum("nkajs,nisk->niaj", t, x)

    # ---------------------------------------------------------------- local features
    def phi(self, k: int, direction: str) -> torch.Tensor:
        """Per-structure local features (n_structures, chi_k, p_k, p_{k+1}, chi_{k+2}) of the pair (k, k+1)."""
        n = self.n
        p1, p2 = self.phys[k] ** self.copies, self.phys[k + 1] ** self.copies
        if self.dense:
            if direction == "right":
                xl, rb = self.cur, self.blocks[k + 2]
                out = torch.einsum("nasR,cR->nasc", xl.reshape(n, xl.shape[1], p1 * p2, -1), rb)
            else:
                xr, lb = self.cur, self.blocks[k]
                out = torch.einsum("nLsc,La->nasc", xr.reshape(n, lb.shape[0], p1 * p2, xr.shape[-1]), lb)
            return self.data.aggregate(out.reshape(n, out.shape[1], p1, p2, out.shape[-1]))
        left = self.cur if direction == "right" else self.envs[k]
        right = self.envs[k + 2] if direction == "right" else self.cur
        a, c = left.shape[2], right.shape[2]  # (rows, r, chi) or (rows, r_bra, chi, r_ket)
        per_row = a * p1 * p2 * c
        step = max(1, CHUNK_ENTRIES // max(1, per_row * (4 if self.copies == 2 else 1)))
        out = torch.zeros(self.data.n_structures, a, p1, p2, c, dtype=torch.float64)
        for s in range(0, n, step):
            rows = slice(s, min(n, s + step))
            blk = self._phi_rows(k, left[rows], right[rows], rows).reshape(-1, a, p1, p2, c)
            if self.data.groups is None:
                out[rows] = blk
            else:
                g = self.data.groups[rows]
                out.index_add_(0, g, blk)
        if self.data.groups is not None:
            out *= self.data._inv_counts.reshape(-1, 1, 1, 1, 1)
        return out

    def _phi_rows(self, k: int, left: torch.Tensor, right: torch.Tensor, rows: slice) -> torch.Tensor:
        x1, x2 = self.xc[k][rows], self.xc[k + 1][rows]
        if self.copies == 1:
            t = torch.einsum("nia,nisj->nasj", left, x1)
            t = torch.einsum("nasj,njtl->nastl", t, x2)
            return torch.einsum("nastl,nlc->nastc", t, right)
        lp = torch.einsum("najsk,njtl->nastkl", torch.einsum("niaj,nisk->najsk", left, x1), x1)
        rp = torch.einsum("nkucq,nlvq->nkluvc", torch.einsum("nkum,nmcq->nkucq", x2, right), x2)
        return torch.einsum("nastkl,nkluvc->nastuvc", lp, rp)

    # ---------------------------------------------------------------- moving on
    def advance(self, k: int, direction: str, core: torch.Tensor) -> None:
        """Absorb the new left core k (right pass) or right core k + 1 (left pass) into the environment."""
        n = self.n
        if self.dense:
            if direction == "right":
                a, p, b = core.shape
                self.cur = torch.einsum("nasR,asb->nbR", self.cur.reshape(n, a, p, -1), core)
            else:
                a, p, b = core.shape
                self.cur = torch.einsum("nLsb,asb->nLa", self.cur.reshape(n, -1, p, b), core)
            return
        if direction == "right":
            self.cur = self._grow_left(self.cur, core, k)
        else:
            self.cur = self._grow_right(self.cur, core, k + 1)


class ChainSweeper:
    """Two-site alternating least squares over an open chain of cores (l, p_k, r), p_k = d_k^copies.

    ``solve(phis, step)`` receives the per-structure local features of every data set (in the order given)
    and returns (M, intercept) with M of shape (chi_k, p_k, p_{k+1}, chi_{k+2}); the sweeper splits M by a
    truncated SVD (``max_bond``, relative ``cutoff``) and moves the gauge centre."""

    def __init__(self, cores: list[torch.Tensor], sizes: tuple[int, ...], copies: int, datasets: list[SweepData],
                 *, max_bond: int, cutoff: float, refine_solves: int = 1) -> None:
        if len(cores) < 2:
            raise ValueError("ChainSweeper: two-site sweeps need at least two sites")
        self.sizes, self.copies = tuple(sizes), copies
        self.cores = right_canonicalise([c.reshape(c.shape[0], -1, c.shape[-1]) for c in cores])
        self.max_bond, self.cutoff, self.refine_solves = int(max_bond), float(cutoff), int(refine_solves)
        # inputs with their own contraction (e.g. the factorised bispectrum) supply their environments
        self.envs = [d.chain_env(copies, self.sizes) if hasattr(d, "chain_env") else _Env(d, copies, list(self.sizes))
                     for d in datasets]
        self.discarded: list[float] = []

    @property
    def bond_dims(self) -> list[int]:
        return [int(c.shape[2]) for c in self.cores[:-1]]

    def run_pass(self, direction: str, solve: Callable[[list[torch.Tensor], dict], tuple[torch.Tensor, float]]
                 ) -> None:
        """One pass over all pairs, left to right (``"right"``) or right to left (``"left"``)."""
        n_sites = len(self.cores)
        for env in self.envs:
            env.start(self.cores, direction)
        ks = range(n_sites - 1) if direction == "right" else range(n_sites - 2, -1, -1)
        for k in ks:
            self.last_k = k
            phis = [env.phi(k, direction) for env in self.envs]
            a, p1, p2, c = phis[0].shape[1:]
            m, _ = solve(phis, {"site": k, "direction": direction, "stage": "pair",
                                "current": self.merged(k).reshape(-1)})
            # the allowed rank: the cap, and never more than the dimensions on either side of the bond
            cap = min(self.max_bond, math.prod(self.sizes[: k + 1]) ** self.copies,
                      math.prod(self.sizes[k + 1:]) ** self.copies)
            left, right, disc = truncated_split(m.reshape(a * p1, p2 * c), cap, self.cutoff,
                                                absorb="right" if direction == "right" else "left")
            self.discarded.append(disc)

            def install(lf: torch.Tensor, rt: torch.Tensor, k: int = k, shape: tuple = (a, p1, p2, c)) -> None:
                self.cores[k] = lf.reshape(shape[0], shape[1], -1)
                self.cores[k + 1] = rt.reshape(-1, shape[2], shape[3])

            # re-fit the truncated pair in the data's metric, ending on the factor that carries the norm
            # (the split alone keeps the largest weights, not the best fit: sweep_solve.refine_split)
            refine_split([phi.reshape(phi.shape[0], a * p1, p2 * c) for phi in phis], left, right, solve,
                         {"site": k + 1 if direction == "right" else k, "direction": direction},
                         absorb="right" if direction == "right" else "left", n_solves=self.refine_solves,
                         install=install)
            for env in self.envs:
                env.advance(k, direction, self.cores[k] if direction == "right" else self.cores[k + 1])

    def snapshot(self) -> list[torch.Tensor]:
        return [c.clone() for c in self.cores]

    def restore(self, state: list[torch.Tensor]) -> None:
        self.cores = [c.clone() for c in state]

    def merged_last(self) -> torch.Tensor:
        return self.merged(self.last_k)

    def merged(self, k: int) -> torch.Tensor:
        """The current merged pair (k, k + 1) (chi_k, p_k, p_{k+1}, chi_{k+2})."""
        return torch.einsum("asb,btc->astc", self.cores[k], self.cores[k + 1])

    def install(self, net: nn.Module) -> None:
        """Write the cores into ``net`` (contiguous, as saving and the forward's reshapes expect)."""
        dtype = next(net.parameters()).dtype
        net.cores = nn.ParameterList([nn.Parameter(c.to(dtype).contiguous()) for c in self.network_cores()])

    def network_cores(self) -> list[torch.Tensor]:
        """Cores in the network's layout: (l, d, r) for the MPS, (l, d, d, r) for the MPO."""
        if self.copies == 1:
            return [c.clone() for c in self.cores]
        return [c.reshape(c.shape[0], d, d, c.shape[2]).clone() for c, d in zip(self.cores, self.sizes, strict=True)]
