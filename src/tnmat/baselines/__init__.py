"""Baseline regressors with the same estimator interface as the tensor networks (paper Section IV A)."""

from tnmat.baselines.dnn import MLP
from tnmat.baselines.gpr import GPRRegressor, SoapKernel, local_soap_kernel, soap_kernel

__all__ = ["MLP", "GPRRegressor", "SoapKernel", "local_soap_kernel", "soap_kernel"]
