"""The committed learning-curve results still load: every ``results/learning_curve/*/fits.jsonl.gz`` imports
into a fresh store and the summary computed from it reports the committed numbers (CSV and Markdown)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from conftest import REPO
from tnmat.data.units import target_units
from tnmat.experiments import learning_curve as lc
from tnmat.experiments.learning_curve_report import write_markdown
from tnmat.experiments.store import ResultStore

RUNS = sorted(p.parent for p in (REPO / "results" / "learning_curve").glob("*/fits.jsonl.gz"))


def test_there_are_stored_runs():
    assert len(RUNS) >= 5, RUNS


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_stored_fits_import_and_report_the_committed_numbers(run: Path, tmp_path: Path):
    store = ResultStore(tmp_path / "imported.sqlite")
    added = store.import_jsonl(run / "fits.jsonl.gz")
    recs = store.results(experiment=lc.EXPERIMENT)
    assert added == len(recs) > 0
    datasets = {lc.record_dataset(r) for r in recs}
    assert len(datasets) == 1, datasets
    # every stored error carries the unit the one unit function gives for the data set today
    (dataset,) = datasets
    assert {r["metrics"]["units"] for r in recs} == {target_units(dataset.split("-")[0], "formation_energy")}
    rows = {(r["model"], r["n_train"], r["splits"]): r for r in lc.summarise(store, dataset=dataset)}
    with open(run / "learning_curve.csv") as fh:
        committed = list(csv.DictReader(fh))
    assert len(committed) == len(rows)
    for c in committed:
        r = rows[(c["model"], int(c["n_train"]), c["splits"])]
        assert r["n_splits"] == int(c["n_splits"]) and r["params"] == c["params"]
        for col in ("rmse_mean", "rmse_std", "mae_mean", "mae_std", "fit_seconds", "tuning_seconds"):
            assert math.isclose(r[col], float(c[col]), rel_tol=1e-12), (col, c)
        assert (r["n_parameters"] is None) == (c["n_parameters"] == "")
    # the Markdown pivot tables written today from the imported fits are the committed ones, line for line
    md = (run / "learning_curve.md").read_text().splitlines()
    pivot = write_markdown(list(rows.values()), tmp_path / "lc.md", units="meV/cation").read_text()
    table_lines = [ln for ln in pivot.splitlines() if ln.startswith("| ") and " +- " in ln]
    assert table_lines and all(ln in md for ln in table_lines)
