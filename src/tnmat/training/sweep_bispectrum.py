"""The bispectrum (nu = 3) as a factorised input of the sweeping fitter: neither the dense input nor a dense
weight is ever built (issue 12).

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
chi^2 (l_max + 1)^4 s entries, never the (s n (l_max + 1))^3 of B3.  The local features of a merged pair of
cores (the sweep's design rows) follow exactly from linearity: the pair is replaced by one zero copy per
structure, and the gradient of sum_b y_b with respect to the copies is Phi_b (atoms chunked by structure).
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

    a: (atoms, species, n_max, (l_max+1)^2) float64, atoms of one structure consecutive, structures in
    order; species: (atoms,) centre-species index; groups: (atoms,) structure index (non-decreasing)."""

    a: torch.Tensor
    species: torch.Tensor
    groups: torch.Tensor
    n_structures: int
    center_species: bool = False

    def __post_init__(self) -> None:
        self.a = torch.as_tensor(self.a, dtype=torch.float64)
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
                        n_jobs: int | None = None) -> BispectrumInput:
        """Density expansion of every atom of ``frames`` (ASE Atoms) with ``density``
        (:class:`~tnmat.descriptors.AtomicDensity`)."""
        parts, sp, st = [], [], []
        for _, _, atoms, a in density.iter_chunks(list(frames), dtype=torch.float64, n_jobs=n_jobs):
            parts.append(a)
            sp.append(atoms.atom_species)
            st.append(atoms.atom_structure)
        return cls(torch.cat(parts), torch.cat(sp), torch.cat(st), len(frames), center_species)

    def select(self, structures: Sequence[int] | np.ndarray) -> BispectrumInput:
        """The given structures (in the given order), renumbered 0..k-1."""
        idx = torch.as_tensor(np.asarray(structures), dtype=torch.long).reshape(-1)
        rows = torch.cat([torch.arange(int(self.starts[s]), int(self.starts[s] + self.counts[s])) for s in idx]) \
            if len(idx) else torch.zeros(0, dtype=torch.long)
        groups = torch.repeat_interleave(torch.arange(len(idx)), self.counts[idx])
        return BispectrumInput(self.a[rows], self.species[rows], groups, len(idx), self.center_species)

    def scaled(self, factors: Sequence[torch.Tensor]) -> BispectrumInput:
        """The input seen through per-leg factors (f_a, f_n, f_l): A[a, n, lm] f_a[a] f_n[n] f_l[l], i.e.
        B3 times the product of one factor per slot leg (a diagonal map a network absorbs core by core)."""
        fa, fn, fl = (torch.as_tensor(f, dtype=torch.float64) for f in factors)
        w = fa[:, None, None] * fn[None, :, None] * fl[self.l_index][None, None, :]
        return BispectrumInput(self.a * w, self.species, self.groups, self.n_structures, self.center_species)

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
        at = self.a[:, :, :, None, :] * (self.l_index[None, :] == torch.arange(nl)[:, None]).to(self.a)
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
        cores = [c.detach().to(torch.float64) for c in cores]
        self._check_cores(cores)
        out = torch.zeros(self.n_structures, dtype=torch.float64)
        ctx = _Context(self.l_max, self.l_index)
        for s0, s1 in self._chunks(self._per_atom_size(cores)):
            r0, r1 = int(self.starts[s0]), int(self.starts[s1 - 1] + self.counts[s1 - 1])
            y = _atom_outputs(ctx, self.a[r0:r1], self.species[r0:r1], cores, self.center_species)
            out.index_add_(0, self.groups[r0:r1], y)
        return out / self.counts.to(out)

    def local_features(self, cores: Sequence[torch.Tensor], k: int) -> torch.Tensor:
        """Design rows of the merged pair (k, k+1): Phi[b, chi_k, d_k, d_{k+1}, chi_{k+2}] with
        <W|B3_b> = <M, Phi_b> for M = cores[k] cores[k+1] (the pair's current values are not used)."""
        cores = [c.detach().to(torch.float64) for c in cores]
        self._check_cores(cores)
        # the pair's bonds from its neighbours (the pair's own cores may be stale inside a sweep)
        shape = (cores[k - 1].shape[2] if k > 0 else 1, cores[k].shape[1], cores[k + 1].shape[1],
                 cores[k + 2].shape[0] if k + 2 < len(cores) else 1)
        out = torch.zeros(self.n_structures, *shape, dtype=torch.float64)
        ctx = _Context(self.l_max, self.l_index)
        per_atom = self._per_atom_size(cores) * 3 + math.prod(shape)
        for s0, s1 in self._chunks(per_atom):
            r0, r1 = int(self.starts[s0]), int(self.starts[s1 - 1] + self.counts[s1 - 1])
            g = self.groups[r0:r1] - s0
            with torch.enable_grad():
                m = torch.zeros(s1 - s0, *shape, dtype=torch.float64, requires_grad=True)
                y = _atom_outputs(ctx, self.a[r0:r1], self.species[r0:r1], cores, self.center_species,
                                  pair=(k, m[g]))
                (grad,) = torch.autograd.grad((y / self.counts[self.groups[r0:r1]].to(y)).sum(), m)
            out[s0:s1] = grad
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

    def __post_init__(self) -> None:
        self.c = coupling_tensor(self.l_max)


def _slot_tensor(ctx: _Context, a: torch.Tensor, w: Sequence[torch.Tensor], j: int | None = None,
                 m: torch.Tensor | None = None) -> torch.Tensor:
    """X[i, chi_in, lm, chi_out] = sum_{a n} S[chi_in, a, n, l(lm), chi_out] A_i[a, n, lm] of one slot with
    cores w = (W_a, W_n, W_l); with ``j`` 0 or 1 the cores (j, j+1) are replaced by the per-atom merged
    pair ``m`` (atoms, chi, d_j, d_{j+1}, chi')."""
    li = ctx.l_index
    if j is None:
        s = torch.einsum("xay,ynz,zlw->xanlw", *w)[:, :, :, li, :]
        return torch.einsum("xanpw,ianp->ixpw", s, a)
    if j == 0:
        y = torch.einsum("ixanz,ianp->ixzp", m, a)
        return torch.einsum("ixzp,zpw->ixpw", y, w[2][:, li, :])
    z = torch.einsum("xae,ianp->ixenp", w[0], a)
    return torch.einsum("ixenp,ienpw->ixpw", z, m[:, :, :, li, :])


def _first_slot(x: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
    """Slot 1 with its left bond closed: by the centre leg's row e (atoms, chi) or the boundary (chi = 1)."""
    return x[:, 0] if e is None else torch.einsum("ix,ixpw->ipw", e, x)


def _atom_outputs(ctx: _Context, a: torch.Tensor, species: torch.Tensor, cores: Sequence[torch.Tensor],
                  center: bool, pair: tuple[int, torch.Tensor] | None = None) -> torch.Tensor:
    """y_i = <W|B3_i> for every atom (see the module docstring); ``pair = (k, M)`` replaces cores k, k+1 by the
    per-atom merged tensors M (atoms, chi_k, d_k, d_{k+1}, chi_{k+2})."""
    off = int(center)
    k, m = pair if pair is not None else (None, None)
    slots = [list(cores[off + 3 * s: off + 3 * s + 3]) for s in range(3)]
    e = cores[0][0, species, :] if center else None  # (atoms, chi): the centre leg's row of every atom
    li, c = ctx.l_index, ctx.c
    if k is not None and k in (off + 2, off + 5):  # the pair straddles two slots (l_s, a_{s+1})
        s = (k - off) // 3
        left, right = slots[s], slots[s + 1]
        h = torch.einsum("xay,ynz,ianp->ixzp", left[0], left[1], a)  # slot s without its l core
        mm = m[:, :, li]  # (atoms, chi, lm, d_a, chi')
        if s == 0:
            h = _first_slot(h, e)  # (atoms, chi, lm)
            kk = torch.einsum("ynz,zlw->ynlw", right[1], right[2])[:, :, li, :]
            g = torch.einsum("enqg,ianq->ieaqg", kk, a)
            t = torch.einsum("idp,idpae->ipae", h, mm)
            x12 = torch.einsum("ipae,ieaqg->ipqg", t, g)
            x3 = _slot_tensor(ctx, a, slots[2])[..., 0]
            return torch.einsum("ipqg,pqr,igr->i", x12, c, x3)
        kk = torch.einsum("ynz,zlw->ynlw", right[1], right[2])[:, :, li, 0]
        g = torch.einsum("enr,ianr->iear", kk, a)
        t = torch.einsum("ibdq,idqae->ibqae", h, mm)
        x23 = torch.einsum("ibqae,iear->ibqr", t, g)
        x1 = _first_slot(_slot_tensor(ctx, a, slots[0]), e)
        return torch.einsum("ipb,pqr,ibqr->i", x1, c, x23)
    xs = []
    for s in (1, 2) if center and k == 0 else (0, 1, 2):
        j = None if k is None or not off + 3 * s <= k < off + 3 * s + 2 else k - off - 3 * s
        xs.append(_slot_tensor(ctx, a, slots[s], j, m))
    if center and k == 0:  # the pair (c, a1): slot 1 with its first core replaced by the atom's row of M
        mc = m[torch.arange(len(species)), 0, species]  # (atoms, d_a, chi)
        kk = torch.einsum("ynz,zlw->ynlw", slots[0][1], slots[0][2])[:, :, li, :]
        x1 = torch.einsum("ienp,enpb->ipb", torch.einsum("iae,ianp->ienp", mc, a), kk)
        xs.insert(0, x1)
    else:
        x1 = _first_slot(xs[0], e)
    d = torch.einsum("pqr,igr->ipqg", c, xs[2][..., 0])
    return torch.einsum("ipb,ibqg,ipqg->i", x1, xs[1], d)
