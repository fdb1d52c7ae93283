"""Equivariant networks and estimators (paper App. C, Fig. 26): outputs rotate as their irreps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

from conftest import random_rotation
from tnmat.descriptors import AtomicDensity
from tnmat.equivariant.estimator import EquivariantRegressor
from tnmat.equivariant.model import EquivariantModel
from tnmat.equivariant.networks import EquivariantMPO, EquivariantMPS
from tnmat.so3 import real_wigner_D

DENS = AtomicDensity(species=("Al", "Cu"), r_cut=4.0, n_max=2, l_max=2)


def _crystal(seed: int, n: int = 6) -> Atoms:
    rng = np.random.default_rng(seed)
    base = Atoms("Al2Cu2", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
                 cell=np.eye(3) * 3.9, pbc=True).repeat((2, 1, 1))[:n]
    base.set_cell(base.cell.array @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))), scale_atoms=True)
    base.positions += rng.normal(0, 0.12, base.positions.shape)
    return base


def _rotated(atoms: Atoms, R: np.ndarray) -> Atoms:
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ R.T, scale_atoms=False)
    out.positions = atoms.positions @ R.T
    return out


def test_networks_commute_with_D():
    """y(B D^T) = y(B) D^T for any orthogonal D acting on the M edge (the weights never touch M)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, 3, 2, 5, generator=g, dtype=torch.float64)
    x_inv = torch.randn(4, 2, 3, generator=g, dtype=torch.float64)
    d = torch.as_tensor(real_wigner_D(2, random_rotation(0)))
    mps = EquivariantMPS((2, 3, 2), 5, 3, seed=0)
    assert torch.allclose(mps(x @ d.T), mps(x) @ d.T, atol=1e-12, rtol=0)
    mpo = EquivariantMPO((2, 3), (2, 3, 2), 5, 3, seed=0)
    y = mpo(mpo.pack(x_inv, x))
    assert torch.allclose(mpo(mpo.pack(x_inv, x @ d.T)), y @ d.T, atol=1e-12, rtol=0)
    t = mpo.to_dense()  # independent contraction
    ref = torch.einsum("bp,pq,bqm->bm", x_inv.reshape(4, -1), t, x.reshape(4, -1, 5))
    assert torch.allclose(y, ref, atol=1e-12, rtol=0)


@pytest.fixture(scope="module")
def frames():
    return [_crystal(s) for s in range(8)]


def _fake_forces(frames):
    # a smooth equivariant toy field (sum of pair vectors weighted by distance) as training target
    out = []
    for a in frames:
        d = a.get_all_distances(mic=True, vector=True)  # (N, N, 3)
        r = np.linalg.norm(d, axis=-1) + np.eye(len(a))
        out.append((d * np.exp(-r)[..., None]).sum(1))
    return out


KINDS = ["linear", "mps", "mps-adam", "mpo"]  # mps: the default ALS sweep


def _reg(kind: str, **kw) -> EquivariantRegressor:
    return EquivariantRegressor(model=kind.split("-")[0], solver="adam" if kind.endswith("adam") else None,
                                bond_dim=3, max_epochs=5, random_state=0, **kw)


@pytest.mark.parametrize("kind", KINDS)
def test_forces_rotate_permute_supercell(frames, kind):
    model = EquivariantModel.build(DENS, target="forces", order=2, regressor=_reg(kind))
    model.fit(frames, _fake_forces(frames))
    atoms = frames[0]
    f = model.predict([atoms])[0]
    assert np.abs(f).max() > 1e-6
    for seed in range(3):
        R = random_rotation(seed)
        fr = model.predict([_rotated(atoms, R)])[0]
        assert np.abs(fr - f @ R.T).max() < 1e-10 * np.abs(f).max()
    perm = np.random.default_rng(0).permutation(len(atoms))
    assert np.abs(model.predict([atoms[perm]])[0] - f[perm]).max() < 1e-10 * np.abs(f).max()
    sup = model.predict([atoms.repeat((1, 2, 1))])[0]
    assert np.abs(sup - np.tile(f, (2, 1))).max() < 1e-10 * np.abs(f).max()


@pytest.mark.parametrize("kind", KINDS)
def test_stress_rotates_and_round_trips(frames, kind, tmp_path):
    model = EquivariantModel.build(DENS, target="stress", order=2, regressor=_reg(kind, validation_fraction=0.0))
    rng = np.random.default_rng(1)
    a = rng.normal(size=(len(frames), 3, 3))
    model.fit(frames, a + a.transpose(0, 2, 1))
    atoms = frames[1]
    s = model.predict([atoms])[0]
    assert np.allclose(s, s.T) and np.abs(s).max() > 1e-6
    for seed in range(3):
        R = random_rotation(seed + 10)
        sr = model.predict([_rotated(atoms, R)])[0]
        assert np.abs(sr - R @ s @ R.T).max() < 1e-10 * np.abs(s).max()
    perm = np.random.default_rng(2).permutation(len(atoms))
    assert np.abs(model.predict([atoms[perm]])[0] - s).max() < 1e-10 * np.abs(s).max()
    assert np.abs(model.predict([atoms.repeat((2, 1, 1))])[0] - s).max() < 1e-10 * np.abs(s).max()
    back = EquivariantModel.load(model.save(tmp_path / "m.pt"))
    assert np.abs(back.predict([atoms])[0] - s).max() < 1e-12 * np.abs(s).max()


def test_linear_recovers_planted_weights():
    """Closed-form ridge recovers y_M = sum_s w_s B[s, M] exactly (alpha -> 0)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2, 3, 3))
    w = rng.normal(size=(2, 3))
    y = np.einsum("rabm,ab->rm", x, w)
    est = EquivariantRegressor(model="linear", alpha=0.0).fit(x, y)
    # weights in input units: coef (scaled units) * target scale / per-channel input scale
    w_fit = est.coef_.numpy().reshape(2, 3) * est.y_scale_ / est.eq_scale_[..., 0].numpy()
    assert np.abs(w_fit - w).max() < 1e-10
    assert np.abs(est.predict(x) - y).max() < 1e-10


def test_errors():
    x = np.zeros((5, 2, 3))
    with pytest.raises(ValueError, match=r"y has shape \(5, 2\), expected \(5, 3\)"):
        EquivariantRegressor(model="linear").fit(x, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="needs X_inv"):
        EquivariantRegressor(model="mpo").fit(x, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="solver='sweep' is invalid"):
        EquivariantRegressor(model="mpo", solver="sweep").fit(x, np.zeros((5, 3)), X_inv=np.zeros((5, 2)))
    with pytest.raises(ValueError, match="model='ttn' is invalid"):
        EquivariantRegressor(model="ttn").fit(x, np.zeros((5, 3)))
    bad = x.copy()
    bad[2, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in rows \[2\]"):
        EquivariantRegressor(model="linear").fit(bad, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="target must be one of"):
        EquivariantModel.build(DENS, target="dipole")


def test_mps_sweep_solver_recovers_planted_mps():
    """solver='sweep' (ALS of MPSRegressor on the stacked (row, M) problem) fits a planted equivariant MPS."""
    g = torch.Generator().manual_seed(3)
    planted = EquivariantMPS((3, 3, 3), 3, 2, seed=5)
    x = torch.randn(200, 3, 3, 3, 3, generator=g, dtype=torch.float64)
    with torch.no_grad():
        y = planted(x).numpy()
    est = EquivariantRegressor(model="mps", solver="sweep", bond_dim=3, validation_fraction=0.0,
                               random_state=0).fit(x.numpy(), y)
    # the sweep's ridge scan keeps a small penalty (lambda ~ 1e-3 on 600 rows): recovery to ~1e-6
    assert np.abs(est.predict(x.numpy()) - y).max() < 1e-5 * np.abs(y).max()
    d = torch.as_tensor(real_wigner_D(1, random_rotation(4)))
    rot = est.predict((x @ d.T).numpy())
    assert np.abs(rot - est.predict(x.numpy()) @ d.numpy().T).max() < 1e-10 * np.abs(y).max()
    back = EquivariantRegressor.from_state(est.state())
    assert np.abs(back.predict(x.numpy()) - est.predict(x.numpy())).max() < 1e-12
