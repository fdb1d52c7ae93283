"""Contraction speed of factorised (TT-SVD) inputs against dense inputs (paper Fig. 8b).

For an MPS (chi = 10) and an MPO (chi = 4) on 5 legs of dimension 8 (the padded many-species power spectrum
shape), times the forward pass on a batch of dense inputs (batch, 8, 8, 8, 8, 8) and on the same inputs
factorised with input bond chi_in (list of cores (batch, r, 8, r')), and checks that at full rank both give
the same outputs.  Prints a table and writes bench_out/compression.json.

    python benchmarks/compression.py [--batch 256] [--threads 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from tnmat.compression import n_input_parameters, tt_svd
from tnmat.networks import MPO, MPS


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--out", default="bench_out/compression.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dt = getattr(torch, args.dtype)
    sizes = (8, 8, 8, 8, 8)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, *sizes, generator=g, dtype=torch.float64)
    nets = {"mps-chi10": MPS(sizes, 10, dtype=dt, seed=0), "mpo-chi4": MPO(sizes, 4, dtype=dt, seed=0)}
    rows = []
    with torch.no_grad():
        for name, net in nets.items():
            xd = x.to(dt)
            t_dense = _time(lambda net=net, xd=xd: net(xd), args.repeats)
            ref64 = net.double()(x)
            net.to(dt)
            rows.append({"model": name, "chi_in": None, "n_in": 8**5, "seconds": t_dense, "speedup": 1.0,
                         "max_abs_diff_full_rank_f64": None})
            for chi in (1, 2, 4, 8, 16, 32, 64):
                cores = [c.to(dt) for c in tt_svd(x, max_bond=chi)]
                t = _time(lambda net=net, cores=cores: net(cores), args.repeats)
                diff = None
                if chi == 64:  # full rank: factorised == dense in float64
                    net.double()
                    diff = float((net([c.double() for c in tt_svd(x)]) - ref64).abs().max())
                    net.to(dt)
                rows.append({"model": name, "chi_in": chi, "n_in": n_input_parameters(cores), "seconds": t,
                             "speedup": t_dense / t, "max_abs_diff_full_rank_f64": diff})
    print(f"batch {args.batch}, {args.dtype}, {args.threads} thread(s), best of {args.repeats}")
    print(f"{'model':<10} {'chi_in':>6} {'N_in':>7} {'ms/batch':>9} {'speed-up':>9}")
    for r in rows:
        chi = "dense" if r["chi_in"] is None else r["chi_in"]
        diff = r["max_abs_diff_full_rank_f64"]
        print(f"{r['model']:<10} {chi:>6} {r['n_in']:>7} {1e3 * r['seconds']:>9.2f} {r['speedup']:>9.1f}"
              + ("" if diff is None else f"   |f - d| = {diff:.1e}"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": vars(args), "machine": platform.platform(), "torch": torch.__version__,
                               "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
