"""Atom-centred density expansions and their SO(3) invariants / equivariants (torch, differentiable)."""

from tnmat.descriptors.density import AtomicDensity
from tnmat.descriptors.invariants import Equivariants, Invariants, couple_paths

__all__ = ["AtomicDensity", "Invariants", "Equivariants", "couple_paths", "descriptor_from_params"]


def descriptor_from_params(params: dict) -> Invariants | Equivariants:
    """Rebuild a descriptor calculator from ``calculator.get_params()`` (used by saved models)."""
    density = AtomicDensity(**{**params["density"], "species": tuple(params["density"]["species"])})
    if params["kind"] == "Invariants":
        return Invariants(density, order=params["order"], center_species=params.get("center_species", False),
                          unique=params.get("unique", False))
    if params["kind"] == "Equivariants":
        return Equivariants(density, order=params["order"], L=params["L"],
                            center_species=params.get("center_species", False))
    raise ValueError(f"unknown descriptor kind {params['kind']!r}")
