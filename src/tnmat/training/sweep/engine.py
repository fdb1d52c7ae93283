"""Sweeping (DMRG-style) fitter of the multilinear tensor networks (paper Section III).

``sweep_fit(network, train, val, config)`` fits an :class:`~tnmat.networks.MPS`, :class:`~tnmat.networks.MPO`
or :class:`~tnmat.networks.TTN` to standardised targets by alternating least squares over merged pairs of
cores: each local problem is a closed-form ridge regression (float64, :mod:`sweep_solve`), the merged pair is
split by a truncated SVD (bond dimension adapts up to ``max_bond_dim``, relative singular-value cutoff
``svd_cutoff``), the split pair is re-fitted by ``refine_solves`` alternating solves of its two factors
(:func:`~tnmat.training.sweep.solve.refine_split`: the SVD keeps the largest weights, not the best fit; 5
measured on the README main job, ``benchmarks/sweep_refine.py``), and the gauge keeps ||W||_F = ||M||_F so
the local ridge penalty is the global one.

Model selection: at every step the ridge strength is chosen from ``alphas`` on the validation rows (or by
GCV, or by the Bayesian evidence on the training rows, ``alpha_selection="evidence"``); passes (one pass =
all pairs once, alternating direction) stop when the validation RMSE has not improved by ``tol``
(relative) for ``patience`` passes.  With ``refit=True`` and refit data given, the
network is then refitted from the same initial state on all rows with the chosen per-step strengths and
the chosen number of passes (holding rows out for good costs accuracy: /work/shared/notes/sweeps.md).

Loss: ``loss="squared_error"`` (default) or ``"huber"``: the Huber loss with threshold ``huber_delta``
(standardised target units) by iteratively reweighted least squares inside every local solve: each row
carries the weight min(1, delta / |r_b|) of its residual r_b, and a local solve is ``HUBER_SOLVES``
weighted ridge solves, each followed by new weights from its residuals (the prediction is exactly linear
in the local tensor, so these are the network's residuals).  The weights persist from step to step, so the
reweighting accumulates over the sweep; at a fixed strength each weighted solve minimises a majoriser of
the Huber objective, which therefore never increases.  Passes are scored and stopped on the mean Huber
loss.  Rows with residuals beyond delta count linearly, not quadratically, so a few badly described
structures do not pull the fit (on NMD18 the test MAE, the published metric, falls: docs/results/sweep.md).

Weights and derivative rows (force and stress matching, :mod:`tnmat.training.force_rows`): data with
per-structure weights or derivative rows are stacked into one set of rows (:func:`~tnmat.training.sweep.data.
stack_rows`) whose row weights multiply the Huber weights and whose intercept reaches the energy rows only;
passes are then scored on the weighted loss of all rows, while the recorded RMSE is that of the energy rows.
The MPO is quadratic in its input and takes no derivative rows.

The MERA is not supported: its disentanglers make the network a graph with loops, so there is no canonical
form (no gauge centre to move by QR, ||W|| is not ||M|| for any local block) and the split of a merged
disentangler-isometry pair by an SVD does not return a unitary disentangler; a local least-squares update
would leave the MERA manifold.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tnmat.networks.base import TensorNetwork
from tnmat.networks.mpo import MPO
from tnmat.networks.mps import MPS
from tnmat.networks.tree import MERA, TTN
from tnmat.training.params import param_default
from tnmat.training.sweep.chain import ChainSweeper
from tnmat.training.sweep.data import StackedRows, SweepData, stack_rows
from tnmat.training.sweep.protocol import Sweeper
from tnmat.training.sweep.solve import SELECTIONS, LocalRows, LocalSolution, ridge_local_solve
from tnmat.training.sweep.tree import TreeSweeper

__all__ = ["SweepConfig", "SweepResult", "sweep_fit", "DEFAULT_ALPHAS", "SWEEP_NETWORKS", "SWEEPERS", "LOSSES",
           "huber_weights", "huber_loss"]

#: ridge strengths scanned at every local solve (standardised targets; the full ridge on NMD18 B2 chose ~1)
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-4, 4, 17))
SWEEP_NETWORKS = ("mps", "mpo", "ttn")
LOSSES = ("squared_error", "huber")
#: weighted solves per local solve under the Huber loss (each followed by new weights; module docstring)
HUBER_SOLVES = 2


@dataclass(frozen=True)
class SweepConfig:
    """Settings of the sweeping fitter (see the module docstring)."""

    max_bond_dim: int = param_default("bond_dim")
    n_sweeps: int = param_default("n_sweeps")
    svd_cutoff: float = param_default("svd_cutoff")
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    alpha_selection: str = param_default("alpha_selection")
    patience: int = 1
    tol: float = 1e-4
    refit: bool = True
    refine_solves: int = 5
    fit_intercept: bool = True
    loss: str = "squared_error"  # the resolved loss (the estimators' "auto" is resolved before)
    huber_delta: float = param_default("huber_delta")
    verbose: int = 0

    def check(self) -> None:
        if not isinstance(self.max_bond_dim, numbers.Integral) or self.max_bond_dim < 1:
            raise ValueError(f"sweep: max_bond_dim={self.max_bond_dim!r} must be a positive integer")
        if not isinstance(self.n_sweeps, numbers.Integral) or self.n_sweeps < 1:
            raise ValueError(f"sweep: n_sweeps={self.n_sweeps!r} must be a positive integer")
        if not 0 <= self.svd_cutoff < 1:
            raise ValueError(f"sweep: svd_cutoff={self.svd_cutoff!r} must lie in [0, 1)")
        if len(self.alphas) == 0 or any(not math.isfinite(a) or a < 0 for a in self.alphas):
            raise ValueError(f"sweep: alphas={self.alphas!r} must be a non-empty list of finite numbers >= 0")
        if self.alpha_selection not in SELECTIONS:
            raise ValueError(f"sweep: alpha_selection={self.alpha_selection!r}; choose one of "
                             f"{', '.join(SELECTIONS)}")
        if not isinstance(self.refine_solves, numbers.Integral) or self.refine_solves < 1:
            raise ValueError(f"sweep: refine_solves={self.refine_solves!r} must be a positive integer")
        if self.patience < 1:
            raise ValueError(f"sweep: patience={self.patience!r} must be >= 1")
        if self.loss not in LOSSES:
            raise ValueError(f"sweep: loss={self.loss!r}; choose one of {', '.join(LOSSES)}")
        d = self.huber_delta
        if isinstance(d, bool) or not isinstance(d, int | float) or not math.isfinite(d) or d <= 0:
            raise ValueError(f"sweep: huber_delta={d!r} must be a finite number > 0")


def huber_weights(r: torch.Tensor, delta: float) -> torch.Tensor:
    """IRLS weights of the Huber loss: min(1, delta / |r|) (rows within delta keep weight 1)."""
    return (delta / r.abs().clamp_min(1e-300)).clamp(max=1.0)


def huber_rows(r: torch.Tensor, delta: float) -> torch.Tensor:
    """Huber loss of every residual: r^2 / 2 within delta, delta (|r| - delta / 2) beyond."""
    a = r.abs()
    return torch.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def huber_loss(r: torch.Tensor, delta: float) -> torch.Tensor:
    """Mean Huber loss: r^2 / 2 within delta, delta (|r| - delta / 2) beyond."""
    return huber_rows(r, delta).mean()


@dataclass
class SweepResult:
    """A fitted network (float64 cores converted to the network's dtype) and the record of the fit."""

    network: TensorNetwork
    intercept: float  # standardised target units
    history: dict[str, list] = field(default_factory=dict)
    stop_reason: str = ""
    n_passes: int = 0  # passes of the returned (refitted) network
    bond_dims: list[int] = field(default_factory=list)


def _chain_sweeper(copies: int) -> Any:
    def make(net: TensorNetwork, datasets: list[SweepData], cfg: SweepConfig) -> Sweeper:
        if copies == 1:
            datasets = [d.averaged() for d in datasets]  # linear model: the mean of outputs is the output on the mean
        cores = [c.detach().to(torch.float64) for c in net.cores]
        return ChainSweeper(cores, net.sizes, copies, datasets, max_bond=cfg.max_bond_dim, cutoff=cfg.svd_cutoff,
                            refine_solves=cfg.refine_solves)
    return make


def _tree_sweeper(net: TensorNetwork, datasets: list[SweepData], cfg: SweepConfig) -> Sweeper:
    nodes = [[w.detach().to(torch.float64) for w in layer.isometries] for layer in net.layers]
    return TreeSweeper(nodes, net.sizes, [d.averaged() for d in datasets], max_bond=cfg.max_bond_dim,
                       cutoff=cfg.svd_cutoff, refine_solves=cfg.refine_solves)


#: network class -> its sweeper's constructor (exact classes: a subclass with another contraction, such as
#: the MERA's disentangled tree, is not swept by its parent's sweeper).  The MERA is absent on purpose:
#: its loops leave no canonical gauge, and an SVD split does not keep its disentanglers unitary.
SWEEPERS: dict[type, Any] = {MPS: _chain_sweeper(1), MPO: _chain_sweeper(2), TTN: _tree_sweeper}


def _make_sweeper(net: TensorNetwork, datasets: list[SweepData], cfg: SweepConfig) -> Sweeper:
    make = SWEEPERS.get(type(net))
    if make is None:
        extra = "; use solver='adam'" if isinstance(net, MERA) else ""
        raise ValueError(f"sweep: {type(net).__name__} cannot be sweep-fitted (MPS, MPO, TTN only){extra}")
    return make(net, datasets, cfg)


class _Solver:
    """The local solve used by the sweepers, recording the chosen ridge strengths and the last fit.  Rows are
    those of :func:`~tnmat.training.sweep.data.stack_rows`: each data set's row weights (per-structure and
    derivative-row weights) multiply the Huber weights, and the intercept reaches the energy rows only."""

    def __init__(self, cfg: SweepConfig, has_val: bool, stacks: list[StackedRows],
                 fixed: list[float] | None = None) -> None:
        self.cfg, self.has_val, self.fixed = cfg, has_val, fixed
        self.targets = [s.data.y for s in stacks]
        self.base = [s.weights for s in stacks]
        self.masks = [s.intercept_rows for s in stacks]
        self.lams: list[float] = []
        self.weights: list[torch.Tensor | None] = [None, None]  # row weights (Huber IRLS), per data set
        self.last: tuple[list[torch.Tensor], LocalSolution] | None = None
        self.trace: list[dict] = []

    def row_weights(self, i: int) -> torch.Tensor | None:
        """Weights of data set i's rows: base weight times Huber weight (None when both are 1)."""
        base, hub = self.base[i], self.weights[i] if i < len(self.weights) else None
        if base is None or hub is None:
            return hub if base is None else base
        return base * hub

    def huber(self, i: int, r: torch.Tensor) -> torch.Tensor:
        """Huber IRLS weights of data set i's energy rows; derivative rows keep weight 1 (least squares: they
        may be compressed combinations of force rows, :func:`~tnmat.training.sweep.data.compress_rows`)."""
        w = huber_weights(r, self.cfg.huber_delta)
        return w if self.masks[i] is None else torch.where(self.masks[i], w, torch.ones_like(w))

    def residuals(self, i: int, x: torch.Tensor, sol: LocalSolution) -> torch.Tensor:
        """<M, Phi_b> + c_b b - y_b on data set i (c_b = 0 on derivative rows)."""
        c = 1.0 if self.masks[i] is None else self.masks[i].to(torch.float64)
        return x @ sol.m + c * sol.intercept - self.targets[i]

    def __call__(self, phis: list[torch.Tensor], step: dict) -> tuple[torch.Tensor, float]:
        cfg = self.cfg
        n_done = len(self.lams)
        if self.fixed is not None:
            lams, select = [self.fixed[min(n_done, len(self.fixed) - 1)]], "fixed"
        elif cfg.alpha_selection == "validation" and not self.has_val:
            lams, select = list(cfg.alphas), "gcv"
        else:
            lams, select = list(cfg.alphas), cfg.alpha_selection
        train = phis[0].reshape(phis[0].shape[0], -1)
        val = phis[1].reshape(phis[1].shape[0], -1) if self.has_val else None
        for _ in range(HUBER_SOLVES if cfg.loss == "huber" else 1):
            held = LocalRows(val, self.targets[1], self.row_weights(1), self.masks[1]) if self.has_val else None
            sol = ridge_local_solve(train, self.targets[0], lams, select=select, val=held,
                                    fit_intercept=cfg.fit_intercept, weights=self.row_weights(0),
                                    intercept_rows=self.masks[0])
            if cfg.loss == "huber":  # IRLS: the next solve (and the next step) weighs the rows by these residuals
                self.weights = [None if x is None else self.huber(i, self.residuals(i, x, sol))
                                for i, x in enumerate((train, val))]
        self.lams.append(sol.lam)
        self.last = (phis, sol)
        step = {k: v for k, v in step.items() if k != "current"}
        self.trace.append({**step, "lam": sol.lam, "train_mse": sol.train_mse, "val_mse": sol.val_mse})
        return sol.m.reshape(phis[0].shape[1:]), sol.intercept


def _pass_residuals(solver: _Solver) -> tuple[list[torch.Tensor], float]:
    """Residuals on every data set of the network as it stands after a pass: the last local solve's features
    and solution (installed exactly: it is the re-solved factor, never truncated afterwards)."""
    phis, sol = solver.last
    out = [solver.residuals(i, phi.reshape(phi.shape[0], -1), sol) for i, phi in enumerate(phis)]
    return out, sol.intercept


def _score(r: torch.Tensor, w: torch.Tensor | None, mask: torch.Tensor | None, cfg: SweepConfig) -> float:
    """What the passes are stopped on: the RMSE (squared error) or the mean Huber loss, weighted by the row
    weights ``w`` when there are any (sqrt(sum w r^2 / sum w), sum w h(r) / sum w; derivative rows, outside
    ``mask``, count r^2 / 2 under the Huber loss)."""
    if w is None:
        return float(torch.sqrt((r * r).mean())) if cfg.loss == "squared_error" else float(
            huber_loss(r, cfg.huber_delta))
    if cfg.loss == "squared_error" or mask is None:
        per_row = r * r if cfg.loss == "squared_error" else huber_rows(r, cfg.huber_delta)
    else:  # Huber on the energy rows, squares on the derivative rows (as they are fitted)
        per_row = torch.where(mask, huber_rows(r, cfg.huber_delta), 0.5 * r * r)
    score = (w * per_row).sum() / w.sum()
    return float(score.sqrt() if cfg.loss == "squared_error" else score)


def _run(net: TensorNetwork, datasets: list[SweepData], cfg: SweepConfig, n_passes: int, *, has_val: bool,
         fixed: list[float] | None = None, progress: bool = False, stop: bool = True
         ) -> tuple[Sweeper, dict, str, int, float]:
    stacks = [stack_rows(d) for d in datasets]
    if type(net) is MPO and any(s.intercept_rows is not None for s in stacks):
        raise ValueError("sweep: derivative (force) rows need a network linear in its input (MPS, TTN, dense); "
                         "the MPO is quadratic in it")
    sweeper = _make_sweeper(net, [s.data for s in stacks], cfg)
    solver = _Solver(cfg, has_val, stacks, fixed)
    n_energy = [d.n_structures for d in datasets]
    hist: dict[str, list] = {"train_rmse": [], "val_rmse": [], "bond_dims": [], "lambda_median": [],
                             "seconds": [], "discarded_max": []}
    best = (math.inf, -1, None, 0.0)
    reason = f"reached n_sweeps={n_passes}"
    bar = range(n_passes)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(bar, desc=f"sweep {type(net).__name__}", unit="pass", leave=False)
    since = 0
    for i in bar:
        t0 = time.perf_counter()
        n_lam, n_disc = len(solver.lams), len(sweeper.discarded)
        sweeper.run_pass("right" if i % 2 == 0 else "left", solver)
        res, b = _pass_residuals(solver)
        # the recorded RMSE is that of the energy rows (standardised units), whatever else is fitted
        errs = [float(torch.sqrt((r[:n] * r[:n]).mean())) for r, n in zip(res, n_energy, strict=False)]
        hist["train_rmse"].append(errs[0])
        hist["val_rmse"].append(errs[1] if has_val else None)
        hist["bond_dims"].append(sweeper.bond_dims)
        hist["lambda_median"].append(float(np.median(solver.lams[n_lam:])))
        hist["discarded_max"].append(max(sweeper.discarded[n_disc:], default=0.0))
        hist["seconds"].append(time.perf_counter() - t0)
        if progress:
            bar.set_postfix(train=f"{errs[0]:.4g}", val=f"{errs[1]:.4g}" if has_val else "-",
                            chi=max(sweeper.bond_dims, default=1))
        k = 1 if has_val else 0
        score = _score(res[k], solver.base[k], solver.masks[k], cfg)
        if score < best[0] * (1 - cfg.tol):
            best, since = (score, i, sweeper.snapshot(), b), 0
        else:
            since += 1
            if stop and since >= cfg.patience:
                what = "RMSE" if cfg.loss == "squared_error" else "Huber loss"
                reason = (f"{'validation' if has_val else 'training'} {what} did not improve by {cfg.tol:g} "
                          f"(relative) for {cfg.patience} pass(es)")
                break
    if stop and best[2] is not None:
        sweeper.restore(best[2])
    hist["lambdas"] = solver.lams
    hist["trace"] = solver.trace
    return sweeper, hist, reason, best[1] + 1 if stop else n_passes, best[3] if stop else b


def sweep_fit(net: TensorNetwork, train: SweepData, val: SweepData | None = None,
              config: SweepConfig | None = None, *, refit_data: SweepData | None = None) -> SweepResult:
    """Fit ``net`` in place by two-site sweeps; see the module docstring.  Targets are used as given
    (standardise them first).  Returns the network, its intercept and the per-pass history."""
    cfg = config or SweepConfig()
    cfg.check()
    t0 = time.perf_counter()
    init = {k: v.detach().clone() for k, v in net.state_dict().items()}
    datasets = [train] + ([val] if val is not None else [])
    sweeper, hist, reason, n_best, b = _run(net, datasets, cfg, cfg.n_sweeps, has_val=val is not None,
                                            progress=cfg.verbose > 0)
    hist = {"selection": hist, "best_pass": n_best}
    if cfg.refit and refit_data is not None:
        net.load_state_dict(init)
        steps = len(hist["selection"]["trace"]) // max(1, len(hist["selection"]["train_rmse"])) * n_best
        lams = hist["selection"]["lambdas"][:steps]
        # the evidence needs no held-out rows: the refit chooses every strength again on all of them
        fixed = None if cfg.alpha_selection == "evidence" else lams
        sweeper, refit_hist, _, _, b = _run(net, [refit_data], cfg, n_best, has_val=False, fixed=fixed,
                                            progress=cfg.verbose > 0, stop=False)
        hist["refit"] = refit_hist
        reason += f"; refitted on all {refit_data.n_structures} structures for {n_best} pass(es)"
    sweeper.install(net)
    hist["seconds_total"] = time.perf_counter() - t0
    return SweepResult(network=net, intercept=float(b), history=hist, stop_reason=reason, n_passes=n_best,
                       bond_dims=sweeper.bond_dims)
