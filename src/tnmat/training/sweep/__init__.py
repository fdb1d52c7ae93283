"""The sweeping (DMRG-style) fitter of the multilinear tensor networks (paper Section III).

* :mod:`~tnmat.training.sweep.engine`: ``sweep_fit`` and its :class:`SweepConfig` (model selection, passes,
  the Huber loss);
* :mod:`~tnmat.training.sweep.protocol`: the :class:`Sweeper` interface; :mod:`~tnmat.training.sweep.chain`
  (MPS, MPO) and :mod:`~tnmat.training.sweep.tree` (TTN) implement it;
* :mod:`~tnmat.training.sweep.solve`: the local problem (closed-form ridge, truncated splits);
* :mod:`~tnmat.training.sweep.data`: dense / factorised / per-atom rows; :mod:`~tnmat.training.sweep.bispectrum`
  and :mod:`~tnmat.training.sweep.bispectrum_fit`: the factorised bispectrum input;
* :mod:`~tnmat.training.sweep.estimator`: the estimators' ``solver="sweep"``.
"""

from tnmat.training.sweep.engine import (
    DEFAULT_ALPHAS,
    LOSSES,
    SWEEP_NETWORKS,
    SWEEPERS,
    SweepConfig,
    SweepResult,
    huber_loss,
    huber_weights,
    sweep_fit,
)
from tnmat.training.sweep.protocol import Sweeper

__all__ = ["DEFAULT_ALPHAS", "LOSSES", "SWEEP_NETWORKS", "SWEEPERS", "SweepConfig", "SweepResult", "Sweeper",
           "huber_loss", "huber_weights", "sweep_fit"]
