"""Cost model of the fused density kernel and the two-thread split it enables, on NMD18.

1. Per-structure kernel time (one thread, best of 3, first ``--structures`` structures, DScribe's sphere) against
   the structure's half-list pair count and the estimate ``n^2 (4/3 pi r_c^3) / 2V`` that ``cost_order`` uses:
   relative scatter of a one-parameter fit.
2. From those measured times, the best possible 2-thread ratio of the kernel over 1024-atom chunks with numba's
   static split by structure count and with the cost-balanced units (longest first to the least-loaded unit).
3. The branch-free exponential against libm: ns per 16 exponentials (one pair's worth) in a compiled loop.

Usage: ``python benchmarks/descriptors_cost_model.py [--structures 1000] [--out bench_out/descriptors_cost_model.json]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings
from pathlib import Path

import numpy as np
from numba import njit

from tnmat.reports import atomic_write

SPECIES = ("O", "Al", "Ga", "In")


def per_structure(frames, dens) -> np.ndarray:
    """(n atoms, volume, pairs, seconds) of every structure, one thread."""
    from tnmat.descriptors import _kernels as K
    from tnmat.descriptors._compiled import numba_threads
    from tnmat.descriptors.neighbors import species_indices

    consts, rows = dens.compiled_constants().arrays, []
    with numba_threads(1):
        for a in frames:
            cell = a.cell.array[None]
            inv, ptr = np.linalg.inv(cell), np.array([0, len(a)])
            args = (a.positions.copy(), cell, inv, np.ones(1, dtype=bool), ptr,
                    species_indices(a.numbers, dens.species_numbers, "s"), len(SPECIES), consts,
                    K.cost_order(np.ones(1)), np.empty((len(a), len(SPECIES), 4, 16)), 1)
            K.density_forward_direct(*args)
            best = min(_timed(K.density_forward_direct, args) for _ in range(3))
            pairs = len(K.neighbor_pairs(a.positions.copy(), cell, inv, np.ones(1, dtype=bool), ptr, dens.r_cut)[1])
            rows.append((len(a), a.get_volume(), pairs, best))
    return np.array(rows)


def _timed(fn, args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def split_ratios(n: np.ndarray, t: np.ndarray, est: np.ndarray, max_atoms: int = 1024) -> dict:
    """Ideal 2-thread ratio (sum of times / sum over chunks of the slower thread) for both splits."""
    static = balanced = 0.0
    start = 0
    while start < len(n):
        stop, atoms = start, 0
        while stop < len(n) and (atoms == 0 or atoms + n[stop] <= max_atoms):
            atoms, stop = atoms + n[stop], stop + 1
        ts, es = t[start:stop], est[start:stop]
        static += max(part.sum() for part in np.array_split(ts, 2))
        load = np.zeros(2)
        for k in np.argsort(-es, kind="stable"):
            load[np.argmin(load)] += ts[k]
        balanced += load.max()
        start = stop
    return {"static split by count": t.sum() / static, "cost-balanced units": t.sum() / balanced}


def exp_timing() -> dict:
    from tnmat.descriptors._pair_math import _exp

    @njit
    def fast(x, reps):
        out, s = np.empty(16), 0.0
        for r in range(reps):
            for q in range(16):
                out[q] = _exp(x[q] - r * 1e-9)
            s += out[3]
        return s

    @njit
    def libm(x, reps):
        out, s = np.empty(16), 0.0
        for r in range(reps):
            for q in range(16):
                out[q] = math.exp(x[q] - r * 1e-9)
            s += out[3]
        return s

    x = -np.random.default_rng(0).uniform(0, 100, 16)
    res = {}
    for name, fn in (("branch-free _exp", fast), ("libm exp", libm)):
        fn(x, 10)
        best = min(_timed(fn, (x, 1_000_000)) for _ in range(3))
        res[f"{name}, ns per 16"] = best / 1e6 * 1e9
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmd18", default=os.environ.get("TNMAT_NMD18", str(Path(__file__).resolve().parents[2]
                                                                        / "shared/data/nmd18")))
    ap.add_argument("--structures", type=int, default=1000)
    ap.add_argument("--out", default="bench_out/descriptors_cost_model.json")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from tnmat.data import load_nmd18
    from tnmat.descriptors import AtomicDensity

    load_start = os.getloadavg()
    frames = load_nmd18(Path(args.nmd18)).structures[: args.structures]
    dens = AtomicDensity.dscribe_equivalent(species=SPECIES, r_cut=6.0, n_max=4, l_max=3, sigma=0.5)
    n, vol, pairs, t = per_structure(frames, dens).T
    est = n * n * 4.0 / 3.0 * math.pi * dens.r_cut**3 / (2.0 * vol) + n
    fit = {}
    for name, x in (("pairs", pairs), ("estimate n^2 (4/3 pi r_c^3) / 2V + n", est), ("atoms", n)):
        c = float(x @ t / (x @ x))
        fit[name] = {"seconds per unit": c, "relative scatter": float(np.std((c * x - t) / t))}
    payload = {"structures": len(frames), "kernel seconds total": float(t.sum()), "fit": fit,
               "ideal 2-thread ratio of the kernel": split_ratios(n, t, est), "exp": exp_timing(),
               "load_average": {"start": load_start, "end": os.getloadavg()}}
    print(json.dumps(payload, indent=1))
    atomic_write(Path(args.out), json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
