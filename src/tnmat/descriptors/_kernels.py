"""Compiled (numba) kernels of the density expansion: batched neighbour search, fused forward and backward.

Same mathematics as the torch reference in :mod:`tnmat.descriptors.density`: per unordered pair (half list)
the closed-form projections ``e_{n'l}(d) = exp(-gamma_{n'l} d^2) f_c(d)`` times the regular solid harmonics
``R_lm(v) = d^l Y_lm(v_hat)`` are accumulated straight into the primitive coefficients of both centres
(the mirrored one with the parity ``(-1)^l``), then the per-l Loewdin transform is applied once per atom.
No per-pair intermediate arrays: one pair's 16-100 numbers live in small scratch buffers.

Parallelism is over structures: one ``prange`` iteration per thread, each taking structures from a shared
atomic queue (:func:`claim`), most expensive first; every structure is handled by one thread in a fixed order,
so results are bitwise identical for any thread count.  ``cache=True`` stores the machine code next to this
file (``__pycache__``); the first call in a fresh environment compiles for ~10-20 s, later processes load it.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator

import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from tnmat.descriptors._pair_math import _cutoff, _exp, _solid_harmonics, _solid_harmonics_values


@intrinsic
def claim(typingctx, counter):
    """Atomically ``old = counter[0]; counter[0] += 1; return old`` (int64): the next item of a shared work
    queue.  Threads that loop ``while (k := claim(c)) < n`` take items as they become free (dynamic scheduling:
    a thread slowed by another process on its core takes fewer items), while numba's prange splits statically."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [context.get_constant(types.intp,
                                                                                                      0)])
        return builder.atomic_rmw("add", ptr, context.get_constant(types.int64, 1), "seq_cst")
    return types.int64(counter), codegen


def resolve_jobs(n_jobs: int | None) -> int:
    """n_jobs as in joblib: None or 1 -> 1, -1 -> all cores, -k -> all but k-1."""
    cores = os.cpu_count() or 1
    if n_jobs is None:
        return 1
    if not isinstance(n_jobs, int | np.integer) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer or None, got {n_jobs!r}")
    return max(1, min(cores, int(n_jobs) if n_jobs > 0 else cores + 1 + int(n_jobs)))


@contextlib.contextmanager
def numba_threads(n_jobs: int | None) -> Iterator[None]:
    """Run the enclosed kernels on ``n_jobs`` numba threads (results do not depend on it: every structure or
    output row is computed by one thread alone, in a fixed order; the work queue only decides which).  The
    kernels are ``parallel=True`` builds for every thread count: with one thread they took 9-20 % less CPU than
    plain serial builds of the same code (results/descriptors/serial_builds.json -> parallel_builds.json)."""
    import numba

    # threading layer: numba's default (OpenMP where available; in a process that imported torch, torch's GNU
    # OpenMP runtime).  Measured on the idle 2-core machine (results/descriptors/threading_layers.json, all
    # NMD18): 2 threads 1.74x one thread with OpenMP, 1.14x with numba's workqueue layer.  Its workers spin
    # between parallel regions (OMP_WAIT_POLICY is read when torch loads), so with other jobs on the cores 2
    # threads can be slower than one (2.2x slower at load ~8, docs/results/descriptors.md): n_jobs=1 by default.
    jobs = min(resolve_jobs(n_jobs), numba.config.NUMBA_NUM_THREADS)
    old = numba.get_num_threads()
    numba.set_num_threads(jobs)
    try:
        yield
    finally:
        numba.set_num_threads(old)


# ----------------------------------------------------------------------------- neighbour search


@njit(cache=True, inline="always")
def _image_range(df: float, reach: float) -> tuple[int, int]:
    return int(math.ceil(-reach - df)), int(math.floor(reach - df))


@njit(cache=True, inline="always")
def _fractional(pos, inv, r_cut, periodic):
    """Per-axis image reach r_cut |b_k| and fractional coordinates of the atoms (zeros for an open cell:
    then every image range is the single image 0)."""
    n = pos.shape[0]
    reach = np.zeros(3)
    frac = np.zeros((n, 3))
    if periodic:
        for k in range(3):
            reach[k] = r_cut * math.sqrt(inv[0, k] ** 2 + inv[1, k] ** 2 + inv[2, k] ** 2)
        for a in range(n):
            for k in range(3):
                frac[a, k] = pos[a, 0] * inv[0, k] + pos[a, 1] * inv[1, k] + pos[a, 2] * inv[2, k]
    return reach, frac


@njit(cache=True, inline="always")
def _image_bounds(frac, reach, i, j):
    """Lattice images (lo0, hi0, lo1, hi1, lo2, hi2) of atom j that can lie within r_cut of atom i."""
    lo0, hi0 = _image_range(frac[j, 0] - frac[i, 0], reach[0])
    lo1, hi1 = _image_range(frac[j, 1] - frac[i, 1], reach[1])
    lo2, hi2 = _image_range(frac[j, 2] - frac[i, 2], reach[2])
    return lo0, hi0, lo1, hi1, lo2, hi2


@njit(cache=True, inline="always")
def _skip_self_image(i, j, s0, s1, s2):
    """Half list: an atom's own images are kept once, for the lexicographically positive shift only."""
    return i == j and not (s0 > 0 or (s0 == 0 and (s1 > 0 or (s1 == 0 and s2 > 0))))


@njit(cache=True)
def _structure_pairs(pos, cell, inv, periodic, r_cut, out_i, out_j, out_s, out_v, start, fill):
    """Half neighbour list of one structure by direct search over atom pairs and lattice images.

    Fractional displacement bounds |f_k + s_k| <= r_cut |b_k| (b_k: reciprocal vectors without 2 pi) give
    the images to visit exactly.  Pair (i, j, s) is kept for i < j (any s) and for i == j with s
    lexicographically positive: every unordered pair, an atom and its own images included, once.
    Returns the pair count; writes the pairs from ``start`` when ``fill``."""
    n = pos.shape[0]
    rc2 = r_cut * r_cut
    reach, frac = _fractional(pos, inv, r_cut, periodic)
    count = 0
    for i in range(n):
        for j in range(i, n):
            lo0, hi0, lo1, hi1, lo2, hi2 = _image_bounds(frac, reach, i, j)
            dx0 = pos[j, 0] - pos[i, 0]
            dy0 = pos[j, 1] - pos[i, 1]
            dz0 = pos[j, 2] - pos[i, 2]
            for s0 in range(lo0, hi0 + 1):
                for s1 in range(lo1, hi1 + 1):
                    for s2 in range(lo2, hi2 + 1):
                        if _skip_self_image(i, j, s0, s1, s2):
                            continue
                        dx = dx0 + s0 * cell[0, 0] + s1 * cell[1, 0] + s2 * cell[2, 0]
                        dy = dy0 + s0 * cell[0, 1] + s1 * cell[1, 1] + s2 * cell[2, 1]
                        dz = dz0 + s0 * cell[0, 2] + s1 * cell[1, 2] + s2 * cell[2, 2]
                        if dx * dx + dy * dy + dz * dz <= rc2:
                            if fill:
                                p = start + count
                                out_i[p] = i
                                out_j[p] = j
                                out_s[p, 0] = s0
                                out_s[p, 1] = s1
                                out_s[p, 2] = s2
                                out_v[p, 0] = dx
                                out_v[p, 1] = dy
                                out_v[p, 2] = dz
                            count += 1
    return count


@njit(cache=True, parallel=True)
def neighbor_pairs(positions, cells, invs, periodic, atom_ptr, r_cut):
    """Half neighbour lists of a batch of structures (atoms numbered consecutively), two passes (count, fill)
    in parallel over structures.  Returns (pair_ptr, i, j, shifts, vectors); indices are batch-global."""
    n_frames = len(atom_ptr) - 1
    counts = np.zeros(n_frames, dtype=np.int64)
    dummy_i = np.zeros(0, dtype=np.int64)
    dummy_s = np.zeros((0, 3), dtype=np.int64)
    dummy_v = np.zeros((0, 3))
    for f in prange(n_frames):
        a0, a1 = atom_ptr[f], atom_ptr[f + 1]
        counts[f] = _structure_pairs(positions[a0:a1], cells[f], invs[f], periodic[f], r_cut,
                                     dummy_i, dummy_i, dummy_s, dummy_v, 0, False)
    pair_ptr = np.zeros(n_frames + 1, dtype=np.int64)
    for f in range(n_frames):
        pair_ptr[f + 1] = pair_ptr[f] + counts[f]
    total = pair_ptr[-1]
    out_i = np.empty(total, dtype=np.int64)
    out_j = np.empty(total, dtype=np.int64)
    out_s = np.empty((total, 3), dtype=np.int64)
    out_v = np.empty((total, 3))
    for f in prange(n_frames):
        a0, a1 = atom_ptr[f], atom_ptr[f + 1]
        _structure_pairs(positions[a0:a1], cells[f], invs[f], periodic[f], r_cut, out_i, out_j, out_s, out_v,
                         pair_ptr[f], True)
        for p in range(pair_ptr[f], pair_ptr[f + 1]):
            out_i[p] += a0
            out_j[p] += a0
    return pair_ptr, out_i, out_j, out_s, out_v


# ----------------------------------------------------------------------------- forward / backward


@njit(cache=True, inline="always")
def _accumulate_pair(prim, i, j, si, sj, x, y, z, gamma, parity, l_max, shtab, cut, sh, ex, ee):
    """Add one half-list pair (i, j, v = (x, y, z)) to the primitive coefficients of both centres:
    prim[i, a_j, (n', lm)] += e_{n'l}(d) R_lm(v) and prim[j, a_i, (n', lm)] += (-1)^l e_{n'l}(d) R_lm(v).
    prim rows are flat (n', lm) so that the two updates are contiguous, vectorised loops; ``ee`` is the
    per-pair product row (length n' n_lm), ``sh`` (n_lm) and ``ex`` (n' n_l) scratch, ``parity`` the (-1)^l row."""
    kappa, top, ca, cb = shtab
    n_max, n_l = gamma.shape[0], gamma.shape[1]
    n_lm = n_l * n_l
    d2 = x * x + y * y + z * z
    if d2 < 1e-16:
        return False  # two atoms at the same position: the caller raises, naming the structure
    fc, _ = _cutoff(math.sqrt(d2), cut[0], cut[1], cut[2] > 0.5)
    _solid_harmonics_values(x, y, z, l_max, kappa, top, ca, cb, sh)
    # n_max * n_l exponentials at once: the loop vectorises (:func:`_exp`); then e_{n'l} broadcast over m
    # (slice views: contiguous loops without index wraparound, so LLVM vectorises)
    gflat = gamma.reshape(n_max * n_l)
    for q in range(n_max * n_l):
        ex[q] = _exp(-gflat[q] * d2) * fc
    for k in range(n_max):
        ek = ee[k * n_lm : (k + 1) * n_lm]
        for l in range(n_l):
            e = ex[k * n_l + l]
            seg = ek[l * l : (l + 1) * (l + 1)]
            for q in range(2 * l + 1):
                seg[q] = e
    sh0 = sh
    row_i = prim[i, sj]
    row_j = prim[j, si]
    for k in range(n_max):
        ek = ee[k * n_lm : (k + 1) * n_lm]
        ri = row_i[k * n_lm : (k + 1) * n_lm]
        rj = row_j[k * n_lm : (k + 1) * n_lm]
        for q in range(n_lm):
            c = ek[q] * sh0[q]
            ri[q] += c
            rj[q] += parity[q] * c
    return True


@njit(cache=True)
def _parity_row(n_max, n_l):
    """(-1)^l on the flat (n', lm) layout."""
    row = np.empty(n_max * n_l * n_l)
    for k in range(n_max):
        for l in range(n_l):
            for lm in range(l * l, (l + 1) * (l + 1)):
                row[k * n_l * n_l + lm] = 1.0 if l % 2 == 0 else -1.0
    return row


@njit(cache=True, inline="always")
def _transform(prim, out, a0, species, transform, self_term):
    """out[a0 + i, a, n, lm] = sum_n' transform[l, n, n'] prim[i, a, n', lm] (+ the centre's own Gaussian)."""
    n_at, n_species = prim.shape[0], prim.shape[1]
    n_max, n_lm = out.shape[2], out.shape[3]
    for i in range(n_at):
        for a in range(n_species):
            for l in range(transform.shape[0]):
                for lm in range(l * l, (l + 1) * (l + 1)):
                    for n in range(n_max):
                        acc = 0.0
                        for k in range(n_max):
                            acc += transform[l, n, k] * prim[i, a, k * n_lm + lm]
                        out[a0 + i, a, n, lm] = acc
        if len(self_term):
            for n in range(n_max):
                out[a0 + i, species[a0 + i], n, 0] += self_term[n]


@njit(cache=True, inline="always")
def _thread_scratch(atom_ptr, n_species, n_max, n_l):
    """Scratch of one thread: primitive rows for the largest structure (zeroed per structure, cache-resident)
    and the per-pair buffers."""
    big = 1
    for f in range(len(atom_ptr) - 1):
        big = max(big, atom_ptr[f + 1] - atom_ptr[f])
    prim = np.empty((big, n_species, n_max * n_l * n_l))
    return prim, np.empty(n_l * n_l), np.empty(n_max * n_l), np.empty(n_max * n_l * n_l)


@njit(cache=True, parallel=True)
def density_forward(vec, pi, pj, pair_ptr, atom_ptr, species, n_species, consts, order, out, n_threads):
    """A[i, a, n, lm] (float64) of a batch from a grouped half pair list: per structure, accumulate the
    primitive projections of every pair into both centres, then transform, into ``out`` (N, S, n, lm) (every
    entry written; a buffer the caller reuses across chunks).  The threads take structures one
    at a time from a shared queue in the order ``order`` (most expensive first: :func:`cost_order`); every
    structure is computed by one thread alone, so the result does not depend on who took it.  ``n_threads``:
    numba.get_num_threads() of the caller (called inside a kernel it would make numba refuse to cache it).

    consts = (gamma (n', l), transform (l, n, n'), self_term (n,) or empty, shtab = (kappa, top, ca, cb),
    cut = (r_cut, width, cosine flag)) (:class:`tnmat.descriptors._compiled.DensityConstants`)."""
    gamma, transform, self_term, shtab, cut = consts
    kappa, top, ca, cb = shtab  # tuples of arrays cannot enter a parallel loop's body
    n_max, n_l = gamma.shape[0], gamma.shape[1]
    bad = np.zeros(len(atom_ptr) - 1, dtype=np.bool_)
    parity = _parity_row(n_max, n_l)
    queue = np.zeros(1, dtype=np.int64)
    for _ in prange(n_threads):
        prim_s, sh, ex, ee = _thread_scratch(atom_ptr, n_species, n_max, n_l)
        while True:
            q = claim(queue)
            if q >= len(order):
                break
            f = order[q]
            a0, a1 = atom_ptr[f], atom_ptr[f + 1]
            prim = prim_s[: a1 - a0]
            prim[...] = 0.0
            for p in range(pair_ptr[f], pair_ptr[f + 1]):
                if not _accumulate_pair(prim, pi[p] - a0, pj[p] - a0, species[pi[p]], species[pj[p]], vec[p, 0],
                                        vec[p, 1], vec[p, 2], gamma, parity, n_l - 1, (kappa, top, ca, cb), cut, sh,
                                        ex, ee):
                    bad[f] = True
            _transform(prim, out, a0, species, transform, self_term)
    return out, bad


@njit(cache=True, inline="always")
def _direct_structure(pos, cell, inv, periodic, sp, prim, gamma, shtab, cut, parity, scratch):
    """Fused search + accumulation of one structure (see :func:`density_forward_direct`) into ``prim``
    (zeroed here); returns False when two atoms coincide."""
    sh, ex, ee = scratch
    n_l = gamma.shape[1]
    r_cut = cut[0]
    rc2 = r_cut * r_cut
    n = pos.shape[0]
    prim[...] = 0.0
    reach, frac = _fractional(pos, inv, r_cut, periodic)
    ok = True
    for i in range(n):
        for j in range(i, n):
            lo0, hi0, lo1, hi1, lo2, hi2 = _image_bounds(frac, reach, i, j)
            dx0 = pos[j, 0] - pos[i, 0]
            dy0 = pos[j, 1] - pos[i, 1]
            dz0 = pos[j, 2] - pos[i, 2]
            for s0 in range(lo0, hi0 + 1):
                for s1 in range(lo1, hi1 + 1):
                    for s2 in range(lo2, hi2 + 1):
                        if _skip_self_image(i, j, s0, s1, s2):
                            continue
                        x = dx0 + s0 * cell[0, 0] + s1 * cell[1, 0] + s2 * cell[2, 0]
                        y = dy0 + s0 * cell[0, 1] + s1 * cell[1, 1] + s2 * cell[2, 1]
                        z = dz0 + s0 * cell[0, 2] + s1 * cell[1, 2] + s2 * cell[2, 2]
                        if x * x + y * y + z * z <= rc2 and not _accumulate_pair(
                                prim, i, j, sp[i], sp[j], x, y, z, gamma, parity, n_l - 1, shtab, cut, sh, ex,
                                ee):
                            ok = False
    return ok


@njit(cache=True, parallel=True)
def density_forward_direct(positions, cells, invs, periodic, atom_ptr, species, n_species, consts, order, out,
                           n_threads):
    """As :func:`density_forward`, with the neighbour search fused in (no pair list is ever stored): the
    images of :func:`_structure_pairs` are visited and every pair within r_cut is accumulated at once."""
    gamma, transform, self_term, shtab, cut = consts
    kappa, top, ca, cb = shtab  # tuples of arrays cannot enter a parallel loop's body
    n_max, n_l = gamma.shape[0], gamma.shape[1]
    bad = np.zeros(len(atom_ptr) - 1, dtype=np.bool_)
    parity = _parity_row(n_max, n_l)
    queue = np.zeros(1, dtype=np.int64)
    for _ in prange(n_threads):
        prim_s, sh, ex, ee = _thread_scratch(atom_ptr, n_species, n_max, n_l)
        while True:
            q = claim(queue)
            if q >= len(order):
                break
            f = order[q]
            a0, a1 = atom_ptr[f], atom_ptr[f + 1]
            prim = prim_s[: a1 - a0]
            if not _direct_structure(positions[a0:a1], cells[f], invs[f], periodic[f], species[a0:a1], prim, gamma,
                                     (kappa, top, ca, cb), cut, parity, (sh, ex, ee)):
                bad[f] = True
            _transform(prim, out, a0, species, transform, self_term)
    return out, bad


def cost_order(cost: np.ndarray) -> np.ndarray:
    """Items by decreasing ``cost`` (ties in index order): the queue order of the density kernels, so that the
    last items the threads take are the cheapest (longest-processing-time first).  Only the schedule depends
    on it: every item is computed alone, so results are identical for any order and thread count."""
    return np.argsort(-np.asarray(cost, dtype=np.float64), kind="stable").astype(np.int64)


@njit(cache=True, parallel=True)
def density_backward(grad_a, vec, pi, pj, pair_ptr, atom_ptr, species, consts):
    """d(sum grad_a * A)/d vec (P, 3): the transpose of :func:`density_forward` (same pairs, same order)."""
    gamma, transform, _, shtab, cut = consts
    kappa, top, ca, cb = shtab
    r_cut, width, cosine = cut[0], cut[1], cut[2] > 0.5
    n_max, n_l = gamma.shape[0], gamma.shape[1]
    l_max = n_l - 1
    n_lm = n_l * n_l
    n_species = grad_a.shape[1]
    gvec = np.zeros((vec.shape[0], 3))
    l_of = np.empty(n_lm, dtype=np.int64)
    for l in range(n_l):
        for k in range(l * l, (l + 1) * (l + 1)):
            l_of[k] = l
    for f in prange(len(atom_ptr) - 1):
        a0, a1 = atom_ptr[f], atom_ptr[f + 1]
        # gradient w.r.t. the primitive coefficients: transform^T per l
        gp = np.zeros((a1 - a0, n_species, n_max, n_lm))
        for i in range(a1 - a0):
            for a in range(n_species):
                for lm in range(n_lm):
                    l = l_of[lm]
                    for k in range(n_max):
                        acc = 0.0
                        for n in range(n_max):
                            acc += transform[l, n, k] * grad_a[a0 + i, a, n, lm]
                        gp[i, a, k, lm] = acc
        cs = np.empty(n_l)
        ss = np.empty(n_l)
        pl = np.empty((n_l, n_l))
        plz = np.empty((n_l, n_l))
        plr = np.empty((n_l, n_l))
        dcs = np.zeros((2, n_l))
        dss = np.zeros((2, n_l))
        sh = np.empty((4, n_lm))
        for p in range(pair_ptr[f], pair_ptr[f + 1]):
            x, y, z = vec[p, 0], vec[p, 1], vec[p, 2]
            d2 = x * x + y * y + z * z
            d = math.sqrt(d2)
            fc, dfc = _cutoff(d, r_cut, width, cosine)
            _solid_harmonics(x, y, z, l_max, kappa, top, ca, cb, cs, ss, pl, sh, True, dcs, dss, plz, plr)
            i, j = pi[p] - a0, pj[p] - a0
            si, sj = species[pi[p]], species[pj[p]]
            radial = 0.0  # sum G e'(d) R / d, multiplies v
            gx, gy, gz = 0.0, 0.0, 0.0
            for k in range(n_max):
                for l in range(n_l):
                    ex = math.exp(-gamma[k, l] * d2)
                    e = ex * fc
                    de = ex * (dfc - 2.0 * gamma[k, l] * d * fc)
                    sign = 1.0 if l % 2 == 0 else -1.0
                    for lm in range(l * l, (l + 1) * (l + 1)):
                        g = gp[i, sj, k, lm] + sign * gp[j, si, k, lm]
                        radial += g * de * sh[0, lm]
                        ge = g * e
                        gx += ge * sh[1, lm]
                        gy += ge * sh[2, lm]
                        gz += ge * sh[3, lm]
            radial /= d
            gvec[p, 0] = gx + radial * x
            gvec[p, 1] = gy + radial * y
            gvec[p, 2] = gz + radial * z
    return gvec
