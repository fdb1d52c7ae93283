"""Sweep-fitted MPS on the factorised bispectrum (nu = 3) of NMD18, official split.

Protocol: the 2400 official training structures (relaxed geometry) and the 600 official test structures;
target the formation energy per cation (meV/cation).  Inputs: per-atom density expansions (Gaussian density,
sigma 0.5 A, GTO basis, torch backend) from which :class:`tnmat.training.sweep.bispectrum.BispectrumInput`
contracts the network with the bispectrum atom by atom; settings ``r{r_cut}n{n_max}l{l_max}[c]`` (``c``: the
centre-species leg).  Model: ``MPSRegressor(solver="sweep", bond_dim=CHI)`` over the slot-ordered legs
[c] a1 n1 l1 a2 n2 l2 a3 n3 l3, ridge strengths and the number of passes chosen on a seeded 20% of the
training structures (random_state 0), then refitted on all 2400.  Descriptor settings and bond dimension are
chosen by the validation RMSE of that 20% (never the test set); every fit's test MAE/RMSE is recorded.

Each fit records fit seconds (one thread), the peak resident-memory increase during the fit (10 ms samples),
the load average, and the dense sizes it avoided (entries of B3 per structure, of the dense weight).
References from results/sweep/sweep_nmd18.json (same split): ridge, GPR-RBF and the sweep networks on the
power spectrum B2 (r6n4l3, r8n8l6).
``--variants``: ``val`` (the protocol above) and/or ``ev0`` / ``ev0xK``: every ridge strength by the Bayesian
evidence on all 2400 training structures, none held out (passes stop on the training RMSE), and with ``xK`` K
such networks from independent initial networks merged into one MPS by the direct sum of their bonds
(``n_members=K``, as ``tnmat fit --members K``).  These rows have no validation RMSE and take no part in the
validation choice.
Results: JSON to ``--out`` (resumable: finished (setting, chi, variant) triples are skipped).

Usage: ``python benchmarks/sweep_bispectrum.py --settings r6n4l3,r6n4l3c --bond-dims 8 [--variants val,ev0x4]
[--max-fits 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tnmat.data import load_nmd18
from tnmat.descriptors import AtomicDensity
from tnmat.reports import atomic_write
from tnmat.training.estimators import MPSRegressor
from tnmat.training.sweep.bispectrum import BispectrumInput

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_nmd18 import PeakRSS  # noqa: E402  (one peak-memory sampler for the sweep benchmarks)

REPO = Path(__file__).resolve().parents[1]


def parse_setting(name: str) -> dict:
    """``r8n6l4c`` -> r_cut 8, n_max 6, l_max 4, centre species."""
    centre = name.endswith("c")
    body = name.rstrip("c")
    r, rest = body[1:].split("n")
    n, l_ = rest.split("l")
    return {"r_cut": float(r), "n_max": int(n), "l_max": int(l_), "center": centre}


def expansions(ds, name: str, cache: Path, precision: str) -> tuple[BispectrumInput, float]:
    """Per-atom expansions of every NMD18 structure (cached as .npz: the centre leg is a flag, not data)."""
    spec = parse_setting(name)
    base = name.rstrip("c")
    path = cache / f"nmd18-relaxed-A-{base}.npz"
    seconds = 0.0
    if not path.exists():
        dens = AtomicDensity(species=ds.species, r_cut=spec["r_cut"], n_max=spec["n_max"], l_max=spec["l_max"],
                             sigma=0.5, backend="torch")
        t0 = time.perf_counter()
        inp = BispectrumInput.from_structures(ds.structures, dens)
        seconds = time.perf_counter() - t0
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, a=inp.a.numpy(), species=inp.species.numpy(), groups=inp.groups.numpy(), seconds=seconds)
        tmp.rename(path)
    z = np.load(path)
    seconds = seconds or float(z["seconds"])
    return BispectrumInput(torch.from_numpy(z["a"]), torch.from_numpy(z["species"]), torch.from_numpy(z["groups"]),
                           int(z["groups"][-1]) + 1, spec["center"], precision), seconds


def variant_kwargs(variant: str) -> dict:
    """Estimator options of a variant: ``val`` (strengths and passes on a 20 % validation part, refitted) or
    ``ev0[xK]`` (strengths by the evidence, nothing held out, K merged members)."""
    if variant == "val":
        return {"validation_fraction": 0.2}
    m = re.fullmatch(r"ev0(?:x(\d+))?", variant)
    if m is None:
        raise SystemExit(f"unknown variant {variant!r}: val, ev0 or ev0xK")
    return {"validation_fraction": 0.0, "alpha_selection": "evidence", "n_members": int(m.group(1) or 1)}


def _val_rmse(est: MPSRegressor, index: int) -> float | None:
    v = est.history_["val_rmse"][index]
    return None if v is None else float(v) * est.y_std_ * 1000.0


def fit_one(inp: BispectrumInput, y: np.ndarray, split: np.ndarray, chi: int, n_sweeps: int,
            variant: str = "val") -> dict:
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    xtr, xte = inp.select(train), inp.select(test)
    load0 = Path("/proc/loadavg").read_text().split()[:3]
    t0 = time.perf_counter()
    with PeakRSS() as mem:
        est = MPSRegressor(solver="sweep", bond_dim=chi, n_sweeps=n_sweeps, dtype="float64", random_state=0,
                           **variant_kwargs(variant)).fit(xtr, y[train])
    fit_s = time.perf_counter() - t0
    pred = est.predict(xte)
    err = (pred - y[test]) * 1000.0
    best = est.best_epoch_
    s, n, nl = inp.n_species, int(inp.a.shape[2]), inp.l_max + 1
    dense = (s * n * nl) ** 3 * (s if inp.center_species else 1)
    return {"bond_dim": chi, "test_mae": float(np.mean(np.abs(err))), "test_rmse": float(np.sqrt(np.mean(err**2))),
            "val_rmse": _val_rmse(est, best), "variant": variant,
            "val_rmse_per_pass": [_val_rmse(est, i) for i in range(len(est.history_["val_rmse"]))],
            "train_rmse_per_pass": [float(v) * est.y_std_ * 1000.0 for v in est.history_["train_rmse"]],
            "member_bond_dims": est.history_.get("member_bond_dims"),
            "passes": est.n_epochs_, "best_pass": best + 1, "stop_reason": est.history_["stop_reason"][0],
            "bond_dims": est.bond_dims_, "n_parameters": est.n_parameters_, "fit_seconds": fit_s,
            "seconds_per_pass": est.history_["seconds"], "peak_rss_mib": mem.mib,
            "loadavg_before": load0, "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
            "dense_b3_entries_per_structure": dense, "atoms_train": int(len(xtr.a)),
            "expansion_mib": float(inp.a.numel() * inp.a.element_size() / 2**20)}


def references() -> dict:
    path = REPO / "results/sweep/sweep_nmd18.json"
    out = {}
    for r in json.loads(path.read_text())["results"]:
        same = r["geometry"] == "relaxed" and r["target"] == "formation_energy"
        if same and r["descriptor"] in ("r6n4l3", "r8n8l6"):
            keys = ("test_mae", "test_rmse", "fit_seconds", "n_parameters")
            out[f"B2 {r['descriptor']} {r['model']}"] = {k: r[k] for k in keys}
    return out


def table(out: Path) -> str:
    """The results as a Markdown table (for docs/results/sweep_bispectrum.md)."""
    d = json.loads(out.read_text())
    lines = ["| setting | chi | variant | val RMSE | test MAE | test RMSE | params | bonds | passes (best) | fit s | "
             "peak MiB | load |", "|---|---:|---|---:|---:|---:|---:|---|---|---:|---:|---|"]
    for r in sorted(d["results"], key=lambda r: (r["val_rmse"] is None, r["val_rmse"] or r["test_mae"])):
        val = "-" if r["val_rmse"] is None else f"{r['val_rmse']:.2f}"
        lines.append(f"| b3 {r['setting']} | {r['bond_dim']} | {r.get('variant', 'val')} | {val} | "
                     f"{r['test_mae']:.2f} | "
                     f"{r['test_rmse']:.2f} | {r['n_parameters']} | {max(r['bond_dims'])} | {r['passes']} "
                     f"({r['best_pass']}) | {r['fit_seconds']:.0f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['loadavg_before'][0]} |")
    for name, r in d["references"].items():
        lines.append(f"| {name} | | | | {r['test_mae']:.2f} | {r['test_rmse']:.2f} | {r['n_parameters']} | | | "
                     f"{r['fit_seconds']:.0f} | | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmd18", default=os.environ.get("TNMAT_NMD18", str(REPO.parent / "shared/data/nmd18")))
    ap.add_argument("--settings", default="r6n4l3,r6n4l3c")
    ap.add_argument("--bond-dims", default="8")
    ap.add_argument("--n-sweeps", type=int, default=4)
    ap.add_argument("--variants", default="val", help="comma-separated: val, ev0, ev0xK (see above)")
    ap.add_argument("--precision", default="float32", choices=("float32", "float64"))
    ap.add_argument("--max-fits", type=int, default=0, help="stop after this many new fits (0: all)")
    ap.add_argument("--cache", default="cache")
    ap.add_argument("--out", default="results/sweep_bispectrum/sweep_bispectrum.json")
    ap.add_argument("--table", action="store_true", help="print the results in --out as a Markdown table")
    args = ap.parse_args()
    if args.table:
        print(table(Path(args.out)))
        return
    torch.set_num_threads(1)
    cache, out = Path(args.cache), Path(args.out)
    cache.mkdir(parents=True, exist_ok=True)
    ds = load_nmd18(Path(args.nmd18), geometry="relaxed")
    y, split = np.asarray(ds.targets["formation_energy"], dtype=np.float64), np.asarray(ds.metadata["split"])
    stored = json.loads(out.read_text()) if out.exists() else {"results": []}
    results = stored["results"]
    for r in results:  # rows written before n_sweeps was recorded per row ran under the file's global value
        r.setdefault("n_sweeps", stored.get("n_sweeps"))
        r.setdefault("variant", "val")
    done = {(r["setting"], r["bond_dim"], r["variant"]) for r in results}
    plan = [(name, int(chi), v) for name in args.settings.split(",") for chi in args.bond_dims.split(",")
            for v in args.variants.split(",")]
    for v in {v for _, _, v in plan}:
        variant_kwargs(v)  # refuse an unknown variant before any work
    n_new = 0
    for name, chi, variant in plan:
        if (name, chi, variant) in done or (args.max_fits and n_new >= args.max_fits):
            continue
        inp, a_seconds = expansions(ds, name, cache, args.precision)
        print(f"{name} chi {chi} {variant}: sizes {inp.sizes}, {len(inp.a)} atoms", file=sys.stderr, flush=True)
        row = {"setting": name, **parse_setting(name), "precision": args.precision, "n_sweeps": args.n_sweeps,
               "expansion_seconds": a_seconds, **fit_one(inp, y, split, chi, args.n_sweeps, variant)}
        results.append(row)
        n_new += 1
        print(f"  MAE {row['test_mae']:.2f} RMSE {row['test_rmse']:.2f} val RMSE {row['val_rmse']} "
              f"fit {row['fit_seconds']:.0f} s mem +{row['peak_rss_mib']:.0f} MiB bonds {row['bond_dims']}",
              file=sys.stderr, flush=True)
        best = min((r for r in results if r["val_rmse"] is not None), key=lambda r: r["val_rmse"], default=None)
        chosen = None if best is None else {k: best[k] for k in (
            "setting", "bond_dim", "val_rmse", "test_mae", "test_rmse")}
        atomic_write(out, json.dumps({"protocol": __doc__.split("\n\n")[1], "threads": 1,
                                      "references": references(), "chosen_by_validation": chosen,
                                      "results": results}, indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
