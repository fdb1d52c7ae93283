"""benchmarks/sweep_learning_curve.py: the committed comparison follows from the committed learning-curve CSVs,
the target verdict is the issue's rule, and baselines that are not the same fits are refused."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from conftest import REPO

spec = importlib.util.spec_from_file_location("sweep_learning_curve", REPO / "benchmarks" / "sweep_learning_curve.py")
slc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(slc)

RUNS = [(REPO / "results" / "learning_curve" / f"paper_{g}_sweep", REPO / "results" / "learning_curve" / f"paper_{g}")
        for g in ("relaxed", "vegard")]


@pytest.mark.parametrize("sweep_dir,adam_dir", [r for r in RUNS if (r[0] / "comparison.json").is_file()],
                         ids=lambda p: p.name)
def test_committed_comparison_follows_from_the_committed_csvs(sweep_dir: Path, adam_dir: Path):
    res = slc.compare(slc.read_rows(sweep_dir), slc.read_rows(adam_dir))
    stored = json.loads((sweep_dir / "comparison.json").read_text())
    assert res["random"] == stored["random"] and res["target"] == stored["target"]
    # the GPR-RBF column is the Adam run's GPR-RBF (the same stored fits)
    adam = slc.read_rows(adam_dir)
    for e in res["random"]:
        assert e["gpr-rbf"]["mae_mean"] == float(adam[("gpr-rbf", "random", e["n_train"])]["mae_mean"])


def _row(model: str, n: int, mae: float) -> dict:
    return {"model": model, "splits": "random", "n_train": str(n), "n_splits": "10", "mae_mean": str(mae),
            "mae_std": "1", "rmse_mean": str(2 * mae), "rmse_std": "1", "n_parameters": "10", "params": "{}"}


def _rows(maes: dict[str, list[float]]) -> dict:
    sizes = (50, 100, 200, 400)
    return {(m, "random", n): _row(m, n, v) for m, vals in maes.items() for n, v in zip(sizes, vals, strict=True)}


def test_target_rule_needs_every_size_and_20_percent_below_200():
    gpr = [10.0, 10.0, 10.0, 10.0]
    sweep = _rows({"gpr-rbf": gpr, "ttn": [7.9, 8.0, 7.99, 10.0], "mps": [7.0, 7.0, 7.0, 10.01]})
    adam = _rows({"gpr-rbf": gpr, "mps": [8.1, 5.0, 5.0, 5.0]})
    t = slc.compare(sweep, adam)["target"]
    assert t["ttn (sweep)"]["met"]  # 20 % or more below at 50-200, equal at 400
    assert t["mps (sweep)"]["sizes_not_below_gpr_rbf"] == [400] and not t["mps (sweep)"]["met"]
    assert t["mps (adam)"]["sizes_without_20pct_gain"] == [50] and not t["mps (adam)"]["met"]


def test_different_gpr_fits_are_refused():
    sweep = _rows({"gpr-rbf": [10.0, 10.0, 10.0, 10.0], "ttn": [1.0] * 4, "mps": [1.0] * 4})
    adam = _rows({"gpr-rbf": [10.0, 10.0, 10.5, 10.0], "mps": [1.0] * 4})
    with pytest.raises(SystemExit, match="GPR-RBF differs"):
        slc.compare(sweep, adam)


RICH = [tuple(REPO / "results" / "learning_curve" / f"paper_{g}{s}" for s in ("_r8n8l6_sweep", "_r8n8l6_sweep_gpr",
                                                                            "_r8n8l6_cap", ""))
        for g in ("relaxed", "vegard")]


@pytest.mark.parametrize("rich_dir,gpr_dir,cap_dir,paper_dir",
                         [r for r in RICH if (r[0] / "comparison.json").is_file()], ids=lambda p: p.name)
def test_committed_rich_comparison_follows_from_the_committed_csvs(rich_dir, gpr_dir, cap_dir, paper_dir):
    stored = json.loads((rich_dir / "comparison.json").read_text())
    rich = {**slc.read_rows(rich_dir), **slc.read_rows(gpr_dir)}
    cap = slc.read_rows(cap_dir) if stored.get("cap_dir") else None
    extra = {c["label"]: (slc.read_rows(REPO / c["dir"]), c["model"]) for c in stored.get("columns", [])}
    res = slc.compare_rich(rich, slc.read_rows(paper_dir), cap, extra)
    assert res["random"] == stored["random"] and res["target"] == stored["target"]


def test_rich_comparison_checks_the_cap_column_against_both_references():
    rich = _rows({"ttn": [12.0] * 4, "mps": [12.0] * 4, "dense": [12.0] * 4, "gpr-rbf": [10.0, 10.0, 10.0, 10.0]})
    paper = _rows({"gpr-rbf": [20.0] * 4})
    cap = _rows({"ttn": [7.9, 8.0, 7.0, 9.0]})
    res = slc.compare_rich(rich, paper, cap)
    assert res["models"][0] == "ttn (cap chosen, evidence)"
    t = res["target"]
    assert t["ttn (cap chosen, evidence) vs gpr-rbf (same inputs)"]["met"]
    assert t["ttn (sweep) vs gpr-rbf (same inputs)"]["sizes_not_below"] == [50, 100, 200, 400]
    assert t["ttn (sweep) vs gpr-rbf (paper r6n4l3)"]["met"]
    assert "ttn (cap chosen, evidence) vs gpr-rbf (same inputs)" not in slc.compare_rich(rich, paper)["target"]
    res = slc.compare_rich(rich, paper, cap, {"ttn (Huber)": (_rows({"ttn": [7.0, 7.0, 7.0, 11.0]}), "ttn")})
    assert res["models"][0] == "ttn (Huber)"
    assert res["target"]["ttn (Huber) vs gpr-rbf (same inputs)"]["sizes_not_below"] == [400]
    assert slc.parse_column("a b=x/y:ttn") == ("a b", slc.Path("x/y"), "ttn")
