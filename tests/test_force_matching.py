"""Force-matched sweep fits: derivative rows of the local solves, exact recovery from forces, weights, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.forces import energy_forces_stress, per_atom_descriptor
from tnmat.model import StructureModel
from tnmat.networks import MPS, TTN
from tnmat.networks.dense import DenseACE
from tnmat.training import DenseACERegressor, MPORegressor, MPSRegressor, TTNRegressor
from tnmat.training.force_rows import ForceRows, descriptor_jacobian, force_rows, predict_forces
from tnmat.training.sweep import SweepConfig, sweep_fit
from tnmat.training.sweep.chain import _Env
from tnmat.training.sweep.data import SweepData, compress_rows, stack_rows
from tnmat.training.sweep.estimator import _fit_dense
from tnmat.training.sweep.tree import TreeSweeper

EXACT = dict(alphas=(0.0,), alpha_selection="fixed", svd_cutoff=1e-10, tol=1e-6)


def _cell(seed: int = 0):
    """An 8-atom Cu-Ag fcc cell, strained and rattled (forces not fixed by symmetry)."""
    a = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1))
    a.symbols[[1, 4, 6]] = "Ag"
    rng = np.random.default_rng(seed)
    a.set_cell(a.cell.array @ (np.eye(3) + 0.01 * rng.normal(size=(3, 3))), scale_atoms=True)
    a.positions += rng.normal(0, 0.1, a.positions.shape)
    return a


def _calc():
    return Invariants(AtomicDensity(species=("Cu", "Ag"), r_cut=4.0, n_max=2, l_max=1), order=2)


def _bbar(calc, atoms, pos):
    cell = torch.tensor(atoms.cell.array, dtype=torch.float64)
    return per_atom_descriptor(calc, torch.as_tensor(pos), atoms.numbers, cell, atoms.pbc).mean(0)


def test_descriptor_jacobian_equals_central_differences():
    calc, atoms = _calc(), _cell()
    jac = descriptor_jacobian(calc, atoms)
    pos, h = torch.tensor(atoms.positions), 1e-5
    for k in (0, 5, 13, 23):
        d = torch.zeros(pos.numel(), dtype=torch.float64)
        d[k] = h
        fd = (_bbar(calc, atoms, pos + d.reshape(pos.shape)) - _bbar(calc, atoms, pos - d.reshape(pos.shape))) / (2 * h)
        assert torch.allclose(jac[k], fd, atol=1e-8 * float(jac.abs().max()))


@pytest.mark.parametrize("kind", ["mps", "ttn"])
def test_force_rows_of_a_local_solve_equal_finite_differences_of_the_network_energy(kind):
    """<M, Phi'_k> of a derivative row (features of the pair contracted from dBbar/dr through the same
    environments as the energy row) is dE/dr_k of the network's output E(r) = net(Bbar(r))."""
    calc, atoms = _calc(), _cell(1)
    sizes = calc.sizes
    x = _bbar(calc, atoms, torch.tensor(atoms.positions))
    jac = descriptor_jacobian(calc, atoms)  # 24 rows <= 32 features: not compressed
    data = stack_rows(SweepData(x[None], torch.zeros(1), dx=jac, dy=torch.zeros(len(jac)))).data
    if kind == "mps":
        net = MPS(sizes, 3, dtype=torch.float64, seed=2)
        env = _Env(data, 1, list(sizes))
        env.start([c.detach() for c in net.cores], "right")
        phi = env.phi(0, "right")
        m = torch.einsum("asb,btc->astc", net.cores[0].detach(), net.cores[1].detach())
    else:
        net = TTN(sizes, 3, dtype=torch.float64, seed=2)
        sw = TreeSweeper([[w.detach() for w in layer.isometries] for layer in net.layers], sizes, [data],
                         max_bond=3, cutoff=0.0)
        with torch.enable_grad():
            phi = sw._phi(0, (0, 0))
        m = sw.merged((0, 0))
    rows = phi.reshape(phi.shape[0], -1) @ m.reshape(-1)
    pos, h = torch.tensor(atoms.positions), 1e-5
    with torch.no_grad():
        assert abs(float(rows[0] - net(x[None])[0])) < 1e-12  # the energy row is the network's output
        for k in range(len(jac)):
            d = torch.zeros(pos.numel(), dtype=torch.float64)
            d[k] = h
            e_p, e_m = (net(_bbar(calc, atoms, pos + s * d.reshape(pos.shape))[None])[0] for s in (1, -1))
            assert abs(float(rows[1 + k]) - float(e_p - e_m) / (2 * h)) < 1e-6 * max(1.0, float(rows.abs().max()))


def _planted_rows(sizes, true, n, m, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *sizes, generator=g, dtype=torch.float64)
    dx = torch.randn(m, *sizes, generator=g, dtype=torch.float64)
    with torch.no_grad():
        dy = true(dx)
        # energies that disagree with the planted model (offset 5, noise 1), weighted 1e-12: forces decide W
        y = true(x) + 5.0 + torch.randn(n, generator=g, dtype=torch.float64)
    return SweepData(x, y, weights=torch.full((n,), 1e-12, dtype=torch.float64), dx=dx, dy=dy)


@pytest.mark.parametrize("cls", [MPS, TTN, DenseACE])
def test_planted_network_recovered_from_forces_alone(cls):
    sizes = (3, 3, 3, 3)
    true = DenseACE(sizes, dtype=torch.float64, seed=1) if cls is DenseACE else cls(sizes, 2, dtype=torch.float64,
                                                                                      seed=1)
    data = _planted_rows(sizes, true, 40, 400, seed=3)  # 400 derivative rows, compressed to 81
    if cls is DenseACE:
        net = DenseACE(sizes, dtype=torch.float64, seed=7)
        _fit_dense(net, data, None, SweepConfig(**EXACT))
        got = net.weight.detach()
    else:
        net = cls(sizes, 6, dtype=torch.float64, seed=7)
        cfg = SweepConfig(max_bond_dim=6, n_sweeps=16, patience=3, **EXACT)
        got = sweep_fit(net, data, None, cfg).network.to_dense()
    want = true.weight.detach() if cls is DenseACE else true.to_dense()
    np.testing.assert_allclose(got, want, atol=1e-8)


def test_compressed_rows_keep_the_least_squares_objective_up_to_a_constant():
    g = torch.Generator().manual_seed(0)
    dx, dy = torch.randn(50, 2, 3, generator=g, dtype=torch.float64), torch.randn(50, generator=g, dtype=torch.float64)
    dw = torch.rand(50, generator=g, dtype=torch.float64) + 0.1
    cx, cy = compress_rows(dx, dy, dw)
    assert cx.shape == (6, 2, 3)

    def obj(w, x, y, wt):
        return float((wt * (y - x.reshape(len(x), -1) @ w) ** 2).sum())

    base = [obj(w, dx, dy, dw) - obj(w, cx, cy, torch.ones(6)) for w in torch.randn(4, 6, generator=g,
                                                                                      dtype=torch.float64)]
    assert max(base) - min(base) < 1e-10 * abs(base[0])


@pytest.mark.parametrize("cls", [MPS, TTN])
def test_per_structure_weights_equal_duplicated_rows(cls):
    sizes = (3, 3, 2, 3)
    g = torch.Generator().manual_seed(4)
    n, per = 30, 3  # 3 derivative rows per structure
    x = torch.randn(n, *sizes, generator=g, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    dx = torch.randn(n * per, *sizes, generator=g, dtype=torch.float64)
    dy = torch.randn(n * per, generator=g, dtype=torch.float64)
    k = torch.randint(1, 4, (n,), generator=g)
    owner = torch.arange(n).repeat_interleave(per)
    weighted = SweepData(x, y, weights=k.double(), dx=dx, dy=dy, dweights=k[owner].double())
    rep = torch.arange(n).repeat_interleave(k)
    drep = torch.cat([torch.arange(s * per, (s + 1) * per) for s in rep.tolist()])
    duplicated = SweepData(x[rep], y[rep], dx=dx[drep], dy=dy[drep])
    cfg = SweepConfig(max_bond_dim=4, n_sweeps=3, alphas=(0.3,), alpha_selection="fixed", refine_solves=2)
    preds = []
    for d in (weighted, duplicated):
        res = sweep_fit(cls(sizes, 4, dtype=torch.float64, seed=5), d, None, cfg)
        with torch.no_grad():
            preds.append(torch.cat([res.network(x) + res.intercept, res.network(dx)]))
    assert float((preds[0] - preds[1]).abs().max()) < 1e-8


def _synthetic_force_rows(n, sizes, seed=0, n_atoms=2):
    g = torch.Generator().manual_seed(seed)
    jac = [torch.randn(3 * n_atoms, *sizes, generator=g, dtype=torch.float64) for _ in range(n)]
    forces = [np.random.default_rng(seed + s).normal(size=(n_atoms, 3)) for s in range(n)]
    return ForceRows(jac, forces)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "1"])
def test_bad_force_weights_are_refused_before_work(bad):
    x = np.random.default_rng(0).normal(size=(10, 2, 3))
    with pytest.raises(ValueError, match="force_weight") as err:
        TTNRegressor(force_weight=bad).fit(x, np.arange(10.0), forces=_synthetic_force_rows(10, (2, 3)))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("what", ["weights", "dweights"])
@pytest.mark.parametrize("bad", [-1.0, float("nan"), 0.0])
def test_bad_row_weights_are_refused(what, bad):
    x, dx = torch.randn(4, 2, 3, dtype=torch.float64), torch.randn(6, 2, 3, dtype=torch.float64)
    w = torch.ones(4 if what == "weights" else 6, dtype=torch.float64)
    w[1] = bad
    with pytest.raises(ValueError, match=f"{what} must be") as err:
        SweepData(x, torch.zeros(4), dx=dx, dy=torch.zeros(6), **{what: w})
    assert "\n" not in str(err.value)


def test_forces_of_the_wrong_shape_are_refused_before_work():
    calc, atoms = _calc(), _cell()
    with pytest.raises(ValueError, match=r"structure 0: forces of shape \(7, 3\), expected \(8, 3\)"):
        force_rows(calc, [atoms], [np.zeros((7, 3))])
    with pytest.raises(ValueError, match="structure 1: forces of shape"):
        ForceRows([torch.zeros(6, 2, 3), torch.zeros(6, 2, 3)], [np.zeros((2, 3)), np.zeros((3, 3))])
    x = np.random.default_rng(0).normal(size=(10, 2, 3))
    for est, msg in ((MPSRegressor(), "forces holds 9 structures, the inputs 10"),
                     (MPSRegressor(solver="adam"), "sweep-fitted MPS, TTN and dense"),
                     (MPORegressor(), "sweep-fitted MPS, TTN and dense")):
        rows = _synthetic_force_rows(9 if "9" in msg else 10, (2, 3))
        with pytest.raises(ValueError, match=msg) as err:
            est.fit(x, np.arange(10.0), forces=rows)
        assert "\n" not in str(err.value) and not hasattr(est, "network_")
    with pytest.raises(ValueError, match="features"):
        MPSRegressor().fit(x, np.arange(10.0), forces=_synthetic_force_rows(10, (2, 2)))


@pytest.mark.parametrize("cls", [DenseACERegressor, MPSRegressor, TTNRegressor])
def test_force_matched_estimator_forces_are_the_calculator_forces(cls):
    """The fitted model's forces from its Jacobian rows equal -dE/dr of the saved energy model by autograd
    (tnmat.forces, what TNMatCalculator uses), and force matching lowers the training force error."""
    calc = _calc()
    cells = [_cell(s) for s in range(12)]
    emt = [c.copy() for c in cells]
    from ase.calculators.emt import EMT

    for c in emt:
        c.calc = EMT()
    forces = [c.get_forces() for c in emt]
    y = np.array([c.get_potential_energy() / len(c) for c in emt])
    X = calc.compute(cells, average=True)
    rows = force_rows(calc, cells, forces)
    kw = {} if cls is DenseACERegressor else {"bond_dim": 4}
    errs = {}
    for fw in (0.0, 1.0):
        est = cls(force_weight=fw, dtype="float64", **kw).fit(X, y, forces=rows)
        assert est.loss_ == ("squared_error" if fw > 0 else "huber")  # what loss="auto" means with force rows
        mine = predict_forces(est, rows)
        auto = energy_forces_stress(StructureModel(calc, est, units="eV/atom"), cells, stress=False).forces
        assert max(float(np.abs(a - b).max()) for a, b in zip(mine, auto, strict=True)) < 1e-10
        errs[fw] = np.sqrt(np.mean(np.concatenate([(a - b).ravel() for a, b in zip(mine, forces, strict=True)]) ** 2))
    assert errs[1.0] < errs[0.0]


@pytest.mark.parametrize("with_forces", [False, True])
def test_estimator_structure_weights_equal_duplicated_structures(with_forces):
    """Without rescaling and at one ridge strength, weight k = the structure (its energy and force rows) k
    times."""
    rng = np.random.default_rng(3)
    n, sizes = 24, (2, 3)
    x, y = rng.normal(size=(n, *sizes)), rng.normal(size=n)
    rows = _synthetic_force_rows(n, sizes, seed=4)
    k = rng.integers(1, 4, n)
    rep = np.repeat(np.arange(n), k)
    kw = dict(alphas=[0.5], validation_fraction=0.0, standardize_inputs=False, standardize_target=False,
              loss="squared_error", dtype="float64", force_weight=2.0)
    forces = (rows, rows.subset(rep)) if with_forces else (None, None)
    a = DenseACERegressor(**kw).fit(x, y, forces=forces[0], structure_weight=k)
    b = DenseACERegressor(**kw).fit(x[rep], y[rep], forces=forces[1])
    np.testing.assert_allclose(a.predict(x), b.predict(x), atol=1e-10)
    if with_forces:  # sigma_F is the weighted RMS force
        assert abs(a.force_scale_ - b.force_scale_) < 1e-12


@pytest.mark.parametrize("bad", [[-1.0], [float("nan")], [1.0] * 3])
def test_bad_structure_weights_are_refused_before_work(bad):
    x = np.random.default_rng(0).normal(size=(10, 2, 3))
    w = np.ones(3) if len(bad) == 3 else np.r_[bad, np.ones(9)]
    est = DenseACERegressor()
    with pytest.raises(ValueError, match="structure_weight must be 10 finite numbers > 0") as err:
        est.fit(x, np.arange(10.0), structure_weight=w)
    assert "\n" not in str(err.value) and not hasattr(est, "network_")
    with pytest.raises(ValueError, match="structure_weight applies to solver='sweep'"):
        MPSRegressor(solver="adam").fit(x, np.arange(10.0), structure_weight=np.ones(10))
