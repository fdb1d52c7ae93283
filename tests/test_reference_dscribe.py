"""Independent reference: tnmat's power spectrum reproduces DScribe's SOAP (the seed paper's library)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.descriptors.compat import from_dscribe_power_spectrum

dscribe = pytest.importorskip("dscribe.descriptors")


def _frames(root, ids):
    import ase.io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ASE's FHI-aims plugin notice
        return [ase.io.read(root / "train" / str(i) / "geometry.xyz", format="aims") for i in ids]


@pytest.mark.parametrize("species", [("O", "Al", "Ga", "In"), ("Ga", "O", "In", "Al")])
def test_power_spectrum_matches_dscribe_on_nmd18(nmd18_path, species):
    # a sample spanning spacegroups and sizes (ids 1, 2, 3 have 80 atoms; 6 and 31 are small cells)
    frames = _frames(nmd18_path, [1, 2, 6, 31, 400])
    soap = dscribe.SOAP(species=list(species), r_cut=6.0, n_max=4, l_max=3, sigma=0.5, periodic=True,
                        average="outer", rbf="gto")
    ref = from_dscribe_power_spectrum(soap.create(frames), soap, species, 4, 3)
    dens = AtomicDensity.dscribe_equivalent(species=species, r_cut=6.0, n_max=4, l_max=3, sigma=0.5)
    ours = Invariants(dens, order=2).compute(frames).values.numpy()
    assert np.abs(ref).max() > 1.0
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-8 * np.abs(ref).max())


def test_per_atom_matches_dscribe(nmd18_path):
    frames = _frames(nmd18_path, [6])
    species = ("O", "Al", "Ga", "In")
    soap = dscribe.SOAP(species=list(species), r_cut=5.0, n_max=3, l_max=4, sigma=0.4, periodic=True, rbf="gto")
    ref = from_dscribe_power_spectrum(soap.create(frames[0]), soap, species, 3, 4)
    dens = AtomicDensity.dscribe_equivalent(species=species, r_cut=5.0, n_max=3, l_max=4, sigma=0.4)
    ours = Invariants(dens, order=2).compute(frames, average=False).values.numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-8 * np.abs(ref).max())
