"""scikit-learn's estimator checks on plain 2-D arrays (one leg of size n_features when leg_sizes=None).

Fast configurations (few epochs, float64).  Checks that cannot apply are listed with the reason in
``EXPECTED_FAILED``; everything else must pass.  (DenseACE on one leg is the same linear model as the
one-site MPS, so it is not checked separately.)
"""

from __future__ import annotations

import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from tnmat.training import DNNRegressor, MPSRegressor, TensorNetworkRegressor

FAST = dict(max_epochs=25, learning_rate=3e-2, batch_size=32, dtype="float64", patience=10)

ESTIMATORS = [
    MPSRegressor(solver="adam", bond_dim=2, **FAST),  # one leg: an MPS with a single site, i.e. a linear model
    TensorNetworkRegressor(solver="adam", model="mpo", bond_dim=2, **FAST),  # one leg: a quadratic form x^T T x
    DNNRegressor(hidden_layer_sizes=(16,), **FAST),
]

EXPECTED_FAILED: dict[str, dict[str, str]] = {
    "mpo": {
        "check_regressors_train": "on one leg the MPO is a pure quadratic form y = x^T T x (paper eq. 18) and "
        "cannot reach R^2 > 0.5 on the check's linear data (model class, not an API defect)",
    },
}


def _expected_failed(estimator) -> dict[str, str]:
    return EXPECTED_FAILED.get(getattr(estimator, "model", None), {})


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_documented_expected_failure_really_fails():
    """The MPO entry of EXPECTED_FAILED must stay a real failure (otherwise the list would hide regressions)."""
    from sklearn.utils.estimator_checks import check_regressors_train

    mpo = TensorNetworkRegressor(solver="adam", model="mpo", bond_dim=2, **FAST)
    assert "check_regressors_train" in EXPECTED_FAILED["mpo"]
    with pytest.raises(AssertionError):
        check_regressors_train("mpo", mpo)
