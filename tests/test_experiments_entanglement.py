"""Entanglement experiments: bond sweep, spectrum dynamics, min-cut bounds, figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tnmat.entanglement import (
    MEAN_R_TILDE,
    mps_schmidt_values,
    network_state,
    operator_schmidt_values,
    page_entropy,
    schmidt_values,
)
from tnmat.entanglement import graphs as eg
from tnmat.experiments import entanglement as ex
from tnmat.experiments.entanglement_report import write_sweep_markdown
from tnmat.experiments.runner import GridOptions
from tnmat.experiments.splits import FixedTestSplits
from tnmat.experiments.store import ResultStore
from tnmat.legtensor import LegTensor
from tnmat.networks import MPO, MPS, TTN
from tnmat.training.base import NetworkRegressor

LEGS = ("a1", "a2", "n1", "n2", "l")


def _data(n: int = 60, d: int = 2, seed: int = 0) -> tuple[LegTensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *(d,) * 5))
    w = rng.standard_normal((d,) * 5)
    y = np.einsum("bijklm,ijklm->b", x, w) * 0.01 + 0.1 * x[:, 0, 0, 0, 0, 0] ** 2
    return LegTensor(torch.from_numpy(x), LEGS), y


def _rank(lam: np.ndarray, tol: float = 1e-10) -> int:
    return int(np.sum(lam > tol * lam[0]))


# ---------------------------------------------------------------------------------------------- min cut
def test_min_cut_chain_known_values():
    # chain a1 a2 n1 n2 l with d = 4: A = {a1, n1} is cut by chi^3 (three bonds), 4 chi (bond a1|a2 plus the
    # n1 leg), or the A legs themselves (16)
    for chi, want in ((1, 1), (2, 8), (3, 12), (8, 16)):
        g = eg.network_graph("mps", (4,) * 5, chi)
        bound, cut = eg.min_cut_bound(g, [0, 2])
        assert bound == pytest.approx(math.log(want))
        assert math.prod(cut) == want
    # a single bond cut: log min(chi, d_A)
    assert eg.min_cut_bound(eg.network_graph("mps", (4,) * 5, 5), [0, 1])[0] == pytest.approx(math.log(5))
    # MPO (Choi legs d^2 = 16): A = {a1, n1}: min(chi^3, 16 chi, 256)
    assert eg.min_cut_bound(eg.network_graph("mpo", (4,) * 5, 12), [0, 2])[0] == pytest.approx(math.log(192))
    # dense tensor: only the legs can be cut
    assert eg.min_cut_bound(eg.network_graph("dense", (4,) * 5, None), [0, 2])[0] == pytest.approx(math.log(16))


@pytest.mark.parametrize("kind,chi,part", [("mps", 2, [0, 2]), ("mps", 3, [0, 1]), ("ttn", 3, [0, 1]),
                                           ("ttn", 2, [0, 2]), ("mpo", 2, [0, 2])])
def test_min_cut_is_the_generic_schmidt_rank(kind, chi, part):
    """For random tensors the Schmidt rank equals the min-cut bound (an independent check of the graph)."""
    sizes = (3, 3, 3, 3, 3)
    net = {"mps": MPS, "mpo": MPO, "ttn": TTN}[kind](sizes, chi, dtype=torch.float64, seed=1)
    with torch.no_grad():  # random, non-isometric weights: no accidental rank deficiency from the init
        g = torch.Generator().manual_seed(2)
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    if kind == "mpo":
        lam = operator_schmidt_values(net.to_dense().numpy(), part)
    else:
        lam = schmidt_values(net.to_dense().numpy(), part)
    bound, _ = eg.min_cut_bound(eg.network_graph(kind, sizes, chi), part)
    assert _rank(lam) == round(math.exp(bound))


def test_network_entanglement_matches_dense_and_choi_dims():
    sizes = (2, 3, 2, 2, 3)
    mpo = MPO(sizes, 3, dtype=torch.float64, seed=0)
    ent = eg.network_entanglement(mpo, "mpo", LEGS)
    dense = mpo.to_dense().numpy()
    for name, part in eg.DEFAULT_BIPARTITIONS.items():
        idx = [LEGS.index(p) for p in part]
        rec = ent[name]
        ref = operator_schmidt_values(dense, idx)
        np.testing.assert_allclose(rec["schmidt"], ref, atol=1e-10)
        d_a = math.prod(sizes[i] ** 2 for i in idx)
        assert (rec["d_a"], rec["d_b"]) == (d_a, math.prod(s**2 for s in sizes) // d_a)
        assert rec["page"] == pytest.approx(page_entropy(rec["d_a"], rec["d_b"]))
        assert 0.0 <= rec["entropy"] <= rec["min_cut"] + 1e-9 <= rec["max_entropy"] + 2e-9
    # the MPS route agrees with the canonical/compress routes of the library
    mps = MPS(sizes, 2, dtype=torch.float64, seed=0)
    ent = eg.network_entanglement(mps, "mps", LEGS)
    np.testing.assert_allclose(ent["a1n1"]["schmidt"], mps_schmidt_values(network_state(mps), [0, 2], method="dense"),
                               atol=1e-10)


def test_bipartition_must_name_existing_legs():
    X, y = _data()
    with pytest.raises(ValueError, match="does not have"):
        ex.BondSweepTask(X, y, sizes=(10,), n_splits=1, test_size=20, seed=0, bipartitions={"x": ("a1", "zz")})


# ---------------------------------------------------------------------------------------------- splits
def test_fixed_test_set_is_disjoint_and_shared():
    sp = FixedTestSplits(100, sizes=(10, 40), n_splits=3, test_size=30, seed=4)
    tests = set()
    for k in range(3):
        f10, v10, t = sp.indices(k, 10)
        f40, v40, _ = sp.indices(k, 40)
        tests.add(tuple(t))
        assert set(f10 + 0).isdisjoint(t) and set(v40).isdisjoint(t) and set(f40).isdisjoint(v40)
        assert len(f10) + len(v10) == 10 and len(v40) == 8
        assert set(f10) | set(v10) <= set(f40) | set(v40)  # nested subsets
    assert len(tests) == 1


# ---------------------------------------------------------------------------------------------- sweep
def test_bond_sweep_records_once_and_resumes(tmp_path, monkeypatch):
    fits = []
    orig = NetworkRegressor.fit

    def counting_fit(self, *a, **k):
        fits.append(type(self).__name__)
        return orig(self, *a, **k)

    monkeypatch.setattr(NetworkRegressor, "fit", counting_fit)
    X, y = _data()
    store = ResultStore(tmp_path / "s.sqlite")
    settings = ex.SweepSettings(train_sizes=(12,), n_splits=2, test_size=20, chis=(1, 2), max_epochs=3,
                                dtype="float64")
    kw = dict(store=store, options=GridOptions(progress=False), dataset="toy")
    summary = ex.run_bond_sweep(X, y, settings, **kw)
    n_tasks = 3 * 2 * 2 + 2  # (mps, mpo, ttn) x 2 chi x 2 splits + dense x 2 splits
    assert summary["n_tasks"] == n_tasks == summary["n_fitted"] == len(fits)
    recs = store.results(experiment=ex.SWEEP_EXPERIMENT)
    assert len(recs) == n_tasks
    assert len({(r["model"], r["params"]["bond_dim"], r["split"]) for r in recs}) == n_tasks
    again = ex.run_bond_sweep(X, y, settings, **kw)
    assert len(fits) == n_tasks and again["n_fitted"] == 0 and again["n_skipped"] == n_tasks
    assert len(store.results(experiment=ex.SWEEP_EXPERIMENT)) == n_tasks
    # entropies lie in [0, min-cut bound]; chi = 1 chains carry no entanglement across a bond
    for r in recs:
        for e in r["metrics"]["entanglement"].values():
            assert -1e-12 <= e["entropy"] <= e["min_cut"] + 1e-9
            assert e["min_cut"] <= math.log(min(e["d_a"], e["d_b"])) + 1e-12
            assert sum(v * v for v in e["schmidt"]) == pytest.approx(1.0)
            if r["model"] in ("mps", "mpo") and r["params"]["bond_dim"] == 1:
                assert e["entropy"] == pytest.approx(0.0, abs=1e-9)
        assert r["metrics"]["test_rmse"] >= r["metrics"]["test_mae"] > 0
    rows = summary["rows"]
    assert {(r["model"], r["bond_dim"]) for r in rows} == {(m, c) for m in ("mps", "mpo", "ttn") for c in (1, 2)} | {
        ("dense", None)}
    assert all(r["n_splits"] == 2 for r in rows)
    # a different dataset name is a different configuration
    other = ex.run_bond_sweep(X, y, ex.SweepSettings(**{**settings.__dict__, "models": ("dense",)}),
                              **{**kw, "dataset": "toy2"})
    assert other["n_fitted"] == 2


# ---------------------------------------------------------------------------------------------- dynamics
def test_log_spaced_steps():
    s = ex.log_spaced_steps(1000, 12)
    assert s[0] == 0 and s[1] == 1 and s[-1] == 1000
    assert all(b > a for a, b in zip(s, s[1:], strict=False))
    ratios = np.diff(np.log(s[1:]))
    assert ratios.max() < 3 * ratios.mean()  # roughly geometric
    assert ex.log_spaced_steps(3, 10) == [0, 1, 2, 3]


def test_dynamics_records_spectra_at_requested_steps(tmp_path):
    X, y = _data()
    store = ResultStore(tmp_path / "d.sqlite")
    settings = ex.DynamicsSettings(chis=(2, 3), n_runs=2, n_epochs=3, n_snapshots=6, n_train=20, test_size=20,
                                   batch_size=4, dtype="float64")
    out = ex.run_spectrum_dynamics(X, y, settings, store=store, options=GridOptions(progress=False), dataset="toy")
    recs = store.records(experiment=ex.DYNAMICS_EXPERIMENT)
    assert len(recs) == 4 and out["n_fitted"] == 4
    n_fit = 16  # 20 structures, 20 % validation
    total = 3 * math.ceil(n_fit / 4)
    want = ex.log_spaced_steps(total, 6)
    for r in recs:
        assert r["steps"] == want and r["total_steps"] == total
        assert len(r["schmidt"]) == len(want)
        assert all(len(lam) == min(r["d_a"], r["d_b"]) == 16 for lam in r["schmidt"])
        assert r["epochs"] == sorted(r["epochs"]) and r["epochs"][-1] == 2
        # spectra change with training (the recording is not of a frozen network)
        assert not np.allclose(r["schmidt"][0], r["schmidt"][-1])
    # runs differ (independent initialisations)
    a = [r for r in recs if r["bond_dim"] == 2]
    assert not np.allclose(a[0]["schmidt"][0], a[1]["schmidt"][0])
    an = out["analysis"]
    assert sorted(an) == [2, 3] and an[2]["n_runs"] == 2 and an[2]["steps"] == want
    again = ex.run_spectrum_dynamics(X, y, settings, store=store, options=GridOptions(progress=False),
                                     dataset="toy")
    assert again["n_fitted"] == 0 and again["analysis"][3]["entropy"] == an[3]["entropy"]


def _record(chi: int, spectra: list[np.ndarray]) -> dict:
    return {"bond_dim": chi, "steps": list(range(len(spectra))), "epochs": list(range(len(spectra))),
            "schmidt": [s.tolist() for s in spectra], "d_a": 64, "d_b": 64, "min_cut": math.log(64),
            "page": page_entropy(64, 64), "test_rmse": 1.0, "fit_seconds": 1.0, "n_epochs": 1, "total_steps": 1}


def test_analyse_dynamics_tells_goe_from_poisson():
    """Random real states give GOE level statistics (Wishart, beta = 1); exponential spacings give Poisson."""
    rng = np.random.default_rng(0)
    recs = []
    for _ in range(20):
        goe = np.linalg.svd(rng.standard_normal((64, 64)), compute_uv=False)
        xi = np.cumsum(rng.exponential(0.3, size=64))
        poisson = np.exp(-xi / 2)
        recs.append(_record(5, [goe / np.linalg.norm(goe), poisson / np.linalg.norm(poisson)]))
    an = ex.analyse_dynamics(recs, rtol=1e-300)[5]
    assert an["n_ratios"][0] == 20 * 62
    assert an["mean_r"][0] == pytest.approx(MEAN_R_TILDE["goe"], abs=0.03)
    assert an["mean_r"][1] == pytest.approx(MEAN_R_TILDE["poisson"], abs=0.03)
    assert an["kl_goe"][0] < 0.05 < an["kl_goe"][1]
    assert an["kl_poisson"][1] < 0.05 < an["kl_poisson"][0]
    # mean spectrum: descending and normalised; entropy of a real 64x64 random state close to Page (complex is
    # an upper bound)
    assert np.all(np.diff(an["mean_p"][0]) <= 0) and sum(an["mean_p"][0]) == pytest.approx(1.0)
    assert an["entropy"][0] < page_entropy(64, 64) and an["entropy"][0] > page_entropy(64, 64) - 0.3


# ---------------------------------------------------------------------------------------------- figures
def test_figures_are_png(tmp_path):
    from tnmat.plots.entanglement import plot_bond_sweep, plot_spectrum_dynamics

    X, y = _data()
    store = ResultStore(tmp_path / "f.sqlite")
    sweep = ex.run_bond_sweep(X, y, ex.SweepSettings(train_sizes=(12,), n_splits=2, test_size=20, chis=(1, 2),
                                                     max_epochs=2, dtype="float64", models=("mps", "dense")),
                              store=store, options=GridOptions(progress=False))
    p = plot_bond_sweep(sweep, tmp_path / "sweep.png")
    rng = np.random.default_rng(1)
    recs = [_record(c, [np.sort(np.abs(rng.standard_normal(64)))[::-1] for _ in range(3)]) for c in (4, 8)]
    for r in recs:
        r["schmidt"] = [(np.asarray(s) / np.linalg.norm(s)).tolist() for s in r["schmidt"]]
    files = plot_spectrum_dynamics(ex.analyse_dynamics(recs), tmp_path / "dyn")
    md = write_sweep_markdown(sweep, tmp_path / "sweep.md")
    assert "| mps | 12 | 1 |" in md.read_text()
    for f in [p, *files.values()]:
        data = f.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_initial_entanglement_baseline():
    """Untrained networks: chi = 1 chains are product states; the dense init is a random real state, whose
    entropy lies near (below) the Page value."""
    rows = eg.initial_entanglement(("mps", "dense"), (4,) * 5, LEGS, (1, 4), n_seeds=4)
    by = {(r["model"], r["bond_dim"]): r for r in rows}
    assert by[("mps", 1)]["S_a1a2"] == pytest.approx(0.0, abs=1e-12)
    assert 0.0 < by[("mps", 4)]["S_a1a2"] <= math.log(4) + 1e-12
    assert page_entropy(16, 64) - 0.1 < by[("dense", None)]["S_a1a2"] < page_entropy(16, 64)
