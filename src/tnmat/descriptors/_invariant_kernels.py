"""Compiled invariants from the density expansion: the bispectrum B3 over its symmetry-unique entries
(paper eq. 13) and the power spectrum B2 (eq. 11), accumulated straight into per-structure (or per-atom) rows.

B3[s1, s2, s3] = sum_m W^{l1 l2 l3}[m1, m2, m3] A[s1, m1] A[s2, m2] A[s3, m3] for the slots s = (p, l),
p = (a, n) the channel, with W^{l1 l2 l3}[m1, m2, m3] = sum_M C^{l1 l2 l3}_{m1 m2 M} C^{l3 l3 0}_{M m3 0}
(the left-comb fusion tree of :func:`tnmat.descriptors.invariants.couple_paths`, real CG coefficients).

Symmetry: for one (l1, l2, l3) the invariant 3-tensor is unique up to a factor (multiplicity one), so
permuting the slots multiplies B3 by a constant c(l1 l2 l3; pi) (a sign and a ratio of the tree's norms).
Only the *unique* entries are computed: slots sorted by (l, p), i.e. l1 <= l2 <= l3 with p1 <= p2 when
l1 = l2 and p2 <= p3 when l2 = l3 (documented expansion: :meth:`Bispectrum.expansion` gives for every entry
of the full (a1 a2 a3 n1 n2 n3 l1 l2 l3) layout its unique entry and factor c; forbidden entries are 0).
For n_max 4, l_max 3 and 4 species that is 24 768 numbers instead of 262 144.

The per-atom work is factorised: for each unique (l1, l2, l3) and channel pair (p1, p2),
T[m3] = sum_{m1 m2} W[m1, m2, m3] A[p1, m1] A[p2, m2] over the nonzero W only, then B = sum_m3 T[m3] A[p3, m3].
Averages are accumulated per output row (structure, or structure x centre species), so the expansion to the
full layout happens once per structure, not per atom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numba import njit, prange

from tnmat.descriptors._kernels import claim, cost_order
from tnmat.so3 import real_clebsch_gordan


def _w(l1: int, l2: int, l3: int) -> np.ndarray:
    return np.einsum("abM,Mc->abc", real_clebsch_gordan(l1, l2, l3), real_clebsch_gordan(l3, l3, 0)[:, :, 0])


def _triangle(l1: int, l2: int, l3: int) -> bool:
    return abs(l1 - l2) <= l3 <= l1 + l2


@dataclass(frozen=True)
class Bispectrum:
    """Coupling tables and the unique-entry layout of B3 for ``n_channels`` = species x n_max channels."""

    n_channels: int
    l_max: int

    @property
    def triples(self) -> list[tuple[int, int, int]]:
        """Sorted (l1 <= l2 <= l3) allowed triples, the kernel's outer loop."""
        L = self.l_max + 1
        return [(a, b, c) for a in range(L) for b in range(a, L) for c in range(b, L) if _triangle(a, b, c)]

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(triples (T, 3), entry pointer (T+1), entries m (E, 3) as flat lm indices, values (E,))."""
        return _tables(self.l_max)

    @property
    def n_unique(self) -> int:
        P = self.n_channels
        total = 0
        for l1, l2, l3 in self.triples:
            n12 = P * (P + 1) // 2 if l1 == l2 else P * P
            if l2 == l3:
                # p1 <= p2 <= p3 when all equal; else count p3 >= p2 over the (p1, p2) pairs
                total += (P * (P + 1) * (P + 2) // 6) if l1 == l2 else P * (P * (P + 1) // 2)
            else:
                total += n12 * P
        return total

    def unique_keys(self) -> np.ndarray:
        """(U, 6) = (p1, p2, p3, l1, l2, l3) of every unique entry, in the kernel's order."""
        P = self.n_channels
        rows = []
        for l1, l2, l3 in self.triples:
            for p1 in range(P):
                for p2 in range(p1 if l1 == l2 else 0, P):
                    for p3 in range(p2 if l2 == l3 else 0, P):
                        rows.append((p1, p2, p3, l1, l2, l3))
        return np.array(rows, dtype=np.int64).reshape(-1, 6)

    def expansion(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(full_index, unique_index, factor): full[..., full_index] = factor * unique[..., unique_index] for
        the flat full layout (p1, p2, p3, l1, l2, l3) (p = a n_max + n is reordered by the caller); the
        entries not listed (triangle-violating) are zero."""
        return _expansion(self.n_channels, self.l_max)


@lru_cache(maxsize=16)
def _tables(l_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    L = l_max + 1
    triples = [(a, b, c) for a in range(L) for b in range(a, L) for c in range(b, L) if _triangle(a, b, c)]
    ptr, ms, vals = [0], [], []
    for l1, l2, l3 in triples:
        w = _w(l1, l2, l3)
        idx = np.argwhere(np.abs(w) > 1e-14 * np.abs(w).max())
        for m1, m2, m3 in idx:
            ms.append((l1 * l1 + m1, l2 * l2 + m2, l3 * l3 + m3))
            vals.append(w[m1, m2, m3])
        ptr.append(len(vals))
    return (np.array(triples, dtype=np.int64).reshape(-1, 3), np.array(ptr, dtype=np.int64),
            np.array(ms, dtype=np.int64).reshape(-1, 3), np.array(vals))


@lru_cache(maxsize=16)
def _perm_factor(ls: tuple[int, int, int], order: tuple[int, int, int]) -> float:
    """c with B[slots t] = c B[canonical slots s], s_q = t_order[q] (see module docstring)."""
    canon = tuple(ls[k] for k in order)
    wc, wt = _w(*canon), _w(*ls)
    # v[m1, m2, m3] = wt[k] with k_order[q] = m_q: the unsorted tensor with its axes in canonical slot order
    v = np.transpose(wt, order)
    c = float((v * wc).sum() / (wc * wc).sum())
    if not np.allclose(v, c * wc, atol=1e-12 * np.abs(wc).max()):
        raise AssertionError(f"bispectrum coupling {ls} is not proportional to its sorted form {canon}")
    return c


@lru_cache(maxsize=8)
def _expansion(P: int, l_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    L = l_max + 1
    bs = Bispectrum(P, l_max)
    keys = bs.unique_keys()
    # dense lookup of canonical (slot1, slot2, slot3) -> unique index, slot = l * P + p (sorted by (l, p))
    nslot = L * P
    lookup = np.full((nslot, nslot, nslot), -1, dtype=np.int64)
    slot = keys[:, 3:] * P + keys[:, :3]
    lookup[slot[:, 0], slot[:, 1], slot[:, 2]] = np.arange(len(keys))
    p1, p2, p3, l1, l2, l3 = (g.ravel() for g in np.meshgrid(*[np.arange(P)] * 3, *[np.arange(L)] * 3,
                                                             indexing="ij"))
    full = np.arange(P**3 * L**3)
    ok = (np.abs(l1 - l2) <= l3) & (l3 <= l1 + l2)
    full, p1, p2, p3, l1, l2, l3 = (x[ok] for x in (full, p1, p2, p3, l1, l2, l3))
    slots = np.stack([l1 * P + p1, l2 * P + p2, l3 * P + p3], axis=1)
    order = np.argsort(slots, axis=1, kind="stable")
    canon = np.take_along_axis(slots, order, axis=1)
    uidx = lookup[canon[:, 0], canon[:, 1], canon[:, 2]]
    if (uidx < 0).any():
        raise AssertionError("bispectrum expansion: an allowed entry has no unique representative")
    ls = np.stack([l1, l2, l3], axis=1)
    factor = np.empty(len(full))
    combo = ls[:, 0] * 10**6 + ls[:, 1] * 10**4 + ls[:, 2] * 100 + order[:, 0] * 9 + order[:, 1] * 3 + order[:, 2]
    for c in np.unique(combo):
        sel = combo == c
        k = int(np.argmax(sel))
        factor[sel] = _perm_factor(tuple(int(x) for x in ls[k]), tuple(int(x) for x in order[k]))
    return full, uidx, factor


def row_queue(row_ptr: np.ndarray) -> np.ndarray:
    """Queue order of output rows for the invariant kernels: most atoms first (the per-atom cost of B3 and B4
    does not depend on the neighbours), so that the last rows the threads take are the cheapest."""
    return cost_order(np.diff(row_ptr))


@njit(cache=True, parallel=True, fastmath=True, error_model="numpy")
def bispectrum_rows(at, row_ptr, atoms, scale, triples, w_ptr, w_m, w_val, queue_order, out, n_threads):
    """out[g, u] = sum over the atoms of row g (atoms[row_ptr[g]:row_ptr[g+1]]) of scale[atom] * B3_unique[atom, u].

    at: (X, n_lm, P) float64, the expansion with the channel p = species x radial last (the innermost loops
    run over channels, contiguous); out: (rows, U) float64, every row overwritten.  The ``n_threads`` threads
    take rows from a shared queue (:func:`claim`) in ``queue_order`` (most atoms first); each row is computed
    by one thread, its atoms in a fixed order, so the result does not depend on the thread count."""
    n_rows = len(row_ptr) - 1
    P = at.shape[2]
    n_buf = 2 * triples[:, 2].max() + 1
    queue = np.zeros(1, dtype=np.int64)
    for _ in prange(n_threads):
        tm = np.empty((n_buf, P))
        while True:
            k = claim(queue)
            if k >= n_rows:
                break
            g = queue_order[k]
            _bispectrum_row(at, atoms[row_ptr[g] : row_ptr[g + 1]], scale, triples, w_ptr, w_m, w_val, tm, out[g])


@njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _bispectrum_row(at, row_atoms, scale, triples, w_ptr, w_m, w_val, tm, orow):
    """One row of :func:`bispectrum_rows` (``orow`` zeroed here), ``tm`` (n_buf, P) scratch."""
    P = at.shape[2]
    orow[:] = 0.0
    for x in row_atoms:
        sc = scale[x]
        ax = at[x]
        u = 0
        for t in range(triples.shape[0]):
            l1, l2, l3 = triples[t, 0], triples[t, 1], triples[t, 2]
            base3 = l3 * l3
            n3 = 2 * l3 + 1
            for p1 in range(P):
                p2s = p1 if l1 == l2 else 0
                n2 = P - p2s
                # T[m3, p2] = sc sum_e w_e A[p1, m1_e] A[p2, m2_e] (m3 = m3_e), vectorised over p2 (the
                # slice views let LLVM vectorise: offset indices would need wraparound checks)
                for k in range(n3):
                    trow = tm[k, p2s:]
                    for i in range(n2):
                        trow[i] = 0.0
                for e in range(w_ptr[t], w_ptr[t + 1]):
                    c = w_val[e] * ax[w_m[e, 0], p1] * sc
                    trow = tm[w_m[e, 2] - base3, p2s:]
                    arow = ax[w_m[e, 1], p2s:]
                    for i in range(n2):
                        trow[i] += c * arow[i]
                for p2 in range(p2s, P):
                    p3s = p2 if l2 == l3 else 0
                    n3p = P - p3s
                    dst = orow[u : u + n3p]
                    for k in range(n3):
                        tk = tm[k, p2]
                        src = ax[base3 + k, p3s:]
                        for i in range(n3p):
                            dst[i] += tk * src[i]
                    u += n3p


@njit(cache=True, parallel=True, fastmath=True, error_model="numpy")
def power_spectrum_rows(at, row_ptr, atoms, scale, l_max, n_max, out, n_threads):
    """out[g, a1, a2, n1, n2, l] = sum over the atoms of row g of
    scale[atom] (-1)^l / sqrt(2l+1) sum_m A[(a1 n1), lm] A[(a2 n2), lm] (B2, paper eq. 11, real basis), written
    in the final layout.  at: (X, n_lm, P) with P = species x n_max.  Only p1 <= p2 is accumulated per atom;
    the mirror is copied once per row.  The threads take rows from a shared queue (:func:`claim`); each row is
    computed by one thread, its atoms in a fixed order, so the result does not depend on the thread count
    (``n_threads``: numba.get_num_threads() of the caller)."""
    n_rows = len(row_ptr) - 1
    P = at.shape[2]
    L = l_max + 1
    queue = np.zeros(1, dtype=np.int64)
    for _ in prange(n_threads):
        acc = np.empty((L, P, P))
        while True:
            g = claim(queue)
            if g >= n_rows:
                break
            _power_spectrum_row(at, row_ptr, atoms, scale, n_max, g, acc, out)


@njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _power_spectrum_row(at, row_ptr, atoms, scale, n_max, g, acc, out):
    """Row g of :func:`power_spectrum_rows`, accumulated in ``acc`` (L, P, P) (zeroed here)."""
    L, P = acc.shape[0], acc.shape[1]
    acc[...] = 0.0
    for q in range(row_ptr[g], row_ptr[g + 1]):
        x = atoms[q]
        ax = at[x]
        for l in range(L):
            c = scale[x] * (1.0 if l % 2 == 0 else -1.0) / math.sqrt(2 * l + 1)
            for lm in range(l * l, (l + 1) * (l + 1)):
                row = ax[lm]
                for p1 in range(P):
                    v = c * row[p1]
                    dst = acc[l, p1, p1:]
                    src = row[p1:]
                    for i in range(P - p1):
                        dst[i] += v * src[i]
    for p1 in range(P):
        a1, n1 = p1 // n_max, p1 % n_max
        for p2 in range(P):
            a2, n2 = p2 // n_max, p2 % n_max
            lo, hi = min(p1, p2), max(p1, p2)
            for l in range(L):
                out[g, a1, a2, n1, n2, l] = acc[l, lo, hi]


@lru_cache(maxsize=8)
def fourbody_tables(l_max: int) -> tuple[np.ndarray, ...]:
    """Paths and sparse couplings of the order-4 invariants (left-comb tree of
    :func:`tnmat.descriptors.invariants.couple_paths` ending on irrep 0, so k3 = l4): paths (T, 5) =
    (l1, l2, l3, l4, k2), then for W1 = C^{l1 l2 k2}, W2 = C^{k2 l3 l4} and W3 = C^{l4 l4 0} a pointer (T+1) and
    entries (flat lm index of A or local m of the intermediate) with their values."""
    L, k_max = l_max + 1, 2 * l_max
    paths, tabs = [], {w: ([0], [], []) for w in ("w1", "w2", "w3")}

    def add(name: str, c: np.ndarray, index) -> None:
        ptr, ms, vals = tabs[name]
        for e in np.argwhere(np.abs(c) > 1e-14 * np.abs(c).max()):
            ms.append(index(*e))
            vals.append(c[tuple(e)])
        ptr.append(len(vals))

    for l1 in range(L):
        for l2 in range(L):
            for k2 in range(abs(l1 - l2), min(l1 + l2, k_max) + 1):
                for l3 in range(L):
                    for l4 in range(abs(k2 - l3), min(k2 + l3, l_max) + 1):
                        paths.append((l1, l2, l3, l4, k2))
                        add("w1", real_clebsch_gordan(l1, l2, k2), lambda a, b, c, l1=l1, l2=l2: (l1 * l1 + a,
                                                                                                l2 * l2 + b, c))
                        add("w2", real_clebsch_gordan(k2, l3, l4), lambda a, b, c, l3=l3: (a, l3 * l3 + b, c))
                        add("w3", real_clebsch_gordan(l4, l4, 0)[:, :, 0], lambda a, b, l4=l4: (a, l4 * l4 + b))
    out = [np.array(paths, dtype=np.int64).reshape(-1, 5)]
    for name, width in (("w1", 3), ("w2", 3), ("w3", 2)):
        ptr, ms, vals = tabs[name]
        out += [np.array(ptr, dtype=np.int64), np.array(ms, dtype=np.int64).reshape(-1, width), np.array(vals)]
    return tuple(out)


@njit(cache=True, parallel=True, error_model="numpy")
def fourbody_rows(at, row_ptr, atoms, scale, queue_order, out, n_threads, paths, w1p, w1, w1v, w2p, w2, w2v, w3p,
                  w3, w3v):
    """out[g, t, p1, p2, p3, p4] = sum over the atoms of row g of scale[atom] B4[p1..p4] on path t of
    :func:`fourbody_tables`: T2 = [A_l1 A_l2]_k2, T3 = [T2 A_l3]_l4, B4 = [T3 A_l4]_0, each step a sparse
    contraction vectorised over the last channel.  at: (X, n_lm, P); out (rows, T, P, P, P, P), every row
    overwritten.  Rows from a shared queue in ``queue_order`` as in :func:`bispectrum_rows` (one thread per row,
    atoms in a fixed order: the same result for any thread count)."""
    n_rows = len(row_ptr) - 1
    P = at.shape[2]
    n_k = 2 * paths[:, 4].max() + 1
    queue = np.zeros(1, dtype=np.int64)
    for _ in prange(n_threads):
        t2 = np.empty((n_k, P, P))
        t3 = np.empty((n_k, P, P, P))
        while True:
            k = claim(queue)
            if k >= n_rows:
                break
            g = queue_order[k]
            out[g] = 0.0
            for x in atoms[row_ptr[g] : row_ptr[g + 1]]:
                _fourbody_atom(at[x], scale[x], paths, w1p, w1, w1v, w2p, w2, w2v, w3p, w3, w3v, t2, t3, out[g])


@njit(cache=True, inline="always", error_model="numpy")
def _fourbody_atom(ax, sc, paths, w1p, w1, w1v, w2p, w2, w2v, w3p, w3, w3v, t2, t3, o_row):
    """Add sc B4 of one atom (expansion ``ax`` (n_lm, P)) to ``o_row`` (T, P, P, P, P)."""
    P = ax.shape[1]
    for t in range(paths.shape[0]):
        t2[: 2 * paths[t, 4] + 1] = 0.0
        for e in range(w1p[t], w1p[t + 1]):
            row = ax[w1[e, 1]]
            for p1 in range(P):
                v = w1v[e] * ax[w1[e, 0], p1]
                dst = t2[w1[e, 2], p1]
                for p2 in range(P):
                    dst[p2] += v * row[p2]
        t3[: 2 * paths[t, 3] + 1] = 0.0
        for e in range(w2p[t], w2p[t + 1]):
            row = ax[w2[e, 1]]
            for p1 in range(P):
                for p2 in range(P):
                    v = w2v[e] * t2[w2[e, 0], p1, p2]
                    dst = t3[w2[e, 2], p1, p2]
                    for p3 in range(P):
                        dst[p3] += v * row[p3]
        o = o_row[t]
        for e in range(w3p[t], w3p[t + 1]):
            row = ax[w3[e, 1]]
            for p1 in range(P):
                for p2 in range(P):
                    for p3 in range(P):
                        v = sc * w3v[e] * t3[w3[e, 0], p1, p2, p3]
                        dst = o[p1, p2, p3]
                        for p4 in range(P):
                            dst[p4] += v * row[p4]


def fourbody_full(at: np.ndarray, row_ptr: np.ndarray, atoms: np.ndarray, scale: np.ndarray, n_species: int,
                  n_max: int, l_max: int, n_threads: int) -> np.ndarray:
    """Order-4 invariants of every row in the layout of ``Invariants(order=4)``: (rows, a1..a4, n1..n4, l1..l4,
    k2); entries off the tree's paths are zero."""
    tabs = fourbody_tables(l_max)
    paths = tabs[0]
    b = np.empty((len(row_ptr) - 1, paths.shape[0], *(4 * (at.shape[2],))))
    fourbody_rows(at, row_ptr, atoms, scale, row_queue(row_ptr), b, n_threads, *tabs)
    L, K, P = l_max + 1, 2 * l_max + 1, n_species * n_max
    full = np.zeros((b.shape[0], P**4, L, L, L, L, K))
    for t, (l1, l2, l3, l4, k2) in enumerate(paths):
        full[:, :, l1, l2, l3, l4, k2] = b[:, t].reshape(b.shape[0], -1)
    full = full.reshape(b.shape[0], *([n_species, n_max] * 4), L, L, L, L, K)
    return np.ascontiguousarray(full.transpose(0, 1, 3, 5, 7, 2, 4, 6, 8, 9, 10, 11, 12, 13))
