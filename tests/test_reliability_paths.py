"""Command-line guards before any work: an output file that is an input is refused (the input stays intact),
outputs must differ, --test-file equal to DATA is warned about, --seed out of range names the option."""

from __future__ import annotations

import pytest

from tnmat.cli import main


@pytest.fixture
def files(tmp_path):
    """A small structure file, a second one, and a stand-in model file (refused before it is read)."""
    from tnmat.data import embedded_default

    ds = embedded_default(small=True)
    data, test = tmp_path / "d.extxyz", tmp_path / "t.extxyz"
    ds.subset(range(12)).to_extxyz(data)
    ds.subset(range(12, 20)).to_extxyz(test)
    model = tmp_path / "m.tnmat"
    model.write_bytes(b"model bytes")
    return {"data": data, "test": test, "model": model}


FIT = ["fit", "--model", "mps", "--n-max", "2", "--l-max", "1", "--r-cut", "4", "-q"]


@pytest.mark.parametrize("case", ["fit-data", "fit-test", "predict-model", "predict-data", "predict-forces",
                                  "predict-forces-model"])
def test_output_equal_to_an_input_is_refused_and_the_input_kept(case, files, capsys):
    d, t, m = (str(files[k]) for k in ("data", "test", "model"))
    argv, victim = {
        "fit-data": (FIT + [d, "-o", d], files["data"]),
        "fit-test": (FIT + [d, "--test-file", t, "-o", t], files["test"]),
        "predict-model": (["predict", m, d, "-o", m], files["model"]),
        "predict-data": (["predict", m, d, "-o", d], files["data"]),
        "predict-forces": (["predict", m, d, "--forces", d], files["data"]),
        "predict-forces-model": (["predict", m, d, "-o", "p.csv", "--forces", m], files["model"]),
    }[case]
    before = victim.read_bytes()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "would destroy that input" in err and err.count("\n") == 1
    assert victim.read_bytes() == before


def test_output_named_through_another_path_is_the_same_file(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    link = tmp_path / "sub" / "alias.extxyz"
    link.hardlink_to(files["data"])
    assert main(FIT + ["d.extxyz", "-o", "sub/../sub/alias.extxyz"]) == 2
    assert "is the input DATA" in capsys.readouterr().err


def test_two_outputs_must_differ(files, tmp_path, capsys):
    out = str(tmp_path / "p.csv")
    assert main(["predict", str(files["model"]), str(files["data"]), "-o", out, "--forces", out]) == 2
    assert "give each output its own file name" in capsys.readouterr().err


def test_test_file_equal_to_data_is_warned_about(files, capsys):
    # the warning comes before any work: the run itself is stopped by an invalid option after it
    assert main(FIT + [str(files["data"]), "--test-file", str(files["data"]), "--epochs", "0"]) == 2
    err = capsys.readouterr().err
    assert "is DATA itself" in err and "--epochs 0" in err


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_seed_out_of_range_names_the_option(seed, files, capsys):
    assert main(FIT + [str(files["data"]), "--seed", seed]) == 2
    err = capsys.readouterr().err
    assert f"--seed {seed}" in err and err.count("\n") == 1


def test_a_model_kind_named_like_a_file_is_no_input(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mps").write_text("a file that happens to share the model's name")
    # refused for the invalid --epochs after the path checks, not as "the input MODEL"
    assert main(FIT + [str(files["data"]), "-o", "mps", "--epochs", "0"]) == 2
    assert "--epochs 0" in capsys.readouterr().err
