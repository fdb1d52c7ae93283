"""Unit labels of dataset targets: the one function that says in what a target's errors are reported.

Targets are stored in eV (see :class:`~tnmat.data.Dataset`); errors are reported in meV per the quantity
the target is normalised by.  The label enters printed errors, CSV/Markdown reports, figures and the
metadata of saved models and stored fits, so every layer asks here instead of guessing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["target_units"]

#: Targets whose normalisation does not depend on the dataset.
_FIXED = {
    "bandgap": "meV",  # an energy of the structure, not a density
    "mixing_energy": "meV/atom",  # alloys: EMT mixing energy per atom (tnmat.data.alloys)
    "energy_per_atom": "meV/atom",
    "energy": "meV/structure",  # read_structures keeps extensive energies whole unless per_atom=True
    "free_energy": "meV/structure",
}


def target_units(dataset: Any, target: str) -> str:
    """Error unit of ``target`` in ``dataset`` (a :class:`~tnmat.data.Dataset` or its name).

    NMD18 formation energies are per cation (Sutton et al. 2019, see :mod:`tnmat.data.nmd18`), the
    generated alloys' mixing energies per atom, energies read from structure files per structure; any
    other target (in eV by the Dataset contract) is reported in plain meV."""
    name = dataset if isinstance(dataset, str) else getattr(dataset, "name", "")
    if target == "formation_energy" and name.split("-")[0] == "nmd18":
        return "meV/cation"
    return _FIXED.get(target, "meV")
