"""Estimators and the training loop: learnability of exactly representable targets, local (per-atom)
models, early stopping with best-weights restore, reproducibility, persistence, callbacks, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone

from tnmat import LegTensor
from tnmat.networks import count_parameters
from tnmat.training import (
    MODEL_KINDS,
    DenseACERegressor,
    DNNRegressor,
    FeatureMapMPSRegressor,
    MPORegressor,
    MPSRegressor,
    NetworkRegressor,
    SnapshotCallback,
    TensorNetworkRegressor,
    TrainingDivergedError,
    load_estimator,
)

FAST = dict(dtype="float64", random_state=0, learning_rate=1e-2, batch_size=32)


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny problems: thread start-up and contention on a shared machine cost more than they gain
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def rank1_problem(n: int = 240, sizes=(3, 3, 3), seed: int = 0):
    """y = <W, x> with W = a (x) b (x) c: an MPS of bond dimension 1 represents it exactly."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, *sizes))
    vecs = [rng.normal(size=s) for s in sizes]
    W = np.einsum("i,j,k->ijk", *vecs)
    return X, np.einsum("nijk,ijk->n", X, W) + 0.3


def per_atom_problem(n_struct: int = 150, sizes=(2, 3), seed: int = 1):
    """Per-atom descriptors (shuffled rows, 1..6 atoms per structure) and a rank-1 weight tensor."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 7, size=n_struct)
    sidx = np.repeat(np.arange(n_struct), counts)
    perm = rng.permutation(len(sidx))
    sidx = sidx[perm]
    x = rng.normal(size=(len(sidx), *sizes))
    a, b = (rng.normal(size=s) for s in sizes)
    w = np.einsum("i,j->ij", a, b)
    X = LegTensor(torch.from_numpy(x), ("n", "l"), structure_index=torch.from_numpy(sidx))
    return X, x, sidx, w


def structure_mean(values: np.ndarray, sidx: np.ndarray) -> np.ndarray:
    n = sidx.max() + 1
    out = np.zeros(n)
    np.add.at(out, sidx, values)
    return out / np.bincount(sidx, minlength=n)


# ---------------------------------------------------------------------------------------------- learning
def test_mps_learns_exactly_representable_multilinear_target():
    X, y = rank1_problem()
    est = MPSRegressor(solver="adam", bond_dim=2, max_epochs=60, standardize_inputs=False, patience=None,
                       **{**FAST, "learning_rate": 3e-2})
    est.fit(X[:200], y[:200])
    mse = np.mean((est.predict(X[200:]) - y[200:]) ** 2)
    assert mse < 1e-3 * np.var(y), (mse, np.var(y))
    assert est.n_parameters_ == 3 * 2 + 2 * 3 * 2 + 2 * 3  # chi (d1 + dN) + chi^2 d2
    assert est.leg_sizes_ == (3, 3, 3) and len(est.history_["train_loss"]) == est.n_epochs_


def test_dense_ace_is_linear_regression_on_the_tensor():
    X, y = rank1_problem(seed=3)
    est = DenseACERegressor(solver="adam", max_epochs=80, patience=None, **FAST).fit(X[:200], y[:200])
    assert est.n_parameters_ == 27
    mse = np.mean((est.predict(X[200:]) - y[200:]) ** 2)
    assert mse < 1e-3 * np.var(y)


def test_local_model_is_mean_of_per_atom_outputs_and_learns_linear_target():
    X, x, sidx, w = per_atom_problem()
    y = structure_mean(np.einsum("nij,ij->n", x, w), sidx) - 1.0
    est = DenseACERegressor(solver="adam", max_epochs=80, patience=None, **FAST).fit(X, y)
    assert est.per_atom_
    assert est.score(X, y) > 0.999
    # aggregation: predictions are the mean over each structure's atoms of the per-atom network output
    z = (torch.from_numpy(x) - est.x_mean_) / est.x_std_
    with torch.no_grad():
        atom_out = est.network_(z).numpy() * est.y_std_ + est.y_mean_ + est.intercept_
    np.testing.assert_allclose(est.predict(X), structure_mean(atom_out, sidx), rtol=1e-10, atol=1e-12)
    # a structure-level LegTensor is refused (the model is local)
    with pytest.raises(ValueError, match="per-atom"):
        est.predict(X.structure_mean())


def test_local_mpo_learns_mean_of_per_atom_quadratic_which_averaged_descriptor_cannot():
    # y = mean_i <a (x) b, x_i>^2 is an MPO of bond 1 per atom, but not a function of mean_i x_i
    X, x, sidx, w = per_atom_problem(n_struct=200, seed=2)
    y = structure_mean(np.einsum("nij,ij->n", x, w) ** 2, sidx)
    kw = dict(bond_dim=2, max_epochs=60, patience=None, standardize_inputs=False, validation_fraction=0.0, **FAST)
    local = MPORegressor(solver="adam", **kw).fit(X, y)
    averaged = MPORegressor(solver="adam", **kw).fit(X.structure_mean(), y)
    assert local.score(X, y) > 0.99
    assert averaged.score(X.structure_mean(), y) < 0.9


def test_mpo_input_offset_supplies_the_linear_term():
    """On centred inputs y = <z|T|z> has no linear part, so a linear target is out of reach (for Gaussian z
    no quadratic form correlates with it).  With input_offset c the MPO sees z + c 1 and y = z^T S z +
    2c (S 1).z + const (S the symmetric part of T): a linear term, tied to a quadratic one, so a linear
    target is approached (not exactly reached: S = 0 would remove both)."""
    X, y = rank1_problem(n=300, sizes=(2, 2, 2), seed=5)
    kw = dict(bond_dim=4, max_epochs=300, patience=None, validation_fraction=0.0, **FAST)
    centred = MPORegressor(solver="adam", **kw).fit(X, y)
    shifted = MPORegressor(solver="adam", input_offset=1.0, **kw).fit(X, y)
    assert centred.score(X, y) < 0.3
    assert shifted.score(X, y) > 0.85
    # the network sees z + c: the stored offset is mean - c * std
    z = (torch.from_numpy(X) - shifted.x_mean_) / shifted.x_std_
    zc = (torch.from_numpy(X) - torch.from_numpy(X).mean(0)) / torch.from_numpy(X).std(0, unbiased=False)
    torch.testing.assert_close(z, zc + 1.0)
    assert clone(shifted).get_params()["input_offset"] == 1.0
    for bad in (float("nan"), "1", True):
        with pytest.raises(ValueError, match="input_offset"):
            MPORegressor(solver="adam", input_offset=bad, max_epochs=1).fit(X, y)


def test_feature_map_mps_minmax_scaling_and_fit():
    X, y = rank1_problem(n=160, sizes=(2, 2, 2), seed=4)
    est = FeatureMapMPSRegressor(solver="adam", bond_dim=4, max_epochs=30, validation_fraction=0.0, **FAST).fit(X, y)
    # min-max scaling maps the training inputs onto [0, 1] per feature
    z = (torch.from_numpy(X).reshape(len(X), -1) - est.x_mean_.reshape(-1)) / est.x_std_.reshape(-1)
    assert float(z.min()) == pytest.approx(0.0, abs=1e-12) and float(z.max()) == pytest.approx(1.0, abs=1e-12)
    assert est.network_.n_features == 8
    assert est.score(X, y) > 0.5


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_model_kind_trains_locally_and_round_trips(kind, tmp_path):
    Xa, x, sidx, w = per_atom_problem(n_struct=40)
    y = structure_mean(np.einsum("nij,ij->n", x, w), sidx)
    est = TensorNetworkRegressor(solver="adam", model=kind, bond_dim=3, max_epochs=3, **FAST).fit(Xa, y)
    # the estimator's count agrees with the networks' closed form (bond ignored by "dense")
    assert est.n_parameters_ == count_parameters(kind, (2, 3), None if kind == "dense" else 3)
    pred = est.predict(Xa)
    assert pred.shape == (40,) and np.all(np.isfinite(pred))
    back = TensorNetworkRegressor.load(est.save(tmp_path / "m.tnmat"))
    np.testing.assert_array_equal(back.predict(Xa), pred)


# ---------------------------------------------------------------------------------------------- training loop
def test_early_stopping_restores_best_weights():
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(60, 6)), rng.normal(size=60)  # pure noise: validation loss must rise again
    Xv, yv = rng.normal(size=(30, 6)), rng.normal(size=30)
    est = DNNRegressor(hidden_layer_sizes=(64, 64), max_epochs=300, patience=5, **FAST)
    est.fit(X, y, X_val=Xv, y_val=yv)
    vl = est.history_["val_loss"]
    assert est.stopped_early_ and est.n_epochs_ - 1 - est.best_epoch_ == 5
    assert est.best_epoch_ == int(np.argmin(vl))
    np.testing.assert_allclose(np.mean((est.predict(Xv) - yv) ** 2), vl[est.best_epoch_], rtol=1e-10)
    assert vl[-1] > vl[est.best_epoch_]  # the restored weights are not the last ones


def test_validation_split_from_fraction_is_held_out():
    X, y = rank1_problem(n=100)
    est = MPSRegressor(solver="adam", bond_dim=2, max_epochs=3, validation_fraction=0.25, **FAST).fit(X, y)
    assert len(est.history_["val_loss"]) == est.n_epochs_ == 3
    # scaling statistics come from the 75 training structures only
    assert not torch.allclose(est.x_mean_, torch.from_numpy(X.mean(0)))


def test_reproducible_with_random_state():
    X, y = rank1_problem(n=120)
    kw = dict(bond_dim=3, max_epochs=5, **{**FAST, "random_state": 7})
    p1 = MPSRegressor(solver="adam", **kw).fit(X, y).predict(X)
    p2 = MPSRegressor(solver="adam", **kw).fit(X, y).predict(X)
    p3 = MPSRegressor(solver="adam", **{**kw, "random_state": 8}).fit(X, y).predict(X)
    np.testing.assert_array_equal(p1, p2)
    assert not np.allclose(p1, p3)
    d1 = DNNRegressor(hidden_layer_sizes=(16,), dropout=0.3, max_epochs=3, **FAST).fit(X, y).predict(X)
    d2 = DNNRegressor(hidden_layer_sizes=(16,), dropout=0.3, max_epochs=3, **FAST).fit(X, y).predict(X)
    np.testing.assert_array_equal(d1, d2)


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_lr_schedules_decrease_the_rate(schedule):
    X, y = rank1_problem(n=80)
    est = MPSRegressor(solver="adam", bond_dim=2, max_epochs=40, patience=None, lr_schedule=schedule, **FAST).fit(X, y)
    lr = np.array(est.history_["lr"])
    assert lr[0] == pytest.approx(1e-2) and np.all(np.diff(lr) <= 1e-15)
    if schedule == "cosine":
        np.testing.assert_allclose(lr, 1e-4 + (1e-2 - 1e-4) * (1 + np.cos(np.pi * np.arange(40) / 40)) / 2)


def test_callbacks_see_increasing_steps_and_snapshots():
    X, y = rank1_problem(n=100)
    seen_steps: list[tuple[str, int, int]] = []

    class Recorder:
        every_step = True

        def __call__(self, est, epoch, step, logs):
            seen_steps.append((logs["event"], epoch, step))

    epoch_calls: list[tuple[int, int]] = []
    snap = SnapshotCallback([0, 3, 10], lambda net: torch.cat([p.reshape(-1) for p in net.parameters()]).clone())
    est = MPSRegressor(solver="adam", bond_dim=2, max_epochs=4, validation_fraction=0.0, batch_size=25,
                       callbacks=[Recorder(), lambda e, ep, st, logs: epoch_calls.append((ep, st)), snap],
                       **{k: v for k, v in FAST.items() if k != "batch_size"}).fit(X, y)
    steps = [s for ev, _, s in seen_steps if ev in ("start", "step")]
    assert steps == list(range(0, 4 * 4 + 1)) == list(range(est.n_steps_ + 1))
    assert epoch_calls == [(e, 4 * (e + 1)) for e in range(4)]
    assert sorted(snap.snapshots) == [0, 3, 10] and snap.epochs == {0: 0, 3: 0, 10: 2}
    assert not torch.equal(snap.snapshots[0], snap.snapshots[10])


def test_callback_returning_true_stops_training():
    X, y = rank1_problem(n=60)
    est = MPSRegressor(solver="adam", bond_dim=2, max_epochs=50, callbacks=[lambda e, ep, st, logs: ep == 2],
                       **FAST).fit(X, y)
    assert est.n_epochs_ == 3


class _NaNAfter(torch.nn.Module):
    """A linear model whose output turns NaN after ``k`` training-mode calls (a divergence on cue)."""

    def __init__(self, n: int, k: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(n, 1, dtype=torch.float64)
        self.k, self.calls = k, 0

    def forward(self, x):
        self.calls += self.training
        out = self.lin(x.reshape(len(x), -1)).squeeze(-1)
        return out * float("nan") if self.training and self.calls > self.k else out


class _Diverging(DNNRegressor):
    def _build_network(self, sizes, *, dtype, seed):
        return _NaNAfter(int(np.prod(sizes)), self.dropout_after)

    dropout_after = 10


def test_divergence_restores_last_good_epoch_with_warning_or_raises():
    X, y = rank1_problem(n=100)
    est = _Diverging(max_epochs=20, validation_fraction=0.0, batch_size=25,
                     **{k: v for k, v in FAST.items() if k != "batch_size"})
    with pytest.warns(RuntimeWarning, match="NaN"):
        est.fit(X, y)
    assert est.n_epochs_ == 2 and np.all(np.isfinite(est.predict(X)))  # 4 steps per epoch, NaN in epoch 2
    est.dropout_after = 2
    with pytest.raises(TrainingDivergedError, match="first epoch"):
        est.fit(X, y)
    assert not hasattr(est, "network_")


def test_weight_decay_shrinks_weights_and_intercept_switch():
    X, y = rank1_problem(n=80)
    norms = []
    for wd in (0.0, 1.0):
        est = DenseACERegressor(solver="adam", max_epochs=30, weight_decay=wd, fit_intercept=False, **FAST).fit(X, y)
        assert est.intercept_ == 0.0
        norms.append(float(torch.cat([p.detach().reshape(-1) for p in est.network_.parameters()]).norm()))
    assert norms[1] < 0.8 * norms[0]


def test_verbose_two_logs_every_epoch(capsys):
    X, y = rank1_problem(n=40)
    MPSRegressor(solver="adam", bond_dim=2, max_epochs=3, verbose=2, **FAST).fit(X, y)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "train MSE" in ln]
    assert len(lines) == 3 and lines[0].startswith("MPSRegressor epoch 0")


# ---------------------------------------------------------------------------------------------- inputs
def test_nan_and_inf_rows_are_named():
    X, y = rank1_problem(n=40)
    X[3, 0, 1, 2] = np.nan
    X[7, 2, 2, 2] = np.inf
    with pytest.raises(ValueError, match=r"X contains NaN or inf in rows \[3, 7\]"):
        MPSRegressor(solver="adam", **FAST).fit(X, y)
    X, y = rank1_problem(n=40)
    y[5] = np.nan
    with pytest.raises(ValueError, match=r"y contains NaN or inf in rows \[5\]"):
        MPSRegressor(solver="adam", **FAST).fit(X, y)
    Xa, x, sidx, _ = per_atom_problem(n_struct=20)
    x = x.copy()
    x[0, 1, 1] = np.nan
    bad = Xa.replace(values=torch.from_numpy(x))
    with pytest.raises(ValueError, match=rf"structures \[{sidx[0]}\]"):
        MPSRegressor(solver="adam", **FAST).fit(bad, np.zeros(20))


def test_parameters_are_validated_at_fit_not_in_init():
    X, y = rank1_problem(n=30)
    for kw, field in [({"bond_dim": 0}, "bond_dim"), ({"lr_schedule": "step"}, "lr_schedule"),
                      ({"dtype": "float16"}, "dtype"), ({"validation_fraction": 1.0}, "validation_fraction"),
                      ({"batch_size": 0}, "batch_size"), ({"leg_sizes": (2, 2)}, "leg_sizes")]:
        est = MPSRegressor(solver="adam", **kw)  # constructing never validates (sklearn rule)
        with pytest.raises(ValueError, match=field):
            est.fit(X, y)
    with pytest.raises(ValueError, match="model="):
        TensorNetworkRegressor(model="peps").fit(X, y)


def test_flat_arrays_with_leg_sizes_and_permuted_legtensor():
    X, y = rank1_problem(n=80)
    est = MPSRegressor(solver="adam", bond_dim=2, max_epochs=3, **FAST).fit(X.reshape(80, -1), y)
    assert est.leg_sizes_ == (27,)  # 2-D array without leg_sizes: one leg
    est = MPSRegressor(solver="adam", bond_dim=2, max_epochs=3, leg_sizes=(3, 3, 3), **FAST).fit(X.reshape(80, -1), y)
    assert est.leg_sizes_ == (3, 3, 3)
    np.testing.assert_allclose(est.predict(X), est.predict(X.reshape(80, -1)), rtol=1e-12)
    lt = LegTensor(torch.from_numpy(X), ("a", "n", "l"))
    est = MPSRegressor(solver="adam", bond_dim=2, max_epochs=3, **FAST).fit(lt, y)
    np.testing.assert_allclose(est.predict(lt.permute(("l", "a", "n"))), est.predict(lt), rtol=1e-12)
    with pytest.raises(ValueError, match="legs"):
        est.predict(LegTensor(torch.from_numpy(X), ("a", "n", "m")))


# ---------------------------------------------------------------------------------------------- sklearn API
def test_get_set_params_and_clone():
    est = MPSRegressor(solver="adam", bond_dim=5, learning_rate=3e-3)
    p = est.get_params()
    assert p["bond_dim"] == 5 and "model" not in p and est.model == "mps"
    assert TensorNetworkRegressor().get_params()["model"] == "mps"
    c = clone(est.set_params(bond_dim=6))
    assert type(c) is MPSRegressor and c.get_params() == {**p, "bond_dim": 6}
    with pytest.raises(ValueError, match="model"):
        est.set_params(model="mpo")
    assert "hidden_layer_sizes" in DNNRegressor().get_params() and "bond_dim" not in DenseACERegressor().get_params()


# ---------------------------------------------------------------------------------------------- persistence
def test_save_load_round_trip(tmp_path):
    Xa, x, sidx, w = per_atom_problem(n_struct=60)
    y = structure_mean(np.einsum("nij,ij->n", x, w), sidx)
    for est in (MPORegressor(solver="adam", bond_dim=2, max_epochs=3, **FAST),
                DNNRegressor(hidden_layer_sizes=(8, 4), max_epochs=3, **FAST)):
        est.fit(Xa, y)
        path = est.save(tmp_path / f"{type(est).__name__}.tnmat", extra={"descriptor": {"n_max": 4}, "k": [1, 2]})
        back = NetworkRegressor.load(path)
        assert type(back) is type(est)
        np.testing.assert_array_equal(back.predict(Xa), est.predict(Xa))
        assert back.get_params() == est.get_params()
        assert back.history_ == est.history_ and back.best_epoch_ == est.best_epoch_
        assert back.extra_ == {"descriptor": {"n_max": 4}, "k": [1, 2]}
        assert load_estimator(path).n_parameters_ == est.n_parameters_
    with pytest.raises(ValueError, match="not a MPSRegressor"):
        MPSRegressor.load(tmp_path / "DNNRegressor.tnmat")


def test_load_errors_name_the_file(tmp_path):
    X, y = rank1_problem(n=40)
    est = MPSRegressor(solver="adam", bond_dim=2, max_epochs=2, **FAST).fit(X, y)
    good = est.save(tmp_path / "m.tnmat")
    junk = tmp_path / "junk.tnmat"
    junk.write_bytes(b"this is not a model")
    with pytest.raises(ValueError, match="junk.tnmat"):
        MPSRegressor.load(junk)
    cut = tmp_path / "cut.tnmat"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="cut.tnmat"):
        load_estimator(cut)
    blob = torch.load(good, weights_only=True)
    blob["version"] = 999
    old = tmp_path / "old.tnmat"
    torch.save(blob, old)
    with pytest.raises(ValueError, match=r"old.tnmat.*version 999"):
        load_estimator(old)
    with pytest.raises(TypeError, match="extra"):
        est.save(tmp_path / "x.tnmat", extra={"f": object()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(load_estimator(good), MPSRegressor)
