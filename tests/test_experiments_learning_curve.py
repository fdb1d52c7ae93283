"""Learning-curve pipeline end to end on a tiny synthetic LegTensor (GPR models; one TN model if present),
selection on validation only, summary statistics against numpy, fit-time exponent on known power laws."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tnmat import LegTensor
from tnmat.experiments.learning_curve import (
    QUICK_GRIDS,
    LearningCurveSettings,
    LearningCurveTask,
    build_estimator,
    cost_accounting,
    expand_grid,
    fit_time_exponents,
    learning_curve_tasks,
    run_learning_curve,
    summarise,
)
from tnmat.experiments.learning_curve_report import write_markdown, write_summary_csv
from tnmat.experiments.runner import GridOptions
from tnmat.experiments.store import ResultStore


def _data(n: int = 150, seed: int = 0) -> tuple[LegTensor, np.ndarray, dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.2, 1.0, size=(n, 2, 3))
    X = LegTensor(torch.from_numpy(z), ("a", "n"))
    y = 0.05 * np.sin(2 * z[:, 0, 0]) + 0.02 * z[:, 1, 2] ** 2  # eV, smooth
    q = {"volume_per_atom": z[:, 0, 1], "x_al": z[:, 1, 0], "energy": y}
    official = np.zeros(n, dtype=bool)
    official[-30:] = True
    return X, y, q, official


def test_end_to_end_gpr_learning_curve_resumes_and_writes_tables(tmp_path: Path) -> None:
    X, y, q, official = _data()
    store = ResultStore(tmp_path / "lc.sqlite")
    settings = LearningCurveSettings(models=["gpr-rbf", "gpr-soap"], sizes=[20, 80], n_splits=2, test_size=30,
                                     grids=QUICK_GRIDS)
    kw = dict(store=store, official_test=official, dataset="toy", options=GridOptions(progress=False))
    rows, rep = run_learning_curve(X, y, q, settings, **kw)
    assert rep.n_done == 2 * 2 * 3 and rep.n_failed == 0
    rows2, rep2 = run_learning_curve(X, y, q, settings, **kw)  # resumed: nothing recomputed, same summary
    assert rep2.n_done == 0 and rep2.n_skipped == 12 and rows2 == rows
    rnd = {(r["model"], r["n_train"]): r for r in rows if r["splits"] == "random"}
    assert {r["n_splits"] for r in rnd.values()} == {2}
    assert {r["n_splits"] for r in rows if r["splits"] == "official"} == {1}
    for model in ("gpr-rbf", "gpr-soap"):
        assert rnd[(model, 80)]["rmse_mean"] < rnd[(model, 20)]["rmse_mean"]  # more data helps a smooth target
        assert rnd[(model, 80)]["n_parameters"] == 64 + (3 if model == "gpr-rbf" else 2)  # 80 % of 80 + hypers
        assert rnd[(model, 20)]["rmse_mean"] >= rnd[(model, 20)]["mae_mean"] > 0
    # errors are in meV: compare against an independent recomputation for one stored fit
    rec = next(r for r in store.results() if r["model"] == "gpr-rbf" and r["n_train"] == 20
               and r["split"] == "random-0")
    fn = LearningCurveTask(X, y, q, settings, official_test=official)
    fit, val, test = fn.indices("random-0", 20)
    assert len(fit) == 16 and len(val) == 4 and len(test) == 30
    assert not set(fit) & set(test) and not set(val) & set(test)
    est = build_estimator("gpr-rbf", {}).fit(fn.rows(fit), y[fit])
    ref = 1000 * np.sqrt(np.mean((est.predict(fn.rows(test)) - y[test]) ** 2))
    assert rec["metrics"]["test_rmse"] == pytest.approx(ref, rel=1e-6)
    csv_path = write_summary_csv(rows, tmp_path / "lc.csv")
    with open(csv_path) as fh:
        table = list(csv.DictReader(fh))
    assert {"model", "n_train", "rmse_mean", "rmse_std", "mae_mean", "mae_std", "n_parameters",
            "fit_seconds"} <= set(table[0]) and len(table) == len(rows)
    md = write_markdown(rows, tmp_path / "lc.md").read_text()
    assert "gpr-soap" in md and "Fit-time scaling" in md
    acc = rep2.accounting  # totals over this grid's stored fits, also on a resumed run that fitted nothing
    assert acc["n_fits"] == acc["n_tasks"] == 12 and acc["n_sittings"] == 1
    assert acc["fit_seconds_total"] == pytest.approx(sum(r["timings"]["fit_seconds"] for r in store.results()))
    md = write_markdown(rows, tmp_path / "lc.md", accounting=acc).read_text()
    assert "Cost of the run" in md and "fits stored: 12 of 12" in md
    # the pivot table (sizes x models) carries the same numbers as the long table
    r = rnd[("gpr-soap", 80)]
    assert f"| 80 | {rnd[('gpr-rbf', 80)]['mae_mean']:.1f} +- {rnd[('gpr-rbf', 80)]['mae_std']:.1f} | " \
           f"{r['mae_mean']:.1f} +- {r['mae_std']:.1f} |" in md


def test_cost_accounting_counts_sittings_and_leaves_pauses_out() -> None:
    def rec(stamp: str, fit: float, cpu: float | None = 1.0) -> dict:
        return {"created_at": stamp, "timings": {"fit_seconds": fit, "fit_cpu_seconds": cpu}}

    # sitting 1: a fit started 10:00:00 (stamped 10:01:40 after 100 s) and one stamped 10:10:00;
    # then a 2 h pause; sitting 2: one fit of 60 s stamped 12:30:00
    recs = [rec("2026-01-01T10:10:00+00:00", 50.0), rec("2026-01-01T12:30:00+00:00", 60.0),
            rec("2026-01-01T10:01:40+00:00", 100.0)]
    acc = cost_accounting(recs)
    assert acc["n_fits"] == 3 and acc["n_sittings"] == 2
    assert acc["elapsed_seconds"] == pytest.approx(600.0 + 60.0)
    assert acc["fit_seconds_total"] == pytest.approx(210.0) and acc["fit_cpu_seconds_total"] == pytest.approx(3.0)
    assert acc["first"] == "2026-01-01T10:00:00+00:00" and acc["last"] == "2026-01-01T12:30:00+00:00"
    # a pause shorter than the threshold is one sitting; a record without CPU time makes the CPU sum unknown
    acc = cost_accounting(recs + [rec("2026-01-01T11:00:00+00:00", 1.0, None)], pause_seconds=3 * 3600)
    assert acc["n_sittings"] == 1 and acc["elapsed_seconds"] == pytest.approx(2.5 * 3600)
    assert acc["fit_cpu_seconds_total"] is None
    assert cost_accounting([])["elapsed_seconds"] == 0.0


def test_test_targets_play_no_part_in_fitting_or_selection(tmp_path: Path) -> None:
    X, y, q, official = _data(seed=1)
    # quantities drive the subsets; keep them fixed so only the test targets differ between the runs
    fn = LearningCurveTask(X, y, q, LearningCurveSettings(sizes=[40], test_size=30, n_splits=1))
    task = learning_curve_tasks(["gpr-soap"], [40], ["random-0"], grids=QUICK_GRIDS)[0]
    a = fn(task)
    test = fn.splits["random-0"].test
    y2 = y.copy()
    y2[test] += np.random.default_rng(0).normal(size=len(test))
    fn2 = LearningCurveTask(X, y2, q, LearningCurveSettings(sizes=[40], test_size=30, n_splits=1))
    b = fn2(task)
    assert a["metrics"]["val_rmse"] == b["metrics"]["val_rmse"] and a["fitted"] == b["fitted"]
    assert a["metrics"]["test_rmse"] != b["metrics"]["test_rmse"]


def _fake(model: str, n: int, split: str, val: float, test: float, hp: dict, fit_s: float = 1.0) -> dict:
    return {"model": model, "n_train": n, "split": split, "params": hp,
            "metrics": {"val_rmse": val, "test_rmse": test, "test_mae": test / 2, "n_parameters": 10},
            "timings": {"fit_seconds": fit_s}}


def test_summarise_selects_on_validation_and_aggregates_like_numpy() -> None:
    recs = []
    test_chosen = []
    rng = np.random.default_rng(2)
    for k in range(4):
        vals = rng.uniform(1, 2, size=3)
        tests = rng.uniform(5, 9, size=3)
        for j in range(3):
            recs.append(_fake("mps", 100, f"random-{k}", vals[j], tests[j], {"bond_dim": 2**j}, fit_s=j + 1.0))
        test_chosen.append(tests[np.argmin(vals)])
    # a grid point with the best *test* error but a worse validation error must not be chosen
    recs.append(_fake("mps", 100, "official", 5.0, 0.1, {"bond_dim": 99}))
    recs.append(_fake("mps", 100, "official", 1.0, 7.0, {"bond_dim": 4}))
    rows = summarise(recs)
    rnd = next(r for r in rows if r["splits"] == "random")
    assert rnd["rmse_mean"] == pytest.approx(np.mean(test_chosen))
    assert rnd["rmse_std"] == pytest.approx(np.std(test_chosen, ddof=1))
    assert rnd["mae_mean"] == pytest.approx(np.mean(test_chosen) / 2)
    assert rnd["tuning_seconds"] == pytest.approx(6.0) and rnd["n_splits"] == 4
    off = next(r for r in rows if r["splits"] == "official")
    assert off["rmse_mean"] == 7.0 and off["params"] == '{"bond_dim": 4}'


def test_summarise_with_tasks_reports_whole_splits_of_this_grid_only() -> None:
    from tnmat.experiments.store import config_key

    grids = {"mps": {"bond_dim": [2, 4]}, "gpr-rbf": {}}
    tasks = learning_curve_tasks(["mps", "gpr-rbf"], [10], ["random-0", "random-1"], grids=grids)

    def rec(t: dict, test: float) -> dict:
        r = _fake(t["model"], t["n_train"], t["split"], val=float(t["params"].get("bond_dim", 1)), test=test,
                  hp=t["params"])
        return {**r, "key": config_key(t)}

    recs = [rec(t, 5.0) for t in tasks if t["split"] == "random-0"]
    recs += [rec(t, 7.0) for t in tasks if t["split"] == "random-1" and t["model"] == "mps"]  # gpr missing
    stray = {**_fake("mps", 10, "random-0", val=0.0, test=99.0, hp={"bond_dim": 32}), "key": "other-grid"}
    rows = summarise([*recs, stray], tasks=tasks)
    assert {(r["model"], r["n_splits"], r["rmse_mean"]) for r in rows} == {("mps", 1, 5.0), ("gpr-rbf", 1, 5.0)}
    assert summarise(recs, tasks=tasks[:3] + tasks) == rows  # a duplicated task does not block its split


def test_fit_time_exponent_recovers_power_laws() -> None:
    rows = [{"model": m, "n_train": n, "splits": "random", "fit_seconds": c * n**b}
            for m, c, b in (("gpr-rbf", 1e-7, 3.0), ("mps", 0.01, 1.0)) for n in (50, 100, 400, 1600)]
    rows.append({"model": "mps", "n_train": 100, "splits": "official", "fit_seconds": 1e6})  # ignored
    ex = fit_time_exponents(rows)
    assert ex["gpr-rbf"] == pytest.approx(3.0) and ex["mps"] == pytest.approx(1.0)


def test_fit_time_exponent_prefers_cpu_time_when_every_row_has_it() -> None:
    # wall time inflated by a loaded machine at the large sizes; CPU time follows the true n^1 law
    sizes = (50, 100, 400, 1600)
    rows = [{"model": "mps", "n_train": n, "splits": "random", "fit_seconds": 0.01 * n * (1 + (n > 200) * 9),
             "fit_cpu_seconds": 0.01 * n} for n in sizes]
    assert fit_time_exponents(rows)["mps"] == pytest.approx(1.0)
    assert fit_time_exponents(rows, column="fit_seconds")["mps"] > 1.3
    rows[0]["fit_cpu_seconds"] = None  # one record without CPU time: the model falls back to wall time
    assert fit_time_exponents(rows)["mps"] > 1.3


def test_tasks_are_split_major_so_a_stopped_run_holds_whole_curves() -> None:
    grids = {"mps": {"bond_dim": [2, 4]}, "gpr-rbf": {}}
    tasks = learning_curve_tasks(["mps", "gpr-rbf"], [10, 20], ["official", "random-0"], grids=grids)
    assert len(tasks) == 2 * 2 * 3
    first = tasks[: len(tasks) // 2]  # the first half is one whole split: every model at every size
    assert {t["split"] for t in first} == {"official"}
    assert {(t["model"], t["n_train"]) for t in first} == {(m, n) for m in ("mps", "gpr-rbf") for n in (10, 20)}


def test_grid_expansion_and_unknown_parameters() -> None:
    assert expand_grid({}) == [{}]
    assert expand_grid({"b": [1, 2], "a": [3]}) == [{"a": 3, "b": 1}, {"a": 3, "b": 2}]
    tasks = learning_curve_tasks(["gpr-rbf"], [10, 20], ["random-0", "random-1"], grids={"gpr-rbf": {}})
    assert len(tasks) == 4 and len({t["n_train"] for t in tasks}) == 2
    with pytest.raises(ValueError, match="no parameter"):
        build_estimator("gpr-rbf", {"bond_dim": 4})
    with pytest.raises(ValueError, match="no hyper-parameter grid"):
        learning_curve_tasks(["nope"], [10], ["random-0"], grids={})


def test_per_atom_rows_keep_whole_structures() -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(1, 4, size=12)
    sidx = np.repeat(np.arange(12), counts)
    X = LegTensor(torch.from_numpy(rng.normal(size=(len(sidx), 2))), ("a",), structure_index=torch.from_numpy(sidx))
    fn = LearningCurveTask(X, rng.normal(size=12), rng.normal(size=12),
                           LearningCurveSettings(sizes=[4], test_size=4, n_splits=1))
    idx = np.array([5, 2, 9])
    got = fn.rows(idx)
    ref = X.select(idx)
    assert torch.equal(got.values, ref.values) and torch.equal(got.structure_index, ref.structure_index)


def test_tensor_network_model_runs_through_the_pipeline(tmp_path: Path) -> None:
    pytest.importorskip("tnmat.training")
    X, y, q, _ = _data(n=90, seed=4)
    store = ResultStore(tmp_path / "tn.sqlite")
    grids = {"mps": {"bond_dim": [2, 3]}}
    fixed = {"mps": {"max_epochs": 5, "batch_size": 32, "dtype": "float64"}}
    settings = LearningCurveSettings(models=["mps"], sizes=[40], n_splits=1, test_size=30, grids=grids, fixed=fixed)
    rows, rep = run_learning_curve(X, y, q, settings, store=store, options=GridOptions(progress=False))
    assert rep.n_done == 2 and len(rows) == 1
    recs = store.results()
    best = min(recs, key=lambda r: r["metrics"]["val_rmse"])
    assert rows[0]["rmse_mean"] == best["metrics"]["test_rmse"] and math.isfinite(rows[0]["rmse_mean"])
    assert rows[0]["n_parameters"] == best["metrics"]["n_parameters"] > 0


def test_plot_draws_official_rows_when_no_random_split_is_finished(tmp_path) -> None:
    import matplotlib.image as mpimg

    from tnmat.plots.learning_curve import plot_learning_curve

    official = [{"model": m, "n_train": n, "splits": "official", "n_splits": 1, "rmse_mean": 50.0 / n**0.3 * k,
                 "rmse_std": 0.0, "mae_mean": 30.0 / n**0.3 * k, "mae_std": 0.0}
                for k, m in enumerate(("mps", "gpr-rbf"), start=1) for n in (50, 100, 200)]
    blank = mpimg.imread(plot_learning_curve([], tmp_path / "blank.png"))
    drawn = mpimg.imread(plot_learning_curve(official, tmp_path / "official.png"))
    # coloured line pixels appear only when the official rows are drawn (the blank figure is grey/white)
    def coloured(img) -> int:
        rgb = img[..., :3]
        return int(((rgb.max(-1) - rgb.min(-1)) > 0.3).sum())
    assert coloured(blank) == 0 and coloured(drawn) > 100


def test_fit_time_exponent_from_few_or_close_sizes_carries_a_caveat(tmp_path) -> None:
    from tnmat.experiments.learning_curve_report import write_markdown

    base = {"splits": "random", "n_splits": 1, "rmse_mean": 1.0, "rmse_std": 0.0, "mae_mean": 1.0, "mae_std": 0.0,
            "n_parameters": 10, "params": "{}"}
    rows = [{**base, "model": "mps", "n_train": n, "fit_seconds": 0.01 * n, "fit_cpu_seconds": 0.01 * n}
            for n in (50, 100, 400, 1600)]
    rows += [{**base, "model": "gpr-rbf", "n_train": n, "fit_seconds": 1.0 / n, "fit_cpu_seconds": 1.0 / n}
             for n in (20, 40)]
    md = write_markdown(rows, tmp_path / "lc.md").read_text()
    mps = next(line for line in md.splitlines() if line.startswith("- mps: b ="))
    gpr = next(line for line in md.splitlines() if line.startswith("- gpr-rbf: b ="))
    assert "scaling law" not in mps and "from 2 sizes, 20-40" in gpr and "b = -1.00" in gpr
