"""ensemble_mean: the mean of fitted MPS / TTN estimators is one fitted estimator with one network.

Truths: its predictions equal the mean of the members' predictions to 1e-12 (also after save/load), its
bonds are the sums of theirs, and members with different input scalings are refused (their mean is not a
single network on one scaled input)."""

from __future__ import annotations

import numpy as np
import pytest

from tnmat.training.ensemble import ensemble_mean
from tnmat.training.estimators import MPSRegressor, TTNRegressor


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3, 4, 2))
    return x, np.einsum("nabc,abc->n", x, rng.normal(size=(3, 4, 2))) + 0.1 * rng.normal(size=120)


@pytest.mark.parametrize("cls", [MPSRegressor, TTNRegressor])
def test_mean_of_members_is_one_network(cls, tmp_path) -> None:
    x, y = _data()
    members = [cls(solver="sweep", bond_dim=2, dtype="float64", validation_fraction=0.0,
                   alpha_selection="evidence", random_state=s).fit(x, y) for s in range(3)]
    merged = ensemble_mean(members)
    ref = np.mean([m.predict(x) for m in members], axis=0)
    np.testing.assert_allclose(merged.predict(x), ref, atol=1e-12, rtol=0)
    sums = [sum(b) for b in zip(*(m.bond_dims_ for m in members), strict=True)]
    assert all(b <= s for b, s in zip(merged.bond_dims_, sums, strict=True))  # rounded to the rank of the mean
    loaded = cls.load(merged.save(tmp_path / "ensemble.pt"))
    np.testing.assert_allclose(loaded.predict(x), ref, atol=1e-12, rtol=0)


def test_members_with_other_scalings_are_refused() -> None:
    x, y = _data()
    members = [TTNRegressor(solver="sweep", bond_dim=2, dtype="float64", validation_fraction=0.2,
                            random_state=s).fit(x, y) for s in range(2)]
    with pytest.raises(ValueError, match="validation_fraction=0"):
        ensemble_mean(members)
    with pytest.raises(ValueError, match="no estimators"):
        ensemble_mean([])
    mps = MPSRegressor(solver="sweep", bond_dim=2, dtype="float64", validation_fraction=0.0).fit(x, y)
    ttn = TTNRegressor(solver="sweep", bond_dim=2, dtype="float64", validation_fraction=0.0).fit(x, y)
    with pytest.raises(ValueError, match="member 1 is a TTNRegressor"):
        ensemble_mean([mps, ttn])


@pytest.mark.parametrize("cls", [MPSRegressor, TTNRegressor])
@pytest.mark.parametrize("vf", [0.0, 0.25])
def test_n_members_fits_one_network_no_worse_than_its_members(cls, vf, tmp_path) -> None:
    """Jensen: the mean of the members' predictions has a training MSE at most the members' mean MSE; the
    merged bonds are at most the sums of the members' bonds; save/load keeps the merged network."""
    x, y = _data()
    est = cls(solver="sweep", bond_dim=2, dtype="float64", n_members=3, validation_fraction=vf,
              alpha_selection="evidence" if vf == 0 else "validation", random_state=0).fit(x, y)
    h = est.history_
    assert len(h["member_bond_dims"]) == 3
    sums = [sum(b) for b in zip(*h["member_bond_dims"], strict=True)]
    assert all(b <= s for b, s in zip(est.bond_dims_, sums, strict=True))
    mse = float(np.mean(((est.predict(x) - y) / est.y_std_) ** 2))
    assert mse <= float(np.mean(np.square(h["member_train_rmse"]))) * (1 + 1e-10)
    loaded = cls.load(est.save(tmp_path / "members.pt"))
    np.testing.assert_allclose(loaded.predict(x), est.predict(x), atol=1e-12, rtol=0)


def test_n_members_is_validated() -> None:
    from tnmat.training.estimators import MPORegressor

    x, y = _data()
    with pytest.raises(ValueError, match="n_members=2 applies to the sweep-fitted MPS and TTN"):
        MPORegressor(solver="sweep", n_members=2).fit(x, y)
    with pytest.raises(ValueError, match="n_members=0"):
        TTNRegressor(solver="sweep", n_members=0).fit(x, y)
    with pytest.raises(ValueError, match="n_members=4 applies to solver='sweep' only"):
        TTNRegressor(solver="adam", n_members=4).fit(x, y)
    with pytest.raises(ValueError, match="alpha_selection='validation' applies to solver='sweep' only"):
        MPSRegressor(solver="adam", alpha_selection="validation").fit(x, y)
