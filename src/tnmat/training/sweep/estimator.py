"""The estimators' ``solver="sweep"``: standardised estimator rows -> :func:`tnmat.training.sweep.sweep_fit`.

Also the closed-form counterpart for the dense (DenseACE) model, whose single "site" is the whole weight
tensor: one ridge solve with the same strength selection, and the function that gives a network the tensor
shapes of a saved state (sweep-fitted networks have adaptive bond dimensions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from tnmat.networks.dense import DenseACE
from tnmat.training._data import Rows
from tnmat.training.engine import TrainResult
from tnmat.training.params import SWEEP_KINDS, resolve_loss, resolve_solver
from tnmat.training.sweep.data import SweepData, stack_rows
from tnmat.training.sweep.engine import DEFAULT_ALPHAS, SweepConfig, huber_weights, sweep_fit
from tnmat.training.sweep.solve import LocalRows, ridge_local_solve

__all__ = ["check_sweep_params", "sweep_config", "fit_by_sweeps", "match_state_shapes",
           "adapt_shapes_on_load", "network_bond_dims"]

def check_sweep_params(est: Any, kind: str) -> None:
    """The sweep's own cross-checks of a tensor-network estimator (the table's constraints and the solver
    applicability are checked by :func:`tnmat.training.params.validate_params` before): the network and the
    ensemble size must suit the resolved solver."""
    name = type(est).__name__
    solver = resolve_solver(kind, est.solver)
    if resolve_loss(solver, est.loss) == "huber" and solver != "sweep":
        raise ValueError(f"{name}: loss='huber' applies to solver='sweep' only (the solver is {solver!r})")
    if solver != "sweep":
        return
    if kind == "mera":
        raise ValueError(f"{name}: solver='sweep' does not apply to the MERA (its loops admit no canonical "
                         "gauge and an SVD split breaks the unitary disentanglers); use solver='adam'")
    if kind not in SWEEP_KINDS:
        raise ValueError(f"{name}: solver='sweep' supports the {', '.join(SWEEP_KINDS)} models, not {kind!r}")
    if est.n_members > 1 and kind not in ("mps", "ttn"):
        raise ValueError(f"{name}: n_members={est.n_members} applies to the sweep-fitted MPS and TTN (their sum "
                         f"is one network of the same kind), not to {kind!r}")


def sweep_config(est: Any, *, fit_intercept: bool, derivative_rows: bool = False) -> SweepConfig:
    """The one translation of a (validated) estimator's parameters into the sweep fitter's settings
    (``derivative_rows``: force or stress rows are fitted, which changes what loss="auto" means)."""
    alphas = DEFAULT_ALPHAS if est.alphas is None else tuple(float(a) for a in est.alphas)
    solver = resolve_solver(est._kind(), est.solver)
    return SweepConfig(max_bond_dim=int(getattr(est, "bond_dim", 1) or 1), n_sweeps=int(est.n_sweeps),
                       svd_cutoff=float(est.svd_cutoff), alphas=alphas, fit_intercept=fit_intercept,
                       alpha_selection=est.alpha_selection, verbose=int(est.verbose),
                       loss=resolve_loss(solver, est.loss, derivative_rows=derivative_rows),
                       huber_delta=float(est.huber_delta))


def _data(rows: Rows, y: torch.Tensor) -> SweepData:
    groups = None
    if rows.counts is not None:
        c = rows.counts.cpu()
        groups = torch.repeat_interleave(torch.arange(len(c)), c)
    d = rows.derivative
    return SweepData(rows.x.detach().cpu().to(torch.float64), y.detach().cpu().to(torch.float64), groups,
                     weights=rows.weights, dx=None if d is None else d.dx, dy=None if d is None else d.dy,
                     dweights=None if d is None else d.dweights)


def _fit_dense(net: DenseACE, train: SweepData, val: SweepData | None, cfg: SweepConfig) -> tuple[float, dict]:
    """Closed-form ridge on the full weight tensor (strength by validation, else GCV, or by the evidence
    when ``cfg`` asks for it), refit excluded.  With the Huber loss: ``n_sweeps`` reweighted solves (IRLS,
    the weights of :func:`~tnmat.training.sweep.huber_weights` from the previous solve's residuals).  Weights
    and derivative (force) rows of the data enter as in the sweeps (:func:`stack_rows`)."""
    sets = [stack_rows(d.averaged()) for d in (train, val) if d is not None]
    select = cfg.alpha_selection if cfg.alpha_selection in ("evidence", "fixed") else (
        "validation" if len(sets) > 1 else "gcv")
    xs = [s.data.as_dense().reshape(len(s.data.y), -1) for s in sets]
    masks = [None if s.intercept_rows is None else s.intercept_rows.to(torch.float64) for s in sets]
    hub: list[torch.Tensor | None] = [None] * len(sets)

    def weights(i: int) -> torch.Tensor | None:
        base = sets[i].weights
        return hub[i] if base is None else base if hub[i] is None else base * hub[i]

    def residual(i: int) -> torch.Tensor:
        return xs[i] @ sol.m + (1.0 if masks[i] is None else masks[i]) * sol.intercept - sets[i].data.y

    for _ in range(cfg.n_sweeps if cfg.loss == "huber" else 1):
        held = LocalRows(xs[1], sets[1].data.y, weights(1), sets[1].intercept_rows) if len(sets) > 1 else None
        sol = ridge_local_solve(xs[0], sets[0].data.y, cfg.alphas, select=select, val=held,
                                fit_intercept=cfg.fit_intercept, weights=weights(0),
                                intercept_rows=sets[0].intercept_rows)
        # Huber on the energy rows; derivative rows stay least squares (they may be compressed, stack_rows)
        hub = [huber_weights(residual(i), cfg.huber_delta) if masks[i] is None else
               torch.where(sets[i].intercept_rows, huber_weights(residual(i), cfg.huber_delta), 1.0)
               for i in range(len(sets))]
    param = next(net.parameters())
    with torch.no_grad():
        param.copy_(sol.m.reshape(param.shape).to(param.dtype))
    # the recorded RMSE is that of the energy rows (standardised units)
    rmse = [float(residual(i)[: d.n_structures].square().mean().sqrt()) for i, d in
            enumerate(d for d in (train, val) if d is not None)]
    hist = {"train_rmse": [rmse[0]], "val_rmse": [rmse[1] if len(rmse) > 1 else None], "lambdas": [sol.lam]}
    return sol.intercept, hist


def fit_members(est: Any, net: nn.Module, train: Any, val: Any, cfg: SweepConfig, refit: Any,
                generator: torch.Generator | None) -> tuple[nn.Module, Any]:
    """``n_members`` sweep fits from independent initial networks (``net`` first, then networks of its sizes
    seeded from ``generator``), folded into one network by the direct sum with weights 1/K and rounded to the
    rank of the mean (lossless); returns it and the first member's result (its intercept replaced by the
    members' mean).  The data are dense or factorised sweep inputs (anything :func:`sweep_fit` takes)."""

    from tnmat.networks.direct_sum import direct_sum
    from tnmat.networks.rounding import round_network

    results = [sweep_fit(net, train, val, cfg, refit_data=refit)]
    from tnmat.memory import check_memory, direct_sum_bytes

    # the merge's block tensors, from the first member's bonds: refused now, not after every fit
    check_memory(direct_sum_bytes(results[0].network, est.n_members),
                 f"n_members={est.n_members} (--members; the merged network of bonds {results[0].bond_dims} x "
                 f"{est.n_members})")
    dtype = next(net.parameters()).dtype
    for _ in range(1, int(est.n_members)):
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        member = est._build_network(tuple(net.sizes), dtype=dtype, seed=seed)
        results.append(sweep_fit(member, train, val, cfg, refit_data=refit))
    # the members' own records: bonds and final training RMSE (of the refit when there is one)
    last = [r.history["refit"]["train_rmse"][-1] if "refit" in r.history
            else r.history["selection"]["train_rmse"][r.n_passes - 1] for r in results]
    first = replace(results[0], intercept=float(sum(r.intercept for r in results) / len(results)))
    first.history = {**first.history, "member_bond_dims": [r.bond_dims for r in results],
                     "member_train_rmse": last}
    # rounded (lossless, rtol 1e-12): the direct sum's bonds can exceed the rank of the mean across them
    return round_network(direct_sum([r.network for r in results])), first


def fit_by_sweeps(est: Any, net: nn.Module, train_rows: Rows, y_train: torch.Tensor, *, val_rows: Rows | None,
                  y_val: torch.Tensor | None, intercept: nn.Parameter | None,
                  refit_rows: Callable[[], tuple[Rows, torch.Tensor]] | None,
                  generator: torch.Generator | None = None) -> TrainResult:
    """Fit ``net`` by two-site sweeps (closed form for the dense model), then, when validation rows were
    split off the training set, refit on all of them with the chosen settings.  Sets ``est.network_``
    (the fitted network, with its new bond dimensions) and the intercept; returns the history."""
    cfg = sweep_config(est, fit_intercept=intercept is not None, derivative_rows=train_rows.derivative is not None)
    est.loss_ = cfg.loss
    train = _data(train_rows, y_train)
    val = None if val_rows is None else _data(val_rows, y_val)
    device = next(net.parameters()).device
    net = net.cpu()
    if isinstance(net, DenseACE):
        if refit_rows is not None:  # the strength is chosen on the held-out rows; the refit uses all of them
            b, hist = _fit_dense(net, train, val, cfg)
            if cfg.alpha_selection != "evidence":  # the evidence chooses again on all rows
                cfg = replace(cfg, alphas=(hist["lambdas"][0],), alpha_selection="fixed")
            b, _ = _fit_dense(net, _data(*refit_rows()), None, cfg)
        else:
            b, hist = _fit_dense(net, train, val, cfg)
        history, n_passes, best, stopped = hist, 1, 0, False
    else:
        refit = None if refit_rows is None else _data(*refit_rows())
        if getattr(est, "n_members", 1) > 1:
            net, res = fit_members(est, net, train, val, cfg, refit, generator)
        else:
            res = sweep_fit(net, train, val, cfg, refit_data=refit)
        sel = res.history["selection"]
        b = res.intercept
        history = {k: list(sel[k]) for k in ("train_rmse", "val_rmse", "bond_dims", "lambda_median", "seconds",
                                             "discarded_max")}
        history["stop_reason"] = [res.stop_reason]
        for key in ("member_bond_dims", "member_train_rmse"):  # n_members > 1
            if key in res.history:
                history[key] = res.history[key]
        if "refit" in res.history:
            history["refit_train_rmse"] = list(res.history["refit"]["train_rmse"])
            history["refit_seconds"] = list(res.history["refit"]["seconds"])
        n_passes, best = len(sel["train_rmse"]), res.n_passes - 1
        stopped = n_passes < cfg.n_sweeps
    est.network_ = net.to(device)
    if intercept is not None:
        with torch.no_grad():
            intercept.fill_(float(b))
    return TrainResult(history=history, best_epoch=best, n_epochs=n_passes,
                       n_steps=len(history.get("lambdas", [])) or n_passes, stopped_early=stopped)


def match_state_shapes(net: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Replace every parameter of ``net`` whose saved tensor in ``state`` has another shape by an empty one
    of the saved shape (sweep-fitted networks have adaptive bond dimensions), so ``load_state_dict`` fits."""
    for name, saved in state.items():
        try:
            cur = net.get_parameter(name)
        except AttributeError:
            continue
        if tuple(cur.shape) != tuple(saved.shape):
            owner, _, leaf = name.rpartition(".")
            setattr(net.get_submodule(owner) if owner else net, leaf,
                    nn.Parameter(torch.empty(saved.shape, dtype=cur.dtype, device=cur.device)))
    return net


def _resize_before_load(module: nn.Module, state: dict, prefix: str, *args: Any) -> None:
    """``load_state_dict`` pre-hook (module level, so fitted estimators stay picklable)."""
    match_state_shapes(module, {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


def adapt_shapes_on_load(net: nn.Module) -> nn.Module:
    """Register a ``load_state_dict`` pre-hook on ``net`` that first gives its parameters the saved shapes
    (:func:`match_state_shapes`); the top module's hook runs before any submodule loads its tensors."""
    net.register_load_state_dict_pre_hook(_resize_before_load)
    return net


def network_bond_dims(net: nn.Module) -> list[int]:
    """Virtual bond dimensions of a fitted network: chain bonds (MPS, MPO, feature-map MPS) or the output
    dimension of every non-top tree node (TTN, MERA); [] for the dense model."""
    cores: Sequence[torch.Tensor] | None = getattr(net, "cores", None)
    if cores is not None:
        return [int(c.shape[-1]) for c in list(cores)[:-1]]
    layers = getattr(net, "layers", None)
    if layers is not None:
        return [int(w.shape[-1]) for layer in list(layers)[:-1] for w in layer.isometries]
    return []
