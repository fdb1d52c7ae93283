"""The one sphere quadrature (tnmat.so3.spherical_harmonics.sphere_quadrature), used by the Wigner matrices
in so3/wigner.py and so3/rotations.py: exact for polynomials of degree <= 2l on the sphere."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tnmat.so3 import real_spherical_harmonics
from tnmat.so3.spherical_harmonics import sphere_quadrature


@pytest.mark.parametrize("l", [0, 1, 3, 6])
def test_quadrature_integrates_products_of_harmonics_up_to_degree_2l_exactly(l):
    pts, w = sphere_quadrature(l)
    assert np.allclose(np.linalg.norm(pts, axis=1), 1.0, atol=1e-14)
    assert w.sum() == pytest.approx(4 * math.pi, rel=1e-14)
    y = real_spherical_harmonics(torch.tensor(pts), l).numpy()  # all (l', m) with l' <= l
    gram = y.T @ (y * w[:, None])
    np.testing.assert_allclose(gram, np.eye((l + 1) ** 2), atol=1e-12)


def test_quadrature_arrays_are_shared_and_read_only():
    pts, w = sphere_quadrature(2)
    assert sphere_quadrature(2)[0] is pts
    with pytest.raises(ValueError):
        w[0] = 1.0
