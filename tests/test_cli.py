"""The tnmat command line, end to end on the small embedded alloy set."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from tnmat.cli import build_parser, main
from tnmat.experiments.store import ResultStore
from tnmat.legtensor import LegTensor

SUBCOMMANDS = ["data", "describe", "fit", "predict", "hull", "learning-curve", "entanglement", "compress", "latent"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: tnmat " + command in capsys.readouterr().out


def test_all_subcommands_are_listed():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(SUBCOMMANDS) <= set(sub.choices)


def test_describe_fit_predict_roundtrip(tmp_path, capsys):
    out = tmp_path / "b2.npz"
    assert main(["describe", "alloys-small", "--n-max", "2", "--l-max", "2", "-q", "-o", str(out)]) == 0
    desc = LegTensor.load(out)
    assert desc.legs == ("a1", "a2", "n1", "n2", "l") and desc.sizes[2:] == (2, 2, 3)
    model = tmp_path / "m.tnmat"
    assert main(["fit", "alloys-small", "--model", "mps", "--bond-dim", "3", "--solver", "adam", "--epochs", "15",
                 "--n-max", "2",
                 "--l-max", "2", "-q", "-o", str(model)]) == 0
    text = capsys.readouterr().out
    test_mae = float(re.search(r"test\s+RMSE\s+\S+ meV/atom\s+MAE\s+(\S+)", text).group(1))
    assert test_mae > 0
    preds = tmp_path / "p.csv"
    assert main(["predict", str(model), "alloys-small", "-q", "-o", str(preds)]) == 0
    rows = list(csv.DictReader(open(preds)))
    assert len(rows) == 142 and {"id", "predicted_mixing_energy_eV", "mixing_energy_eV"} <= set(rows[0])


def test_gpr_fit_save_predict_matches_the_fitted_model(tmp_path, capsys):
    # a saved GPR predicts on structures exactly what the fitted one reported for the same split
    model = tmp_path / "gpr.tnmat"
    assert main(["fit", "alloys-small", "--model", "gpr-soap", "--n-max", "2", "--l-max", "2", "-q",
                 "-o", str(model)]) == 0
    text = capsys.readouterr().out
    assert "wrote" in text
    preds = tmp_path / "p.csv"
    assert main(["predict", str(model), "alloys-small", "-q", "-o", str(preds)]) == 0
    rows = list(csv.DictReader(open(preds)))
    err = np.array([float(r["predicted_mixing_energy_eV"]) - float(r["mixing_energy_eV"]) for r in rows])
    assert len(rows) == 142 and np.isfinite(err).all()
    # all 142 structures, training ones included: the overall RMSE is at most the larger of the reported ones
    reported = [float(x) for x in re.findall(r"RMSE\s+(\S+) meV/atom", text)]
    assert 1000 * np.sqrt(np.mean(err**2)) <= max(reported) + 1e-6


def test_learning_curve_tiny_and_resume(tmp_path, capsys):
    args = ["learning-curve", "alloys-small", "--models", "mps,gpr-rbf", "--sizes", "30", "--splits", "1",
            "--test-size", "30", "--n-max", "2", "--l-max", "1", "--results", str(tmp_path / "r.sqlite"),
            "--out-dir", str(tmp_path / "lc"), "-q"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "2 run now, 0 already" in first
    assert (tmp_path / "lc" / "learning_curve.png").stat().st_size > 1000
    rows = list(csv.DictReader(open(tmp_path / "lc" / "learning_curve.csv")))
    assert {r["model"] for r in rows} == {"mps", "gpr-rbf"}
    # the alloys' mixing energies are per atom: the CSV, the Markdown and every stored fit say so
    assert {r["units"] for r in rows} == {"meV/atom"} and "(meV/atom)" in first
    assert "(meV/atom)" in (tmp_path / "lc" / "learning_curve.md").read_text()
    assert {r["metrics"]["units"] for r in ResultStore(tmp_path / "r.sqlite").results()} == {"meV/atom"}
    assert main(args) == 0  # resume: nothing is refitted
    assert "0 run now, 2 already" in capsys.readouterr().out
    assert "fits stored: 2 of 2" in (tmp_path / "lc" / "learning_curve.md").read_text()
    # another machine: a fresh results file seeded from the exported fits resumes without refitting
    moved = list(args)
    moved[moved.index("--results") + 1] = str(tmp_path / "elsewhere.sqlite")
    assert main([*moved, "--import-fits", str(tmp_path / "lc" / "fits.jsonl.gz")]) == 0
    text = capsys.readouterr().out
    assert "imported 2 new fits" in text and "0 run now, 2 already" in text
    assert main([*moved, "--import-fits", str(tmp_path / "nope.jsonl.gz")]) == 2
    err = capsys.readouterr().err
    assert "--import-fits" in err and "no file" in err and "nope.jsonl.gz" in err
    # a larger protocol in the same file: --report-only fits nothing and reports only whole splits
    more = list(args)
    more[more.index("--splits") + 1] = "2"
    assert main([*more, "--report-only"]) == 0
    text = capsys.readouterr().out
    assert "2 of 4 fits stored" in text and "2 to go" in text
    rows = list(csv.DictReader(open(tmp_path / "lc" / "learning_curve.csv")))
    assert {(r["model"], r["n_splits"]) for r in rows} == {("mps", "1"), ("gpr-rbf", "1")}
    more[more.index("--models") + 1] = "mps,gpr-rbf,gpr-soap"  # a model with no fits: no split is whole yet
    more[more.index("--out-dir") + 1] = str(tmp_path / "partial")
    assert main([*more, "--report-only"]) == 0
    assert "nothing to report" in capsys.readouterr().out
    # ...but the fits done so far are exported, so even an early partial run can move machines
    assert ResultStore(tmp_path / "p.sqlite").import_jsonl(tmp_path / "partial" / "fits.jsonl.gz") == 2


def test_learning_curve_grid_option(tmp_path, capsys):
    """--grid replaces one axis of a model's grid; every value becomes its own stored fit."""
    base = ["learning-curve", "alloys-small", "--models", "mps,gpr-rbf", "--sizes", "30", "--splits", "1",
            "--test-size", "30", "--n-max", "2", "--l-max", "1", "--results", str(tmp_path / "r.sqlite"),
            "--out-dir", str(tmp_path / "lc"), "-q"]
    assert main([*base, "--solver", "adam", "--grid", "mps:weight_decay=0,1e-2", "--grid", "mps:bond_dim=2",
                 "--grid", "mps:learning_rate=0.01"]) == 0
    assert "3 run now" in capsys.readouterr().out
    mps = [r["params"] for r in ResultStore(tmp_path / "r.sqlite").results(model="mps")]
    assert sorted(p["weight_decay"] for p in mps) == [0, 0.01]
    assert {p["bond_dim"] for p in mps} == {2} and all(isinstance(p["bond_dim"], int) for p in mps)
    for bad, words in [("mps:weight_decay", "MODEL:NAME=V1,V2"), ("mpo:weight_decay=0", "not among --models"),
                       ("mps:no_such=1", "no parameter(s) ['no_such'] (it has "),
                       ("mps:bond_dim=", "MODEL:NAME=V1,V2")]:
        assert main([*base, "--grid", bad]) == 2
        err = capsys.readouterr().err
        assert "--grid" in err and words in err, (bad, err)


def test_learning_curve_dataset_label():
    from tnmat.experiments.protocol import dataset_label as _dataset_label

    # the labels of the committed paper runs (they enter the fits' keys, see results/learning_curve/)
    assert _dataset_label("nmd18", "relaxed", "formation_energy") == "nmd18-relaxed-formation_energy"
    assert _dataset_label("nmd18-vegard", "vegard", "formation_energy") == "nmd18-vegard-formation_energy"
    assert _dataset_label("alloys", "relaxed", "energy") == "alloys-relaxed-energy"


def test_learning_curve_label_carries_a_non_default_descriptor():
    from tnmat.experiments.protocol import DEFAULT_DESCRIPTOR, dataset_label

    # the default descriptor leaves the committed keys as they were; any other descriptor gets its own keys
    assert dataset_label("nmd18", "relaxed", "formation_energy", dict(DEFAULT_DESCRIPTOR)) == \
        "nmd18-relaxed-formation_energy"
    rich = {**DEFAULT_DESCRIPTOR, "r_cut": 8.0, "n_max": 8, "l_max": 6}
    assert dataset_label("nmd18", "relaxed", "formation_energy", rich) == \
        "nmd18-relaxed-formation_energy-l_max=6,n_max=8,r_cut=8"
    assert dataset_label("alloys", "relaxed", "energy", {**DEFAULT_DESCRIPTOR, "density": "delta"}) != \
        dataset_label("alloys", "relaxed", "energy", {**DEFAULT_DESCRIPTOR, "sigma": 0.4})


def test_learning_curve_title_names_a_geometry_only_for_nmd18():
    from tnmat.experiments.protocol import dataset_title

    # the key label keeps "relaxed" for stored alloy fits; the report title does not claim a geometry
    assert dataset_title("alloys", "relaxed", "energy_per_atom") == "alloys-energy_per_atom"
    assert dataset_title("nmd18", "relaxed", "formation_energy") == "nmd18-relaxed-formation_energy"
    assert dataset_title("nmd18-vegard", "vegard", "bandgap") == "nmd18-vegard-bandgap"


@pytest.mark.slow
def test_learning_curve_quick_preset(tmp_path):
    assert main(["learning-curve", "alloys-small", "--preset", "quick", "--results", str(tmp_path / "r.sqlite"),
                 "--out-dir", str(tmp_path / "lc"), "-q"]) == 0


def test_clear_errors(capsys):
    assert main(["describe", "no/such/file.xyz"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["describe", "alloys-small", "--n-max", "0", "-q"]) == 2
    assert "n_max" in capsys.readouterr().err


@pytest.mark.slow
def test_entanglement_sweep_cli_tiny(nmd18_path, tmp_path, capsys):
    assert main(["entanglement", "sweep", str(nmd18_path), "--models", "mps", "--chis", "2", "--train-sizes",
                 "30", "--splits", "1", "--test-size", "30", "--epochs", "3", "--out-dir", str(tmp_path),
                 "--cache", str(tmp_path / "cache"), "-q"]) == 0
    assert (tmp_path / "bond_sweep.png").exists() and "bond_sweep" in capsys.readouterr().out


@pytest.mark.slow
def test_compress_ttsvd_cli_tiny(tmp_path, capsys):
    assert main(["compress", "ttsvd", "--chi-in", "2", "--n-train", "40", "--n-test", "20", "--epochs", "2",
                 "--out-dir", str(tmp_path), "-q"]) == 0
    assert "chi_in" in capsys.readouterr().out


def test_entanglement_dynamics_on_any_dataset(tmp_path, capsys):
    """The experiment takes the descriptors of DATA (here the alloys, errors per atom), not a fixed NMD18 load."""
    assert main(["entanglement", "dynamics", "alloys-small", "--chis", "2", "--runs", "2", "--epochs", "2",
                 "--snapshots", "4", "--n-train", "30", "--test-size", "20", "--n-max", "2", "--l-max", "1",
                 "--out-dir", str(tmp_path), "-q"]) == 0
    assert "dynamics.md" in capsys.readouterr().out
    md = (tmp_path / "dynamics.md").read_text()
    assert "## chi = 2 (2 runs x 2 epochs" in md and "meV/atom" in md
    recs = ResultStore(tmp_path / "entanglement.sqlite").records(experiment="entanglement-dynamics")
    assert len(recs) == 2 and {r["dataset"] for r in recs} == {"alloys-small"}


def test_cli_is_only_the_entry_point_and_every_command_is_one_module():
    """cli.py defines nothing but main; each subcommand is a module of tnmat.commands with its option table
    (data, not code) and one run function."""
    import ast
    import inspect

    import tnmat.cli
    from tnmat.commands import COMMANDS

    tree = ast.parse(inspect.getsource(tnmat.cli))
    assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)] == ["main"]
    assert sorted(c.NAME for c in COMMANDS) == sorted(SUBCOMMANDS)
    for command in COMMANDS:
        assert isinstance(command.OPTIONS, list) and callable(command.run) and command.HELP and command.DESCRIPTION
