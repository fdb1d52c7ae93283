"""Model names -> estimator instances (one place, used by the CLI and the experiments)."""

from __future__ import annotations

from typing import Any

__all__ = ["MODEL_NAMES", "make_estimator"]

MODEL_NAMES = ("mps", "mpo", "ttn", "mera", "dense", "feature-map-mps", "dnn", "gpr-rbf", "gpr-soap")


def make_estimator(name: str, **params: Any):
    """A fresh estimator for ``name``; parameters the estimator does not have are dropped (so one
    call can serve every model), unknown names raise with the list of known ones."""
    from tnmat import training

    classes = {
        "mps": training.MPSRegressor,
        "mpo": training.MPORegressor,
        "ttn": training.TTNRegressor,
        "mera": training.MERARegressor,
        "dense": training.DenseACERegressor,
        "feature-map-mps": training.FeatureMapMPSRegressor,
        "dnn": training.DNNRegressor,
    }
    if name in classes:
        est = classes[name]()
    elif name in ("gpr-rbf", "gpr-soap"):
        from tnmat.baselines import GPRRegressor

        est = GPRRegressor(kernel=name.split("-", 1)[1])
    else:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    valid = est.get_params()
    return est.set_params(**{k: v for k, v in params.items() if k in valid})
