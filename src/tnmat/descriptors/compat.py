"""Conversion of other libraries' SOAP layouts into tnmat's leg-labelled power spectrum.

DScribe (``SOAP(rbf="gto", average="outer")``) stores, for each species pair (Z1 <= Z2), the flat
entries ``p[l, n1, n2]`` (l outermost; n1 <= n2 when Z1 == Z2) with
``p = pi * sqrt(8 / (2l+1)) * sum_m c_n1lm c_n2lm``.  tnmat's ``B2 = (-1)^l / sqrt(2l+1) sum_m A A``
(the l'=0 coupled product, paper eq. 11), hence ``B2 = (-1)^l p / (pi sqrt 8)``.  With
:meth:`AtomicDensity.dscribe_equivalent` the two agree to ~1e-12 relative (tests/test_reference_dscribe.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["from_dscribe_power_spectrum"]


def from_dscribe_power_spectrum(
    features: np.ndarray, soap: Any, species: Sequence[str], n_max: int, l_max: int
) -> np.ndarray:
    """DScribe power spectrum rows (n, n_features) -> B2 array (n, S, S, n_max, n_max, l_max+1) with
    tnmat's sign/normalisation and the species order ``species`` (``soap`` provides ``get_location``)."""
    features = np.asarray(features)
    s = len(species)
    out = np.zeros((features.shape[0], s, s, n_max, n_max, l_max + 1))
    scale = np.array([(-1) ** l / (np.pi * np.sqrt(8.0)) for l in range(l_max + 1)])
    for i1, s1 in enumerate(species):
        for i2, s2 in enumerate(species):
            block = features[:, soap.get_location((s1, s2))]
            same = s1 == s2
            k = 0
            for l in range(l_max + 1):
                for n1 in range(n_max):
                    for n2 in range(n1 if same else 0, n_max):
                        v = block[:, k] * scale[l]
                        # DScribe's pair (Z1, Z2) with Z1 < Z2 stores n1 of the lighter species first
                        z_order = _z(s1) <= _z(s2)
                        a, b = (n1, n2) if z_order else (n2, n1)
                        out[:, i1, i2, a, b, l] = v
                        if same:
                            out[:, i1, i2, n2, n1, l] = v
                        k += 1
    return out


def _z(symbol: str) -> int:
    from ase.data import atomic_numbers

    return atomic_numbers[symbol]
