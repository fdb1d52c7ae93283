"""The one interface between the sweep engine (:mod:`tnmat.training.sweep.engine`) and a network's sweeper.

A sweeper holds a network's tensors in float64 and knows its graph: which pairs of tensors a pass visits,
how the local features of a pair are contracted from the data, and how a solved pair is split back by a
truncated SVD.  The engine only plugs in the local problem (``solve``) and keeps the model selection; the
network classes say which sweeper they take in :data:`tnmat.training.sweep.engine.SWEEPERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

__all__ = ["LocalSolve", "Sweeper"]

#: ``solve(phis, step) -> (M, intercept)``: phis are the local features of every data set (training first),
#: M the solved merged pair in the shape of ``phis[0].shape[1:]``.
LocalSolve = Callable[[list[torch.Tensor], dict], tuple[torch.Tensor, float]]


class Sweeper(Protocol):
    """A network's two-site sweeper (TeNPy's ``Sweep`` idea: one engine, the local problem plugged in)."""

    #: largest discarded singular weight of every split so far (relative)
    discarded: list[float]

    @property
    def bond_dims(self) -> list[int]:
        """The current virtual bond dimensions."""

    def run_pass(self, direction: str, solve: LocalSolve) -> None:
        """Visit every pair once (``"right"``/``"left"``: the chain's direction; the tree alternates
        upward/downward), solving each merged pair with ``solve`` and splitting it back."""

    def snapshot(self) -> Any:
        """A copy of the current tensors (and gauge), for :meth:`restore`."""

    def restore(self, state: Any) -> None:
        """Return to a :meth:`snapshot`."""

    def install(self, net: nn.Module) -> None:
        """Write the tensors into ``net`` (in its dtype; shapes may differ from the initial ones)."""
