"""Settings whose memory cannot fit are refused before work, naming the option and the estimate."""

from __future__ import annotations

import pytest

import tnmat.memory
from tnmat.cli import main
from tnmat.memory import InsufficientMemory, check_memory, direct_sum_bytes
from tnmat.networks.memory import direct_sum_parameters

TB = 10**12


def _refused(argv, capsys, option) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "fit time" not in out and "computed in" not in out  # refused before any fit or descriptor work
    assert err.count("\n") == 1 and option in err and "needs at least" in err and "is available" in err
    return err


@pytest.fixture
def small_memory(monkeypatch):
    """A machine with 16 GB available, whatever this one has."""
    monkeypatch.setattr(tnmat.memory, "available_memory", lambda: 16 * 10**9)


@pytest.mark.parametrize("model", [["--model", "mpo"], ["--model", "mps", "--solver", "adam"],
                                   ["--model", "feature-map-mps"]])
def test_a_huge_bond_dimension_is_refused_before_work(model, small_memory, capsys):
    err = _refused(["fit", "alloys-small", *model, "--bond-dim", "100000", "-q"], capsys, "--bond-dim 100000")
    assert "TB" in err or "PB" in err


def test_a_thousand_members_are_refused_before_the_first_fit(small_memory, capsys):
    _refused(["fit", "alloys-small", "--model", "ttn", "--members", "1000", "-q"], capsys, "--members 1000")


@pytest.mark.parametrize("order", ["3", "4"])
def test_huge_descriptors_are_refused_before_they_are_computed(order, small_memory, capsys):
    _refused(["describe", "alloys-small", "--order", order, "--r-cut", "12", "--n-max", "16", "--l-max", "12",
              "-q"], capsys, f"--order {order}, --r-cut 12.0, --n-max 16, --l-max 12")


def test_ordinary_settings_pass(small_memory):
    from tnmat.networks.memory import network_bytes

    check_memory(network_bytes("ttn", (3, 3, 4, 4, 4), 8, adam=True), "--bond-dim 8")
    check_memory(direct_sum_parameters("ttn", (3, 3, 4, 4, 4), 8, 8) * 8, "--members 8")


def test_unknown_available_memory_refuses_nothing(monkeypatch):
    monkeypatch.setattr(tnmat.memory, "available_memory", lambda: None)
    check_memory(10 * TB, "--bond-dim")
    with pytest.raises(InsufficientMemory, match="--bond-dim"):
        check_memory(10 * TB, "--bond-dim", available=10**9)


def test_the_available_memory_is_read():
    have = tnmat.memory.available_memory()
    assert have is None or 10**6 < have < 10**16


@pytest.mark.parametrize("kind", ["mps", "ttn"])
def test_direct_sum_estimate_matches_the_merged_network(kind):
    from tnmat.networks import make_network
    from tnmat.networks.direct_sum import direct_sum

    sizes = (3, 3, 4, 4, 4)
    members = [make_network(kind, sizes, 4, seed=s) for s in range(3)]
    merged = direct_sum(members)
    size = sum(p.numel() * p.element_size() for p in merged.parameters())
    assert direct_sum_bytes(members[0], 3) == size
    assert direct_sum_parameters(kind, sizes, 4, 3) == sum(p.numel() for p in merged.parameters())


def test_members_are_refused_after_the_first_member(monkeypatch):
    import numpy as np

    from tnmat.data import embedded_default
    from tnmat.descriptors import AtomicDensity, Invariants
    from tnmat.training import MPSRegressor
    from tnmat.training.sweep import estimator as sweep_train

    ds = embedded_default(small=True).subset(range(30))
    X = Invariants(AtomicDensity(species=ds.species, r_cut=4.0, n_max=2, l_max=1), order=2).compute(ds.structures)
    fits = []
    original = sweep_train.sweep_fit
    monkeypatch.setattr(sweep_train, "sweep_fit", lambda *a, **k: fits.append(1) or original(*a, **k))
    monkeypatch.setattr(tnmat.memory, "available_memory", lambda: 1000)
    reg = MPSRegressor(solver="sweep", bond_dim=3, n_sweeps=1, n_members=50, alpha_selection="evidence",
                       validation_fraction=0.0, random_state=0)
    with pytest.raises(InsufficientMemory, match="n_members=50"):
        reg.fit(X, np.asarray(ds.targets["mixing_energy"]))
    assert len(fits) == 1
