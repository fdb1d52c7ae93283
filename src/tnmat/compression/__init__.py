"""Compressing large descriptors (paper Sections III and IV C, Figs. 8, 17, 18, Table I).

- :func:`tt_svd` / :func:`tt_to_dense` / :func:`n_input_parameters`: per-structure MPS (TT) factorisation of
  dense descriptor tensors; the networks of :mod:`tnmat.networks` contract such factorised inputs directly
  (a list of cores (batch, r, d, r') instead of the dense tensor) in the order of Fig. 8b.
- The MPO autoencoder reducing every leg from d_in to d_latent is :class:`tnmat.training.MPOAutoencoder`
  (its encoder and decoder are :class:`tnmat.networks.MPOMap` networks, trained by the one training engine).
- :func:`padded_power_spectrum`: the many-species power spectrum reshaped to 5 legs of dimension 8.
"""

from tnmat.compression.padding import independent_padded, padded_power_spectrum
from tnmat.compression.ttsvd import (
    TTSVDResult,
    full_ranks,
    n_input_parameters,
    tt_ranks,
    tt_svd,
    tt_svd_info,
    tt_to_dense,
    unfolding_bounds,
)

__all__ = [
    "TTSVDResult",
    "tt_svd",
    "tt_svd_info",
    "tt_to_dense",
    "tt_ranks",
    "n_input_parameters",
    "full_ranks",
    "unfolding_bounds",
    "independent_padded",
    "padded_power_spectrum",
]
