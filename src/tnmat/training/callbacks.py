"""Callbacks for :func:`tnmat.training.engine.train_network`.

A callback is any callable ``cb(estimator, epoch, step, logs)``.  It is called at the end of every epoch
(``logs["event"] == "epoch_end"``, with ``train_loss``, ``val_loss`` and ``lr``); when it has the
attribute ``every_step = True`` it is also called once before the first update (``step == 0``,
``event == "start"``) and after every optimiser step (``event == "step"``, with the batch ``loss``).
``step`` is the global number of optimiser steps done so far; ``epoch`` the 0-based epoch index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["SnapshotCallback"]


class SnapshotCallback:
    """Record ``fn(network)`` at the given global optimiser steps (0 = the initial network).

    Used by the entanglement analysis to follow spectra over training (e.g. ``fn`` computes the
    entanglement spectrum of an MPS bond).  ``snapshots`` maps step -> value, in increasing step order;
    ``epochs`` maps step -> epoch in which it was taken.  ``fn`` runs under ``torch.no_grad``."""

    every_step = True

    def __init__(self, steps: Iterable[int], fn: Callable[[torch.nn.Module], Any]) -> None:
        self.steps = frozenset(int(s) for s in steps)
        if any(s < 0 for s in self.steps):
            raise ValueError("SnapshotCallback: steps must be non-negative")
        self.fn = fn
        self.snapshots: dict[int, Any] = {}
        self.epochs: dict[int, int] = {}

    def __call__(self, estimator: Any, epoch: int, step: int, logs: dict[str, Any]) -> None:
        if step in self.steps and step not in self.snapshots:
            with torch.no_grad():
                self.snapshots[step] = self.fn(estimator.network_)
            self.epochs[step] = epoch

    def __repr__(self) -> str:
        return f"SnapshotCallback({len(self.steps)} steps, {len(self.snapshots)} recorded)"
