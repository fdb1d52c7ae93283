"""Throughput of tnmat.so3.real_spherical_harmonics against e3nn and scipy (vectors per second).

For each (l_max, dtype) the same random vectors (normal, seed 0) go through

- ``tnmat``: ``real_spherical_harmonics(x, l_max)`` (normalises inside), forward only and forward + backward
  (``y.sum().backward()``, what the differentiable density expansion pays);
- ``e3nn``: ``o3.spherical_harmonics(range(l_max + 1), x, normalize=True, normalization="integral")`` if e3nn is
  installed (a benchmark-only dependency: ``pip install e3nn``), forward and forward + backward;
- ``scipy``: ``scipy.special.sph_harm_y`` for every (l, m) on the angles (float64 only, complex output, on
  ``--n-scipy`` vectors since it is slow; the rate is per vector, so it is comparable).

Each timing is the best of ``--repeats`` runs after one warm-up, as wall time and as process CPU time (steadier
on a shared machine; with ``--threads 1`` it is the single-core cost).  Ratios > 1 mean faster than tnmat.
Before timing, agreement is checked: tnmat vs scipy through the documented real<->complex unitary, and e3nn vs
tnmat up to a per-l orthogonal change of basis (e3nn orders and signs its real basis differently); the maximum
deviations are printed and stored.

Usage: ``python benchmarks/so3_sph.py [--n 1000000] [--l-max 3 8] [--threads 1] [--device cpu|cuda]
[--out bench_out/so3_sph.json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy
import torch
from scipy.special import sph_harm_y

from tnmat.so3 import real_spherical_harmonics, real_to_complex_matrix

try:  # optional, benchmark only
    import e3nn
    from e3nn import o3
except ImportError:  # pragma: no cover - depends on the environment
    e3nn = None
    o3 = None

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_time(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple[float, float]:
    """Best wall time and best process CPU time over ``repeats`` runs after a warm-up.

    On a shared, loaded machine the CPU time (all threads of this process) is the steadier measure of the work.
    """
    fn()  # warm-up (allocator, caches, kernels)
    _sync(device)
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    return best, best_cpu


def _fwd_bwd(sh: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], object]:
    def run() -> None:
        xg = x.detach().requires_grad_(True)
        sh(xg).sum().backward()

    return run


def _scipy_sh(v: np.ndarray, l_max: int) -> np.ndarray:
    """Complex Y_l^m (Condon-Shortley) for all l <= l_max, m = -l..l, flat index l*l + l + m."""
    r = np.linalg.norm(v, axis=1)
    theta, phi = np.arccos(v[:, 2] / r), np.arctan2(v[:, 1], v[:, 0])
    return np.stack([sph_harm_y(l, m, theta, phi) for l in range(l_max + 1) for m in range(-l, l + 1)], axis=1)


def _e3nn_sh(l_max: int) -> Callable[[torch.Tensor], torch.Tensor]:
    ls = list(range(l_max + 1))
    return lambda x: o3.spherical_harmonics(ls, x, normalize=True, normalization="integral")


def check_agreement(l_max: int) -> dict:
    """Max deviations on 2000 float64 vectors: tnmat vs scipy (via U), e3nn vs tnmat (per-l orthogonal map)."""
    v = np.random.default_rng(1).normal(size=(2000, 3))
    ours = real_spherical_harmonics(torch.from_numpy(v), l_max).numpy()
    ref = _scipy_sh(v, l_max)
    out = {"tnmat_vs_scipy": 0.0}
    for l in range(l_max + 1):
        s = slice(l * l, (l + 1) ** 2)
        out["tnmat_vs_scipy"] = max(out["tnmat_vs_scipy"], float(np.abs(ref[:, s] @ real_to_complex_matrix(l).T
                                                                        - ours[:, s]).max()))
    if o3 is not None:
        theirs = _e3nn_sh(l_max)(torch.from_numpy(v)).numpy()
        dev_fit, dev_orth = 0.0, 0.0
        for l in range(l_max + 1):
            s = slice(l * l, (l + 1) ** 2)
            q, *_ = np.linalg.lstsq(ours[:, s], theirs[:, s], rcond=None)  # theirs = ours @ q
            dev_fit = max(dev_fit, float(np.abs(ours[:, s] @ q - theirs[:, s]).max()))
            dev_orth = max(dev_orth, float(np.abs(q.T @ q - np.eye(2 * l + 1)).max()))
        out["e3nn_vs_tnmat_fit"] = dev_fit
        out["e3nn_basis_change_orthogonality"] = dev_orth
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="number of vectors (tnmat, e3nn)")
    p.add_argument("--n-scipy", type=int, default=100_000, help="number of vectors for scipy (slow)")
    p.add_argument("--l-max", type=int, nargs="+", default=[3, 8])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="torch device for tnmat and e3nn (scipy runs on the CPU only)")
    p.add_argument("--out", type=Path, default=Path("bench_out/so3_sph.json"))
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    rows = []
    agreement = {}
    for l_max in args.l_max:
        agreement[l_max] = check_agreement(l_max)
        for dname, dt in DTYPES.items():
            x = torch.from_numpy(np.random.default_rng(0).normal(size=(args.n, 3))).to(device=device, dtype=dt)
            methods: list[tuple[str, int, Callable[[], object]]] = [
                ("tnmat", args.n, lambda x=x, l_max=l_max: real_spherical_harmonics(x, l_max)),
                ("tnmat fwd+bwd", args.n, _fwd_bwd(lambda t, l_max=l_max: real_spherical_harmonics(t, l_max), x)),
            ]
            if o3 is not None:
                sh = _e3nn_sh(l_max)
                methods += [("e3nn", args.n, lambda x=x, sh=sh: sh(x)), ("e3nn fwd+bwd", args.n, _fwd_bwd(sh, x))]
            if dt == torch.float64 and device.type == "cpu":
                vs = x[: args.n_scipy].numpy()
                methods.append(("scipy", len(vs), lambda vs=vs, l_max=l_max: _scipy_sh(vs, l_max)))
            for name, n, fn in methods:
                with torch.no_grad() if "bwd" not in name else torch.enable_grad():
                    t, cpu = _best_time(fn, args.repeats, device)
                rows.append({"method": name, "l_max": l_max, "dtype": dname, "device": str(device), "n": n,
                             "seconds": t, "cpu_seconds": cpu, "vectors_per_s": n / t,
                             "ns_per_vector_cpu": cpu / n * 1e9})
                print(f"  {name:14s} l_max={l_max} {dname}: {t * 1e3:9.1f} ms wall, {cpu * 1e3:9.1f} ms cpu, "
                      f"{n} vectors", flush=True)

    print(f"\n{'method':14s} {'l_max':>5s} {'dtype':>8s} {'Mvec/s':>9s} {'ns/vec':>8s} {'cpu ns/vec':>10s} "
          f"{'vs tnmat':>9s} {'(cpu)':>6s}")
    for r in rows:
        base = next(b for b in rows if b["method"] == "tnmat" and b["l_max"] == r["l_max"] and
                    b["dtype"] == r["dtype"])
        ratio = r["vectors_per_s"] / base["vectors_per_s"]
        ratio_cpu = base["ns_per_vector_cpu"] / r["ns_per_vector_cpu"]
        print(f"{r['method']:14s} {r['l_max']:5d} {r['dtype']:>8s} {r['vectors_per_s'] / 1e6:9.2f} "
              f"{1e9 / r['vectors_per_s']:8.1f} {r['ns_per_vector_cpu']:10.1f} {ratio:9.2f} {ratio_cpu:6.2f}")
    print("\nagreement (max abs deviation, float64):")
    for l_max, a in agreement.items():
        print(f"  l_max={l_max}: " + ", ".join(f"{k}={v:.1e}" for k, v in a.items()))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "scipy": scipy.__version__, "e3nn": getattr(e3nn, "__version__", None),
            "threads": torch.get_num_threads(), "device": str(device),
            "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "machine": platform.machine(), "processor": platform.processor(), "python": platform.python_version()}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows, "agreement": agreement}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
