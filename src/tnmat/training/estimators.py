"""scikit-learn regressors that train the tensor networks of :mod:`tnmat.networks` (paper Section III).

``TensorNetworkRegressor(model=...)`` is the general estimator; ``MPSRegressor``, ``MPORegressor``,
``TTNRegressor``, ``MERARegressor``, ``DenseACERegressor`` and ``FeatureMapMPSRegressor`` fix the model.

Inputs are a :class:`tnmat.LegTensor` (one network site per leg) or a plain array of shape
``(n, *leg_sizes)`` / ``(n, prod(leg_sizes))`` with ``leg_sizes`` given; a 2-D array with
``leg_sizes=None`` is one leg of size n_features (for a multilinear model: a linear model).  A per-atom
LegTensor (``structure_index`` set) trains a *local* model (paper eq. 1): the network is applied to every
atom and a structure's prediction is the mean over its atoms (targets are per atom / per cation).  Note
that for models *linear* in the descriptor (DenseACE, MPS, TTN, MERA) the mean of the outputs equals the
output on the mean descriptor, so the local form only changes the function class for models that are
nonlinear in it (MPO, FeatureMapMPS, DNN); it still changes the input standardisation statistics.

Solver (every tensor-network estimator)
---------------------------------------
Every parameter, its default and its constraint are declared once in :mod:`tnmat.training.params`.
solver : "auto" (default: the measured best for the network, :func:`tnmat.training.params.resolve_solver`:
    sweeps for MPS, MPO, TTN and dense, Adam for the MERA and the feature-map MPS), "sweep" (two-site
    alternating least squares, :mod:`tnmat.training.sweep`, with ``bond_dim`` as the largest bond it may grow
    to; a single closed-form ridge solve for the dense model) or "adam" (mini-batch gradient descent, the
    settings below).  ``tnmat fit`` and every command use the same default.  Fitted: ``solver_``, ``loss_``
    (what "auto" resolved to).
n_sweeps : most passes over the pairs (sweeps stop earlier when the validation RMSE stalls).
svd_cutoff : relative singular-value cutoff of the truncated split (adaptive bond dimension).
alphas : ridge strengths scanned at every local solve (None: 1e-4..1e4, 17 values).
alpha_selection : "evidence" (default): every strength by the Bayesian evidence of the local problem on
    the training rows (:mod:`tnmat.training.sweep.solve`); validation rows only stop the passes, and the
    refit on all rows chooses the strengths again.  "validation": chosen on the validation rows (GCV without
    them), then refitted on all training rows with the chosen strengths and number of passes.  Measured in
    results/defaults/default_policy.json.  Sweep solver only.
n_members : sweep-fitted MPS / TTN only: fit this many networks from the initial states of seeds
    random_state, random_state + 1, ... on the same rows and keep their mean, folded into one network of
    the same kind whose bonds are the sums of theirs (:func:`tnmat.networks.direct_sum`).  Default 1.
loss : "auto" (default: "huber" under sweeps, "squared_error" under Adam and for fits with force or stress rows,
    :func:`tnmat.training.params.resolve_loss`), "squared_error" or "huber": the
    Huber loss with threshold ``huber_delta`` (in units of
    the training target's standard deviation when ``standardize_target``; default 0.02, the lowest
    validation MAE of 0.01-0.2 on NMD18's official split) by iteratively reweighted least squares inside the
    local solves (:mod:`tnmat.training.sweep`; the dense model: ``n_sweeps`` reweighted ridge solves).
    Structures the descriptor describes badly then weigh linearly, not quadratically; on NMD18 it lowers
    the test MAE by 1.7 meV/cation (docs/results/sweep.md).  Sweep solver only.
force_weight : force matching (MPS, TTN, dense under sweeps, structure-averaged energies per atom):
    ``fit(X, y, forces=ForceRows)`` (:func:`tnmat.training.force_rows.force_rows` gives the descriptor
    Jacobians and reference forces of ASE structures) adds every force component as a derivative row of
    the local solves, F = -N y_std <W, (dBbar/dr) / x_std>; ``force_weight`` is the weight of a structure's
    mean squared force error relative to its squared energy error, each in units of its training spread
    (:mod:`tnmat.training.force_rows`; 0: energies only).  Fitted: ``force_scale_`` (RMS force, eV/A).
stress_weight : the same for the stress (virial) rows of ForceRows built with ``stress=True`` (default 0: none).
    Fitted: ``stress_scale_`` (RMS stress component, eV/A^3).
Fitted: ``bond_dims_``; ``history_`` holds per-pass
    "train_rmse", "val_rmse" (standardised target units), "bond_dims", "lambda_median", "seconds",
    "stop_reason".

Parameters common to all estimators
-----------------------------------
leg_sizes : sizes of the legs for plain-array inputs (None: the array's trailing shape, or one leg).
learning_rate, batch_size (structures per step), max_epochs : Adam settings (paper Appendix D).
patience : epochs without validation improvement before stopping (None: run all epochs).
validation_fraction : random share of the structures held out when ``X_val`` is not given (0: none).
weight_decay : L2 penalty added to the gradient by Adam.
lr_schedule : None (constant), "plateau" (halve on stalled monitored loss) or "cosine" (to 1 % over
    max_epochs).
standardize_inputs : entry-wise (x - mean) / std from the training rows (zero variance -> std 1).
standardize_target : fit on (y - mean) / std; predictions are returned in target units.
dtype : "float32" or "float64"; device : "cpu", "cuda", ... or "auto" (cuda when available).
random_state : seeds initialisation, the validation split, shuffling and dropout (same seed -> identical
    predictions on the same device).
verbose : 0 silent; >= 1 a tqdm bar over epochs when stderr is a terminal; >= 2 one line per epoch.
callbacks : list of ``cb(estimator, epoch, step, logs)`` (see :mod:`tnmat.training.callbacks`).

Fitted attributes: ``network_``, ``n_parameters_`` (trainable network scalars, without the intercept),
``history_`` (per-epoch "train_loss" = running mini-batch MSE, "val_loss" (empty without validation), both
in target units, "lr", "seconds"), ``best_epoch_`` (0-based index into the history whose weights were
restored: lowest validation loss, or lowest training loss without validation), ``n_epochs_``,
``n_steps_``, ``stopped_early_``, ``fit_seconds_``, ``x_mean_``/``x_std_`` (input offset/scale),
``y_mean_``/``y_std_``, ``intercept_`` (trained offset, target units), ``legs_``, ``leg_sizes_``,
``per_atom_``, ``device_``, ``n_features_in_``; after :meth:`load` also ``extra_``.
Predictions are ``y_mean_ + intercept_ + y_std_ * network_(x_scaled)`` (averaged over atoms if local).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from sklearn.utils.validation import check_is_fitted

from tnmat.networks.factory import KINDS
from tnmat.training.base import SHARED_PARAMS, NetworkRegressor
from tnmat.training.params import estimator_init, resolve_loss, resolve_solver

__all__ = [
    "MODEL_KINDS", "TensorNetworkRegressor", "MPSRegressor", "MPORegressor", "TTNRegressor", "MERARegressor",
    "DenseACERegressor", "FeatureMapMPSRegressor", "DNNRegressor",
]

#: the network kinds TensorNetworkRegressor(model=...) accepts (:data:`tnmat.networks.KINDS`)
MODEL_KINDS = KINDS


def _minmax_scaling(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Offset min and scale (max - min) mapping the training rows to [0, 1] entry-wise (Stoudenmire &
    Schwab's local map phi(x) = [1 - x, x] expects x in [0, 1]); constant entries get scale 1."""
    lo, hi = values.amin(0), values.amax(0)
    rng = hi - lo
    return lo, torch.where(rng > 1e-12 * (1 + lo.abs()), rng, torch.ones_like(rng))


class _TensorNetworkEstimator(NetworkRegressor):
    """What every tensor-network estimator shares (not used directly): the network kind (``self.model``:
    a parameter of :class:`TensorNetworkRegressor`, a class constant of the fixed-model estimators), the
    bond dimension, the trained intercept and the construction through :func:`tnmat.networks.make_network`.

    fit_intercept : train a scalar offset next to the network (default True).  The networks are
        multilinear without bias; the target mean removes the offset exactly only when the network's
        training-set mean output is zero (linear models on standardised inputs), not for the MPO, the
        feature-map MPS or unstandardised inputs.  False gives the paper's pure multilinear model."""

    model: str

    def _kind(self) -> str:
        return self.model

    def _uses_bond_dim(self) -> bool:
        return self._kind() != "dense"

    def _solver(self) -> str:
        return resolve_solver(self._kind(), self.solver)

    def _check_model_params(self) -> None:
        name = type(self).__name__
        if self._kind() not in MODEL_KINDS:
            raise ValueError(f"{name}: model={self._kind()!r} is invalid; choose one of {', '.join(MODEL_KINDS)}")
        from tnmat.training.sweep.estimator import check_sweep_params

        check_sweep_params(self, self._kind())
        self.solver_ = self._solver()
        self.loss_ = resolve_loss(self.solver_, self.loss)

    def _squash(self) -> bool:
        return self._kind() == "feature-map-mps"

    def _train(self, net: torch.nn.Module, train_rows: Any, y_train: torch.Tensor, cfg: Any, *, val_rows: Any,
               y_val: torch.Tensor | None, generator: torch.Generator, intercept: torch.nn.Parameter | None,
               refit_rows: Any) -> Any:
        if self.solver_ != "sweep":
            return super()._train(net, train_rows, y_train, cfg, val_rows=val_rows, y_val=y_val,
                                  generator=generator, intercept=intercept, refit_rows=refit_rows)
        from tnmat.training.sweep.estimator import fit_by_sweeps

        return fit_by_sweeps(self, net, train_rows, y_train, val_rows=val_rows, y_val=y_val, intercept=intercept,
                             refit_rows=refit_rows, generator=generator)

    def fit(self, X: Any, y: Any, *, X_val: Any = None, y_val: Any = None, forces: Any = None,
            forces_val: Any = None, structure_weight: Any = None) -> _TensorNetworkEstimator:
        """Fit on descriptors (see the base class), or by sweeps on a factorised bispectrum input
        (:class:`~tnmat.training.sweep.bispectrum.BispectrumInput`; MPS with ``solver="sweep"``).  ``forces``
        (``forces_val``): :class:`~tnmat.training.force_rows.ForceRows` of X's (X_val's) structures: their
        forces are fitted with the energies, weighted by ``force_weight`` (:mod:`tnmat.training.force_rows`;
        MPS, TTN and dense under sweeps, energies per atom); ``structure_weight``: one weight > 0 per structure of
        X, multiplying its energy, force and stress rows (sweeps only; weight k = the structure k times at a
        fixed ridge strength)."""
        from tnmat.training.sweep.bispectrum import BispectrumInput

        if isinstance(X, BispectrumInput):
            if forces is not None or forces_val is not None or structure_weight is not None:
                raise ValueError(f"{type(self).__name__}: forces= and structure_weight= apply to dense descriptor "
                                 "inputs, not the factorised bispectrum")
            from tnmat.training.sweep.bispectrum_fit import fit_estimator

            return fit_estimator(self, X, y, X_val=X_val, y_val=y_val)
        return super().fit(X, y, X_val=X_val, y_val=y_val, forces=forces, forces_val=forces_val,
                           structure_weight=structure_weight)

    def _check_forces(self, forces: Any, n_structures: int, sizes: tuple[int, ...], what: str = "forces") -> None:
        """Force rows need a network linear in its input fitted by sweeps, and one entry per structure."""
        if forces is None:
            return
        from tnmat.training.force_rows import ForceRows

        name = type(self).__name__
        if self.solver_ != "sweep" or self._kind() not in ("mps", "ttn", "dense"):
            raise ValueError(f"{name}: {what}= applies to the sweep-fitted MPS, TTN and dense models (solver="
                             f"'sweep'), not model={self._kind()!r} with solver={self.solver_!r}")
        if not isinstance(forces, ForceRows):
            raise ValueError(f"{name}: {what}= must be a tnmat.training.force_rows.ForceRows, got "
                             f"{type(forces).__name__}")
        forces.check(name, n_structures, sizes, what)

    def _check_structure_weight(self, structure_weight: Any, n_structures: int) -> Any:
        """Per-structure weights (finite, > 0, one per structure) for the sweep fits; refused elsewhere."""
        if structure_weight is None:
            return None
        import numpy as np

        name = type(self).__name__
        if self.solver_ != "sweep":
            raise ValueError(f"{name}: structure_weight applies to solver='sweep' (the solver is {self.solver_!r})")
        w = np.asarray(structure_weight, dtype=np.float64).reshape(-1)
        if len(w) != n_structures or not np.isfinite(w).all() or not (w > 0).all():
            raise ValueError(f"{name}: structure_weight must be {n_structures} finite numbers > 0 (one per structure)")
        return w

    def _with_forces(self, rows: Any, forces: Any, idx: Any, *, weights: Any = None, fit: bool = False) -> Any:
        """``rows`` with the per-structure ``weights`` and the standardised force rows of the structures ``idx``
        (none when ``force_weight`` is 0); at fit, sigma_F (``force_scale_``) from the training structures'
        forces."""
        from dataclasses import replace

        from tnmat.training import force_rows as fr

        if weights is not None:
            w = weights if idx is None else weights[idx]
            rows = replace(rows, weights=torch.as_tensor(w, dtype=torch.float64))
        fw, sw = float(self.force_weight), float(self.stress_weight)
        if forces is None or (fw == 0.0 and (sw == 0.0 or not forces.has_stress)):
            return rows
        part = forces.subset(idx)
        w = None if rows.weights is None else rows.weights.numpy()
        if fit:
            self.force_scale_, self.stress_scale_ = fr.force_scale(part, w), fr.stress_scale(part, w)
        d = fr.derivative_rows(part, x_std=self.x_std_, y_std=self.y_std_, force_weight=fw, sigma_f=self.force_scale_,
                               net_sizes=self._network_sizes(tuple(self.leg_sizes_)), perm=fr._perm(self, forces),
                               stress_weight=sw, sigma_s=self.stress_scale_, structure_weight=w)
        return replace(rows, derivative=d)

    def predict(self, X: Any) -> Any:
        """Predictions in target units (float64), one per structure; X may be a bispectrum input."""
        from tnmat.training.sweep.bispectrum import BispectrumInput

        if isinstance(X, BispectrumInput):
            from tnmat.training.sweep.bispectrum_fit import predict_estimator

            check_is_fitted(self, "network_")
            return predict_estimator(self, X)
        return super().predict(X)

    @property
    def bond_dims_(self) -> list[int]:
        """Virtual bond dimensions of the fitted network (adaptive under ``solver="sweep"``)."""
        from tnmat.training.sweep.estimator import network_bond_dims

        check_is_fitted(self, "network_")
        return network_bond_dims(self.network_)

    def _fits_intercept(self) -> bool:
        return bool(self.fit_intercept)

    def _network_sizes(self, leg_sizes: tuple[int, ...]) -> tuple[int, ...]:
        if self._kind() == "feature-map-mps":  # one site per feature (paper Fig. 11)
            return (math.prod(leg_sizes),)
        return leg_sizes

    def _input_scaling(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._squash() and self.standardize_inputs:  # min-max to [0, 1] replaces standardisation
            return _minmax_scaling(values)
        return super()._input_scaling(values)

    def _build_network(self, sizes: tuple[int, ...], *, dtype: torch.dtype, seed: int) -> torch.nn.Module:
        from tnmat.networks import make_network
        from tnmat.training.sweep.estimator import adapt_shapes_on_load

        bond = self.bond_dim if self._uses_bond_dim() else None
        # a saved sweep-fitted network has adaptive bond dimensions: loading a state resizes the cores
        return adapt_shapes_on_load(make_network(self._kind(), sizes, bond, dtype=dtype, seed=seed))


#: the training parameters of every tensor-network estimator (besides the shared ones of NetworkRegressor)
TN_PARAMS: tuple[str, ...] = ("fit_intercept", "solver", "n_sweeps", "svd_cutoff", "alphas", "alpha_selection",
                              "n_members", "loss", "huber_delta", "force_weight", "stress_weight",
                              *SHARED_PARAMS)


class TensorNetworkRegressor(_TensorNetworkEstimator):
    """Tensor-network regressor: ``model`` in {"dense", "mps", "mpo", "ttn", "mera", "feature-map-mps"}
    with virtual bond dimension ``bond_dim`` (ignored by "dense"); ``fit_intercept`` as in the fixed-model
    estimators.  See the module docstring for the other parameters and the fitted attributes."""

    __init__ = estimator_init(("bond_dim", *TN_PARAMS), first={"model": "mps"})


class MPSRegressor(_TensorNetworkEstimator):
    """Matrix product state over the legs, boundary bonds 1, uniform bond dimension (paper eq. 17)."""

    model: ClassVar[str] = "mps"

    __init__ = estimator_init(("bond_dim", *TN_PARAMS))


class MPORegressor(_TensorNetworkEstimator):
    """Matrix product operator model y = <B|T|B> on two copies of the input (paper eq. 18).

    input_offset : constant c added to every standardised input entry, so the network sees x = z + c 1
        (z = (B - mean) / std, 1 the all-ones tensor, a product state).  y = <x|T|x> is a quadratic form:
        on centred inputs (c = 0, the default) it has no term linear in z, while with c != 0 it gains
        c (<1|T|z> + <z|T|1>) + c^2 <1|T|1>, i.e. a linear model next to the quadratic one, as the paper's
        unstandardised B (whose mean is far from zero) implicitly has.  Ignored when
        ``standardize_inputs=False``."""

    model: ClassVar[str] = "mpo"

    __init__ = estimator_init(("bond_dim", "input_offset", *TN_PARAMS))

    def _input_scaling(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        offset, scale = super()._input_scaling(values)
        if not self.standardize_inputs:
            return offset, scale
        # (x - (mean - c std)) / std = z + c
        return offset - float(self.input_offset) * scale, scale


class TTNRegressor(_TensorNetworkEstimator):
    """Binary tree tensor network over the legs (paper Fig. 29)."""

    model: ClassVar[str] = "ttn"

    __init__ = estimator_init(("bond_dim", *TN_PARAMS))


class MERARegressor(_TensorNetworkEstimator):
    """Binary MERA (disentanglers + isometries) over the legs (paper Fig. 29)."""

    model: ClassVar[str] = "mera"

    __init__ = estimator_init(("bond_dim", *TN_PARAMS))


class FeatureMapMPSRegressor(_TensorNetworkEstimator):
    """Stoudenmire-Schwab MPS on the flattened descriptor with phi(x) = [1 - x, x] (paper eq. 19).

    squash : with ``standardize_inputs=True``, True (default) min-max scales every feature to [0, 1]
        from the training rows (Stoudenmire & Schwab scale their inputs to [0, 1] for phi(x) = [1 - x, x];
        x_mean_/x_std_ then hold min and max - min; other data may fall slightly outside [0, 1], which phi
        extends linearly); False standardises entry-wise like the other models (the seed paper's
        "standardised descriptor").  ``standardize_inputs=False`` passes the raw features."""

    model: ClassVar[str] = "feature-map-mps"

    __init__ = estimator_init(("bond_dim", "squash", *TN_PARAMS))

    def _squash(self) -> bool:
        return bool(self.squash)


class DenseACERegressor(_TensorNetworkEstimator):
    """The full weight tensor contracted with all legs: the linear ACE model (paper eq. 16).  No bond
    dimension; its parameter count is the product of the leg sizes."""

    model: ClassVar[str] = "dense"

    __init__ = estimator_init(TN_PARAMS)


class DNNRegressor(NetworkRegressor):
    """The dense neural-network baseline (:class:`tnmat.baselines.dnn.MLP`: a fully connected ReLU network on
    the flattened, standardised descriptor) trained by Adam like the tensor networks; with per-atom inputs
    a local (atomic) network averaged over each structure's atoms.

    hidden_layer_sizes : widths of the hidden layers (default (1024, 512, 256): about 1.7e6 parameters on
        the NMD18 power spectrum, the order of magnitude quoted for the competition's SOAP network).
    dropout : dropout probability after each hidden ReLU (0: none)."""

    _flatten_inputs = True

    __init__ = estimator_init(("hidden_layer_sizes", "dropout", *SHARED_PARAMS))

    def _build_network(self, sizes: tuple[int, ...], *, dtype: torch.dtype, seed: int) -> torch.nn.Module:
        from tnmat.baselines.dnn import MLP

        return MLP(math.prod(sizes), tuple(int(h) for h in self.hidden_layer_sizes), dropout=float(self.dropout),
                   dtype=dtype, seed=seed)
