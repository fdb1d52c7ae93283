"""Where the compiled descriptor path spends its time (one thread, CPU seconds, first N NMD18 structures).

Stages, each timed on its own over the same chunks that ``Invariants.compute`` uses (1024 atoms):
neighbour search alone (the compiled direct search that the fused kernel also runs), the fused density
kernel (search + radial x solid harmonics + accumulation + transform), the power spectrum from A (averaged
and per atom), the unique bispectrum from A (averaged, centre species), and the whole ``compute`` calls
(the difference is Python glue), and the same stages by wall time with 1 and 2 numba threads.
DScribe's sphere (``dscribe_equivalent``), n_max 4, l_max 3.

Usage: ``python benchmarks/descriptors_profile.py [--structures 1000] [--out bench_out/descriptors_profile.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numba
import numpy as np
import torch

from tnmat.reports import atomic_write

SPECIES = ("O", "Al", "Ga", "In")


def _best(fn, repeat: int, clock=time.process_time) -> float:
    """Fastest of ``repeat`` calls of ``fn`` by ``clock`` (CPU seconds by default)."""
    best = float("inf")
    for _ in range(repeat):
        c0 = clock()
        fn()
        best = min(best, clock() - c0)
    return best


def crossover(frame, sizes: list[int], repeat: int) -> list[dict]:
    """CPU seconds per atom of the fused direct-search kernel vs vesin pairs + the pair kernel on supercells
    of one structure (sets ``neighbors.DIRECT_MAX_ATOMS``)."""
    from tnmat.descriptors import AtomicDensity
    from tnmat.descriptors import _kernels as K
    from tnmat.descriptors._compiled import _pair_forward
    from tnmat.descriptors.neighbors import build_pairs, species_indices

    dens = AtomicDensity.dscribe_equivalent(species=SPECIES, r_cut=6.0, n_max=4, l_max=3, sigma=0.5)
    out = []
    for reps in sizes:
        atoms = frame.repeat((reps, reps, 1))
        sp = species_indices(atoms.numbers, dens.species_numbers, "supercell")
        cell = atoms.cell.array[None]
        ptr = np.array([0, len(atoms)])

        def direct(atoms=atoms, sp=sp, cell=cell, ptr=ptr) -> None:
            K.density_forward_direct(atoms.positions, cell, np.linalg.inv(cell), np.ones(1, dtype=bool), ptr, sp,
                                     4, dens.compiled_constants().arrays, K.cost_order(np.ones(1)),
                                     np.empty((len(atoms), 4, 4, 16)), 1)

        def pairs(atoms=atoms) -> None:
            pl = build_pairs([atoms], dens.r_cut, dens.species_numbers, method="vesin")
            _pair_forward(dens.compiled_constants(), pl.vectors.numpy(), pl)

        direct(), pairs()
        out.append({"atoms": len(atoms), "direct_s": _best(direct, repeat), "vesin_pairs_s": _best(pairs, repeat)})
        print(f"  supercell {len(atoms):5d} atoms: direct {out[-1]['direct_s']:.3f} s, "
              f"vesin + pair kernel {out[-1]['vesin_pairs_s']:.3f} s", flush=True)
    return out


def _best_wall(fn, repeat: int) -> float:
    return _best(fn, repeat, clock=time.perf_counter)


def two_cores(dens, frames, chunks, repeat: int) -> dict:
    """Wall seconds of each stage with 1 and 2 numba threads (same chunks): the fused density kernel, the
    power spectrum from A (averaged), the whole compute call; the remainder of compute is serial Python."""
    from tnmat.descriptors import Invariants
    from tnmat.descriptors._compiled import chunk_rows, expand_frames, numba_threads
    from tnmat.descriptors._invariant_kernels import power_spectrum_rows

    s, n, lmax = 4, 4, 3
    ats = [np.ascontiguousarray(a.numpy().reshape(a.shape[0], s * n, -1).transpose(0, 2, 1)) for *_, a in chunks]
    rows = [chunk_rows(atoms, first, stop, True, s, False) for first, stop, atoms, _ in chunks]
    out = {}
    for jobs in (1, 2):
        with numba_threads(jobs):
            def density() -> None:
                for first, stop, _, _ in chunks:
                    expand_frames(dens.compiled_constants(), frames[first:stop], first)

            def spectrum() -> None:
                for at, (ptr, idx, scale, n_rows) in zip(ats, rows, strict=True):
                    power_spectrum_rows(at, ptr, idx, scale, lmax, n, np.empty((n_rows, s, s, n, n, lmax + 1)),
                                    numba.get_num_threads())

            density(), spectrum()
            stages = {"density kernel (expand_frames)": _best_wall(density, repeat),
                      "power spectrum from A, averaged": _best_wall(spectrum, repeat),
                      "compute, averaged": _best_wall(
                          lambda jobs=jobs: Invariants(dens, order=2).compute(frames, n_jobs=jobs), repeat)}
        stages["serial rest of compute"] = (stages["compute, averaged"] - stages["density kernel (expand_frames)"]
                                            - stages["power spectrum from A, averaged"])
        out[f"{jobs} threads"] = stages
    out["ratios 1 / 2 threads"] = {k: out["1 threads"][k] / out["2 threads"][k] for k in out["1 threads"]}
    for k in out["1 threads"]:
        print(f"  {k:40s} 1 thread {out['1 threads'][k]:6.3f} s  2 threads {out['2 threads'][k]:6.3f} s  "
              f"ratio {out['ratios 1 / 2 threads'][k]:.2f}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmd18", default=os.environ.get("TNMAT_NMD18", str(Path(__file__).resolve().parents[2]
                                                                        / "shared/data/nmd18")))
    ap.add_argument("--structures", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default="bench_out/descriptors_profile.json")
    ap.add_argument("--copy-to", default=None)
    ap.add_argument("--crossover", default="1,2,4,8", help="supercells (r, r, 1) of structure 0 (80 atoms)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    from tnmat.data import load_nmd18
    from tnmat.descriptors import AtomicDensity, Invariants
    from tnmat.descriptors._compiled import chunk_rows, expand_frames
    from tnmat.descriptors._invariant_kernels import bispectrum_rows, power_spectrum_rows, row_queue
    from tnmat.descriptors._kernels import neighbor_pairs

    load_start = os.getloadavg()
    frames = load_nmd18(Path(args.nmd18)).structures[: args.structures]
    n_atoms = sum(len(a) for a in frames)
    dens = AtomicDensity.dscribe_equivalent(species=SPECIES, r_cut=6.0, n_max=4, l_max=3, sigma=0.5)
    chunks = [(first, stop, atoms, a) for first, stop, atoms, a in dens.iter_chunks(frames)]  # also warms up
    s, n, lmax = 4, 4, 3

    def search() -> None:
        for first, stop, _, _ in chunks:
            sub = frames[first:stop]
            ptr = np.concatenate([[0], np.cumsum([len(a) for a in sub])])
            cells = np.stack([a.cell.array for a in sub])
            neighbor_pairs(np.concatenate([a.positions for a in sub]), cells, np.linalg.inv(cells),
                           np.ones(len(sub), dtype=bool), ptr, dens.r_cut)

    def density() -> None:
        for first, stop, _, _ in chunks:
            expand_frames(dens.compiled_constants(), frames[first:stop], first)

    ats = [np.ascontiguousarray(a.numpy().reshape(a.shape[0], s * n, -1).transpose(0, 2, 1)) for *_, a in chunks]

    def spectrum(average: bool, order: int) -> None:
        for (first, stop, atoms, _), at in zip(chunks, ats, strict=True):
            center = order == 3
            ptr, idx, scale, n_rows = chunk_rows(atoms, first, stop, average, s, center)
            if order == 2:
                power_spectrum_rows(at, ptr, idx, scale, lmax, n, np.empty((n_rows, s, s, n, n, lmax + 1)),
                                    numba.get_num_threads())
            else:
                bs = Invariants(dens, order=3, unique=True)._bispectrum()
                bispectrum_rows(at, ptr, idx, scale, *bs.tables(), row_queue(ptr), np.empty((n_rows, bs.n_unique)),
                                numba.get_num_threads())

    spectrum(True, 3)  # compile / load
    stages = {
        "neighbour search alone": _best(search, args.repeat),
        "fused density kernel (search + expansion)": _best(density, args.repeat),
        "power spectrum from A, averaged": _best(lambda: spectrum(True, 2), args.repeat),
        "power spectrum from A, per atom": _best(lambda: spectrum(False, 2), args.repeat),
        "bispectrum (unique) from A, averaged, centre species": _best(lambda: spectrum(True, 3), args.repeat),
        "compute: power spectrum, averaged": _best(lambda: Invariants(dens, order=2).compute(frames), args.repeat),
        "compute: power spectrum, per atom": _best(
            lambda: Invariants(dens, order=2).compute(frames, average=False), args.repeat),
        "compute: bispectrum, centre species, unique": _best(
            lambda: Invariants(dens, order=3, center_species=True, unique=True).compute(frames), args.repeat),
    }
    print(f"{args.structures} structures, {n_atoms} atoms, one thread, CPU seconds (best of {args.repeat}), "
          f"load {os.getloadavg()[0]:.1f}")
    for k, v in stages.items():
        print(f"  {k:55s} {v:7.3f} s  {n_atoms / v:9.0f} atoms/s")
    print("two cores (wall seconds, best of --repeat):")
    two = two_cores(dens, frames, chunks, args.repeat)
    cross = crossover(frames[0], [int(x) for x in args.crossover.split(",")], args.repeat)
    payload = json.dumps({"structures": args.structures, "atoms": n_atoms, "cpu_seconds": stages,
                          "two_cores_wall_seconds": two, "direct_vs_vesin_supercells": cross,
                          "load_average": {"start": load_start, "end": os.getloadavg()}}, indent=2)
    for target in [Path(args.out)] + ([Path(args.copy_to) / Path(args.out).name] if args.copy_to else []):
        atomic_write(target, payload)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
