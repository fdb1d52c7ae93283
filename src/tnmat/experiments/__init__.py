"""Experiments as functions of data: each takes descriptors, targets and a settings object and returns
rows (or a summary dict of rows), storing every finished fit at once in the resumable result store.

- :mod:`~tnmat.experiments.store` (results file), :mod:`~tnmat.experiments.runner` (the grid runner),
  :mod:`~tnmat.experiments.splits` (every split rule), :mod:`~tnmat.experiments.protocol` (default target,
  data-set labels, stratification quantities);
- the paper's experiments: :mod:`~tnmat.experiments.learning_curve` (CSV and Markdown in
  :mod:`~tnmat.experiments.learning_curve_report`), :mod:`~tnmat.experiments.entanglement` (Markdown in
  :mod:`~tnmat.experiments.entanglement_report`), :mod:`~tnmat.experiments.compression`,
  :mod:`~tnmat.experiments.latent`.

Loading data and drawing figures belong to the commands layer (:mod:`tnmat.commands`).  Submodules are
imported on use (``from tnmat.experiments.learning_curve import run_learning_curve``) so that importing the
store does not import every experiment's dependencies."""

from tnmat.experiments.store import ResultStore, config_key

__all__ = ["ResultStore", "config_key"]
