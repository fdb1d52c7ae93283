"""Rotation invariants and equivariants of body order nu from Clebsch-Gordan fusion trees
(paper eqs. 10-15, Appendix C).

A left-comb fusion tree couples nu copies of the density expansion A[a, n, l, m]:
``T_1 = A_{l1}``, ``T_k = [T_{k-1} (x) A_{lk}]_{k_k}`` (intermediate irreps k_k), and the last coupling
ends on irrep 0 (invariants B_nu) or on L (equivariants B_nu^L, lambda-SOAP-like).  All couplings use
real-basis Clebsch-Gordan coefficients (:func:`tnmat.so3.real_clebsch_gordan`), so every output is real.

Output legs (the LegTensor keeps them separate; forbidden (triangle-violating) entries are zero):

============  ===============================================================  =================
order nu      invariant legs                                                   equivariant legs
============  ===============================================================  =================
1             a, n                                                             a, n, m
2             a1, a2, n1, n2, l        (l1 = l2 = l)                           a1,a2,n1,n2,l1,l2,m
3             a1..a3, n1..n3, l1, l2, l3 (k2 = l3)                             ... l1,l2,l3,k2,m
4             a1..a4, n1..n4, l1..l4, k2 (k3 = l4)                             ... l1..l4,k2,k3,m
============  ===============================================================  =================

Intermediate irreps k run over 0..2*l_max (no truncation), so the set of invariants of order nu <= 4
spans all invariant polynomials of that degree in A (checked against a Haar integral in the tests).
B2 is the SOAP power spectrum with the paper's sign convention
``B2[a1,a2,n1,n2,l] = sum_m (-1)^(l-m)/sqrt(2l+1) A[a1,n1,l,m] A[a2,n2,l,-m]`` (complex basis), which
equals ``(-1)^l / sqrt(2l+1) sum_m A_real[a1,n1,l,m] A_real[a2,n2,l,m]``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from ase import Atoms
from tqdm.auto import tqdm

from tnmat.descriptors._invariant_kernels import Bispectrum
from tnmat.descriptors.density import AtomicDensity, as_frames
from tnmat.legtensor import LegTensor
from tnmat.so3 import real_clebsch_gordan

__all__ = ["Invariants", "Equivariants", "couple_paths"]


def _cg(l1: int, l2: int, l3: int, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(real_clebsch_gordan(l1, l2, l3), dtype=like.dtype, device=like.device)


def _blocks(a: torch.Tensor, l_max: int) -> list[torch.Tensor]:
    """Split A (X, S, n, n_lm) into per-l blocks (X, S*n, 2l+1)."""
    x = a.reshape(a.shape[0], a.shape[1] * a.shape[2], a.shape[3])
    return [x[:, :, l * l : (l + 1) * (l + 1)] for l in range(l_max + 1)]


def couple_paths(
    a: torch.Tensor, order: int, final: int, l_max: int
) -> list[tuple[tuple[int, ...], tuple[int, ...], torch.Tensor]]:
    """All left-comb fusion trees of ``order`` copies of A ending on irrep ``final``.

    Returns a list of (ls, ks, T) with ls = (l1..l_nu), ks = intermediate irreps (k2..k_{nu-1}) and
    T of shape (X, (S*n)^nu, 2*final+1), the flattened channel axis ordered (a1 n1, a2 n2, ...)."""
    blocks = _blocks(a, l_max)
    x = a.shape[0]
    k_max = 2 * l_max
    if order == 1:
        return [((final,), (), blocks[final])] if final <= l_max else []
    states: list[tuple[tuple[int, ...], tuple[int, ...], int, torch.Tensor]] = [
        ((l1,), (), l1, blocks[l1]) for l1 in range(l_max + 1)
    ]
    for step in range(2, order + 1):
        last = step == order
        new = []
        for ls, ks, k, t in states:
            for l in range(l_max + 1):
                targets = [final] if last else range(abs(k - l), min(k + l, k_max) + 1)
                for kk in targets:
                    if not abs(k - l) <= kk <= k + l:
                        continue
                    c = _cg(k, l, kk, t)
                    # [T (x) A_l]_{kk}: (X, P, i) (X, Q, j) (i, j, M) -> (X, P, Q, M)
                    tc = torch.einsum("xpi,ijm->xpjm", t, c)
                    out = torch.einsum("xpjm,xqj->xpqm", tc, blocks[l]).reshape(x, -1, 2 * kk + 1)
                    new.append((ls + (l,), ks + ((kk,) if not last else ()), kk, out))
        states = new
    return [(ls, ks, t) for ls, ks, _, t in states]


@dataclass(frozen=True)
class _FusionTree:
    density: AtomicDensity
    order: int = field(default=2, kw_only=True)
    #: prepend a leg "c" for the species of the centre atom: the structure average then keeps one block
    #: per centre species, B[c, ...] = (1/N) sum_{i: species(i) = c} B_i (sum over c = the plain average)
    center_species: bool = field(default=False, kw_only=True)
    #: bispectrum only: keep the symmetry-unique entries (one leg "u"); :meth:`expand` restores the full layout
    unique: bool = field(default=False, kw_only=True)

    _L: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.density, AtomicDensity):
            raise TypeError(f"{type(self).__name__}: density must be an AtomicDensity, got {type(self.density)}")
        if isinstance(self.order, bool) or not isinstance(self.order, int | np.integer):
            raise TypeError(f"{type(self).__name__}: order must be an integer 1-4, got {self.order!r}")
        if self.order not in (1, 2, 3, 4):
            raise ValueError(f"{type(self).__name__}: order must be 1, 2, 3 or 4, got {self.order!r}")
        if self.unique and not (self.order == 3 and type(self).__name__ == "Invariants"):
            raise ValueError(f"{type(self).__name__}: unique=True is available for the bispectrum (Invariants, "
                             f"order=3), got order={self.order}")

    # layout -------------------------------------------------------------------
    def _lk_legs(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    def _lk_index(self, ls: tuple[int, ...], ks: tuple[int, ...]) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def legs(self) -> tuple[str, ...]:
        nu = self.order
        if self.unique:
            return ("c",) * self.center_species + ("u",)
        if nu == 1:
            names = ["a", "n"]
        else:
            names = [f"a{k}" for k in range(1, nu + 1)] + [f"n{k}" for k in range(1, nu + 1)]
        return tuple(["c"] * self.center_species + names + [name for name, _ in self._lk_legs()])

    @property
    def sizes(self) -> tuple[int, ...]:
        s, n = len(self.density.species), self.density.n_max
        if self.unique:
            return (s,) * self.center_species + (self._bispectrum().n_unique,)
        return ((s,) * self.center_species + (s,) * self.order + (n,) * self.order
                + tuple(size for _, size in self._lk_legs()))

    def get_params(self) -> dict:
        return {"kind": type(self).__name__, "order": self.order, "L": self._L,
                "center_species": self.center_species, "unique": self.unique, "density": self.density.get_params()}

    # compiled path -------------------------------------------------------------
    def _bispectrum(self) -> Bispectrum:
        return Bispectrum(len(self.density.species) * self.density.n_max, self.density.l_max)

    def _compiled(self, device: str | None) -> bool:
        return self.density.compiled(device) and not self._eq and self.order in (2, 3, 4)

    def expand(self, values: torch.Tensor) -> torch.Tensor:
        """Unique bispectrum entries (..., U) -> the full layout (..., a1, a2, a3, n1, n2, n3, l1, l2, l3):
        ``full[f] = factor[f] * unique[index[f]]`` with (f, index, factor) from
        :meth:`Bispectrum.expansion` (slot permutations of one (l1, l2, l3) differ by a constant factor);
        triangle-violating entries are zero."""
        s, n, L = len(self.density.species), self.density.n_max, self.density.l_max + 1
        fi, ui, fac = self._bispectrum().expansion()
        lead = values.shape[:-1]
        flat = values.reshape(-1, values.shape[-1])
        full = flat.new_zeros((flat.shape[0], (s * n) ** 3 * L**3))
        full[:, torch.from_numpy(fi).to(values.device)] = flat[:, torch.from_numpy(ui).to(values.device)] * \
            torch.as_tensor(fac, dtype=values.dtype, device=values.device)
        full = full.reshape(-1, s, n, s, n, s, n, L, L, L).permute(0, 1, 3, 5, 2, 4, 6, 7, 8, 9)
        return full.reshape(*lead, s, s, s, n, n, n, L, L, L)

    # evaluation ----------------------------------------------------------------
    def from_expansion(self, a: torch.Tensor) -> torch.Tensor:
        """Per-atom descriptor (X, *sizes) from the expansion A (X, S, n, n_lm) (torch, differentiable)."""
        if self.unique:
            raise ValueError("Invariants: from_expansion gives the full layout; unique=True is for compute()")
        x, s, n = a.shape[0], a.shape[1], a.shape[2]
        nu, l_max = self.order, self.density.l_max
        if nu == 2 and self._L == 0 and not self._eq:  # Equivariants keep their (l1, l2, m) legs
            return self._power_spectrum(a)
        lk_sizes = [size for _, size in self._lk_legs()]
        out = a.new_zeros((x, (s * n) ** nu, *lk_sizes))
        for ls, ks, t in couple_paths(a, nu, self._L, l_max):
            idx = self._lk_index(ls, ks)
            if self._eq:
                out[(slice(None), slice(None), *idx)] = t
            else:
                out[(slice(None), slice(None), *idx)] = t[..., 0]
        # (X, (a1 n1)(a2 n2).., rest) -> (X, a1..a_nu, n1..n_nu, rest)
        rest = out.shape[2:]
        out = out.reshape(x, *([s, n] * nu), *rest)
        perm = [0] + [1 + 2 * k for k in range(nu)] + [2 + 2 * k for k in range(nu)]
        perm += list(range(1 + 2 * nu, out.ndim))
        return out.permute(perm).contiguous()

    _eq: bool = field(default=False, init=False, repr=False)

    def _power_spectrum(self, a: torch.Tensor) -> torch.Tensor:
        x, s, n = a.shape[0], a.shape[1], a.shape[2]
        out = []
        for l, block in enumerate(_blocks(a, self.density.l_max)):
            c = _cg(l, l, 0, block)[:, :, 0]  # = (-1)^l / sqrt(2l+1) * identity (checked in tests)
            out.append(torch.bmm(block @ c, block.transpose(1, 2)))
        b = torch.stack(out, dim=-1).reshape(x, s, n, s, n, -1)
        return b.permute(0, 1, 3, 2, 4, 5).contiguous()

    def compute(
        self, frames: Sequence[Atoms] | Atoms, *, average: bool = True, dtype: torch.dtype = torch.float64,
        device: str | None = None, progress: bool | None = None, max_atoms: int | None = None,
        n_jobs: int | None = None, out: torch.Tensor | None = None,
    ) -> LegTensor:
        """Descriptor of every structure: mean over its atoms (paper eq. 22) when ``average``, else one
        row per atom with ``structure_index``.  Structures are processed in chunks of ``max_atoms`` (default:
        8192 on the compiled path, where two parallel regions per chunk each end in a barrier: with another
        process keeping one core busy, 2 threads ran 0.82-0.93x as fast as one with 1024-atom chunks and
        1.07-1.25x with 8192, all NMD18 (results/descriptors/chunk_size_loaded.json); 1024 on the
        torch path, whose per-pair intermediates grow with the chunk).

        ``out``: a tensor the values are written into instead of a fresh one (the result's ``values`` is
        ``out``): e.g. one buffer reused across the calls of an MD loop, or
        ``torch.from_numpy(np.memmap(path, mode="w+", ...))`` for a per-atom dataset larger than memory.  It
        must have shape :meth:`output_shape` ``(frames, average=average)`` = (structures or atoms, *sizes),
        the ``dtype`` argument, the device the values are computed on (the CPU on the compiled path), be
        C-contiguous, not require grad and be writable; anything else is refused before any work (an error
        during the work, e.g. a bad structure, can leave it partly written).  The values are bitwise those of
        a call without ``out``; a reused buffer also skips the first touch of fresh memory (a page fault per
        4 KB), which limited two jobs per atom (results/descriptors/power_spectrum_two_jobs_*.json)."""
        frames = as_frames(frames, f"{type(self).__name__}.compute")
        if out is not None:
            from tnmat.descriptors._output import check_out

            where = torch.device("cpu") if self._compiled(device) or device is None else torch.device(device)
            check_out(out, self.output_shape(frames, average=average), dtype, where,
                      f"{type(self).__name__}.compute")
        if progress is None:
            progress = sys.stderr.isatty()
        if self._compiled(device):
            return compute_compiled(self, frames, average=average, dtype=dtype,
                                      max_atoms=8192 if max_atoms is None else max_atoms, n_jobs=n_jobs,
                                      progress=progress, out=out)
        return self._compute_torch(frames, average=average, dtype=dtype, device=device, progress=progress,
                                   max_atoms=1024 if max_atoms is None else max_atoms, n_jobs=n_jobs, out=out)

    def output_shape(self, frames: Sequence[Atoms] | Atoms, *, average: bool = True) -> tuple[int, ...]:
        """Shape of :meth:`compute`'s values for ``frames`` (no descriptor is computed): (number of structures
        if ``average`` else number of atoms, *:attr:`sizes`); e.g. for a buffer passed as ``out``."""
        frames = as_frames(frames, f"{type(self).__name__}.output_shape")
        return (len(frames) if average else sum(len(a) for a in frames), *self.sizes)

    def _compute_torch(self, frames: list[Atoms], *, average: bool, dtype: torch.dtype, device: str | None,
                       progress: bool, max_atoms: int, n_jobs: int | None, out: torch.Tensor | None) -> LegTensor:
        """:meth:`compute` on the torch path (the reference, and the path for devices): chunk by chunk, each
        chunk's rows appended to a list or, with ``out``, written into it."""
        parts: list[torch.Tensor] = []
        sidx: list[torch.Tensor] = []
        done = 0
        # bound the per-chunk output (and the fusion-tree intermediates of the same size): high body orders
        # have ~10^5-10^6 entries per atom, so chunks shrink to keep memory near 2^25 numbers
        max_atoms = max(1, min(max_atoms, 2**25 // math.prod(self.sizes)))
        bar = tqdm(total=len(frames), unit="struct", disable=not progress, desc=type(self).__name__)
        for first, stop, pairs, a in self.density.iter_chunks(frames, dtype=dtype, device=device,
                                                              max_atoms=max_atoms, n_jobs=n_jobs):
            b = self.from_expansion(a)
            if self.center_species:
                onehot = b.new_zeros((b.shape[0], len(self.density.species), *b.shape[1:]))
                onehot[torch.arange(b.shape[0], device=b.device), pairs.atom_species.to(b.device)] = b
                b = onehot
            if average:
                local = (pairs.atom_structure - first).to(b.device)
                acc = b.new_zeros((stop - first, *b.shape[1:]))
                acc.index_add_(0, local, b)
                counts = torch.bincount(local, minlength=stop - first).to(b.dtype)
                b = acc / counts.reshape(-1, *([1] * (b.ndim - 1)))
            else:
                sidx.append(pairs.atom_structure)
            if out is None:
                parts.append(b)
            else:
                out[done : done + b.shape[0]] = b
            done += b.shape[0]
            bar.update(stop - first)
        bar.close()
        meta = {"calculator": type(self).__name__, "params": self.get_params(), "species": list(self.density.species)}
        values = out if out is not None else torch.cat(parts) if parts else torch.zeros((0, *self.sizes), dtype=dtype)
        if average:
            return LegTensor(values, self.legs, meta=meta)
        return LegTensor(values, self.legs, structure_index=torch.cat(sidx) if sidx else None, meta=meta)


@dataclass(frozen=True)
class Invariants(_FusionTree):
    """SO(3)-invariant descriptors B_nu (nu = 1: density projection, 2: power spectrum, 3: bispectrum,
    4: four-body), e.g. ``Invariants(AtomicDensity(...), order=2).compute(frames)``."""

    def _lk_legs(self) -> list[tuple[str, int]]:
        nl, nk = self.density.l_max + 1, 2 * self.density.l_max + 1
        if self.order == 1:
            return []
        if self.order == 2:
            return [("l", nl)]
        return [(f"l{k}", nl) for k in range(1, self.order + 1)] + [
            (f"k{k}", nk) for k in range(2, self.order - 1)
        ]

    def _lk_index(self, ls: tuple[int, ...], ks: tuple[int, ...]) -> tuple[int, ...]:
        if self.order == 1:
            return ()
        if self.order == 2:
            return (ls[0],)
        return ls + ks[:-1]  # the last intermediate equals l_nu when the tree ends on irrep 0


@dataclass(frozen=True)
class Equivariants(_FusionTree):
    """SO(3)-equivariant descriptors B_nu^L transforming as real irrep L under rotation
    (B^L(R x) = D^L(R) B^L(x) on the last leg "m"); lambda-SOAP for nu = 2.  Both parities are kept."""

    L: int = field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.L, int) or not 0 <= self.L <= self.density.l_max:
            raise ValueError(f"Equivariants: L must be an integer in 0..l_max={self.density.l_max}, got {self.L!r}")
        object.__setattr__(self, "_L", self.L)
        object.__setattr__(self, "_eq", True)

    def _lk_legs(self) -> list[tuple[str, int]]:
        nl, nk = self.density.l_max + 1, 2 * self.density.l_max + 1
        m = [("m", 2 * self.L + 1)]
        if self.order == 1:
            return m
        return [(f"l{k}", nl) for k in range(1, self.order + 1)] + [
            (f"k{k}", nk) for k in range(2, self.order)
        ] + m

    def _lk_index(self, ls: tuple[int, ...], ks: tuple[int, ...]) -> tuple[int, ...]:
        if self.order == 1:
            return ()
        return ls + ks


# ---------------------------------------------------------------------- the compiled path of Invariants
def _invariant_rows(calc: Invariants, at: np.ndarray, rows: tuple, block: np.ndarray, dtype: torch.dtype,
                    n_threads: int) -> None:
    """Write the invariants of one chunk's rows into ``block`` (this chunk's slice of the output): the power
    spectrum and the unique bispectrum straight into it in float64, through a float64 copy otherwise."""
    from tnmat.descriptors._invariant_kernels import bispectrum_rows, fourbody_full, power_spectrum_rows, row_queue
    dens = calc.density
    s, n, lmax = len(dens.species), dens.n_max, dens.l_max
    ptr, order, scale, n_rows = rows
    direct = dtype == torch.float64 and (calc.order == 2 or (calc.order == 3 and calc.unique))
    res = block if direct else None
    if calc.order == 2:
        res = res if res is not None else np.empty(block.shape)
        power_spectrum_rows(at, ptr, order, scale, lmax, n, res.reshape(n_rows, s, s, n, n, lmax + 1), n_threads)
    elif calc.order == 4:
        res = fourbody_full(at, ptr, order, scale, s, n, lmax, n_threads)
    else:
        bs = calc._bispectrum()
        res = res if res is not None else np.empty((n_rows, bs.n_unique))
        bispectrum_rows(at, ptr, order, scale, *bs.tables(), row_queue(ptr), res.reshape(n_rows, bs.n_unique),
                        n_threads)
        if not calc.unique:
            res = calc.expand(torch.from_numpy(res)).numpy()
    if res is not block:
        block[...] = res.reshape(block.shape)


def compute_compiled(calc: Invariants, frames: Sequence[Atoms], *, average: bool, dtype: torch.dtype,
                       max_atoms: int, n_jobs: int | None, progress: bool,
                       out: torch.Tensor | None = None) -> LegTensor:
    """:meth:`Invariants.compute` for orders 2, 3 and 4 with the compiled kernels (same result layout), into
    ``out`` (checked by the caller) or a fresh :func:`~tnmat.descriptors._compiled.output_tensor`."""
    import numba

    from tnmat.descriptors._compiled import chunk_rows, numba_threads, output_tensor, resolve_jobs
    dens = calc.density
    s, n = len(dens.species), dens.n_max
    jobs = dens.n_jobs if n_jobs is None else n_jobs
    values = out if out is not None else output_tensor(calc.output_shape(frames, average=average), dtype,
                                                       resolve_jobs(jobs))
    # a chunk holds its rows twice at most, ~2^25 numbers: per atom, rows are atoms; averaged order 4 (1.7
    # million numbers per row at n_max 2, l_max 2), rows are structures, and bounding them by atoms instead
    # left one structure per chunk: one row, so a second thread had nothing to take from the queue
    rows_cap = max(1, 2**25 // int(np.prod(calc.sizes)))
    if not average:
        max_atoms = min(max_atoms, rows_cap)
    max_structures = rows_cap if average and calc.order == 4 else None
    dest = values.numpy()
    sidx = []
    done = 0
    bar = tqdm(total=len(frames), unit="struct", disable=not progress, desc=type(calc).__name__)
    at_buf = np.empty(0)
    for first, stop, atoms, a in dens.iter_chunks(frames, dtype=torch.float64, max_atoms=max_atoms, n_jobs=n_jobs,
                                                  reuse=True, max_structures=max_structures):
        x = a.shape[0]
        if at_buf.size < a.numel():  # one buffer for every chunk (a chunk holds more than max_atoms rarely)
            at_buf = np.empty(max(a.numel(), max_atoms * s * n * dens.n_lm))
        at = at_buf[: a.numel()].reshape(x, dens.n_lm, s * n)
        np.copyto(at, a.numpy().reshape(x, s * n, -1).transpose(0, 2, 1))
        ptr, order, scale, n_rows = chunk_rows(atoms, first, stop, average, s, calc.center_species)
        k = stop - first if average else x
        block = dest[done : done + k]
        with numba_threads(jobs):
            _invariant_rows(calc, at, (ptr, order, scale, n_rows), block, dtype, numba.get_num_threads())
        if not average:
            sidx.append(atoms.atom_structure)
        done += k
        bar.update(stop - first)
    bar.close()
    meta = {"calculator": type(calc).__name__, "params": calc.get_params(), "species": list(dens.species)}
    return LegTensor(values, calc.legs, structure_index=None if average else (torch.cat(sidx) if sidx else
                                                                               torch.zeros(0, dtype=torch.long)),
                     meta=meta)
