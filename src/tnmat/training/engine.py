"""The one training loop shared by every estimator: Adam on the mean squared error (paper Appendix D).

Mini-batches are drawn over *structures* (shuffled each epoch with a seeded ``torch.Generator``).  For
per-atom inputs the network is evaluated on every atom of the batch's structures and the structure
prediction is the mean over its atoms (``index_add``; paper eq. 1).  Losses are computed on standardised
targets; the history reports them in target units (MSE).  The weights of the epoch with the lowest
monitored loss (validation loss when there is a validation set, else the epoch's running training loss)
are restored at the end; early stopping acts only on the validation loss.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from tnmat.training._data import Rows, gather_rows

__all__ = ["TrainConfig", "TrainResult", "TrainingDivergedError", "forward_structures", "predict_rows",
           "train_network"]


class TrainingDivergedError(RuntimeError):
    """The loss became NaN/inf before any epoch finished with a finite loss."""


@dataclass(frozen=True)
class TrainConfig:
    """Resolved optimisation settings (validated by the estimator)."""

    learning_rate: float
    batch_size: int
    max_epochs: int
    patience: int | None
    weight_decay: float
    lr_schedule: str | None
    verbose: int = 0
    description: str = "training"
    #: target standard deviation: converts the losses on standardised targets to target units (history)
    y_scale: float = 1.0


@dataclass
class TrainResult:
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    n_epochs: int = 0
    n_steps: int = 0
    stopped_early: bool = False
    diverged: bool = False


def forward_structures(net: torch.nn.Module, rows: Rows, structures: torch.Tensor,
                       intercept: torch.Tensor | None = None) -> torch.Tensor:
    """Output per structure: ``net(x_k)`` for structure rows, ``mean_i net(x_i)`` over the atoms of each
    structure for per-atom rows (paper eq. 1 with an intensive target), plus the scalar ``intercept``."""
    if rows.counts is None:
        out = net(rows.take(structures))
    else:
        r, seg = gather_rows(rows.starts, rows.counts, structures)
        per_atom = net(rows.take(r))
        out = torch.zeros(len(structures), dtype=per_atom.dtype, device=per_atom.device)
        out.index_add_(0, seg, per_atom)
        out = out / rows.counts[structures].to(per_atom.dtype)
    return out if intercept is None else out + intercept


@torch.no_grad()
def predict_rows(net: torch.nn.Module, rows: Rows, *, intercept: torch.Tensor | None = None,
                 max_rows: int = 16384) -> torch.Tensor:
    """Outputs for all structures in ``rows`` (eval mode, chunks of about ``max_rows`` network rows)."""
    was_training = net.training
    net.eval()
    try:
        n = rows.n_structures
        per = 1 if rows.counts is None else max(1, math.ceil(rows.n_rows / max(n, 1)))
        chunk = max(1, max_rows // per)
        if hasattr(net, "row_entries"):  # at most ~2^24 entries (128 MiB in float64) per intermediate
            chunk = min(chunk, max(1, (1 << 24) // (per * net.row_entries())))
        device = rows.device
        outs = [forward_structures(net, rows, torch.arange(s, min(s + chunk, n), device=device), intercept)
                for s in range(0, n, chunk)]
        return torch.cat(outs) if outs else torch.zeros(0, dtype=rows.dtype, device=device)
    finally:
        net.train(was_training)


def _make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    if cfg.lr_schedule is None:
        return None
    if cfg.lr_schedule == "plateau":
        # halve the rate when the monitored loss stalls for a fifth of the early-stopping patience, so
        # there is room for a few reductions before early stopping fires
        pat = max(1, (cfg.patience or 50) // 5)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=pat,
                                                          min_lr=cfg.learning_rate * 1e-3)
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.max_epochs,
                                                          eta_min=cfg.learning_rate * 1e-2)
    raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r}")


def _progress_enabled(verbose: int) -> bool:
    return bool(verbose) and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


@dataclass
class _Loop:
    """What one training run carries from epoch to epoch (the pieces of :func:`train_network`)."""

    net: torch.nn.Module
    opt: torch.optim.Optimizer
    cfg: TrainConfig
    generator: torch.Generator
    intercept: torch.nn.Parameter | None
    estimator: Any
    callbacks: Sequence[Callable[..., Any]]
    step_cbs: list[Callable[..., Any]]
    scale2: float
    step: int = 0

    def epoch(self, epoch: int, train: Rows, y_train: torch.Tensor, lr: float) -> float:
        """One pass of Adam steps over shuffled mini-batches of structures; the running training MSE in
        target units."""
        self.net.train()
        n, device = train.n_structures, train.device
        perm = torch.randperm(n, generator=self.generator).to(device)
        total = torch.zeros((), dtype=torch.float64, device=device)
        for s in range(0, n, self.cfg.batch_size):
            idx = perm[s : s + self.cfg.batch_size]
            pred = forward_structures(self.net, train, idx, self.intercept)
            loss = torch.mean((pred - y_train[idx]) ** 2)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.step += 1
            total += loss.detach().to(torch.float64) * len(idx)
            for cb in self.step_cbs:
                cb(self.estimator, epoch, self.step, {"event": "step", "loss": float(loss.detach()) * self.scale2,
                                                      "lr": lr})
        return float(total) / n * self.scale2

    def end_epoch(self, epoch: int, train_loss: float, val_loss: float, lr: float) -> bool:
        """Call the epoch callbacks, report progress; True when a callback asks to stop."""
        logs = {"event": "epoch_end", "train_loss": train_loss, "val_loss": val_loss, "lr": lr}
        stop = False
        for cb in self.callbacks:
            stop = (cb(self.estimator, epoch, self.step, logs) is True) or stop
        if self.cfg.verbose >= 2:
            print(f"{self.cfg.description} epoch {epoch}: train MSE {train_loss:.6g}  val MSE {val_loss:.6g}  "
                  f"lr {lr:.3g}", file=sys.stderr)
        return stop


def _scheduler_step(sched: Any, monitored: float) -> None:
    if sched is None:
        return
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        sched.step(monitored)
    else:
        sched.step()


def _finish(res: TrainResult, cfg: TrainConfig, model: torch.nn.Module, best_state: dict | None) -> None:
    """Restore the best weights; a run that diverged warns (or raises when no epoch finished)."""
    if res.diverged:
        if best_state is None:
            raise TrainingDivergedError(
                f"{cfg.description}: the loss became NaN/inf in the first epoch (learning_rate="
                f"{cfg.learning_rate:g}); lower the learning rate or use dtype='float64'")
        warnings.warn(
            f"{cfg.description}: the loss became NaN/inf in epoch {res.n_epochs}; training stopped and the "
            f"weights of epoch {res.best_epoch} were restored (consider a lower learning_rate)",
            RuntimeWarning, stacklevel=4)
    if best_state is not None:
        model.load_state_dict(best_state)


def train_network(
    net: torch.nn.Module,
    train: Rows,
    y_train: torch.Tensor,
    cfg: TrainConfig,
    *,
    val: Rows | None = None,
    y_val: torch.Tensor | None = None,
    generator: torch.Generator,
    callbacks: Sequence[Callable[..., Any]] = (),
    estimator: Any = None,
    intercept: torch.nn.Parameter | None = None,
) -> TrainResult:
    """Train ``net`` in place with Adam on MSE; returns the history and the restored best epoch.

    ``train``/``val`` hold dense or factorised network inputs (:class:`~tnmat.training._data.Rows`);
    ``y_train``/``y_val`` are standardised targets, one per structure, or one tensor per structure (the
    MSE is then the mean over all entries: the autoencoder's reconstruction loss); ``cfg.y_scale`` (the
    target standard deviation) converts the losses to target units for the history.  ``callbacks`` are called as
    ``cb(estimator, epoch, step, logs)`` at the end of every epoch, and, for those with
    ``every_step=True``, also once before training (step 0) and after every optimiser step; a callback
    returning ``True`` stops training after the current epoch.  ``intercept`` (optional scalar parameter)
    is added to every structure's output and trained with the network (no weight decay)."""
    # one container so the best-weights snapshot covers the intercept too
    model = torch.nn.Module()
    model.net = net
    groups = [{"params": list(net.parameters()), "weight_decay": cfg.weight_decay}]
    if intercept is not None:
        model.intercept = intercept
        groups.append({"params": [intercept], "weight_decay": 0.0})
    opt = torch.optim.Adam(groups, lr=cfg.learning_rate)
    sched = _make_scheduler(opt, cfg)
    loop = _Loop(net, opt, cfg, generator, intercept, estimator, callbacks,
                 [cb for cb in callbacks if getattr(cb, "every_step", False)], float(cfg.y_scale) ** 2)
    hist: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "lr": [], "seconds": []}
    res = TrainResult(history=hist)
    best_loss, best_state, since_best = math.inf, None, 0
    for cb in loop.step_cbs:
        cb(estimator, 0, 0, {"event": "start", "lr": cfg.learning_rate})
    bar = tqdm(total=cfg.max_epochs, desc=cfg.description, disable=not _progress_enabled(cfg.verbose),
               leave=False, dynamic_ncols=True)
    try:
        for epoch in range(cfg.max_epochs):
            t0 = time.perf_counter()
            lr = opt.param_groups[0]["lr"]
            train_loss = loop.epoch(epoch, train, y_train, lr)
            val_loss = math.nan
            if val is not None:
                val_loss = float(torch.mean((predict_rows(net, val, intercept=intercept) - y_val) ** 2)) * loop.scale2
            monitored = val_loss if val is not None else train_loss
            if not math.isfinite(train_loss) or not math.isfinite(monitored):
                res.diverged = True
                break
            hist["train_loss"].append(train_loss)
            if val is not None:
                hist["val_loss"].append(val_loss)
            hist["lr"].append(lr)
            hist["seconds"].append(time.perf_counter() - t0)
            res.n_epochs = epoch + 1
            if monitored < best_loss:
                best_loss, since_best, res.best_epoch = monitored, 0, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
            _scheduler_step(sched, monitored)
            stop = loop.end_epoch(epoch, train_loss, val_loss, lr)
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.3g}", val=f"{val_loss:.3g}", refresh=False)
            if stop:
                break
            if val is not None and cfg.patience is not None and since_best >= cfg.patience:
                res.stopped_early = True
                break
    finally:
        bar.close()
    res.n_steps = loop.step
    _finish(res, cfg, model, best_state)
    net.eval()
    return res
