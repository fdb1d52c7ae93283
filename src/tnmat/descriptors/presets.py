"""Named descriptor settings: the one home of the descriptor defaults of every command and experiment.

* ``fast`` (the default): the averaged SOAP power spectrum at r_c 6 A, n_max 4, l_max 3, sigma 0.5 A
  (the paper's learning-curve descriptor).  S^2 * 4 * 4 * 4 = 64 S^2 features for S species.
* ``accurate``: r_c 8 A, n_max 8, l_max 6 (448 S^2 features, 7x ``fast``): the lowest test MAE measured on
  NMD18's official split (``benchmarks/default_policy.py``, ``results/defaults/default_policy.json``; also
  ``results/sweep/sweep_nmd18_huber.json``), at several times the descriptor and fit time.

``fast`` stays the default because the cost of ``accurate`` grows with the square of the number of species:
on the README main job's alloy set (7 species, 15950 structures) it is 21952 features per structure, 2.8 GB
of float64 descriptors, past the main job's time and memory budget (measured numbers in
``results/defaults/default_policy.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DescriptorSettings", "PRESETS", "DEFAULT_PRESET", "preset"]


@dataclass(frozen=True)
class DescriptorSettings:
    """Body order, cutoff (Angstrom), radial and angular sizes, Gaussian width (Angstrom), density kind."""

    order: int = 2
    r_cut: float = 6.0
    n_max: int = 4
    l_max: int = 3
    sigma: float = 0.5
    density: str = "gaussian"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, DescriptorSettings] = {
    "fast": DescriptorSettings(),
    "accurate": DescriptorSettings(r_cut=8.0, n_max=8, l_max=6),
}
DEFAULT_PRESET = "fast"


def preset(name: str) -> DescriptorSettings:
    """The settings of preset ``name``; an unknown name is an error listing the presets."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown descriptor preset {name!r}; choose from {', '.join(PRESETS)}") from None
