"""The estimator hierarchy: one base holds the shared parameters, no estimator inherits from a sibling model,
and every concrete signature repeats the shared parameters with the base's defaults."""

from __future__ import annotations

import inspect
import itertools

import pytest
from sklearn.base import clone

from tnmat.training import (
    DenseACERegressor,
    DNNRegressor,
    FeatureMapMPSRegressor,
    MERARegressor,
    MPORegressor,
    MPSRegressor,
    NetworkRegressor,
    TensorNetworkRegressor,
    TTNRegressor,
)

CONCRETE = [TensorNetworkRegressor, MPSRegressor, MPORegressor, TTNRegressor, MERARegressor,
            FeatureMapMPSRegressor, DenseACERegressor, DNNRegressor]
SHARED = {k: p.default for k, p in inspect.signature(NetworkRegressor.__init__).parameters.items() if k != "self"}


def test_fixed_models_are_not_mps():
    assert not isinstance(MPORegressor(), MPSRegressor)
    assert not isinstance(TTNRegressor(), MPSRegressor)
    assert not isinstance(MERARegressor(), MPSRegressor)


@pytest.mark.parametrize(("a", "b"), list(itertools.permutations(CONCRETE, 2)))
def test_no_estimator_inherits_from_a_sibling(a, b):
    assert not issubclass(a, b)


@pytest.mark.parametrize("cls", CONCRETE)
def test_shared_parameters_have_the_base_defaults(cls):
    params = cls().get_params()
    assert {k: params[k] for k in SHARED} == SHARED
    assert set(params) == set(inspect.signature(cls.__init__).parameters) - {"self"}


@pytest.mark.parametrize("cls", CONCRETE)
def test_every_parameter_round_trips_through_clone(cls):
    """Each parameter is stored under its own name (the base's store helper follows the signature)."""
    sentinel = {k: (f"v-{k}" if k not in ("callbacks",) else [print]) for k in cls().get_params()}
    est = cls(**sentinel)
    assert est.get_params() == sentinel
    assert clone(est).get_params() == sentinel


def test_subclass_with_a_changed_shared_default_is_refused():
    with pytest.raises(TypeError, match="shared parameter learning_rate"):
        class Bad(NetworkRegressor):  # noqa: F841 - the class statement itself must fail
            def __init__(self, *, leg_sizes=None, learning_rate=0.5, batch_size=64, max_epochs=1000, patience=50,
                         validation_fraction=0.2, weight_decay=0.0, lr_schedule=None, standardize_inputs=True,
                         standardize_target=True, dtype="float32", device="cpu", random_state=None, verbose=0,
                         callbacks=None) -> None:
                self._store_params(locals())
    from tnmat._estimator_file import _LOADERS

    assert "Bad" not in _LOADERS
