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
- ``tnmat-nu3``: the bispectrum (order 3), on the first ``--nu3-structures`` structures.
- ``nl-vesin`` / ``nl-ase``: the neighbour-list libraries alone (r_cut 6 A; ASE on a subset, scaled).

Usage: ``python benchmarks/descriptors.py [--nmd18 PATH] [--out bench_out/descriptors.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

SPECIES = ["O", "Al", "Ga", "In"]
HYPER = dict(r_cut=6.0, n_max=4, l_max=3, sigma=0.5)
METHODS = ["tnmat", "tnmat-dscribe-eq", "dscribe", "featomic", "tnmat-peratom", "dscribe-peratom",
           "featomic-peratom", "tnmat-nu3", "nl-vesin", "nl-ase"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _frames(root: Path):
    from tnmat.data import load_nmd18

    ds = load_nmd18(root)
    return ds.structures


def run_one(method: str, root: Path, nu3_structures: int, threads: int = 1) -> dict:
    """Time one method in this process; returns seconds, counts and memory."""
    warnings.simplefilter("ignore")
    import numpy as np
    import torch

    torch.set_num_threads(threads)  # DScribe runs single-threaded (n_jobs=1): compare like with like

    frames = _frames(root)
    if method == "tnmat-nu3":
        frames = frames[:nu3_structures]
    if method == "nl-ase":
        frames = frames[:300]
    n_struct, n_atoms = len(frames), sum(len(a) for a in frames)
    base_rss = _rss_mb()
    extra: dict = {}
    t0 = time.perf_counter()
    if method.startswith("tnmat"):
        from tnmat.descriptors import AtomicDensity, Invariants

        if method == "tnmat-dscribe-eq":
            dens = AtomicDensity.dscribe_equivalent(species=SPECIES, **HYPER)
        else:
            dens = AtomicDensity(species=tuple(SPECIES), **HYPER)
        calc = Invariants(dens, order=3 if method == "tnmat-nu3" else 2)
        out = calc.compute(frames, average=method != "tnmat-peratom", progress=False)
        shape = tuple(out.values.shape)
        if method == "tnmat-dscribe-eq":
            # agreement with DScribe on a sample (outside the timed region)
            seconds = time.perf_counter() - t0
            from dscribe.descriptors import SOAP

            from tnmat.descriptors.compat import from_dscribe_power_spectrum

            soap = SOAP(species=SPECIES, periodic=True, average="outer", rbf="gto", **HYPER)
            ref = from_dscribe_power_spectrum(soap.create(frames[:50]), soap, SPECIES, 4, 3)
            ours = out.values[:50].numpy()
            extra["max_rel_diff_vs_dscribe"] = float(np.abs(ours - ref).max() / np.abs(ref).max())
            return dict(method=method, seconds=seconds, n_structures=n_struct, n_atoms=n_atoms, shape=shape,
                        peak_rss_mb=_rss_mb(), data_rss_mb=base_rss, torch_threads=torch.get_num_threads(), **extra)
    elif method.startswith("dscribe"):
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
    elif method == "nl-ase":
        from ase.neighborlist import neighbor_list

        pairs = sum(len(neighbor_list("i", a, HYPER["r_cut"], self_interaction=False)) for a in frames)
        shape = (pairs,)
    else:
        raise ValueError(method)
    seconds = time.perf_counter() - t0
    return dict(method=method, seconds=seconds, n_structures=n_struct, n_atoms=n_atoms, shape=shape,
                peak_rss_mb=_rss_mb(), data_rss_mb=base_rss, torch_threads=torch.get_num_threads(), **extra)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmd18", default=os.environ.get("TNMAT_NMD18", str(Path(__file__).resolve().parents[2]
                                                                        / "shared/data/nmd18")))
    ap.add_argument("--out", default="bench_out/descriptors.json")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--nu3-structures", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for tnmat (default 1, like DScribe)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    root = Path(args.nmd18)
    if not (root / "train.csv").exists():
        sys.exit(f"NMD18 not found at {root}: pass --nmd18 PATH or set TNMAT_NMD18")
    if args.one:
        print(json.dumps(run_one(args.one, root, args.nu3_structures, args.threads)))
        return
    results = []
    for method in args.methods.split(","):
        proc = subprocess.run([sys.executable, __file__, "--one", method, "--nmd18", str(root),
                               "--nu3-structures", str(args.nu3_structures), "--threads", str(args.threads)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{method}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        r["structures_per_s"] = r["n_structures"] / r["seconds"]
        r["atoms_per_s"] = r["n_atoms"] / r["seconds"]
        results.append(r)
        print(f"  {method:18s} {r['seconds']:8.2f} s", file=sys.stderr)
    by = {r["method"]: r for r in results}

    def ratio(a: str, refs: list[str]) -> float | None:
        rs = [by[m]["atoms_per_s"] for m in refs if m in by]
        return by[a]["atoms_per_s"] / max(rs) if a in by and rs else None

    ratios = {
        "tnmat / faster(dscribe, featomic), averaged": ratio("tnmat", ["dscribe", "featomic"]),
        "tnmat-dscribe-eq / dscribe (identical output)": ratio("tnmat-dscribe-eq", ["dscribe"]),
        "tnmat-peratom / faster(dscribe, featomic), per atom": ratio("tnmat-peratom", ["dscribe-peratom",
                                                                                         "featomic-peratom"]),
        "vesin / ase neighbour list": ratio("nl-vesin", ["nl-ase"]),
    }
    header = f"{'method':20s} {'structures':>10s} {'atoms':>8s} {'seconds':>8s} {'struct/s':>9s} " \
             f"{'atoms/s':>9s} {'peak MB':>8s} {'+MB':>7s}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['method']:20s} {r['n_structures']:10d} {r['n_atoms']:8d} {r['seconds']:8.2f} "
              f"{r['structures_per_s']:9.0f} {r['atoms_per_s']:9.0f} {r['peak_rss_mb']:8.0f} "
              f"{r['peak_rss_mb'] - r['data_rss_mb']:7.0f}")
    print()
    for k, v in ratios.items():
        print(f"{k:55s} {'n/a' if v is None else f'{v:.2f}x'}")
    if "tnmat-dscribe-eq" in by:
        print(f"max relative difference tnmat vs DScribe (50 structures): "
              f"{by['tnmat-dscribe-eq'].get('max_rel_diff_vs_dscribe', float('nan')):.1e}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"settings": HYPER, "species": SPECIES, "results": results, "ratios": ratios,
                               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                           "python": platform.python_version()}}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
