"""Solid solutions as modellers use them: ideal lattice sites in, relaxed energies out.

Four models on the same splits of the relaxed alloy set (``alloys-relaxed``: 986 fcc structures of the 7 EMT
metals, binaries to 7 components), test errors in meV/atom:

* ``ce``: the cluster expansion; cutoffs from [6], [8], [12] A pairs and [6, 4], [10, 4] A pairs with
  nearest-neighbour triplets, fit method least squares / LASSO / ARDR, both chosen by 5-fold cross-validation
  on the training structures (with 7 species the nested sets from [7, 5] up have 965 to 33488 cluster
  functions; [7, 5] was never chosen in the first fits and took most of the CE's time);
* ``ridge``: the ``dense`` model on the averaged B2 (r_c 6 A, n 4, l 3), one closed-form ridge solve;
* ``gpr-rbf``: GPR with an RBF kernel on the same B2;
* ``ttn``: a sweep-fitted tree tensor network on the same B2 (the ``tnmat fit`` defaults: Huber loss, cap 8).

Every fit is stored in an SQLite file as it finishes, so a stopped run resumes where it stopped.

    python benchmarks/solid_solutions.py --splits 3 --sizes 50,100,200,400,786 --hull ttn,gpr-rbf,ridge

writes ``results/solid_solutions/learning_curve.csv`` (n_train, model, rmse_mean, rmse_std, mae_mean,
mae_std, n_parameters, fit_seconds), ``fits.jsonl.gz`` (every stored fit) and, with ``--hull``, the hull
scores of those models fitted on the set's train split (``hull_scores.json``: every binary system and
Ag-Au-Cu, :func:`hull_scores`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "results" / "solid_solutions"
#: CSV model name -> (model table name, fixed parameters)
MODELS = {
    "ce": ("ce", {"cutoffs_grid": [[6.0], [8.0], [12.0], [6.0, 4.0], [10.0, 4.0]]}),
    "ridge": ("dense", {"solver": "sweep", "loss": "huber"}),
    "gpr-rbf": ("gpr-rbf", {}),
    "ttn": ("ttn", {"solver": "sweep", "loss": "huber", "bond_dim": 8}),
}
COLUMNS = ["n_train", "model", "rmse_mean", "rmse_std", "mae_mean", "mae_std", "n_parameters", "fit_seconds"]


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--sizes", default="50,100,200,400,786")
    ap.add_argument("--test-size", type=int, default=200)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out-dir", default=str(OUT))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--input-scale-floor", type=float, default=0.0,
                    help="ridge and ttn: input scales floored at this fraction of the RMS spread (default 0: off)")
    ap.add_argument("--report-only", action="store_true", help="summarise the stored fits, fit nothing")
    ap.add_argument("--hull", default="", help="comma-separated models whose hull scores to write")
    return ap.parse_args()


def _floor(model: str, args: argparse.Namespace) -> dict:
    """``--input-scale-floor`` for the networks and ridge (it enters their task keys, so it never mixes with
    fits of plain standardisation)."""
    return {"input_scale_floor": args.input_scale_floor} if args.input_scale_floor and model in ("ridge", "ttn") \
        else {}


def run(args: argparse.Namespace) -> list[dict]:
    """Fit (or resume) every (model, size, split) and return the summary rows in meV/atom."""
    from tnmat.data.alloys_relaxed import relaxed_default
    from tnmat.descriptors import AtomicDensity, Invariants
    from tnmat.experiments import learning_curve as lc
    from tnmat.experiments.protocol import stratification_quantities
    from tnmat.experiments.runner import GridOptions
    from tnmat.experiments.store import ResultStore

    ds = relaxed_default(progress=False)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    calc = Invariants(AtomicDensity(species=ds.species, r_cut=6.0, n_max=4, l_max=3), order=2)
    X = calc.compute(ds.structures, average=True)
    names = [m for m in args.models.split(",") if m]
    cfg = lc.LearningCurveSettings(
        models=[MODELS[m][0] for m in names], sizes=[int(s) for s in args.sizes.split(",")],
        n_splits=args.splits, test_size=args.test_size, seed=0, grids={MODELS[m][0]: {} for m in names},
        fixed={MODELS[m][0]: {**MODELS[m][1], **_floor(m, args)} for m in names if MODELS[m][1]})
    store = ResultStore(out / "fits.sqlite")
    rows, report = lc.run_learning_curve(
        lc.WithStructures(X, ds.structures), ds.targets["mixing_energy"],
        stratification_quantities(ds, "mixing_energy"), cfg, store=store, dataset=f"{ds.name}-b2-r6n4l3",
        units="meV/atom",
        options=GridOptions(jobs=args.jobs, progress=True, on_error="continue"), fit=not args.report_only)
    for _key, task, err in report.failures:
        print(f"failed: {task['model']} n_train {task['n_train']} {task['split']}: {err.splitlines()[-1]}",
              file=sys.stderr)
    store.export_jsonl(out / "fits.jsonl.gz", experiment=lc.EXPERIMENT)
    back = {v[0]: k for k, v in MODELS.items()}
    return [{**r, "model": back.get(r["model"], r["model"])} for r in rows if r["splits"] == "random"]


def _systems(ds) -> list[tuple[str, ...]]:  # noqa: ANN001 (a Dataset)
    """Every binary system of the set, and the Cu-Ag-Au ternary (its structures of those elements)."""
    import itertools

    return [*itertools.combinations(sorted(ds.species), 2), ("Ag", "Au", "Cu")]


def hull_scores(model: str, window_meV: float = 50.0) -> dict:
    """Fit ``model`` (CSV name) on the set's train split and score its hull of every binary system and of
    Cu-Ag-Au (all structures of those elements, train and test) against the EMT hull; summed over systems."""
    import numpy as np

    from tnmat.data.alloys_relaxed import relaxed_default
    from tnmat.descriptors import AtomicDensity, Invariants
    from tnmat.experiments.hull import fractions, score_hull
    from tnmat.training.registry import make_estimator, takes_structures

    ds = relaxed_default(progress=False)
    name, params = MODELS[model]
    est = make_estimator(name, **params, random_state=0)
    train = np.flatnonzero(ds.metadata["split"] == "train")
    y = ds.targets["mixing_energy"]
    if takes_structures(name):
        inputs = ds.structures
        est.fit([inputs[k] for k in train], y[train])
        pred = est.predict(inputs)
    else:
        calc = Invariants(AtomicDensity(species=ds.species, r_cut=6.0, n_max=4, l_max=3), order=2)
        X = calc.compute(ds.structures, average=True)
        est.fit(X.select(train), y[train])
        pred = np.asarray(est.predict(X))
    out = {"model": model, "window_meV": window_meV, "systems": {}}
    for els in _systems(ds):
        keep = [k for k, a in enumerate(ds.structures) if set(a.get_chemical_symbols()) <= set(els)]
        sc = score_hull(fractions([ds.structures[k] for k in keep], els), y[keep], pred[keep],
                        [str(ds.metadata["id"][k]) for k in keep], window=window_meV / 1000)
        out["systems"]["-".join(els)] = {**sc.__dict__, "false_ground_states": list(sc.false_ground_states)}
    binaries = [v for k, v in out["systems"].items() if k.count("-") == 1]
    n_ref = sum(v["n_reference_ground_states"] for v in binaries)
    n_win = sum(v["n_in_window"] for v in binaries)
    out["binaries"] = {
        "n_reference_ground_states": n_ref, "n_found": sum(v["n_found"] for v in binaries),
        "n_false": sum(len(v["false_ground_states"]) for v in binaries),
        "worst_false_meV": max(v["worst_false_meV"] for v in binaries),
        "hull_distance_mae_meV": sum(v["hull_distance_mae_meV"] * v["n_in_window"] for v in binaries) / n_win,
        "n_in_window": n_win}
    return out


def write_csv(rows: list[dict], path: Path) -> None:
    """The learning-curve table (meV/atom), written to a temporary name and renamed; rows of other
    (model, n_train) already in the file are kept, so runs over different sizes (and numbers of splits) add up."""
    if path.is_file():
        with open(path, newline="") as fh:
            old = [{**r, "n_train": int(r["n_train"])} for r in csv.DictReader(fh)]
        new = {(r["model"], r["n_train"]) for r in rows}
        rows = [r for r in old if (r["model"], r["n_train"]) not in new] + rows
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in sorted(rows, key=lambda r: (r["model"], r["n_train"])):
            w.writerow({k: (f"{r[k]:.4f}" if isinstance(r[k], float) else r[k]) for k in COLUMNS})
    os.replace(tmp, path)
    splits = path.with_name("splits.json")  # how many random splits each row averages (not a CSV column)
    counts = json.loads(splits.read_text()) if splits.is_file() else {}
    counts.update({f"{r['model']}:{r['n_train']}": int(r["n_splits"]) for r in rows if "n_splits" in r})
    stmp = splits.with_name(splits.name + ".tmp")
    stmp.write_text(json.dumps(dict(sorted(counts.items())), indent=1) + "\n")
    os.replace(stmp, splits)


def main() -> int:
    args = parse()
    t0 = time.perf_counter()
    rows = run(args)
    write_csv(rows, Path(args.out_dir) / "learning_curve.csv")
    for r in sorted(rows, key=lambda r: (r["n_train"], r["model"])):
        print(f"{r['n_train']:5d} {r['model']:8s} RMSE {r['rmse_mean']:7.2f} +- {r['rmse_std']:5.2f}  MAE "
              f"{r['mae_mean']:7.2f} meV/atom  ({r['n_splits']} splits, {r['n_parameters']} parameters, "
              f"{r['fit_seconds']:.1f} s)")
    scores = [hull_scores(m) for m in args.hull.split(",") if m]
    for sc in scores:
        b = sc["binaries"]
        print(f"hull {sc['model']}: binaries {b['n_found']}/{b['n_reference_ground_states']} ground states found, "
              f"{b['n_false']} false (worst {b['worst_false_meV']:.2f} meV/atom), hull-distance MAE "
              f"{b['hull_distance_mae_meV']:.2f} meV/atom over {b['n_in_window']} structures; Ag-Au-Cu "
              f"{sc['systems']['Ag-Au-Cu']['n_found']}/{sc['systems']['Ag-Au-Cu']['n_reference_ground_states']}")
    if scores:
        path = Path(args.out_dir) / "hull_scores.json"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(scores, indent=1) + "\n")
        os.replace(tmp, path)
    print(f"total {time.perf_counter() - t0:.0f} s; {json.dumps(vars(args))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
