"""The experimental protocol that does not depend on a model: which target a dataset is fitted on by
default, how a learning curve's data set is labelled, and which quantities training subsets are
stratified on.  The commands layer asks here; nothing of it lives in the CLI.

(The run sizes of the ``quick`` and ``paper`` presets and the models' grids live in the model table,
:mod:`tnmat.training.registry`; the split rules in :mod:`tnmat.experiments.splits`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tnmat.descriptors.presets import PRESETS

__all__ = ["DEFAULT_TARGETS", "DEFAULT_DESCRIPTOR", "default_target", "descriptor_tag", "dataset_label",
           "dataset_title", "stratification_quantities"]

#: Targets fitted when none is named, in order of preference: NMD18's formation energy, the alloys'
#: mixing energy, a structure file's energy per atom (intensive, like every scalar model; the file's total
#: ``energy`` only when no per-atom value exists); else the dataset's first target.
DEFAULT_TARGETS = ("formation_energy", "mixing_energy", "energy_per_atom", "energy")


def default_target(dataset: Any, target: str | None = None) -> str:
    """``target`` if given (checked against the dataset), else the first of :data:`DEFAULT_TARGETS` the
    dataset has, else its first target; a dataset without targets is an error naming it."""
    targets = list(dataset.targets)
    if target is not None:
        if target not in dataset.targets:
            raise ValueError(f"{dataset.name} has no target {target!r}; available: {', '.join(targets) or 'none'}")
        return target
    chosen = next((t for t in (*DEFAULT_TARGETS, *targets) if t in dataset.targets), None)
    if chosen is None:
        raise ValueError(f"{dataset.name} has no targets to fit (structure files need energies)")
    return chosen


#: The descriptor of every committed learning curve (the ``fast`` preset of tnmat.descriptors.presets): fits on
#: it carry no descriptor tag in their dataset label, so their stored keys keep their meaning.
DEFAULT_DESCRIPTOR: dict[str, Any] = PRESETS["fast"].as_dict()


def descriptor_tag(settings: Mapping[str, Any] | None) -> str:
    """``""`` for :data:`DEFAULT_DESCRIPTOR` (or None), else ``"-"`` and every setting that differs from it,
    sorted, as ``name=value`` joined by ``,`` (e.g. ``-l_max=6,n_max=8,r_cut=8``)."""
    if not settings:
        return ""
    diff = {k: v for k, v in settings.items() if k not in DEFAULT_DESCRIPTOR or DEFAULT_DESCRIPTOR[k] != v}
    return "-" + ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(diff.items())) \
        if diff else ""


def dataset_label(name: str, geometry: str, target: str, descriptor: Mapping[str, Any] | None = None) -> str:
    """The dataset label of a learning curve (it enters every fit's key): name, geometry unless the name
    already carries it (``nmd18-vegard``), target, and the descriptor settings that differ from
    :data:`DEFAULT_DESCRIPTOR` (:func:`descriptor_tag`), so fits on other descriptors are never reused."""
    parts = [name] if geometry in name.split("-") else [name, geometry]
    return "-".join([*parts, target]) + descriptor_tag(descriptor)


def dataset_title(name: str, geometry: str, target: str) -> str:
    """The dataset as a report title: :func:`dataset_label` for NMD18 (whose geometry is a choice), name and
    target for other data, whose structures are what the file holds (the label keeps the geometry for the
    keys of stored fits)."""
    return dataset_label(name, geometry, target) if name.startswith("nmd18") else f"{name}-{target}"


def stratification_quantities(dataset: Any, target: str) -> dict[str, np.ndarray]:
    """Volume per atom, composition (cation fractions or alloy x, where the metadata has them) and the
    target energy: the quantities the learning curve's training subsets are stratified on."""
    meta = dataset.metadata
    if "volume_per_atom" not in meta:
        raise ValueError(f"{dataset.name}: metadata has no volume_per_atom to stratify on")
    q = {"volume_per_atom": np.asarray(meta["volume_per_atom"], dtype=float),
         "energy": np.asarray(dataset.targets[target], dtype=float)}
    for key in ("x_al", "x_ga", "x_in", "composition"):
        if key in meta:
            q[key] = np.asarray(meta[key], dtype=float)
    return q
