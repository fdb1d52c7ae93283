"""Bad arguments of the issue-14 list ("Why" 6 and 7): each is a clear error naming the option, value or
structure, raised before any long work."""

from __future__ import annotations

import pytest
from ase.build import bulk

from tnmat.cli import main
from tnmat.descriptors import AtomicDensity, Invariants

K = {"species": ("Cu",), "r_cut": 5.0, "n_max": 4, "l_max": 3}


@pytest.mark.parametrize(("change", "error", "msg"), [
    ({"r_cut": 1.0}, ValueError, "no orthonormal GTO radial basis for r_cut=1 A with n_max=4"),
    ({"sigma": float("inf")}, ValueError, "sigma must be a finite number > 0, got inf"),
    ({"n_max": 100000}, ValueError, "n_max=100000 radial functions is more than 64"),
    ({"n_max": 30}, ValueError, "n_max=30"),
])
def test_density_arguments(change, error, msg):
    with pytest.raises(error, match=msg):
        AtomicDensity(**{**K, **change})


@pytest.mark.parametrize("order", [2.0, True, "2"])
def test_invariant_order_must_be_an_integer(order):
    with pytest.raises(TypeError, match=f"order must be an integer 1-4, got {order!r}"):
        Invariants(AtomicDensity(**K), order=order)


def test_compute_on_a_path_or_nothing():
    d = AtomicDensity(**K)
    for calc, who in ((d, "AtomicDensity.compute"), (Invariants(d), "Invariants.compute")):
        with pytest.raises(TypeError, match=f"{who}: got the path 'file.extxyz'.*read_structures"):
            calc.compute("file.extxyz")
    with pytest.raises(TypeError, match="structure 1 is a str"):
        d.compute([bulk("Cu"), "x"])
    with pytest.raises(ValueError, match="AtomicDensity.compute: no structures given"):
        d.compute([])
    assert Invariants(d).compute([]).n_structures == 0  # documented: an empty descriptor table


@pytest.mark.parametrize(("flags", "msg"), [
    (["--r-cut", "1.0"], "r_cut=1 A"),
    (["--sigma", "inf"], "sigma must be a finite number > 0, got inf"),
    (["--n-max", "100000"], "n_max=100000"),
    (["--order", "7"], "order must be 1, 2, 3 or 4, got 7"),
])
def test_cli_descriptor_options(flags, msg, capsys):
    assert main(["fit", "alloys-small", "--model", "gpr-rbf", "-q", *flags]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


LC = ["learning-curve", "alloys-small", "--models", "gpr-rbf", "-q"]


@pytest.mark.parametrize(("flags", "msg"), [
    (["--sizes", "1000"], "--sizes 1000: larger than the training pool of 102 structures (alloys-small: 142 "
                          "structures less --test-size 40)"),
    (["--sizes", "40,1000"], "--sizes 1000: larger than the training pool"),
    (["--sizes", "1,20"], "--sizes 1: training sizes must be at least 2"),
    (["--splits", "0"], "--splits 0: alloys-small has no official test split"),
    (["--splits", "-1"], "--splits -1: must be at least 0"),
    (["--test-size", "141"], "--test-size 141: must be between 1 and 140"),
    (["--sizes", "10,x"], "invalid literal"),
])
def test_learning_curve_run_sizes(flags, msg, tmp_path, capsys):
    report = tmp_path / "lc"
    report.mkdir()
    (report / "learning_curve.md").write_text("the old report\n")
    assert main([*LC, *flags, "--results", str(tmp_path / "r.sqlite"), "--out-dir", str(report)]) == 2
    assert msg in capsys.readouterr().err
    assert (report / "learning_curve.md").read_text() == "the old report\n"  # nothing written over it
    assert not (tmp_path / "r.sqlite").exists()
