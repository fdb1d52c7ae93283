"""Order-4 invariants on NMD18: the compiled kernel against the torch reference in the same run (ratio, equality).

The full order-4 layout has (S n)^4 (l_max+1)^4 (2 l_max+1) entries per row (940 MB per structure at the
power-spectrum settings n_max 4, l_max 3, 4 species), so this uses n_max 2, l_max 2 (1.66 million entries per
structure), r_cut 6 A, sigma 0.5 A, structure averages of the first ``--structures`` structures, float64, one
thread, each path in its own process (peak memory), the load average recorded.

``--backends numba,numba-2jobs`` compares the compiled kernel on one thread and on two (``n_jobs=2``; the
results must be bitwise equal), ``--repeat`` interleaves repetitions (medians in ``ratios_median``).

Usage: ``python benchmarks/descriptors_order4.py [--structures 20] [--out bench_out/descriptors_order4.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from tnmat.reports import atomic_write

SPECIES = ("O", "Al", "Ga", "In")
HYPER = dict(r_cut=6.0, n_max=2, l_max=2, sigma=0.5)


def run_one(backend: str, root: Path, structures: int, save: Path) -> dict:
    """Time one backend in this process; saves the values for the equality check."""
    warnings.simplefilter("ignore")
    import torch

    from tnmat.data import load_nmd18
    from tnmat.descriptors import AtomicDensity, Invariants

    torch.set_num_threads(1)
    frames = load_nmd18(root).structures[:structures]
    jobs = 2 if backend.endswith("-2jobs") else 1
    calc = Invariants(AtomicDensity(species=SPECIES, **HYPER, backend=backend.removesuffix("-2jobs"), n_jobs=jobs),
                      order=4)
    calc.compute(frames[:1], progress=False)  # loads the cached compiled kernels
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    out = calc.compute(frames, progress=False)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    torch.save(out.values, save)
    n_atoms = sum(len(a) for a in frames)
    return dict(backend=backend, seconds=seconds, cpu_seconds=cpu, n_structures=len(frames), n_atoms=n_atoms,
                atoms_per_s=n_atoms / seconds, shape=list(out.values.shape), load_before=load_before,
                peak_rss_above_data_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 - base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmd18", default=os.environ.get("TNMAT_NMD18", str(Path(__file__).resolve().parents[2]
                                                                        / "shared/data/nmd18")))
    ap.add_argument("--structures", type=int, default=20)
    ap.add_argument("--out", default="bench_out/descriptors_order4.json")
    ap.add_argument("--backends", default="numba,torch", help="numba, numba-2jobs, torch (comma-separated)")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved repetitions (medians reported)")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    root = Path(args.nmd18)
    if args.one:
        print(json.dumps(run_one(args.one[0], root, args.structures, Path(args.one[1]))))
        return
    import torch

    load_start = os.getloadavg()
    backends = args.backends.split(",")
    runs: dict[str, list[dict]] = {b: [] for b in backends}
    payload: dict = {"settings": HYPER, "species": SPECIES, "structures": args.structures, "repeat": args.repeat}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for backend in backends:
                save = Path(tmp) / f"{backend}.pt"
                proc = subprocess.run([sys.executable, __file__, "--one", backend, str(save), "--nmd18", str(root),
                                       "--structures", str(args.structures)], capture_output=True, text=True,
                                      check=True)
                runs[backend].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                r = runs[backend][-1]
                print(f"  {backend:12s} {r['seconds']:7.2f} s  {r['atoms_per_s']:8.0f} atoms/s", file=sys.stderr)
        values = {b: torch.load(Path(tmp) / f"{b}.pt") for b in backends}
    results = {b: min(rs, key=lambda r: r["seconds"]) | {"all_seconds": [r["seconds"] for r in rs]}
               for b, rs in runs.items()}
    median = {b: statistics.median(r["all_seconds"]) for b, r in results.items()}
    if "numba" in results and "torch" in results:
        payload["compiled / torch atoms/s"] = results["numba"]["atoms_per_s"] / results["torch"]["atoms_per_s"]
        ref = values["torch"]
        payload["max |compiled - torch| / max |torch|"] = float((values["numba"] - ref).abs().max()
                                                               / ref.abs().max())
    if "numba" in results and "numba-2jobs" in results:
        payload["2 jobs / 1 thread (fastest)"] = results["numba"]["seconds"] / results["numba-2jobs"]["seconds"]
        payload["2 jobs / 1 thread (median)"] = median["numba"] / median["numba-2jobs"]
        payload["2 jobs / 1 thread, per repetition"] = [a / b for a, b in zip(
            results["numba"]["all_seconds"], results["numba-2jobs"]["all_seconds"], strict=True)]
        payload["2 jobs bitwise equal to 1 thread"] = bool(torch.equal(values["numba"], values["numba-2jobs"]))
    payload |= {"results": results, "load_average": {"start": load_start, "end": os.getloadavg()}}
    print(json.dumps({k: v for k, v in payload.items() if k != "results"}, indent=1))
    atomic_write(Path(args.out), json.dumps(payload, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
