"""The MPO model through the Choi isomorphism (paper Fig. 13), and adapters from networks to states.

An operator T[s'_1..s'_N; s_1..s_N] is a vector in the doubled space: the site-k pair (s'_k, s_k) becomes
one physical leg of dimension d_k^2 (output index major).  For an MPO with cores (chi_l, d_out, d_in,
chi_r) this is a plain reshape of every core into an MPS core (chi_l, d_out d_in, chi_r); the Frobenius
norm of T equals the 2-norm of the vector.  Operator entanglement is the entanglement of that vector
for a bipartition of the sites (each site carrying both its legs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from tnmat.entanglement._arrays import as_array, as_cores
from tnmat.entanglement.schmidt import mps_schmidt_values, schmidt_values

__all__ = ["choi_vectorise", "choi_dense", "choi_unvectorise", "operator_schmidt_values", "network_state"]


def choi_vectorise(mpo_cores: Sequence[Any]) -> list[np.ndarray]:
    """MPO cores (chi_l, d_out, d_in, chi_r) -> MPS cores (chi_l, d_out * d_in, chi_r) (paper Fig. 13)."""
    cs = as_cores(mpo_cores, ndim=4, name="mpo_cores")
    return [c.reshape(c.shape[0], c.shape[1] * c.shape[2], c.shape[3]) for c in cs]


def choi_dense(operator: Any, sizes: Sequence[int] | None = None) -> np.ndarray:
    """Dense operator T of shape (*sizes_out, *sizes_in) -> tensor of shape (d_1^2, ..., d_N^2), site legs
    fused as (out_k, in_k); the same vector the MPO route produces."""
    t = as_array(operator, name="operator")
    if t.ndim % 2:
        raise ValueError(f"operator: expected shape (*sizes, *sizes), got {t.shape}")
    n = t.ndim // 2
    if sizes is not None and tuple(t.shape) != (*sizes, *sizes):
        raise ValueError(f"operator: shape {t.shape} does not match sizes {tuple(sizes)} twice")
    order = [i for k in range(n) for i in (k, n + k)]
    fused = [t.shape[k] * t.shape[n + k] for k in range(n)]
    return np.transpose(t, order).reshape(fused)


def choi_unvectorise(vector: Any, sizes_out: Sequence[int], sizes_in: Sequence[int] | None = None) -> np.ndarray:
    """Inverse of :func:`choi_dense`: (d_1 d'_1, ..., d_N d'_N) -> (*sizes_out, *sizes_in)."""
    sizes_in = sizes_out if sizes_in is None else sizes_in
    v = as_array(vector, name="vector")
    n = len(sizes_out)
    split = [d for k in range(n) for d in (sizes_out[k], sizes_in[k])]
    t = v.reshape(split)
    return np.transpose(t, [2 * k for k in range(n)] + [2 * k + 1 for k in range(n)])


def operator_schmidt_values(operator: Any, partition: Iterable[int | str], *, legs: Sequence[str] | None = None,
                            method: str = "auto") -> np.ndarray:
    """Operator-Schmidt coefficients of an MPO (list of 4-d cores) or a dense operator (*sizes, *sizes)
    for a bipartition of the sites (partition names sites, each with its output and input leg)."""
    if isinstance(operator, list | tuple):
        return mps_schmidt_values(choi_vectorise(operator), partition, legs=legs, method=method)
    return schmidt_values(choi_dense(operator), partition, legs=legs)


def network_state(network: Any) -> list[np.ndarray] | np.ndarray:
    """The state a trained network represents, in the cheapest exact form:

    * chain networks with 3-d ``cores`` (MPS, feature-map MPS): the cores (float64 numpy);
    * chain networks with 4-d ``cores`` (MPO): the Choi-vectorised MPS cores (physical dim d^2);
    * anything else (dense tensor, TTN, MERA): ``network.to_dense()`` as a float64 array.

    Pass the result to :func:`tnmat.entanglement.entanglement_entropy` / ``spectrum_of``.
    """
    cores = getattr(network, "cores", None)
    if cores is not None:
        cores = list(cores)
        ndims = {c.ndim for c in cores}
        if ndims == {3}:
            return as_cores(cores)
        if ndims == {4}:
            return choi_vectorise(cores)
        raise ValueError(f"{type(network).__name__}: cores of mixed or unknown rank {sorted(ndims)}")
    if not hasattr(network, "to_dense"):
        raise TypeError(f"{type(network).__name__}: no `cores` and no `to_dense()`; cannot extract a state")
    return as_array(network.to_dense(), name=f"{type(network).__name__}.to_dense()")
