"""Descriptor throughput on NMD18: tnmat against DScribe and featomic in one run (ratios, not bare seconds).

Settings of the seed paper: r_cut 6 A, n_max 4, l_max 3, sigma 0.5 A, 4 species, structure-averaged power
spectrum.  Each method runs in its own subprocess so that peak memory (max RSS, minus the RSS after loading
the data) is its own.  Methods:

- ``dscribe``: DScribe SOAP(r_cut=6, rbf="gto", average="outer"), single process (n_jobs=1).  DScribe keeps
  neighbours up to r_cut + 3.72 sigma (its Gaussian padding), i.e. 7.86 A.
- ``featomic``: SoapPowerSpectrum (r_cut 6, shifted-cosine smoothing 0.5 A, GTO basis), then the mean over
  the atoms of every structure (metatensor.mean_over_samples).
- ``tnmat``: Invariants(AtomicDensity(r_cut=6, cosine cutoff 0.5 A), order=2), float64, the same
  hyper-parameters as a user passes them to DScribe/featomic.
- ``tnmat-dscribe-eq``: AtomicDensity.dscribe_equivalent: the identical output to DScribe (same 7.86 A
  neighbour sphere; agreement printed), i.e. the same arithmetic work.
- ``tnmat-peratom``/``dscribe-peratom``/``featomic-peratom``: per-atom output (no averaging).
- ``tnmat-torch-dscribe-eq``: the same with ``backend="torch"`` (the reference path; the compiled numba path
  is the default on CPU).
- ``*-reuse``: the same written into a buffer passed as ``out=`` that was touched before the timed call (a
  buffer reused across calls, as in an MD loop): no first touch of fresh memory; the buffer counts in the
  memory figure.
- ``*-2jobs``: the same on both cores (``n_jobs=2``; numba threads over cost-balanced work units, numba's
  default threading layer: OpenMP, in a process that imported torch torch's GNU OpenMP runtime);
  ``*-2jobs-workqueue``: the same with numba's workqueue layer.
- ``tnmat-nu3`` / ``tnmat-nu3-torch``: the bispectrum (order 3, full layout) with the compiled kernel and with
  the torch reference, on the first ``--nu3-structures`` structures (the equality of both is checked).
- ``tnmat-nu3-all``: the bispectrum of all structures with centre species (``center_species=True``), stored
  as its symmetry-unique entries (``unique=True``; the full layout of 3000 structures would be 25 GB).
- ``nl-vesin`` / ``nl-direct`` / ``nl-ase``: the neighbour lists alone (r_cut 6 A; ASE on a subset, scaled).

Every tnmat method first evaluates two structures untimed (loading the cached compiled kernels, about 1 s;
``first_call_s``); ``--compile`` also times the first call with an empty numba cache (the one-time JIT cost).
The machine is shared, so the JSON records the load average around every method and the CPU seconds other
processes took during its timed call (``others_cpu_s``; ``ratios_undisturbed_repetitions`` keeps the
repetitions in which both methods of a 2-job ratio saw < 0.2 s); ``--repeat`` runs every
method several times, interleaved (repetition by repetition), and the JSON keeps the fastest run, every run's
seconds, and ratios of both the fastest (``ratios``) and the median runs (``ratios_median``); compare ratios
from one invocation.

Usage: ``python benchmarks/descriptors.py [--nmd18 PATH] [--out bench_out/descriptors.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from tnmat.reports import atomic_write

SPECIES = ["O", "Al", "Ga", "In"]
HYPER = dict(r_cut=6.0, n_max=4, l_max=3, sigma=0.5)
METHODS = ["tnmat", "tnmat-dscribe-eq", "tnmat-torch-dscribe-eq", "dscribe", "featomic", "tnmat-peratom",
           "tnmat-dscribe-eq-peratom", "dscribe-peratom", "featomic-peratom", "tnmat-dscribe-eq-2jobs",
           "tnmat-dscribe-eq-peratom-2jobs", "tnmat-dscribe-eq-peratom-reuse", "tnmat-dscribe-eq-peratom-2jobs-reuse",
           "tnmat-dscribe-eq-2jobs-workqueue", "tnmat-nu3", "tnmat-nu3-torch",
           "tnmat-nu3-all", "tnmat-nu3-all-2jobs",
           "nl-vesin", "nl-direct", "nl-ase"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all processes, /proc/stat; 0 where it does not exist)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _frames(root: Path):
    from tnmat.data import load_nmd18

    ds = load_nmd18(root)
    return ds.structures


def _tnmat_calc(method: str, threads: int):
    from tnmat.descriptors import AtomicDensity, Invariants

    jobs = 2 if "-2jobs" in method else threads
    backend = "torch" if "torch" in method else "auto"
    if "dscribe-eq" in method:
        dens = AtomicDensity.dscribe_equivalent(species=SPECIES, **HYPER)
        dens = AtomicDensity(**{**dens.get_params(), "species": tuple(SPECIES)}, backend=backend, n_jobs=jobs)
    else:
        dens = AtomicDensity(species=tuple(SPECIES), **HYPER, backend=backend, n_jobs=jobs)
    if method.startswith("tnmat-nu3-all"):
        return Invariants(dens, order=3, center_species=True, unique=True)
    return Invariants(dens, order=3 if method.startswith("tnmat-nu3") else 2)


def run_one(method: str, root: Path, nu3_structures: int, threads: int = 1) -> dict:
    """Time one method in this process; returns seconds, counts and memory."""
    warnings.simplefilter("ignore")
    import numpy as np
    import torch

    jobs = 2 if "-2jobs" in method else threads
    torch.set_num_threads(jobs)  # DScribe runs single-threaded (n_jobs=1): compare like with like

    frames = _frames(root)
    if method in ("tnmat-nu3", "tnmat-nu3-torch"):
        frames = frames[:nu3_structures]
    if method == "nl-ase":
        frames = frames[:300]
    n_struct, n_atoms = len(frames), sum(len(a) for a in frames)
    extra: dict = {}
    calc = None
    if method.startswith("tnmat"):
        calc = _tnmat_calc(method, threads)
        t0 = time.perf_counter()
        calc.compute(frames[:2], progress=False)  # loads the cached compiled kernels (one-time per process)
        extra["first_call_s"] = time.perf_counter() - t0
    base_rss = _rss_mb()
    load_before = os.getloadavg()[0]
    buffer = None
    if calc is not None and "-reuse" in method:
        # the caller's buffer of an earlier call: allocated and touched (every page mapped) before the timed call
        buffer = torch.zeros(calc.output_shape(frames, average="peratom" not in method), dtype=torch.float64)
    t0, c0, busy0 = time.perf_counter(), time.process_time(), _machine_busy_s()
    if calc is not None:
        out = calc.compute(frames, average="peratom" not in method, progress=False, out=buffer)
        shape = tuple(out.values.shape)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        # CPU seconds other processes took during the timed call (the machine is shared): a disturbed run
        extra["others_cpu_s"] = max(0.0, _machine_busy_s() - busy0 - cpu_seconds)
        peak = _rss_mb()
        if method in ("tnmat-nu3", "tnmat-nu3-torch"):
            torch.save(out.values, Path(os.environ.get("TMPDIR", "/tmp")) / f"tnmat_bench_{method}.pt")
        if method == "tnmat-dscribe-eq":
            # agreement with DScribe on a sample (outside the timed region)
            from dscribe.descriptors import SOAP

            from tnmat.descriptors.compat import from_dscribe_power_spectrum

            soap = SOAP(species=SPECIES, periodic=True, average="outer", rbf="gto", **HYPER)
            ref = from_dscribe_power_spectrum(soap.create(frames[:50]), soap, SPECIES, 4, 3)
            ours = out.values[:50].numpy()
            extra["max_rel_diff_vs_dscribe"] = float(np.abs(ours - ref).max() / np.abs(ref).max())
        return dict(method=method, seconds=seconds, cpu_seconds=cpu_seconds, n_structures=n_struct,
                    n_atoms=n_atoms, shape=shape, peak_rss_mb=peak, data_rss_mb=base_rss, threads=jobs,
                    load_before=load_before, load_after=os.getloadavg()[0], **extra)
    if method.startswith("dscribe"):
        from dscribe.descriptors import SOAP

        soap = SOAP(species=SPECIES, periodic=True, average="off" if method.endswith("peratom") else "outer",
                    rbf="gto", **HYPER)
        out = soap.create(frames, n_jobs=1)
        shape = (len(out),) if isinstance(out, list) else tuple(np.shape(out))
    elif method.startswith("featomic"):
        import metatensor
        from featomic import SoapPowerSpectrum

        calc = SoapPowerSpectrum(
            cutoff={"radius": HYPER["r_cut"], "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
            density={"type": "Gaussian", "width": HYPER["sigma"]},
            basis={"type": "TensorProduct", "max_angular": HYPER["l_max"],
                   "radial": {"type": "Gto", "max_radial": HYPER["n_max"] - 1}},
        )
        desc = calc.compute(frames)
        desc = desc.keys_to_samples("center_type").keys_to_properties(["neighbor_1_type", "neighbor_2_type"])
        if not method.endswith("peratom"):
            desc = metatensor.mean_over_samples(desc, sample_names="atom")
        shape = tuple(desc.block().values.shape)
    elif method == "nl-vesin":
        import vesin

        nl = vesin.NeighborList(cutoff=HYPER["r_cut"], full_list=False, sorted=True)
        pairs = sum(len(nl.compute(a.positions, a.cell.array, True, "ij")[0]) for a in frames)
        shape = (pairs,)
    elif method == "nl-direct":
        from tnmat.descriptors.neighbors import build_pairs

        build_pairs(frames[:2], HYPER["r_cut"], (8, 13, 31, 49), method="direct")  # cached kernels
        t0, c0 = time.perf_counter(), time.process_time()
        pairs = sum(len(build_pairs(frames[k : k + 16], HYPER["r_cut"], (8, 13, 31, 49), method="direct").center)
                    for k in range(0, len(frames), 16))
        shape = (pairs,)
    elif method == "nl-ase":
        from ase.neighborlist import neighbor_list

        pairs = sum(len(neighbor_list("i", a, HYPER["r_cut"], self_interaction=False)) for a in frames)
        shape = (pairs,)
    else:
        raise ValueError(method)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    return dict(method=method, seconds=seconds, cpu_seconds=cpu_seconds, n_structures=n_struct, n_atoms=n_atoms,
                shape=shape,
                peak_rss_mb=_rss_mb(), data_rss_mb=base_rss, threads=jobs, load_before=load_before,
                load_after=os.getloadavg()[0], **extra)


def compile_cost(root: Path) -> dict:
    """Seconds of the first call with an empty numba cache (JIT of every kernel the power spectrum and the
    bispectrum use), in a fresh process."""
    import tempfile

    code = ("import time, warnings; warnings.simplefilter('ignore'); from ase.build import bulk; "
            "from tnmat.descriptors import AtomicDensity, Invariants; a = [bulk('Al', cubic=True)]; "
            "d = AtomicDensity(species=('Al',), r_cut=4.0, n_max=2, l_max=2); t = time.perf_counter(); "
            "Invariants(d, order=2).compute(a); Invariants(d, order=3).compute(a); "
            "print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "NUMBA_CACHE_DIR": tmp})
    return {"first_call_empty_cache_s": float(proc.stdout.strip().splitlines()[-1])}


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmd18", default=os.environ.get("TNMAT_NMD18", str(Path(__file__).resolve().parents[2]
                                                                        / "shared/data/nmd18")))
    ap.add_argument("--out", default="bench_out/descriptors.json")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--nu3-structures", type=int, default=50, help="structures for the compiled-vs-torch bispectrum")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for tnmat (default 1, like DScribe)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per method; the fastest is kept")
    ap.add_argument("--compile", action="store_true", help="also time the first call with an empty numba cache")
    ap.add_argument("--copy-to", default=None, help="also write the JSON here (e.g. results/descriptors/)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    return ap.parse_args()


def _collect(args: argparse.Namespace, root: Path, methods: list[str]) -> dict[str, list[dict]]:
    """Every method's timed runs, each in a fresh subprocess, interleaved: each repetition runs every method
    once, so drift hits all alike."""
    for m in ("tnmat-nu3", "tnmat-nu3-torch"):  # written by this run's subprocesses for the equality check
        (Path(os.environ.get("TMPDIR", "/tmp")) / f"tnmat_bench_{m}.pt").unlink(missing_ok=True)
    samples: dict[str, list[dict]] = {m: [] for m in methods}
    failed: set[str] = set()
    for _ in range(args.repeat):
        for method in methods:
            if method in failed:
                continue
            proc = subprocess.run([sys.executable, __file__, "--one", method, "--nmd18", str(root),
                                   "--nu3-structures", str(args.nu3_structures), "--threads", str(args.threads)],
                                  capture_output=True, text=True,
                                  env={**os.environ, **({"NUMBA_THREADING_LAYER": "workqueue"}
                                                        if method.endswith("-workqueue") else {})})
            if proc.returncode != 0:
                print(f"{method}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
                failed.add(method)
                continue
            samples[method].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"  {method:30s} {samples[method][-1]['seconds']:8.2f} s  load "
                  f"{samples[method][-1]['load_before']:.1f}  others "
                  f"{samples[method][-1].get('others_cpu_s', 0.0):.2f} CPU s", file=sys.stderr)
    return samples


def _summarise(samples: dict[str, list[dict]]) -> list[dict]:
    """One row per method: its fastest run, with every run's seconds, the median and the rates."""
    results = []
    for runs in samples.values():
        if not runs:
            continue
        r = min(runs, key=lambda x: x["seconds"])
        r["all_seconds"] = [x["seconds"] for x in runs]
        r["median_seconds"] = statistics.median(r["all_seconds"])
        r["structures_per_s"] = r["n_structures"] / r["seconds"]
        r["atoms_per_s"] = r["n_atoms"] / r["seconds"]
        r["atoms_per_s_median"] = r["n_atoms"] / r["median_seconds"]
        r["atoms_per_cpu_s"] = r["n_atoms"] / r["cpu_seconds"]
        r["mb_per_atom"] = (r["peak_rss_mb"] - r["data_rss_mb"]) / r["n_atoms"]
        results.append(r)
    return results


RATIOS = {  # name: (method, reference methods: the faster of them)
    "tnmat / faster(dscribe, featomic), averaged": ("tnmat", ["dscribe", "featomic"]),
    "tnmat-dscribe-eq / dscribe (identical output), averaged, 1 thread": ("tnmat-dscribe-eq", ["dscribe"]),
    "tnmat-dscribe-eq-peratom / dscribe-peratom (identical output), 1 thread": ("tnmat-dscribe-eq-peratom",
                                                                                ["dscribe-peratom"]),
    "tnmat-peratom / faster(dscribe, featomic), per atom": ("tnmat-peratom", ["dscribe-peratom", "featomic-peratom"]),
    "tnmat-dscribe-eq / tnmat-torch-dscribe-eq (compiled / torch path)": ("tnmat-dscribe-eq",
                                                                          ["tnmat-torch-dscribe-eq"]),
    "2 jobs / 1 thread, averaged": ("tnmat-dscribe-eq-2jobs", ["tnmat-dscribe-eq"]),
    "2 jobs / 1 thread, per atom": ("tnmat-dscribe-eq-peratom-2jobs", ["tnmat-dscribe-eq-peratom"]),
    "2 jobs / 1 thread, per atom, reused buffer (both)": ("tnmat-dscribe-eq-peratom-2jobs-reuse",
                                                          ["tnmat-dscribe-eq-peratom-reuse"]),
    "1 thread, per atom, reused buffer / fresh output": ("tnmat-dscribe-eq-peratom-reuse",
                                                         ["tnmat-dscribe-eq-peratom"]),
    "2 jobs workqueue layer / 1 thread, averaged": ("tnmat-dscribe-eq-2jobs-workqueue", ["tnmat-dscribe-eq"]),
    "tnmat-dscribe-eq-2jobs / dscribe, averaged": ("tnmat-dscribe-eq-2jobs", ["dscribe"]),
    "bispectrum compiled / torch reference (same structures)": ("tnmat-nu3", ["tnmat-nu3-torch"]),
    "bispectrum all NMD18 centre species (unique) / torch reference": ("tnmat-nu3-all", ["tnmat-nu3-torch"]),
    "bispectrum 2 jobs / 1 thread": ("tnmat-nu3-all-2jobs", ["tnmat-nu3-all"]),
    "vesin / ase neighbour list": ("nl-vesin", ["nl-ase"]),
    "direct / vesin neighbour list": ("nl-direct", ["nl-vesin"]),
}
# one-thread methods compared by CPU time: less sensitive to the other jobs on the shared machine
CPU_RATIOS = {
    "tnmat-dscribe-eq / dscribe (identical output), averaged, CPU time": ("tnmat-dscribe-eq", ["dscribe"]),
    "tnmat-dscribe-eq-peratom / dscribe-peratom (identical output), CPU time": ("tnmat-dscribe-eq-peratom",
                                                                                ["dscribe-peratom"]),
    "tnmat / dscribe (same user settings), averaged, CPU time": ("tnmat", ["dscribe"]),
    "tnmat-dscribe-eq / tnmat-torch-dscribe-eq, CPU time": ("tnmat-dscribe-eq", ["tnmat-torch-dscribe-eq"]),
    "bispectrum compiled / torch reference, CPU time": ("tnmat-nu3", ["tnmat-nu3-torch"]),
    "bispectrum all NMD18 centre species / torch reference, CPU time": ("tnmat-nu3-all", ["tnmat-nu3-torch"]),
}
PAIRS_2JOBS = {"averaged": ("tnmat-dscribe-eq", "tnmat-dscribe-eq-2jobs"),
               "per atom": ("tnmat-dscribe-eq-peratom", "tnmat-dscribe-eq-peratom-2jobs"),
               "per atom, reused buffer": ("tnmat-dscribe-eq-peratom-reuse", "tnmat-dscribe-eq-peratom-2jobs-reuse"),
               "bispectrum, all NMD18, centre species": ("tnmat-nu3-all", "tnmat-nu3-all-2jobs")}


def _ratios(by: dict[str, dict], table: dict[str, tuple[str, list[str]]], key: str) -> dict[str, float | None]:
    """method[key] / max(reference[key]) for every entry of ``table`` (None when a method did not run)."""
    out = {}
    for name, (a, refs) in table.items():
        rs = [by[m][key] for m in refs if m in by]
        out[name] = by[a][key] / max(rs) if a in by and rs else None
    return out


def _repetition_ratios(by: dict[str, dict], samples: dict[str, list[dict]]) -> tuple[dict, dict]:
    """2 jobs / 1 thread repetition by repetition (interleaved, so each pair ran minutes apart at most), and
    the same from the repetitions in which other processes took < 0.2 CPU s during both timed calls."""
    per_repetition = {f"2 jobs / 1 thread, {name}": [one / two for one, two in zip(
        by[a]["all_seconds"], by[b]["all_seconds"], strict=False)] for name, (a, b) in PAIRS_2JOBS.items()
        if a in by and b in by}
    undisturbed = {}
    for name, (a, b) in PAIRS_2JOBS.items():
        if samples.get(a) and samples.get(b):
            quiet = [x["seconds"] / y["seconds"] for x, y in zip(samples[a], samples[b], strict=False)
                     if max(x.get("others_cpu_s", 0.0), y.get("others_cpu_s", 0.0)) < 0.2]
            undisturbed[f"2 jobs / 1 thread, {name}"] = {"ratios": quiet, "median": statistics.median(quiet)
                                                        if quiet else None}
    return per_repetition, undisturbed


def _checks(by: dict[str, dict], args: argparse.Namespace, root: Path) -> dict:
    """Agreement of the compiled bispectrum with the torch reference and of the power spectrum with DScribe."""
    checks: dict = {}
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    if (tmp / "tnmat_bench_tnmat-nu3.pt").exists() and (tmp / "tnmat_bench_tnmat-nu3-torch.pt").exists():
        import torch

        fast, ref = torch.load(tmp / "tnmat_bench_tnmat-nu3.pt"), torch.load(tmp / "tnmat_bench_tnmat-nu3-torch.pt")
        checks["bispectrum max |compiled - torch| / max |torch|"] = float((fast - ref).abs().max() / ref.abs().max())
    if "tnmat-dscribe-eq" in by:
        checks["power spectrum max rel diff vs DScribe (50 structures)"] = by["tnmat-dscribe-eq"].get(
            "max_rel_diff_vs_dscribe")
    if args.compile:
        checks.update(compile_cost(root))
    return checks


def _print_report(results: list[dict], ratios: dict, ratios_median: dict, ratios_cpu: dict,
                  repetitions: tuple[dict, dict], checks: dict) -> None:
    header = f"{'method':30s} {'structures':>10s} {'atoms':>8s} {'seconds':>8s} {'atoms/s':>9s} " \
             f"{'atoms/cpu-s':>11s} {'+MB':>7s} {'KB/atom':>8s} {'load':>5s}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['method']:30s} {r['n_structures']:10d} {r['n_atoms']:8d} {r['seconds']:8.2f} "
              f"{r['atoms_per_s']:9.0f} {r['atoms_per_cpu_s']:11.0f} {r['peak_rss_mb'] - r['data_rss_mb']:7.0f} "
              f"{1024 * r['mb_per_atom']:8.2f} "
              f"{r['load_before']:5.1f}")
    print()
    for k, v in {**ratios, **ratios_cpu}.items():
        med = ratios_median.get(k)
        print(f"{k:70s} {'n/a' if v is None else f'{v:.2f}x'}" + ("" if med is None else f"  (median {med:.2f}x)"))
    per_repetition, undisturbed = repetitions
    for k, v in per_repetition.items():
        print(f"{k:70s} " + ", ".join(f"{x:.2f}x" for x in v))
    for k, v in undisturbed.items():
        print(f"{k + ', undisturbed':70s} " + ", ".join(f"{x:.2f}x" for x in v["ratios"]))
    for k, v in checks.items():
        print(f"{k:70s} {v}")


def main() -> None:
    args = _parse()
    root = Path(args.nmd18)
    if not (root / "train.csv").exists():
        sys.exit(f"NMD18 not found at {root}: pass --nmd18 PATH or set TNMAT_NMD18")
    if args.one:
        print(json.dumps(run_one(args.one, root, args.nu3_structures, args.threads)))
        return
    load_start = os.getloadavg()
    samples = _collect(args, root, args.methods.split(","))
    results = _summarise(samples)
    by = {r["method"]: r for r in results}
    ratios = _ratios(by, RATIOS, "atoms_per_s")
    ratios_median = _ratios(by, RATIOS, "atoms_per_s_median")  # medians over --repeat: the typical run
    ratios_cpu = _ratios(by, CPU_RATIOS, "atoms_per_cpu_s")
    per_repetition, undisturbed = _repetition_ratios(by, samples)
    checks = _checks(by, args, root)
    _print_report(results, ratios, ratios_median, ratios_cpu, (per_repetition, undisturbed), checks)
    payload = json.dumps({"settings": HYPER, "species": SPECIES, "nu3_structures": args.nu3_structures,
                          "repeat": args.repeat, "results": results, "ratios": ratios, "ratios_median": ratios_median,
                          "ratios_cpu_time": ratios_cpu, "ratios_per_repetition": per_repetition,
                          "ratios_undisturbed_repetitions": undisturbed,
                          "checks": checks,
                          "load_average": {"start": load_start, "end": os.getloadavg()},
                          "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                      "python": platform.python_version()}}, indent=2)
    for target in [Path(args.out)] + ([Path(args.copy_to) / Path(args.out).name] if args.copy_to else []):
        atomic_write(target, payload)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
