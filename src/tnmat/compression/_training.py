"""A small Adam loop with early stopping and best-weights restore, shared by the autoencoder and the
supervised fits on factorised inputs (the estimators of :mod:`tnmat.training` take dense inputs only)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence

import torch

__all__ = ["adam_loop", "DivergedError"]


class DivergedError(RuntimeError):
    """The training loss became NaN or inf."""


def adam_loop(
    params: Sequence[torch.nn.Parameter],
    module: torch.nn.Module,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    n_train: int,
    val_loss: Callable[[], float] | None,
    *,
    learning_rate: float,
    batch_size: int,
    max_epochs: int,
    patience: int | None,
    generator: torch.Generator,
    name: str = "training",
) -> dict[str, list[float]]:
    """Minimise the mean of ``batch_loss(indices)`` over shuffled mini-batches of 0..n_train-1 with Adam.

    After every epoch ``val_loss()`` (when given, else the epoch's mean training loss) is monitored; the
    weights of the best epoch are restored into ``module`` at the end, and training stops after
    ``patience`` epochs without improvement.  Returns the history (train_loss, val_loss, seconds)."""
    opt = torch.optim.Adam(list(params), lr=learning_rate)
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "seconds": []}
    best, best_state, since = math.inf, copy.deepcopy(module.state_dict()), 0
    for epoch in range(max_epochs):
        t0 = time.perf_counter()
        module.train()
        perm = torch.randperm(n_train, generator=generator)
        total = 0.0
        for start in range(0, n_train, batch_size):
            idx = perm[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = batch_loss(idx)
            if not torch.isfinite(loss):
                raise DivergedError(f"{name}: loss is {loss.item()} at epoch {epoch}; lower the learning rate")
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        train = total / n_train
        module.eval()
        with torch.no_grad():
            monitored = val_loss() if val_loss is not None else train
        history["train_loss"].append(train)
        history["val_loss"].append(monitored if val_loss is not None else math.nan)
        history["seconds"].append(time.perf_counter() - t0)
        if monitored < best:
            best, best_state, since = monitored, copy.deepcopy(module.state_dict()), 0
        else:
            since += 1
            if patience is not None and since >= patience:
                break
    module.load_state_dict(best_state)
    module.eval()
    return history
