"""Shared machinery of the torch estimators: parameter checks, input scaling, fit/predict, save/load.

Concrete estimators (tensor networks in :mod:`tnmat.training.estimators`, the DNN baseline in
:class:`tnmat.training.DNNRegressor`) only say which network to build (:meth:`NetworkRegressor._build_network`),
on which leg sizes (:meth:`NetworkRegressor._network_sizes`) and how inputs are scaled.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from tnmat._estimator_file import load_estimator_file, register_loader
from tnmat.training import persistence
from tnmat.training._data import DTYPES as _DTYPES
from tnmat.training._data import Inputs, Rows, check_targets, convert_inputs, resolve_device
from tnmat.training.engine import TrainConfig, TrainResult, predict_rows, train_network
from tnmat.training.params import PARAMS, estimator_init, validate_params

#: the parameters every torch estimator takes (defaults and constraints: :mod:`tnmat.training.params`)
SHARED_PARAMS: tuple[str, ...] = (
    "leg_sizes", "learning_rate", "batch_size", "max_epochs", "patience", "validation_fraction", "weight_decay",
    "lr_schedule", "standardize_inputs", "input_scale_floor", "standardize_target", "dtype", "device",
    "random_state", "verbose", "callbacks")

__all__ = ["NetworkRegressor", "SHARED_PARAMS"]


class NetworkRegressor(RegressorMixin, BaseEstimator):
    """Base of the torch regressors (not used directly).  See :class:`TensorNetworkRegressor`.

    Subclasses set ``__init__ = estimator_init(names)`` (:mod:`tnmat.training.params`: an explicit signature,
    which sklearn inspects, with the table's defaults) naming :data:`SHARED_PARAMS` and their own
    parameters; they implement :meth:`_build_network`.  Mixins come before
    ``BaseEstimator`` (sklearn >= 1.6 requires this order for the tags to resolve)."""

    #: when True the inputs are flattened to one leg of size n_features before the network
    _flatten_inputs: ClassVar[bool] = False

    __init__ = estimator_init(SHARED_PARAMS)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = inspect.signature(cls.__init__).parameters
        for n in SHARED_PARAMS:  # one default per parameter: the table's
            if n not in own or own[n].default != PARAMS[n].default:
                raise TypeError(f"{cls.__name__}.__init__ must take the shared parameter {n}={PARAMS[n].default!r} "
                                "(tnmat.training.params.estimator_init)")
        # the file names its class; loading rebuilds it through the one estimator file
        register_loader(cls.__name__, functools.partial(persistence.restore_estimator, cls))

    # ------------------------------------------------------------------ hooks for subclasses
    def _build_network(self, sizes: tuple[int, ...], *, dtype: torch.dtype, seed: int) -> torch.nn.Module:
        """A fresh network mapping (batch, *sizes) -> (batch,)."""
        raise NotImplementedError

    def _network_sizes(self, leg_sizes: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(leg_sizes),) if self._flatten_inputs else leg_sizes

    def _check_model_params(self) -> None:
        """Validate the subclass's own parameters (called at fit)."""

    def _fits_intercept(self) -> bool:
        """Whether a scalar offset is trained next to the network (multilinear networks have no bias)."""
        return False

    def _input_scaling(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Offset and scale (entry-wise, float64) so that the network sees (x - offset) / scale.  Default:
        standardisation from the training rows; zero-variance entries get scale 1 (never NaN), and no scale is
        below ``input_scale_floor`` times the RMS spread of the varying entries: an entry that barely varies
        in training (a species pair present in a few structures) would otherwise turn a test structure rich in
        it into an extrapolation by 1e5 standard deviations."""
        if not self.standardize_inputs:
            return torch.zeros(values.shape[1:], dtype=torch.float64), torch.ones(values.shape[1:],
                                                                                  dtype=torch.float64)
        mean = values.mean(0)
        std = values.std(0, unbiased=False)
        varying = std > 1e-12 * (1 + mean.abs())
        if bool(varying.any()) and self.input_scale_floor > 0:
            floor = float(self.input_scale_floor) * float(std[varying].pow(2).mean().sqrt())
            std = torch.where(varying, std.clamp_min(floor), std)
        return mean, torch.where(varying, std, torch.ones_like(std))

    # ------------------------------------------------------------------ validation
    def _solver(self) -> str:
        """The resolved solver (estimators with sweeps override this)."""
        return "adam"

    def _check_params(self) -> TrainConfig:
        """The one validation of the parameters at fit (:func:`tnmat.training.params.validate_params`), then
        the subclass's own checks; the Adam settings as a :class:`TrainConfig`."""
        name = type(self).__name__
        validate_params(self, self._get_param_names(), solver=self._solver())
        resolve_device(self.device, name)
        self._check_model_params()
        return TrainConfig(
            learning_rate=float(self.learning_rate), batch_size=int(self.batch_size),
            max_epochs=int(self.max_epochs), patience=None if self.patience is None else int(self.patience),
            weight_decay=float(self.weight_decay), lr_schedule=self.lr_schedule, verbose=int(self.verbose),
            description=name,
        )

    # ------------------------------------------------------------------ data plumbing
    def _match_fitted(self, inp: Inputs, X: Any, what: str) -> Inputs:
        """Bring inputs to the fitted leg order and check sizes and the per-atom layout."""
        name = type(self).__name__
        from tnmat.legtensor import LegTensor

        if isinstance(X, LegTensor) and self.legs_from_legtensor_ and inp.legs != tuple(self.legs_):
            if sorted(inp.legs) != sorted(self.legs_):
                raise ValueError(f"{name}: {what} has legs {inp.legs}, the model was fitted on {tuple(self.legs_)}")
            perm = [0] + [inp.legs.index(leg) + 1 for leg in self.legs_]
            inp = Inputs(values=inp.values.permute(perm).contiguous(), legs=tuple(self.legs_),
                         starts=inp.starts, counts=inp.counts)
        if inp.sizes != tuple(self.leg_sizes_):
            if math.prod(inp.sizes) == math.prod(self.leg_sizes_) and len(inp.sizes) == 1:
                inp = Inputs(values=inp.values.reshape(-1, *self.leg_sizes_), legs=tuple(self.legs_),
                             starts=inp.starts, counts=inp.counts)
            else:
                raise ValueError(f"{name}: {what} has leg sizes {inp.sizes}, the model was fitted on "
                                 f"{tuple(self.leg_sizes_)} (legs {tuple(self.legs_)})")
        if inp.per_atom != self.per_atom_:
            kind = "per-atom" if self.per_atom_ else "per-structure"
            raise ValueError(f"{name}: the model was fitted on {kind} descriptors (local model: "
                             f"{self.per_atom_}); {what} must be {kind} as well")
        return inp

    def _rows(self, inp: Inputs, select: np.ndarray | None = None) -> Rows:
        """Scaled network inputs (optionally only the given structures) on the fitted device."""
        dev, dt = self.device_, _DTYPES[self.dtype]
        starts, counts, values = inp.starts, inp.counts, inp.values
        if select is not None:
            values = values[inp.row_mask(select)]
            if counts is not None:
                counts = counts[torch.as_tensor(select, dtype=torch.long)]
                starts = torch.cumsum(counts, 0) - counts
        x = ((values - self.x_mean_.to(torch.float64)) / self.x_std_.to(torch.float64))
        x = x.reshape(x.shape[0], *self._network_sizes(tuple(self.leg_sizes_)))
        return Rows(x=x.to(device=dev, dtype=dt), starts=None if starts is None else starts.to(dev),
                    counts=None if counts is None else counts.to(dev))

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None, forces: Any = None,
            forces_val: Any = None, structure_weight: Any = None) -> NetworkRegressor:
        """Train with Adam on MSE (paper Appendix D); validation from (X_val, y_val) or a random
        ``validation_fraction`` of the structures; early stopping with best-weights restore.  ``forces`` /
        ``forces_val``: :class:`~tnmat.training.force_rows.ForceRows` of the structures of X / X_val (force
        matching); ``structure_weight``: one weight > 0 per structure of X (estimators that support them; not
        scikit-learn's ``sample_weight``: the input scaling and the validation split stay unweighted, so weight k
        equals k copies only at fixed scaling and strength)."""
        t_start = time.perf_counter()
        cfg = self._check_params()
        name = type(self).__name__
        from tnmat.legtensor import LegTensor

        inp = convert_inputs(self, X, leg_sizes=self.leg_sizes, reset=True)
        y = check_targets(self, y, inp.n_structures)
        self._check_forces(forces, inp.n_structures, inp.sizes)
        sw = self._check_structure_weight(structure_weight, inp.n_structures)
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        self.device_ = resolve_device(self.device, name)
        self.legs_, self.leg_sizes_ = tuple(inp.legs), tuple(inp.sizes)
        self.legs_from_legtensor_ = isinstance(X, LegTensor)
        self.per_atom_ = inp.per_atom
        train_idx, val_inp, val_idx, yv = self._validation_split(inp, y, X_val, y_val, np.random.default_rng(seed))
        y_tr = y if train_idx is None else y[train_idx]
        if X_val is not None:
            self._check_forces(forces_val, val_inp.n_structures, val_inp.sizes, "forces_val")
        self._fit_scaling(inp, train_idx, y_tr)
        dev, dt = self.device_, _DTYPES[self.dtype]
        train_rows = self._with_forces(self._rows(inp, train_idx), forces, train_idx, weights=sw, fit=True)
        y_train_t = torch.as_tensor((y_tr - self.y_mean_) / self.y_std_, dtype=dt, device=dev)
        val_rows, y_val_t = None, None
        if val_inp is not None:
            val_f, val_w = (forces_val, None) if X_val is not None else (forces, sw)
            val_rows = self._with_forces(self._rows(val_inp, val_idx), val_f, val_idx, weights=val_w)
            y_val_t = torch.as_tensor((yv - self.y_mean_) / self.y_std_, dtype=dt, device=dev)

        fork = [dev.index or 0] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=fork):
            # seeds the global generators used by dropout, without disturbing the caller's state
            torch.manual_seed(seed)
            net = self._build_network(self._network_sizes(self.leg_sizes_), dtype=dt, seed=seed).to(dev)
            self.network_ = net
            gen = torch.Generator().manual_seed(seed)
            b = torch.nn.Parameter(torch.zeros((), dtype=dt, device=dev)) if self._fits_intercept() else None

            def all_rows() -> tuple[Rows, torch.Tensor]:  # every training structure (for a refit after selection)
                return (self._with_forces(self._rows(inp), forces, None, weights=sw),
                        torch.as_tensor((y - self.y_mean_) / self.y_std_, dtype=dt, device=dev))

            try:
                res = self._train(net, train_rows, y_train_t, cfg, val_rows=val_rows, y_val=y_val_t, generator=gen,
                                  intercept=b, refit_rows=all_rows if train_idx is not None else None)
            except BaseException:
                del self.network_  # never leave a half-trained (possibly NaN) network looking fitted
                raise
            net = self.network_
            self.n_parameters_ = int(sum(p.numel() for p in net.parameters() if p.requires_grad))
        # the trained offset in target units: predictions are y_mean_ + intercept_ + y_std_ * net(x)
        self.intercept_ = 0.0 if b is None else float(b.detach()) * self.y_std_
        self.history_ = res.history
        self.best_epoch_ = res.best_epoch
        self.n_epochs_ = res.n_epochs
        self.n_steps_ = res.n_steps
        self.stopped_early_ = res.stopped_early
        self.fit_seconds_ = time.perf_counter() - t_start
        return self

    def _validation_split(self, inp: Inputs, y: np.ndarray, X_val: Any, y_val: Any, rng: np.random.Generator
                          ) -> tuple[np.ndarray | None, Inputs | None, np.ndarray | None, np.ndarray | None]:
        """(training indices, validation inputs, their indices, validation targets): X_val as given, or a random
        ``validation_fraction`` of the structures (None where there is none)."""
        name = type(self).__name__
        if (X_val is None) != (y_val is None):
            raise ValueError(f"{name}: pass both X_val and y_val, or neither")
        n = inp.n_structures
        if X_val is not None:
            val_inp = self._match_fitted(convert_inputs(self, X_val, leg_sizes=self.leg_sizes, reset=False),
                                         X_val, "X_val")
            return None, val_inp, None, check_targets(self, y_val, val_inp.n_structures, what="y_val")
        if self.validation_fraction > 0 and n >= 2:
            n_val = min(n - 1, max(1, int(round(self.validation_fraction * n))))
            perm = rng.permutation(n)
            val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            return train_idx, inp, val_idx, y[val_idx]
        return None, None, None, None

    def _check_structure_weight(self, structure_weight: Any, n_structures: int) -> np.ndarray | None:
        """Refuse per-structure weights (estimators that fit them override this)."""
        if structure_weight is not None:
            raise ValueError(f"{type(self).__name__}: structure_weight applies to the sweep-fitted MPS, MPO, TTN and "
                             "dense models (solver='sweep')")
        return None

    def _fit_scaling(self, inp: Inputs, train_idx: np.ndarray | None, y_tr: np.ndarray) -> None:
        """x_mean_, x_std_ (:meth:`_input_scaling`), y_mean_, y_std_ from the training rows only."""
        tr_values = inp.values if train_idx is None else inp.values[inp.row_mask(train_idx)]
        mean, std = self._input_scaling(tr_values)
        self.x_mean_, self.x_std_ = mean.to(torch.float64), std.to(torch.float64)
        self.y_mean_ = float(y_tr.mean()) if self.standardize_target else 0.0
        sd = float(y_tr.std()) if self.standardize_target else 1.0
        self.y_std_ = sd if sd > 1e-12 * (1 + abs(self.y_mean_)) else 1.0

    def _check_forces(self, forces: Any, n_structures: int, sizes: tuple[int, ...], what: str = "forces") -> None:
        """Refuse force rows (estimators that fit them override this)."""
        if forces is not None:
            raise ValueError(f"{type(self).__name__}: {what}= applies to the sweep-fitted MPS, TTN and dense "
                             "models (solver='sweep')")

    def _with_forces(self, rows: Rows, forces: Any, idx: np.ndarray | None, *, weights: np.ndarray | None = None,
                     fit: bool = False) -> Rows:
        """``rows`` with the standardised force rows and the per-structure weights of the structures ``idx``
        attached (estimators that fit them override this)."""
        return rows

    def _train(self, net: torch.nn.Module, train_rows: Rows, y_train: torch.Tensor, cfg: TrainConfig, *,
               val_rows: Rows | None, y_val: torch.Tensor | None, generator: torch.Generator,
               intercept: torch.nn.Parameter | None, refit_rows: Any) -> TrainResult:
        """Fit the network's weights in place: Adam on MSE (paper Appendix D).  Estimators with other
        solvers override this; ``refit_rows()`` gives every training structure (None when none was held
        out)."""
        return train_network(net, train_rows, y_train, replace(cfg, y_scale=self.y_std_), val=val_rows, y_val=y_val,
                             generator=generator, callbacks=list(self.callbacks or ()), estimator=self,
                             intercept=intercept)

    def _predict_tensor(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "network_")
        inp = self._match_fitted(convert_inputs(self, X, leg_sizes=self.leg_sizes, reset=False), X, "X")
        return predict_rows(self.network_, self._rows(inp))

    def predict(self, X: Any) -> np.ndarray:
        """Predictions in target units (float64), one per structure."""
        out = self._predict_tensor(X).to("cpu", torch.float64).numpy() * self.y_std_ + self.y_mean_
        out += getattr(self, "intercept_", 0.0)
        bad = np.flatnonzero(~np.isfinite(out))
        if len(bad):
            raise FloatingPointError(f"{type(self).__name__}: the network produced NaN/inf for rows "
                                     f"{bad[:10].tolist()}{' ...' if len(bad) > 10 else ''}")
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write weights, parameters, scaling, history and ``extra`` (plain containers) to one file."""
        check_is_fitted(self, "network_")
        return persistence.save_estimator(self, path, extra=extra)

    @classmethod
    def load(cls, path: str | Path) -> NetworkRegressor:
        """Read a file written by :meth:`save` (returns the saved estimator class, e.g. MPSRegressor)."""
        est = load_estimator_file(path)
        if not isinstance(est, cls):
            raise ValueError(f"{path}: holds a {type(est).__name__}, not a {cls.__name__}; "
                             "use tnmat.training.load_estimator")
        return est

    def __sklearn_tags__(self):  # noqa: ANN204 - sklearn's Tags type
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags

