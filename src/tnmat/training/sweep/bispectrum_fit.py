"""Sweep fits of an MPS on the factorised bispectrum (:class:`~tnmat.training.sweep.bispectrum.BispectrumInput`).

* :class:`BispectrumSweepData` is the bispectrum's counterpart of :class:`~tnmat.training.sweep.data.SweepData`
  for :func:`~tnmat.training.sweep.sweep_fit`: the chain sweeper asks it for its environments, which compute
  every pair's design rows from the per-atom expansions (:meth:`BispectrumInput.local_features`).
* :func:`leg_factors` is the input scaling: one factor per value of each slot leg (a, n, l), fitted to the
  training atoms' channel magnitudes (log rms[a, n, l] ~ alpha_a + beta_n + gamma_l), so that the entries
  of the scaled B3 are of order one without the dense entry-wise statistics.  A per-leg diagonal scaling
  is absorbed into the cores after the fit, so the fitted network acts on the unscaled bispectrum.
* :func:`fit_estimator` / :func:`predict_estimator` are what ``MPSRegressor(solver="sweep").fit(X, y)`` runs
  when X is a :class:`BispectrumInput`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from tnmat.training.engine import TrainResult
from tnmat.training.sweep.bispectrum import BispectrumInput
from tnmat.training.sweep.engine import sweep_fit
from tnmat.training.sweep.estimator import fit_members, sweep_config

__all__ = ["BispectrumSweepData", "leg_factors", "absorb_factors", "fit_estimator", "predict_estimator"]


class _Env:
    """Chain-sweeper environment of a bispectrum input: keeps the current cores (the pair's local features
    are recomputed from the per-atom expansions at every step)."""

    def __init__(self, inp: BispectrumInput) -> None:
        self.inp = inp

    def start(self, cores: list[torch.Tensor], direction: str) -> None:
        self.cores = list(cores)

    def phi(self, k: int, direction: str) -> torch.Tensor:
        return self.inp.local_features(self.cores, k)

    def advance(self, k: int, direction: str, core: torch.Tensor) -> None:
        self.cores[k if direction == "right" else k + 1] = core


class BispectrumSweepData:
    """A bispectrum input and its (standardised) targets, as :func:`~tnmat.training.sweep.sweep_fit` takes
    them (MPS only: the structure prediction is linear in the atom-averaged input)."""

    def __init__(self, inp: BispectrumInput, y: Any) -> None:
        self.inp = inp
        self.y = torch.as_tensor(np.asarray(y, dtype=np.float64)).reshape(-1)
        if len(self.y) != inp.n_structures:
            raise ValueError(f"BispectrumSweepData: {inp.n_structures} structures but {len(self.y)} targets")

    @property
    def n_structures(self) -> int:
        return self.inp.n_structures

    def averaged(self) -> BispectrumSweepData:
        return self  # the local features are structure means already

    def chain_env(self, copies: int, sizes: tuple[int, ...]) -> _Env:
        if copies != 1:
            raise ValueError("sweep: the factorised bispectrum input supports the MPS (linear in B3), not the MPO")
        if tuple(sizes) != self.inp.sizes:
            raise ValueError(f"sweep: the network has leg sizes {tuple(sizes)}, the bispectrum input "
                             f"{self.inp.sizes} (legs {self.inp.legs})")
        return _Env(self.inp)

    def as_dense(self) -> torch.Tensor:
        raise ValueError("sweep: the factorised bispectrum input supports the MPS only (the TTN sweeper needs "
                         "dense inputs, (s n (l_max+1))^3 entries per structure)")


def leg_factors(inp: BispectrumInput) -> list[torch.Tensor]:
    """(f_a, f_n, f_l): exp(-(alpha_a + beta_n + gamma_l)) for the least-squares additive fit of log rms[a, n, l],
    rms the root mean square over the atoms of sum_m A[a, n, lm]^2 / (2l+1) (channels that never occur
    are left out of the fit)."""
    s, n, nl = inp.n_species, int(inp.a.shape[2]), inp.l_max + 1
    power = torch.zeros(s, n, nl, dtype=torch.float64)
    power.index_add_(2, inp.l_index, (inp.a.double() ** 2).mean(0))
    rms = (power / (2 * torch.arange(nl) + 1).to(power)).sqrt()
    ok = rms > 1e-12 * float(rms.max().clamp_min(1e-300))
    ia, in_, il = torch.nonzero(ok, as_tuple=True)
    design = torch.zeros(len(ia), s + n + nl, dtype=torch.float64)
    rows = torch.arange(len(ia))
    design[rows, ia], design[rows, s + in_], design[rows, s + n + il] = 1.0, 1.0, 1.0
    coef = torch.linalg.lstsq(design, rms[ok].log()[:, None], driver="gelsd").solution[:, 0]
    f = torch.exp(-coef)
    return [f[:s], f[s:s + n], f[s + n:]]


def absorb_factors(cores: list[torch.Tensor], factors: list[torch.Tensor], center: bool) -> list[torch.Tensor]:
    """Cores of the network on the unscaled input: core j times the factor of its leg (slot legs a, n, l)."""
    out = [c.clone() for c in cores]
    for j in range(int(center), len(out)):
        f = factors[(j - int(center)) % 3].to(out[j])
        out[j] = out[j] * f[None, :, None]
    return out


def _split(est: Any, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Training and validation structures (``validation_fraction`` of them, as the base estimator draws)."""
    if est.validation_fraction > 0 and n >= 2:
        n_val = min(n - 1, max(1, int(round(est.validation_fraction * n))))
        perm = np.random.default_rng(seed).permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    return np.arange(n), None


def fit_estimator(est: Any, X: BispectrumInput, y: Any, *, X_val: BispectrumInput | None = None,
                  y_val: Any = None) -> Any:
    """Fit ``est`` (an MPS estimator with ``solver="sweep"``) on a bispectrum input; sets the attributes of
    a fitted estimator (the network acts on the slot-ordered bispectrum legs, x_mean_ 0, x_std_ 1)."""
    from sklearn.utils import check_random_state

    t0 = time.perf_counter()
    name = type(est).__name__
    est._check_params()
    if est._kind() != "mps" or est.solver_ != "sweep":
        raise ValueError(f"{name}: a BispectrumInput is fitted by solver='sweep' on the MPS only "
                         f"(got model {est._kind()!r}, solver {est.solver_!r})")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(y) != X.n_structures or not np.isfinite(y).all():
        raise ValueError(f"{name}: y has {len(y)} values ({int((~np.isfinite(y)).sum())} not finite) for "
                         f"{X.n_structures} structures")
    if (X_val is None) != (y_val is None):
        raise ValueError(f"{name}: pass both X_val and y_val, or neither")
    seed = int(check_random_state(est.random_state).randint(0, 2**31 - 1))
    if X_val is not None:
        tr, va = np.arange(X.n_structures), None
        val_inp, yv = X_val, np.asarray(y_val, dtype=np.float64).reshape(-1)
    else:
        tr, va = _split(est, X.n_structures, seed)
        val_inp, yv = (None, None) if va is None else (X.select(va), y[va])
    train_inp = X if va is None else X.select(tr)
    est.y_mean_ = float(y[tr].mean()) if est.standardize_target else 0.0
    sd = float(y[tr].std()) if est.standardize_target else 1.0
    est.y_std_ = sd if sd > 1e-12 * (1 + abs(est.y_mean_)) else 1.0
    factors = leg_factors(train_inp) if est.standardize_inputs else [torch.ones(n) for n in X.sizes[-3:]]

    def data(inp: BispectrumInput, t: np.ndarray) -> BispectrumSweepData:
        return BispectrumSweepData(inp.scaled(factors), (t - est.y_mean_) / est.y_std_)

    net = est._build_network(X.sizes, dtype=torch.float64, seed=seed)
    cfg = sweep_config(est, fit_intercept=bool(est.fit_intercept))
    train, val = data(train_inp, y[tr]), None if val_inp is None else data(val_inp, yv)
    refit = data(X, y) if va is not None else None
    if est.n_members > 1:  # independent initial networks merged into one MPS, as on dense inputs
        net, res = fit_members(est, net, train, val, cfg, refit, torch.Generator().manual_seed(seed))
    else:
        res = sweep_fit(net, train, val, cfg, refit_data=refit)
    cores = absorb_factors([c.detach() for c in net.cores], factors, X.center_species)
    dtype = torch.float32 if est.dtype == "float32" else torch.float64
    net.cores = nn.ParameterList([nn.Parameter(c.to(dtype).contiguous()) for c in cores])
    sel = res.history["selection"]
    _set_fitted(est, net, X, res, sel)
    est.fit_seconds_ = time.perf_counter() - t0
    return est


def _set_fitted(est: Any, net: nn.Module, X: BispectrumInput, res: Any, sel: dict) -> None:
    est.network_ = net
    est.device_ = torch.device("cpu")
    est.legs_, est.leg_sizes_ = X.legs, X.sizes
    est.legs_from_legtensor_, est.per_atom_ = True, False
    est.n_features_in_ = math.prod(X.sizes)
    est.x_mean_, est.x_std_ = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    est.intercept_ = float(res.intercept) * est.y_std_ if est.fit_intercept else 0.0
    est.n_parameters_ = int(sum(p.numel() for p in net.parameters()))
    est.history_ = {k: list(sel[k]) for k in ("train_rmse", "val_rmse", "bond_dims", "lambda_median", "seconds",
                                              "discarded_max")}
    est.history_["stop_reason"] = [res.stop_reason]
    for key in ("member_bond_dims", "member_train_rmse"):  # n_members > 1
        if key in res.history:
            est.history_[key] = res.history[key]
    n_passes = len(sel["train_rmse"])
    out = TrainResult(history=est.history_, best_epoch=res.n_passes - 1, n_epochs=n_passes,
                      n_steps=len(sel.get("lambdas", [])), stopped_early=n_passes < int(est.n_sweeps))
    est.best_epoch_, est.n_epochs_, est.n_steps_, est.stopped_early_ = (out.best_epoch, out.n_epochs, out.n_steps,
                                                                        out.stopped_early)


def predict_estimator(est: Any, X: BispectrumInput) -> np.ndarray:
    """Predictions (target units) of a fitted MPS estimator on a bispectrum input."""
    if tuple(X.sizes) != tuple(est.leg_sizes_) or X.legs != tuple(est.legs_):
        raise ValueError(f"{type(est).__name__}: the bispectrum input has legs {X.legs} sizes {X.sizes}, the model "
                         f"was fitted on {tuple(est.legs_)} {tuple(est.leg_sizes_)}")
    z = X.contract([c.detach().cpu() for c in est.network_.cores]).numpy()
    return est.y_mean_ + est.intercept_ + est.y_std_ * z
