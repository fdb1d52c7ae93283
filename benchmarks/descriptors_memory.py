"""Why two threads scale less on per-atom output: first-touch cost of the output memory (profile, all NMD18).

The per-atom power spectrum of NMD18 is 185 070 atoms x 1024 float64 = 1.5 GB of fresh output.  This script
times ``Invariants(dscribe_equivalent density, order=2).compute`` in fresh processes (as
``benchmarks/descriptors.py`` does) with 1 and 2 numba threads and three ways to provide the output:

- ``default``: the library's own :func:`tnmat.descriptors._compiled.output_tensor` (4 KB pages; with one
  thread a large output is mapped up front with ``madvise(MADV_POPULATE_WRITE)``);
- ``torch-4k``: ``torch.empty`` (4 KB pages: one page fault per 4 KB on first touch);
- ``numpy-thp``: ``numpy.empty`` (numpy advises the kernel to use 2 MB transparent huge pages for large
  arrays, so 512x fewer faults);
- ``pretouched``: a buffer allocated and written before the timer starts (no first-touch cost at all).

Per run it records wall seconds, user and system CPU seconds and minor page faults (``getrusage``).  The
difference ``torch-4k`` or ``numpy-thp`` minus ``pretouched`` is the cost of the fresh output; system time is
where it is spent.  ``--touch`` also times writing a fresh 1.5 GB array alone (1 and 2 threads, 4 KB and 2 MB
pages).  Runs are interleaved (mode, threads) within each repetition so that drift affects all alike.

``--modes default@1024,default@8192`` compares chunk sizes (``max_atoms``); ``--hog`` keeps one core busy with
a spinning process meanwhile (a machine with another job).

Usage: ``python benchmarks/descriptors_memory.py [--repeat 3] [--out bench_out/descriptors_memory.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from tnmat.reports import atomic_write

SPECIES = ("O", "Al", "Ga", "In")
MODES = ("default", "torch-4k", "numpy-thp", "pretouched")


def _usage() -> tuple[float, float, int]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime, r.ru_minflt


def _measure(fn) -> dict:
    """Wall, user, system seconds and minor faults of ``fn()``."""
    u0, s0, f0 = _usage()
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    u1, s1, f1 = _usage()
    return {"wall_s": wall, "user_s": u1 - u0, "sys_s": s1 - s0, "minflt": f1 - f0}


def run_compute(root: Path, mode: str, jobs: int, average: bool) -> dict:
    """One timed ``compute`` of all NMD18 in this (fresh) process with the given output allocation."""
    warnings.simplefilter("ignore")
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from tnmat.data import load_nmd18
    from tnmat.descriptors import AtomicDensity, Invariants
    from tnmat.descriptors import _compiled as C

    label = mode
    mode, _, chunk = mode.partition("@")  # MODE@N: chunks of N atoms (default: compute's own)
    frames = load_nmd18(root).structures
    dens = AtomicDensity.dscribe_equivalent(species=SPECIES, r_cut=6.0, n_max=4, l_max=3, sigma=0.5)
    calc = Invariants(dens, order=2)
    calc.compute(frames[:2], progress=False)  # loads the compiled kernels
    rows = len(frames) if average else sum(len(a) for a in frames)
    if mode == "torch-4k":
        C.output_tensor = lambda shape, dtype, n_jobs=1: torch.empty(shape, dtype=dtype)
    elif mode == "numpy-thp":
        C.output_tensor = lambda shape, dtype, n_jobs=1: torch.from_numpy(np.empty(shape))
    elif mode == "pretouched":
        buf = torch.from_numpy(np.empty((rows, *calc.sizes)))
        buf.numpy().fill(0.0)
        C.output_tensor = lambda shape, dtype, n_jobs=1: buf
    load = os.getloadavg()[0]
    out = _measure(lambda: calc.compute(frames, average=average, n_jobs=jobs, progress=False,
                                        max_atoms=int(chunk) if chunk else None))
    return {"mode": label, "jobs": jobs, "average": average, "atoms": sum(len(a) for a in frames),
            "output_gb": rows * 1024 * 8 / 1e9, "load_before": load, **out}


def run_touch(jobs: int, pages: str) -> dict:
    """Write a fresh 1.5 GB float64 array once (first touch) and once more (already mapped)."""
    import numba
    import numpy as np
    import torch
    from numba import njit, prange

    @njit(parallel=True)
    def fill(a, parts):
        n = a.shape[0]
        for g in prange(parts):
            for i in range(g * n // parts, (g + 1) * n // parts):
                a[i] = 1.0

    numba.set_num_threads(jobs)
    fill(np.empty(16), 2)
    n = 185070 * 1024
    a = np.empty(n) if pages == "2M" else torch.empty(n, dtype=torch.float64).numpy()
    first = _measure(lambda: fill(a, 1024))
    again = _measure(lambda: fill(a, 1024))
    return {"jobs": jobs, "pages": pages, "first_touch": first, "mapped_again": again}


def _spawn(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict]) -> dict:
    """Median, min and max of each measured quantity over the repetitions."""
    keys = ("wall_s", "user_s", "sys_s", "minflt")
    return {k: {"median": statistics.median(r[k] for r in runs), "min": min(r[k] for r in runs),
                "max": max(r[k] for r in runs)} for k in keys}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmd18", default=os.environ.get("TNMAT_NMD18", str(Path(__file__).resolve().parents[2]
                                                                        / "shared/data/nmd18")))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--averaged", action="store_true", help="also structure-averaged output (24 MB)")
    ap.add_argument("--touch", action="store_true", help="also the bare 1.5 GB first-touch timing")
    ap.add_argument("--hog", action="store_true", help="keep one core busy with a spinning process meanwhile "
                                                       "(a machine with another job)")
    ap.add_argument("--out", default="bench_out/descriptors_memory.json")
    ap.add_argument("--copy-to", default=None)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    root = Path(args.nmd18)
    if args.one:
        kind, *rest = args.one.split(":")
        out = run_touch(int(rest[0]), rest[1]) if kind == "touch" else run_compute(root, rest[0], int(rest[1]),
                                                                                     rest[2] == "avg")
        print(json.dumps(out))
        return
    if not (root / "train.csv").exists():
        sys.exit(f"NMD18 not found at {root}: pass --nmd18 PATH or set TNMAT_NMD18")
    cases = [(m, j, "atom") for m in args.modes.split(",") for j in (1, 2)]
    # averaged output (24 MB): only the library's own allocation modes (the output is too small to matter)
    cases += [(m, j, "avg") for m in args.modes.split(",") if m.startswith("default") for j in (1, 2)
              if args.averaged]
    runs, touches, load_start = [], [], os.getloadavg()
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.hog else None
    try:
        _loop(args, root, cases, runs, touches)
    finally:
        if hog is not None:
            hog.kill()
    _report(args, cases, runs, touches, load_start)


def _loop(args, root: Path, cases: list, runs: list, touches: list) -> None:
    """All repetitions, each running every case once (interleaved)."""
    for rep in range(args.repeat):
        for mode, jobs, avg in cases:
            r = _spawn(["--nmd18", str(root), "--one", f"compute:{mode}:{jobs}:{avg}"])
            runs.append({**r, "repetition": rep})
            print(f"  {mode:10s} {avg:4s} jobs {jobs}: wall {r['wall_s']:.2f} s user {r['user_s']:.2f} "
                  f"sys {r['sys_s']:.2f} minflt {r['minflt']}", file=sys.stderr, flush=True)
        if args.touch:
            for jobs in (1, 2):
                for pages in ("4K", "2M"):
                    touches.append({**_spawn(["--one", f"touch:{jobs}:{pages}"]), "repetition": rep})


def _report(args, cases: list, runs: list, touches: list, load_start) -> None:
    """Medians and per-repetition ratios; prints them and writes the JSON."""
    summary = {}
    for mode, jobs, avg in cases:
        sel = [r for r in runs if (r["mode"], r["jobs"], r["average"]) == (mode, jobs, avg == "avg")]
        summary[f"{mode} {'averaged' if avg == 'avg' else 'per atom'} {jobs} thread(s)"] = _summary(sel)
    ratios = {}
    for mode, _, avg in cases[::2]:
        name = f"{mode} {'averaged' if avg == 'avg' else 'per atom'}"
        pairs = [(a["wall_s"], b["wall_s"]) for a in runs for b in runs
                 if a["repetition"] == b["repetition"] and (a["mode"], a["average"]) == (b["mode"], b["average"])
                 == (mode, avg == "avg") and a["jobs"] == 1 and b["jobs"] == 2]
        per_rep = [one / two for one, two in pairs]
        ratios[f"{name}: 1 thread / 2 threads wall, per repetition"] = per_rep
    payload = {"runs": runs, "summary": summary, "ratios": ratios, "touch": touches, "hog": args.hog,
               "load_average": {"start": load_start, "end": os.getloadavg()}, "cpus": os.cpu_count()}
    for k, v in summary.items():
        print(f"{k:40s} wall {v['wall_s']['median']:.2f} [{v['wall_s']['min']:.2f}-{v['wall_s']['max']:.2f}] "
              f"sys {v['sys_s']['median']:.2f} [{v['sys_s']['min']:.2f}-{v['sys_s']['max']:.2f}] "
              f"minflt {v['minflt']['median']:.0f}")
    for k, v in ratios.items():
        print(f"{k:60s} " + " ".join(f"{x:.2f}" for x in v))
    for t in touches:
        print(f"touch {t['pages']} jobs {t['jobs']}: first {t['first_touch']['wall_s']:.2f} s "
              f"(sys {t['first_touch']['sys_s']:.2f}), again {t['mapped_again']['wall_s']:.2f} s")
    text = json.dumps(payload, indent=2)
    for target in [Path(args.out)] + ([Path(args.copy_to) / Path(args.out).name] if args.copy_to else []):
        atomic_write(target, text)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
