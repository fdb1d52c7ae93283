"""The factorised bispectrum input of the sweeping fitter: exact against the repository's dense
bispectrum (Invariants(order=3)), design rows, sweeps, planted low-rank recovery, rotation invariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from scipy.spatial.transform import Rotation

from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.threads import limit_threads
from tnmat.training import load_estimator
from tnmat.training.estimators import MPSRegressor, TTNRegressor
from tnmat.training.sweep import SweepConfig, sweep_fit
from tnmat.training.sweep.bispectrum import BispectrumInput, slot_legs
from tnmat.training.sweep.bispectrum_fit import BispectrumSweepData, absorb_factors, leg_factors
from tnmat.training.sweep.data import SweepData

DENSITY = {1: AtomicDensity(species=("Al", "O"), r_cut=3.5, n_max=2, l_max=1, backend="torch"),
           2: AtomicDensity(species=("Al", "O"), r_cut=3.5, n_max=2, l_max=2, backend="torch")}


@pytest.fixture(autouse=True)
def _one_thread():
    """Small batched contractions and eigensolves: one thread (several oversubscribe a shared machine)."""
    with limit_threads(1):
        yield


def _frames(n: int, seed: int = 0) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(2, 5))
        out.append(Atoms(symbols=list(rng.choice(["Al", "O"], k)), positions=rng.uniform(0, 4.2, (k, 3)),
                         cell=np.eye(3) * 4.2, pbc=True))
    return out


def _dense_reference(frames: list[Atoms], l_max: int, centre: bool) -> torch.Tensor:
    """The repository's bispectrum (compiled path), legs permuted by name into slot order."""
    x = Invariants(DENSITY[l_max], order=3, center_species=centre).compute(frames, progress=False)
    order = [x.legs.index(leg) + 1 for leg in slot_legs(centre)]
    return x.values.permute(0, *order)


def _random_cores(sizes: tuple[int, ...], chi: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    bonds = [1] + [chi] * (len(sizes) - 1) + [1]
    return [torch.randn(bonds[i], d, bonds[i + 1], generator=g, dtype=torch.float64) for i, d in enumerate(sizes)]


def _weight(cores: list[torch.Tensor]) -> torch.Tensor:
    w = cores[0]
    for c in cores[1:]:
        w = torch.einsum("a...b,bsc->a...sc", w, c)
    return w[0, ..., 0]


@pytest.mark.parametrize("centre", [False, True])
@pytest.mark.parametrize("l_max", [1, 2])
def test_factorised_contraction_equals_dense_bispectrum(centre, l_max):
    frames = _frames(6)
    inp = BispectrumInput.from_structures(frames, DENSITY[l_max], center_species=centre)
    ref = _dense_reference(frames, l_max, centre)
    assert inp.sizes == tuple(ref.shape[1:])
    scale = float(ref.abs().max())
    assert float((inp.dense() - ref).abs().max()) < 1e-12 * scale
    cores = _random_cores(inp.sizes, 3, seed=l_max)
    want = (ref * _weight(cores)).flatten(1).sum(1)
    got = inp.contract(cores)
    assert float((got - want).abs().max()) < 1e-10 * float(want.abs().max())


@pytest.mark.parametrize("centre", [False, True])
def test_local_features_equal_the_dense_design_rows(centre):
    frames = _frames(5, seed=1)
    inp = BispectrumInput.from_structures(frames, DENSITY[2], center_species=centre)
    ref = _dense_reference(frames, 2, centre)
    cores = _random_cores(inp.sizes, 3, seed=5)
    n = len(cores)
    for k in range(n - 1):
        left = torch.ones(1, dtype=torch.float64)
        for c in cores[:k]:  # (d_0 .. d_{k-1}, chi)
            left = torch.tensordot(left, c, dims=([left.ndim - 1], [0]))
        right = torch.ones(1, dtype=torch.float64)
        for c in reversed(cores[k + 2:]):  # (chi, d_{k+2} .. d_{N-1})
            right = torch.tensordot(c, right, dims=([2], [0]))
        nl, nr = k, n - k - 2
        x = ref.reshape(ref.shape[0], -1, *ref.shape[1 + k: 3 + k], right[..., 0].numel() if nr else 1)
        want = torch.einsum("zLstR,La,cR->zastc", x, left.reshape(-1, left.shape[-1]),
                            right.reshape(right.shape[0], -1))
        got = inp.local_features(cores, k)
        assert got.shape == want.shape, (k, nl)
        assert float((got - want).abs().max()) < 1e-10 * float(want.abs().max()), k


@pytest.mark.parametrize("loss", ["squared_error", "huber"])
def test_sweep_on_factorised_bispectrum_equals_sweep_on_dense_rows(loss):
    frames = _frames(40, seed=2)
    inp = BispectrumInput.from_structures(frames, DENSITY[1], center_species=True)
    y = torch.as_tensor(np.random.default_rng(3).standard_t(2, size=40))  # heavy tails: Huber weights act
    cfg = SweepConfig(max_bond_dim=3, n_sweeps=3, alpha_selection="gcv", refit=False, loss=loss, huber_delta=0.3)
    fits = []
    for data in (BispectrumSweepData(inp, y), SweepData(x=inp.dense(), y=y)):
        from tnmat.networks import MPS

        net = MPS(inp.sizes, 3, dtype=torch.float64, seed=0)
        fits.append(sweep_fit(net, data, None, cfg))
    (a, b) = fits
    assert a.history["selection"]["lambdas"] == b.history["selection"]["lambdas"]
    pa, pb = inp.contract(list(a.network.cores)), inp.contract(list(b.network.cores))
    assert float((pa - pb).abs().max()) < 1e-10 * float(pb.abs().max())
    assert abs(a.intercept - b.intercept) < 1e-10


def test_planted_low_rank_model_is_recovered():
    """A bond-2 MPS on B3 (l_max 1: 64 independent invariants) generates the targets; the sweep fit (cap 8:
    the minimum-norm member of the planted model's class of equal predictions has larger bonds) predicts
    held-out structures exactly."""
    frames = _frames(200, seed=4)
    inp = BispectrumInput.from_structures(frames, DENSITY[1], center_species=False)
    planted = _random_cores(inp.sizes, 2, seed=11)
    y = inp.contract(planted).numpy() + 0.3
    train, test = np.arange(150), np.arange(150, 200)
    est = MPSRegressor(solver="sweep", bond_dim=8, n_sweeps=6, alphas=[1e-10], validation_fraction=0.0,
                       dtype="float64", random_state=0).fit(inp.select(train), y[train])
    pred = est.predict(inp.select(test))
    assert np.abs(pred - y[test]).max() < 1e-6 * np.abs(y[test]).max()


def test_merged_members_with_the_evidence_recover_a_planted_model():
    """n_members=3 with evidence-chosen strengths and nothing held out, on the factorised input: the merged
    MPS has at most the summed bonds (rounded), acts on the dense bispectrum like on the factorised one, and
    still predicts held-out structures of a planted bond-2 model exactly (each member does, so their mean does)."""
    frames = _frames(200, seed=4)
    inp = BispectrumInput.from_structures(frames, DENSITY[1], center_species=False)
    y = inp.contract(_random_cores(inp.sizes, 2, seed=11)).numpy() + 0.3
    train, test = np.arange(150), np.arange(150, 200)
    est = MPSRegressor(solver="sweep", bond_dim=8, n_sweeps=6, alphas=[1e-10, 1e-6, 1e-2], dtype="float64",
                       validation_fraction=0.0, alpha_selection="evidence", n_members=3,
                       random_state=0).fit(inp.select(train), y[train])
    members = est.history_["member_bond_dims"]
    assert len(members) == 3
    assert all(b <= sum(m) for b, m in zip(est.bond_dims_, zip(*members, strict=True), strict=True))
    pred = est.predict(inp.select(test))
    assert np.abs(pred - y[test]).max() < 1e-6 * np.abs(y[test]).max()
    x = Invariants(DENSITY[1], order=3).compute([frames[i] for i in test], progress=False)
    np.testing.assert_allclose(est.predict(x), pred, rtol=0, atol=1e-10 * np.abs(pred).max())


def test_prediction_is_rotation_invariant_and_equals_the_dense_network(tmp_path):
    frames = _frames(60, seed=6)
    y = np.random.default_rng(7).normal(size=60)
    inp = BispectrumInput.from_structures(frames, DENSITY[2], center_species=True)
    est = MPSRegressor(solver="sweep", bond_dim=3, n_sweeps=2, dtype="float64", random_state=0).fit(inp, y)
    assert tuple(est.legs_) == slot_legs(True) and max(est.bond_dims_) <= 3
    pred = est.predict(inp)
    # the fitted network is a standard MPS on the repository's (dense) bispectrum legs
    x = Invariants(DENSITY[2], order=3, center_species=True).compute(frames, progress=False)
    np.testing.assert_allclose(est.predict(x), pred, rtol=0, atol=1e-10 * np.abs(pred).max())
    rot = Rotation.random(random_state=8).as_matrix()
    turned = []
    for f in frames:
        g = f.copy()
        g.set_cell(f.cell.array @ rot.T, scale_atoms=False)
        g.positions = f.positions @ rot.T
        turned.append(g)
    moved = est.predict(BispectrumInput.from_structures(turned, DENSITY[2], center_species=True))
    np.testing.assert_allclose(moved, pred, rtol=0, atol=1e-10 * np.abs(pred).max())
    back = load_estimator(est.save(tmp_path / "b3.tnmat"))
    np.testing.assert_allclose(back.predict(inp), pred, rtol=0, atol=1e-12 * np.abs(pred).max())


def test_leg_factors_are_absorbed_exactly():
    inp = BispectrumInput.from_structures(_frames(8, seed=9), DENSITY[2], center_species=True)
    f = leg_factors(inp)
    cores = _random_cores(inp.sizes, 2, seed=1)
    scaled = inp.scaled(f).contract(cores)
    np.testing.assert_allclose(inp.contract(absorb_factors(cores, f, True)).numpy(), scaled.numpy(), rtol=1e-12)


def test_bispectrum_input_errors():
    inp = BispectrumInput.from_structures(_frames(4), DENSITY[1])
    with pytest.raises(ValueError, match="MPS only"):
        TTNRegressor(solver="sweep").fit(inp, np.zeros(4))
    with pytest.raises(ValueError, match="MPS only"):
        MPSRegressor(solver="adam").fit(inp, np.zeros(4))
    with pytest.raises(ValueError, match="4 structures"):
        MPSRegressor(solver="sweep").fit(inp, np.zeros(3))
    with pytest.raises(ValueError, match="groups"):
        BispectrumInput(inp.a, inp.species, inp.groups.flip(0), 4)


def test_float32_contractions_agree_with_float64():
    frames = _frames(10, seed=12)
    x64 = BispectrumInput.from_structures(frames, DENSITY[2], center_species=True)
    x32 = BispectrumInput.from_structures(frames, DENSITY[2], center_species=True, precision="float32")
    cores = _random_cores(x64.sizes, 3, seed=2)
    want = x64.contract(cores)
    assert x32.contract(cores).dtype == torch.float64
    assert float((x32.contract(cores) - want).abs().max()) < 1e-5 * float(want.abs().max())
    phi = x64.local_features(cores, 4)
    assert float((x32.local_features(cores, 4) - phi).abs().max()) < 1e-5 * float(phi.abs().max())
    np.testing.assert_allclose(leg_factors(x32)[2].numpy(), leg_factors(x64)[2].numpy(), rtol=1e-5)
