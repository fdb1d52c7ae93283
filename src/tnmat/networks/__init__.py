"""Tensor-network regression models (paper Section III): DenseACE, MPS, MPO, TTN, MERA, FeatureMapMPS.

All are ``torch.nn.Module``s mapping inputs (batch, d_1, ..., d_N) (or factorised inputs: a list of MPS
cores (batch, r, d, r') per site) to one scalar per row; see :class:`TensorNetwork`.  :class:`MPOMap` maps
such a tensor to another one (the MPO autoencoder's encoder and decoder).  :func:`direct_sum` merges a
weighted sum of MPSs or TTNs (an ensemble mean) into one network of the same kind.
"""

from tnmat.networks.base import Factorised, TensorNetwork, chain_to_dense, dense_from_cores, is_factorised
from tnmat.networks.dense import DenseACE
from tnmat.networks.direct_sum import direct_sum
from tnmat.networks.factory import KINDS, compression_threshold, count_parameters, make_network, saturation_bond
from tnmat.networks.feature_map import FeatureMapMPS, feature_map
from tnmat.networks.mpo import MPO, MPOMap, mpo_apply, operator_to_dense
from tnmat.networks.mps import MPS
from tnmat.networks.tree import MERA, TTN, padded_sites

__all__ = [
    "TensorNetwork",
    "DenseACE",
    "MPS",
    "MPO",
    "TTN",
    "MERA",
    "FeatureMapMPS",
    "feature_map",
    "make_network",
    "count_parameters",
    "compression_threshold",
    "saturation_bond",
    "KINDS",
    "Factorised",
    "is_factorised",
    "dense_from_cores",
    "chain_to_dense",
    "MPOMap",
    "mpo_apply",
    "operator_to_dense",
    "padded_sites",
    "direct_sum",
]
