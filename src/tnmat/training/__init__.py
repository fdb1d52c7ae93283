"""Training layer: scikit-learn regressors around the tensor networks and the DNN baseline, the MPO
autoencoder, one shared Adam/MSE loop with early stopping and callbacks, the model table, and one-file
persistence (paper Section III, App. D)."""

from tnmat.training.autoencoder import MPOAutoencoder
from tnmat.training.base import NetworkRegressor
from tnmat.training.callbacks import SnapshotCallback
from tnmat.training.engine import TrainingDivergedError, train_network
from tnmat.training.estimators import (
    MODEL_KINDS,
    DenseACERegressor,
    DNNRegressor,
    FeatureMapMPSRegressor,
    MERARegressor,
    MPORegressor,
    MPSRegressor,
    TensorNetworkRegressor,
    TTNRegressor,
)
from tnmat.training.persistence import FORMAT_VERSION
from tnmat.training.registry import load_estimator

__all__ = [
    "MODEL_KINDS", "FORMAT_VERSION", "NetworkRegressor", "TensorNetworkRegressor", "MPSRegressor",
    "MPORegressor", "TTNRegressor", "MERARegressor", "DenseACERegressor", "FeatureMapMPSRegressor",
    "DNNRegressor", "MPOAutoencoder", "SnapshotCallback", "TrainingDivergedError", "train_network",
    "load_estimator",
]
