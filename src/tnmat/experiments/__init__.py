"""Experiments: resumable result store, splits, the grid runner, and the paper's experiments
(learning curves, entanglement sweeps and dynamics, compression, latent spaces).

Submodules are imported on use (``from tnmat.experiments.learning_curve import run_learning_curve``) so
that importing the store does not import every experiment's dependencies."""

from tnmat.experiments.store import ResultStore, config_key

__all__ = ["ResultStore", "config_key"]
