"""The bispectrum (nu = 3) as a factorised input of the sweeping fitter: neither the dense input nor a dense
weight is ever built.

Per atom i, :class:`~tnmat.descriptors.Invariants` (order 3, the left-comb fusion tree ending on irrep 0) is

    B3_i[a1 n1 l1, a2 n2 l2, a3 n3 l3] = sum_{m1 m2 m3} C[l1m1, l2m2, l3m3]
                                         A_i[a1 n1 l1m1] A_i[a2 n2 l2m2] A_i[a3 n3 l3m3],
    C[l1m1, l2m2, l3m3] = sum_M CG(l1 l2 l3)[m1 m2 M] CG(l3 l3 0)[M m3 0]      (real-basis CG)

with A the density expansion (:class:`~tnmat.descriptors.AtomicDensity`; flat index lm = l^2 + l + m), and
the structure's input is the mean over its atoms (times a one-hot leg ``c`` of the centre species when
``center_species``; eq. 22).  The network is a standard :class:`~tnmat.networks.MPS` over the legs in *slot
order* ``[c] a1 n1 l1 a2 n2 l2 a3 n3 l3`` (the repository's legs, permuted by name), so its prediction is
<W|B3> on the dense bispectrum.

Per atom the MPS contracts slot by slot: X_s[i, chi_in, lm, chi_out] = sum_{a n} S_s[chi_in, a, n, l(lm),
chi_out] A_i[a, n, lm] with S_s the slot's three cores, and y_i = sum C[p, q, r] X1[i, p, b] X2[i, b, q, g]
X3[i, g, r] (X1 contracted with the centre leg's row c_i).  The largest per-atom intermediates have
chi^2 (l_max + 1)^4 s entries, never the (s n (l_max + 1))^3 of B3.  The design rows of a merged pair of
cores (the sweep's local features) are dy_i/dM per atom: the slots away from the pair contracted into a
"rest" R_s = dy_i/dX_s (or, for a pair across two slots, the two open slots joined through C), then
averaged over the atoms of each structure (atoms chunked by structure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tnmat.so3 import real_clebsch_gordan

__all__ = ["BispectrumInput", "coupling_tensor", "slot_legs"]

#: per-chunk budget of float64 entries of the largest per-atom intermediate (chunks hold whole structures)
CHUNK_ENTRIES = 2**23


def coupling_tensor(l_max: int) -> torch.Tensor:
    """C[(l1 m1), (l2 m2), (l3 m3)] ((l_max+1)^2 each, float64) of the bispectrum's fusion tree, zero off the
    triangle; intermediate irreps above l_max drop out (the last coupling forces k2 = l3)."""
    p = (l_max + 1) ** 2
    c = torch.zeros(p, p, p, dtype=torch.float64)
    for l1 in range(l_max + 1):
        for l2 in range(l_max + 1):
            for l3 in range(abs(l1 - l2), min(l1 + l2, l_max) + 1):
                cg = np.einsum("abM,Mc->abc", real_clebsch_gordan(l1, l2, l3), real_clebsch_gordan(l3, l3, 0)[:, :, 0])
                c[l1 * l1:(l1 + 1) ** 2, l2 * l2:(l2 + 1) ** 2, l3 * l3:(l3 + 1) ** 2] = torch.from_numpy(cg)
    return c


def slot_legs(center_species: bool) -> tuple[str, ...]:
    """Leg names in slot order (the names of :class:`~tnmat.descriptors.Invariants`' legs)."""
    return ("c",) * center_species + tuple(f"{x}{k}" for k in (1, 2, 3) for x in ("a", "n", "l"))


@dataclass
class BispectrumInput:
    """Per-atom density expansions of a set of structures: the bispectrum input in factorised form.

    a: (atoms, species, n_max, (l_max+1)^2), atoms of one structure consecutive, structures in order;
    species: (atoms,) centre-species index; groups: (atoms,) structure index (non-decreasing).
    precision: "float64" (default) or "float32", the dtype of the stored expansions and of the per-atom
    contractions (float32: half the memory, ~2x faster; design rows and predictions are accumulated and
    returned in float64)."""

    a: torch.Tensor
    species: torch.Tensor
    groups: torch.Tensor
    n_structures: int
    center_species: bool = False
    precision: str = "float64"

    def __post_init__(self) -> None:
        if self.precision not in ("float64", "float32"):
            raise ValueError(f"BispectrumInput: precision={self.precision!r}; choose 'float64' or 'float32'")
        self.a = torch.as_tensor(self.a, dtype=getattr(torch, self.precision))
        self.species = torch.as_tensor(self.species, dtype=torch.long).reshape(-1)
        self.groups = torch.as_tensor(self.groups, dtype=torch.long).reshape(-1)
        if self.a.ndim != 4 or math.isqrt(self.a.shape[3]) ** 2 != self.a.shape[3]:
            raise ValueError(f"BispectrumInput: a must have shape (atoms, species, n_max, (l_max+1)^2), got "
                             f"{tuple(self.a.shape)}")
        n = self.a.shape[0]
        if len(self.species) != n or len(self.groups) != n:
            raise ValueError(f"BispectrumInput: {n} atoms but {len(self.species)} species and {len(self.groups)} "
                             "structure indices")
        counts = torch.bincount(self.groups, minlength=self.n_structures)
        if len(counts) != self.n_structures or bool((counts == 0).any()) or bool((self.groups.diff() < 0).any()):
            raise ValueError("BispectrumInput: groups must number the structures 0..n-1 in order, every structure "
                             "with at least one atom")
        if not bool(torch.isfinite(self.a).all()):
            raise ValueError("BispectrumInput: the density expansion has NaN/inf entries")
        self.counts = counts
        self.starts = torch.cumsum(counts, 0) - counts

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_structures(cls, frames: Sequence, density, *, center_species: bool = False,
                        n_jobs: int | None = None, precision: str = "float64") -> BispectrumInput:
        """Density expansion of every atom of ``frames`` (ASE Atoms) with ``density``
        (:class:`~tnmat.descriptors.AtomicDensity`)."""
        parts, sp, st = [], [], []
        for _, _, atoms, a in density.iter_chunks(list(frames), dtype=torch.float64, n_jobs=n_jobs):
            parts.append(a)
            sp.append(atoms.atom_species)
            st.append(atoms.atom_structure)
        return cls(torch.cat(parts), torch.cat(sp), torch.cat(st), len(frames), center_species, precision)

    def select(self, structures: Sequence[int] | np.ndarray) -> BispectrumInput:
        """The given structures (in the given order), renumbered 0..k-1."""
        idx = torch.as_tensor(np.asarray(structures), dtype=torch.long).reshape(-1)
        rows = torch.cat([torch.arange(int(self.starts[s]), int(self.starts[s] + self.counts[s])) for s in idx]) \
            if len(idx) else torch.zeros(0, dtype=torch.long)
        groups = torch.repeat_interleave(torch.arange(len(idx)), self.counts[idx])
        return BispectrumInput(self.a[rows], self.species[rows], groups, len(idx), self.center_species,
                               self.precision)

    def scaled(self, factors: Sequence[torch.Tensor]) -> BispectrumInput:
        """The input seen through per-leg factors (f_a, f_n, f_l): A[a, n, lm] f_a[a] f_n[n] f_l[l], i.e.
        B3 times the product of one factor per slot leg (a diagonal map a network absorbs core by core)."""
        fa, fn, fl = (torch.as_tensor(f, dtype=torch.float64) for f in factors)
        w = fa[:, None, None] * fn[None, :, None] * fl[self.l_index][None, None, :]
        return BispectrumInput(self.a * w.to(self.a), self.species, self.groups, self.n_structures,
                               self.center_species, self.precision)

    # ---------------------------------------------------------------- layout
    @property
    def l_max(self) -> int:
        return math.isqrt(self.a.shape[3]) - 1

    @property
    def n_species(self) -> int:
        return int(self.a.shape[1])

    @property
    def l_index(self) -> torch.Tensor:
        """l of every flat lm index."""
        return torch.repeat_interleave(torch.arange(self.l_max + 1), 2 * torch.arange(self.l_max + 1) + 1)

    @property
    def legs(self) -> tuple[str, ...]:
        return slot_legs(self.center_species)

    @property
    def sizes(self) -> tuple[int, ...]:
        s, n, nl = self.n_species, int(self.a.shape[2]), self.l_max + 1
        return (s,) * self.center_species + (s, n, nl) * 3

    # ---------------------------------------------------------------- dense reference (small settings only)
    def dense(self) -> torch.Tensor:
        """Structure-averaged B3 in slot order (n_structures, *sizes): (s n (l_max+1))^3 entries per row, for
        tests and small settings."""
        nl = self.l_max + 1
        at = self.a.double()[:, :, :, None, :] * (self.l_index[None, :] == torch.arange(nl)[:, None]).to(self.a)
        b = torch.einsum("ianlp,ibmkq,icjhr,pqr->ianlbmkcjh", at, at, at, coupling_tensor(self.l_max))
        if self.center_species:
            b = torch.nn.functional.one_hot(self.species, self.n_species).to(b).reshape(-1, self.n_species,
                                                                                       *([1] * 9)) * b[:, None]
        out = torch.zeros(self.n_structures, *b.shape[1:], dtype=torch.float64)
        out.index_add_(0, self.groups, b)
        return out / self.counts.to(out).reshape(-1, *([1] * (out.ndim - 1)))

    # ---------------------------------------------------------------- factorised contraction
    def _chunks(self, per_atom: int) -> list[tuple[int, int]]:
        """Consecutive structure ranges whose atoms times ``per_atom`` stay near :data:`CHUNK_ENTRIES`."""
        cap = max(1, CHUNK_ENTRIES // max(1, per_atom))
        out, first, atoms = [], 0, 0
        for s, c in enumerate(self.counts.tolist()):
            if atoms and atoms + c > cap:
                out.append((first, s))
                first, atoms = s, 0
            atoms += c
        out.append((first, self.n_structures))
        return out

    def _per_atom_size(self, cores: Sequence[torch.Tensor]) -> int:
        chi = max(max(c.shape[0], c.shape[-1]) for c in cores)
        p, sn = self.a.shape[3], self.a.shape[1] * self.a.shape[2]
        return chi * chi * p * max(p * self.n_species, sn) + chi * p**3

    def contract(self, cores: Sequence[torch.Tensor]) -> torch.Tensor:
        """<W|B3_b> for every structure b (float64), W the MPS ``cores`` (chi_l, d, chi_r) in slot order."""
        cores = [c.detach().to(self.a.dtype) for c in cores]
        self._check_cores(cores)
        out = torch.zeros(self.n_structures, dtype=torch.float64)
        ctx = _Context(self.l_max, self.l_index, self.a.dtype)
        for s0, s1 in self._chunks(self._per_atom_size(cores)):
            r0, r1 = int(self.starts[s0]), int(self.starts[s1 - 1] + self.counts[s1 - 1])
            y = _atom_outputs(ctx, self.a[r0:r1], self.species[r0:r1], cores, self.center_species)
            out.index_add_(0, self.groups[r0:r1], y.double())
        return out / self.counts.to(out)

    def local_features(self, cores: Sequence[torch.Tensor], k: int) -> torch.Tensor:
        """Design rows of the merged pair (k, k+1): Phi[b, chi_k, d_k, d_{k+1}, chi_{k+2}] with
        <W|B3_b> = <M, Phi_b> for M = cores[k] cores[k+1] (the pair's current values are not used)."""
        cores = [c.detach().to(self.a.dtype) for c in cores]
        self._check_cores(cores)
        # the pair's bonds from its neighbours (the pair's own cores may be stale inside a sweep)
        shape = (cores[k - 1].shape[2] if k > 0 else 1, cores[k].shape[1], cores[k + 1].shape[1],
                 cores[k + 2].shape[0] if k + 2 < len(cores) else 1)
        out = torch.zeros(self.n_structures, *shape, dtype=torch.float64)
        ctx = _Context(self.l_max, self.l_index, self.a.dtype)
        for s0, s1 in self._chunks(self._per_atom_size(cores) * 2 + math.prod(shape)):
            r0, r1 = int(self.starts[s0]), int(self.starts[s1 - 1] + self.counts[s1 - 1])
            phi = _atom_design(ctx, self.a[r0:r1], self.species[r0:r1], cores, self.center_species, k).double()
            w = 1.0 / self.counts[self.groups[r0:r1]].to(phi)
            out.index_add_(0, self.groups[r0:r1], phi * w.reshape(-1, 1, 1, 1, 1))
        return out

    def _check_cores(self, cores: Sequence[torch.Tensor]) -> None:
        sizes = tuple(int(c.shape[1]) for c in cores)
        if sizes != self.sizes:
            raise ValueError(f"BispectrumInput: the network has leg sizes {sizes}, the input {self.sizes} "
                             f"(legs {self.legs})")


@dataclass
class _Context:
    """Per-call constants: the coupling tensor and the l of every lm."""

    l_max: int
    l_index: torch.Tensor
    dtype: torch.dtype = torch.float64

    def __post_init__(self) -> None:
        self.c = coupling_tensor(self.l_max).to(self.dtype)


def _slot_tensor(ctx: _Context, a: torch.Tensor, w: Sequence[torch.Tensor]) -> torch.Tensor:
    """X[i, chi_in, lm, chi_out] = sum_{a n} S[chi_in, a, n, l(lm), chi_out] A_i[a, n, lm] of one slot with
    cores w = (W_a, W_n, W_l)."""
    s = torch.einsum("xay,ynz,zlw->xanlw", *w)[:, :, :, ctx.l_index, :]
    return torch.einsum("xanpw,ianp->ixpw", s, a)


def _first_slot(x: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
    """Slot 1 with its left bond closed: by the centre leg's row e (atoms, chi) or the boundary (chi = 1)."""
    return x[:, 0] if e is None else torch.einsum("ix,ixpw->ipw", e, x)


def _atom_outputs(ctx: _Context, a: torch.Tensor, species: torch.Tensor, cores: Sequence[torch.Tensor],
                  center: bool) -> torch.Tensor:
    """y_i = <W|B3_i> for every atom (see the module docstring)."""
    off = int(center)
    slots = [list(cores[off + 3 * s: off + 3 * s + 3]) for s in range(3)]
    e = cores[0][0, species, :] if center else None  # (atoms, chi): the centre leg's row of every atom
    x1 = _first_slot(_slot_tensor(ctx, a, slots[0]), e)
    d = torch.einsum("pqr,igr->ipqg", ctx.c, _slot_tensor(ctx, a, slots[2])[..., 0])
    return torch.einsum("ipb,ibqg,ipqg->i", x1, _slot_tensor(ctx, a, slots[1]), d)


def _rest(ctx: _Context, a: torch.Tensor, slots: list[list[torch.Tensor]], e: torch.Tensor | None, s: int
          ) -> torch.Tensor:
    """R_s[i, chi_in, lm, chi_out] = dy_i / dX_s[i, chi_in, lm, chi_out]: the other two slots and the coupling
    (slot 1's left bond is the centre leg's bond; without ``e`` it is the boundary)."""
    c = ctx.c
    x = {t: _slot_tensor(ctx, a, slots[t]) for t in range(3) if t != s}
    if s == 0:
        d = torch.einsum("pqr,igr->ipqg", c, x[2][..., 0])
        r = torch.einsum("ipqg,ibqg->ipb", d, x[1])
        return r[:, None] if e is None else torch.einsum("ix,ipb->ixpb", e, r)
    x1 = _first_slot(x[0], e)
    if s == 1:
        return torch.einsum("ipqg,ipb->ibqg", torch.einsum("pqr,igr->ipqg", c, x[2][..., 0]), x1)
    return torch.einsum("ibqr,ibqg->igr", torch.einsum("pqr,ipb->ibqr", c, x1), x[1])[..., None]


def _atom_design(ctx: _Context, a: torch.Tensor, species: torch.Tensor, cores: Sequence[torch.Tensor], center: bool,
                 k: int) -> torch.Tensor:
    """Per-atom design rows Phi_i[chi_k, d_k, d_{k+1}, chi_{k+2}] = dy_i / dM of the merged pair (k, k+1)
    (cores k, k+1 are not read)."""
    off, li, c = int(center), ctx.l_index, ctx.c
    lsum = (li[:, None] == torch.arange(ctx.l_max + 1)[None, :]).to(a)  # (lm, l): sums m within each l
    slots = [list(cores[off + 3 * s: off + 3 * s + 3]) for s in range(3)]
    e = cores[0][0, species, :] if center else None
    if center and k == 0:  # (c, a1): slot 1's rest through its n and l cores, on the atom's centre species
        r = _rest(ctx, a, slots, None, 0)[:, 0]
        kk = torch.einsum("ynz,zlw->ynlw", slots[0][1], slots[0][2])[:, :, li, :]
        phi_a = torch.einsum("ianp,ienp->iae", a, torch.einsum("enpb,ipb->ienp", kk, r))
        out = a.new_zeros(len(a), 1, cores[0].shape[1], *phi_a.shape[1:])
        out[torch.arange(len(a)), 0, species] = phi_a
        return out
    if k == off + 2:  # (l1, a2)
        h = _first_slot(torch.einsum("xay,ynz,ianp->ixzp", slots[0][0], slots[0][1], a), e)
        kk = torch.einsum("ynz,zlw->ynlw", slots[1][1], slots[1][2])[:, :, li, :]
        d = torch.einsum("pqr,igr->ipqg", c, _slot_tensor(ctx, a, slots[2])[..., 0])
        f = torch.einsum("ieaqg,ipqg->ieap", torch.einsum("enqg,ianq->ieaqg", kk, a), d)
        # m1 summed inside the product: h spread over its l blocks, then one batched product per atom
        return torch.einsum("idlp,ieap->idlae", h[:, :, None, :] * lsum.T[None, None], f)
    if k == off + 5:  # (l2, a3)
        h = torch.einsum("xay,ynz,ianq->ixzq", slots[1][0], slots[1][1], a)
        kk = torch.einsum("ynz,zlw->ynlw", slots[2][1], slots[2][2])[:, :, li, 0]
        g = torch.einsum("enr,ianr->iear", kk, a)
        x1 = _first_slot(_slot_tensor(ctx, a, slots[0]), e)
        j = torch.einsum("ibdq,ibqr->idqr", h, torch.einsum("pqr,ipb->ibqr", c, x1))
        # g does not depend on m2: sum it out of j first
        return torch.einsum("idlr,iear->idlae", torch.einsum("idqr,ql->idlr", j, lsum), g)
    s, j = divmod(k - off, 3)
    w, r = slots[s], _rest(ctx, a, slots, e, s)
    if j == 0:  # (a_s, n_s)
        z = torch.einsum("zpw,ixpw->ixzp", w[2][:, li, :], r)
        return torch.einsum("ianp,ixzp->ixanz", a, z)
    # (n_s, l_s): explicit batched products in layouts that need no large permuted copies
    i, p = a.shape[0], a.shape[3]
    g = a.permute(0, 3, 2, 1) @ w[0].permute(1, 2, 0).reshape(w[0].shape[1], -1)  # (i, lm, n, y x)
    y, x, wo = w[0].shape[2], w[0].shape[0], r.shape[3]
    phi = g.reshape(i * p, -1, x) @ r.permute(0, 2, 1, 3).reshape(i * p, x, wo)  # (i lm, n y, w)
    phi = torch.einsum("ipk,pl->ilk", phi.reshape(i, p, -1), lsum).reshape(i, -1, a.shape[2], y, wo)
    return phi.permute(0, 3, 2, 1, 4)
