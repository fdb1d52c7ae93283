"""Gaussian-process regression baselines on structure descriptors (paper Section IV A, Fig. 12).

Two kernels, both with a signal variance s and a white-noise variance sigma^2 fitted by maximising the
log marginal likelihood (Rasmussen & Williams, eq. 2.30)

    log p(y | X) = -1/2 y^T K^-1 y - 1/2 log|K| - n/2 log 2 pi,   K = s K0 + sigma^2 I,

on the standardised targets (``normalize_y``):

* ``kernel="rbf"``: K0 = exp(-|x - x'|^2 / (2 l^2)) on the flattened, entry-wise standardised descriptor,
  with the length scale l fitted too (scikit-learn's ``ConstantKernel * RBF + WhiteKernel``).
* ``kernel="soap"``: K0 = (x.x' / (|x| |x'|))^zeta, the normalised dot product of power spectra raised to
  an integer zeta (Bartok, Kondor & Csanyi, PRB 87, 184115 (2013); De et al., PCCP 18, 13754 (2016)).
  ``soap_mode="averaged"`` builds it from the structure-averaged descriptors; ``soap_mode="local"`` averages
  the local-environment kernel over all atom pairs of the two structures and normalises the result,
  K0(A, B) = kbar(A, B) / sqrt(kbar(A, A) kbar(B, B)),  kbar(A, B) = mean_{i in A, j in B} k(x_i, x_j).

Because K0 of the SOAP kernel has no free parameter, the marginal likelihood of K = s K0 + sigma^2 I is
maximised exactly in O(n) per evaluation after one eigendecomposition K0 = Q diag(lambda) Q^T
(d_i = s lambda_i + sigma^2, u = Q^T y: log p = -1/2 sum u_i^2/d_i - 1/2 sum log d_i - n/2 log 2 pi).
On 2000 structures x 1024 features this is ~8x faster than scikit-learn's optimiser with the same kernel
(``solver="sklearn"``, which refactorises K at every step) and than a torch Cholesky + L-BFGS fit; see the
numbers in the class docstring.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import scipy.optimize
import scipy.sparse
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Kernel, WhiteKernel

from tnmat._estimator_file import register_loader, write_estimator_file
from tnmat.legtensor import LegTensor

__all__ = ["GPRRegressor", "SoapKernel", "soap_kernel", "local_soap_kernel"]

#: Bounds of the signal variance s (standardised target units), as scikit-learn's ConstantKernel default.
SIGNAL_BOUNDS = (1e-5, 1e5)


# ---------------------------------------------------------------------------------------------- kernels
def _unit_rows(F: np.ndarray, what: str) -> np.ndarray:
    """Rows divided by their Euclidean norm; a zero row has no direction and is an error."""
    norms = np.linalg.norm(F, axis=1)
    bad = np.flatnonzero(~(norms > 0))
    if len(bad):
        raise ValueError(f"SOAP kernel: {what} row {int(bad[0])} has zero (or non-finite) norm; the normalised "
                         "dot product is undefined (empty environment?)")
    return F / norms[:, None]


def soap_kernel(A: np.ndarray, B: np.ndarray | None = None, *, zeta: int = 2) -> np.ndarray:
    """K0[i, j] = (a_i . b_j / (|a_i| |b_j|))^zeta for feature rows a_i, b_j (SOAP kernel, unit diagonal).

    Positive semi-definite for integer zeta (Schur product theorem applied to the cosine Gram matrix)."""
    Ua = _unit_rows(np.asarray(A, dtype=np.float64), "first")
    Ub = Ua if B is None else _unit_rows(np.asarray(B, dtype=np.float64), "second")
    G = np.clip(Ua @ Ub.T, -1.0, 1.0)  # rounding can push |cos| a hair above 1
    if B is None:
        G = 0.5 * (G + G.T)
        np.fill_diagonal(G, 1.0)
    return G**zeta


def _averaging_matrix(structure_index: np.ndarray, n_structures: int) -> scipy.sparse.csr_matrix:
    """Sparse S with S[a, i] = 1/N_a when atom i belongs to structure a (so S k S^T averages over pairs)."""
    counts = np.bincount(structure_index, minlength=n_structures).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"local SOAP kernel: structure {int(np.flatnonzero(counts == 0)[0])} has no atoms")
    n = len(structure_index)
    return scipy.sparse.csr_matrix((1.0 / counts[structure_index], (structure_index, np.arange(n))),
                                   shape=(n_structures, n))


def _local_self(U: np.ndarray, sidx: np.ndarray, n: int, zeta: int) -> np.ndarray:
    """kbar(A, A) for every structure A (mean of the local kernel over the structure's own atom pairs)."""
    out = np.empty(n)
    order = np.argsort(sidx, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(sidx, minlength=n))])
    for a in range(n):
        Ua = U[order[bounds[a] : bounds[a + 1]]]
        out[a] = np.mean(np.clip(Ua @ Ua.T, -1.0, 1.0) ** zeta)
    return out


def local_soap_kernel(A: LegTensor, B: LegTensor | None = None, *, zeta: int = 2,
                      block: int = 4096) -> np.ndarray:
    """Normalised average of local SOAP kernels, K0(A, B) = kbar(A, B) / sqrt(kbar(A, A) kbar(B, B)).

    ``A`` and ``B`` are per-atom LegTensors (``structure_index`` set).  Cost O(N_atoms(A) N_atoms(B) F)
    time, computed in blocks of ``block`` atoms of ``B`` so memory stays O(N_atoms(A) block)."""
    for name, X in (("A", A), ("B", B)):
        if X is not None and not X.is_per_atom:
            raise ValueError(f"local_soap_kernel: {name} must be a per-atom LegTensor (structure_index set)")
    Ua = _unit_rows(A.flatten().detach().cpu().numpy().astype(np.float64), "atom")
    sa = A.structure_index.cpu().numpy()
    na = A.n_structures
    Sa = _averaging_matrix(sa, na)
    if B is None:
        Ub, sb, nb, Sb = Ua, sa, na, Sa
    else:
        Ub = _unit_rows(B.flatten().detach().cpu().numpy().astype(np.float64), "atom")
        sb = B.structure_index.cpu().numpy()
        nb = B.n_structures
        Sb = _averaging_matrix(sb, nb)
    K = np.zeros((na, nb))
    for start in range(0, len(Ub), block):
        stop = min(start + block, len(Ub))
        k_blk = np.clip(Ua @ Ub[start:stop].T, -1.0, 1.0) ** zeta  # (atoms A, block atoms of B)
        K += Sb[:, start:stop].dot((Sa.dot(k_blk)).T).T
    da = _local_self(Ua, sa, na, zeta)
    db = da if B is None else _local_self(Ub, sb, nb, zeta)
    K /= np.sqrt(np.outer(da, db))
    if B is None:
        K = 0.5 * (K + K.T)
        np.fill_diagonal(K, 1.0)
    return K


class SoapKernel(Kernel):
    """scikit-learn kernel K0(x, x') = (x.x' / (|x| |x'|))^zeta with no free hyper-parameters (zeta fixed).

    Combine with ``ConstantKernel`` and ``WhiteKernel`` for a fitted amplitude and noise."""

    def __init__(self, zeta: int = 2) -> None:
        self.zeta = zeta

    def __call__(self, X, Y=None, eval_gradient: bool = False):  # noqa: ANN001 - sklearn signature
        if eval_gradient and Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        K = soap_kernel(X, Y, zeta=self.zeta)
        if eval_gradient:
            return K, np.empty((K.shape[0], K.shape[1], 0))
        return K

    def diag(self, X) -> np.ndarray:  # noqa: ANN001
        return np.ones(np.asarray(X).shape[0])

    def is_stationary(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"SoapKernel(zeta={self.zeta})"


# ---------------------------------------------------------------------------------------------- estimator
def _matrix(X: Any, who: str, min_samples: int = 1) -> np.ndarray:
    """Flattened float64 feature matrix from a LegTensor (structure-averaged if per-atom) or a 2-D array
    (scikit-learn's ``check_array`` refuses sparse, complex, 1-D and empty input with its standard messages)."""
    from sklearn.utils.validation import check_array

    if isinstance(X, LegTensor):
        F = X.structure_mean().flatten().detach().cpu().numpy()
    elif isinstance(X, torch.Tensor):
        F = X.detach().cpu().numpy()
    else:
        F = X
    F = check_array(F, dtype=np.float64, ensure_all_finite=False, ensure_min_samples=min_samples)
    if not np.isfinite(F).all():
        row = int(np.flatnonzero(~np.isfinite(F).all(axis=1))[0])
        raise ValueError(f"GPRRegressor.{who}: X has non-finite entries (NaN or inf; row {row})")
    return F


def _nll_eig(theta: np.ndarray, lam: np.ndarray, u2: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood of K = s K0 + sigma^2 I in the eigenbasis of K0 and its gradient
    with respect to theta = (log s, log sigma^2)."""
    s, noise = np.exp(theta)
    d = s * lam + noise
    nll = 0.5 * np.sum(u2 / d) + 0.5 * np.sum(np.log(d)) + 0.5 * len(d) * math.log(2 * math.pi)
    w = 0.5 * (1.0 / d - u2 / d**2)  # d nll / d d_i
    return float(nll), np.array([np.sum(w * s * lam), np.sum(w * noise)])


class GPRRegressor(RegressorMixin, BaseEstimator):
    """Gaussian-process regression with an RBF or a SOAP kernel; hyper-parameters by maximum marginal
    likelihood (see the module docstring for the equations).

    Parameters
    ----------
    kernel: ``"rbf"`` or ``"soap"``.
    zeta: integer exponent of the SOAP kernel.
    soap_mode: ``"averaged"`` (kernel of structure-averaged descriptors) or ``"local"`` (normalised average of
        the atom-pair kernels; needs per-atom LegTensors, cost O(N_atoms^2 F)).
    normalize_y: standardise targets before fitting (the hyper-parameters then live in standardised units).
    n_restarts_optimizer: extra optimiser starts from log-uniform random hyper-parameters.
    noise: initial white-noise variance (standardised target units); fitted within ``noise_bounds``.
    noise_bounds: bounds of the noise variance.
    solver: ``"eigh"`` (exact eigendecomposition route, SOAP only) or ``"sklearn"`` (scikit-learn's
        ``GaussianProcessRegressor``; always used for RBF).
    random_state: seed of the optimiser restarts.

    Fitted attributes: ``signal_variance_``, ``noise_variance_``, ``length_scale_`` (RBF),
    ``log_marginal_likelihood_value_``, ``alpha_`` (dual coefficients, standardised units),
    ``n_parameters_`` = number of dual coefficients (training structures) + fitted hyper-parameters
    (3 for RBF: amplitude, length scale, noise; 2 for SOAP).  The training descriptors are also stored
    (needed for prediction) but are data, not parameters.

    Measured on 2000 structures x 1024 features (float64, a shared 2-core CPU, one fit each): the SOAP GPR
    by the eigendecomposition route takes 5.7 s, scikit-learn's optimiser with the same kernel 44 s and a
    torch Cholesky + L-BFGS (log hyper-parameters, autograd) 46 s, all reaching the same optimum
    (log marginal likelihood equal to 1e-9 relative); the RBF GPR (scikit-learn, length scale fitted too)
    took 78 s.
    """

    def __init__(self, kernel: str = "rbf", *, zeta: int = 2, soap_mode: str = "averaged",
                 normalize_y: bool = True, n_restarts_optimizer: int = 0, noise: float = 1e-2,
                 noise_bounds: tuple[float, float] = (1e-8, 10.0), solver: str = "eigh",
                 random_state: int | None = None) -> None:
        self.kernel = kernel
        self.zeta = zeta
        self.soap_mode = soap_mode
        self.normalize_y = normalize_y
        self.n_restarts_optimizer = n_restarts_optimizer
        self.noise = noise
        self.noise_bounds = noise_bounds
        self.solver = solver
        self.random_state = random_state

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        if self.kernel not in ("rbf", "soap"):
            raise ValueError(f"GPRRegressor: kernel must be 'rbf' or 'soap', got {self.kernel!r}")
        if self.soap_mode not in ("averaged", "local"):
            raise ValueError(f"GPRRegressor: soap_mode must be 'averaged' or 'local', got {self.soap_mode!r}")
        if self.solver not in ("eigh", "sklearn"):
            raise ValueError(f"GPRRegressor: solver must be 'eigh' or 'sklearn', got {self.solver!r}")
        if isinstance(self.zeta, bool) or int(self.zeta) != self.zeta or self.zeta < 1:
            raise ValueError(f"GPRRegressor: zeta must be a positive integer (keeps the kernel PSD for "
                             f"descriptors with negative entries), got {self.zeta!r}")
        lo, hi = self.noise_bounds
        if not (0 < lo <= self.noise <= hi):
            raise ValueError(f"GPRRegressor: need 0 < noise_bounds[0] <= noise <= noise_bounds[1], got "
                             f"noise={self.noise}, noise_bounds={self.noise_bounds}")
        if int(self.n_restarts_optimizer) < 0:
            raise ValueError("GPRRegressor: n_restarts_optimizer must be >= 0")
        if self.kernel == "soap" and self.soap_mode == "local" and self.solver == "sklearn":
            raise ValueError("GPRRegressor: soap_mode='local' is only available with solver='eigh'")

    def _targets(self, y: Any, n: int) -> np.ndarray:
        from sklearn.utils.validation import column_or_1d

        if y is None:
            raise ValueError("GPRRegressor requires y to be passed, but the target y is None")
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim != 1 or len(y) != n:
            raise ValueError(f"GPRRegressor.fit: y has shape {y.shape}, expected ({n},) (one target per structure)")
        if not np.isfinite(y).all():
            row = int(np.flatnonzero(~np.isfinite(y))[0])
            raise ValueError(f"GPRRegressor.fit: y has non-finite entries (row {row})")
        return y

    # ------------------------------------------------------------------ fit
    def fit(self, X: LegTensor | np.ndarray, y: np.ndarray, *, X_val: Any = None, y_val: Any = None) -> GPRRegressor:
        """Fit hyper-parameters by maximum marginal likelihood and store the dual coefficients.

        ``X_val``/``y_val`` are accepted for a uniform interface with the tensor-network regressors and ignored
        (the marginal likelihood needs no validation set)."""
        self._validate()
        local = self.kernel == "soap" and self.soap_mode == "local"
        if local:
            if not (isinstance(X, LegTensor) and X.is_per_atom):
                raise ValueError("GPRRegressor.fit: soap_mode='local' needs a per-atom LegTensor (structure_index)")
            n = X.n_structures
            self.n_features_in_ = X.n_features
        else:
            F = _matrix(X, "fit", min_samples=2)
            n = F.shape[0]
            self.n_features_in_ = F.shape[1]
        if n < 2:
            raise ValueError(f"GPRRegressor.fit: need at least 2 training structures, got {n}")
        y = self._targets(y, n)
        self.y_mean_ = float(y.mean()) if self.normalize_y else 0.0
        std = float(y.std()) if self.normalize_y else 1.0
        self.y_std_ = std if std > 0 else 1.0
        ys = (y - self.y_mean_) / self.y_std_

        if self.kernel == "rbf":
            self._fit_rbf(F, ys)
        elif self.solver == "sklearn":
            self._fit_soap_sklearn(F, ys)
        else:
            if local:
                self.X_train_ = X
                K0 = local_soap_kernel(X, zeta=int(self.zeta))
            else:
                self.X_train_ = _unit_rows(F, "training")
                K0 = soap_kernel(self.X_train_, zeta=int(self.zeta))
            self._fit_eigh(K0, ys)
        n_hyper = 3 if self.kernel == "rbf" else 2
        self.n_parameters_ = int(n + n_hyper)
        return self

    def _sklearn_kernel(self, n_features: int) -> Any:
        """The scikit-learn kernel template ``ConstantKernel * k + WhiteKernel`` at its starting values."""
        if self.kernel == "rbf":
            ell0 = math.sqrt(max(n_features, 1))  # typical distance between standardised rows ~ sqrt(2 F)
            k = RBF(ell0, (1e-3 * ell0, 1e3 * ell0))
        else:
            k = SoapKernel(int(self.zeta))
        return ConstantKernel(1.0, SIGNAL_BOUNDS) * k + WhiteKernel(self.noise, tuple(self.noise_bounds))

    def _fit_rbf(self, F: np.ndarray, ys: np.ndarray) -> None:
        self.x_mean_ = F.mean(0)
        sd = F.std(0)
        self.x_std_ = np.where(sd > 1e-12, sd, 1.0)  # constant (e.g. padded) entries stay at zero, no NaN
        Z = (F - self.x_mean_) / self.x_std_
        self._fit_sklearn_gp(self._sklearn_kernel(F.shape[1]), Z, ys)

    def _fit_soap_sklearn(self, F: np.ndarray, ys: np.ndarray) -> None:
        self._fit_sklearn_gp(self._sklearn_kernel(F.shape[1]), F, ys)

    def _fit_sklearn_gp(self, kern: Any, X: np.ndarray, ys: np.ndarray, *, optimise: bool = True) -> None:
        """Marginal-likelihood fit of ``ConstantKernel * k + WhiteKernel`` with scikit-learn (``optimise=False``:
        factorise at the kernel's current hyper-parameters, as a restore does); stores the fitted amplitude,
        noise, dual coefficients and log marginal likelihood."""
        gp = GaussianProcessRegressor(kern, normalize_y=False, n_restarts_optimizer=int(self.n_restarts_optimizer),
                                      random_state=self.random_state, alpha=1e-10,
                                      optimizer="fmin_l_bfgs_b" if optimise else None)
        gp.fit(X, ys)
        self.gp_ = gp
        self.kernel_ = gp.kernel_
        self.signal_variance_ = float(gp.kernel_.k1.k1.constant_value)
        self.noise_variance_ = float(gp.kernel_.k2.noise_level)
        self.alpha_ = np.asarray(gp.alpha_).ravel()
        self.log_marginal_likelihood_value_ = float(gp.log_marginal_likelihood_value_)
        if self.kernel == "rbf":
            self.length_scale_ = float(gp.kernel_.k1.k2.length_scale)

    @staticmethod
    def _eigh(K0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lam, Q = np.linalg.eigh(K0)
        return np.clip(lam, 0.0, None), Q  # K0 is PSD; tiny negative eigenvalues are rounding

    def _fit_eigh(self, K0: np.ndarray, ys: np.ndarray) -> None:
        lam, Q = self._eigh(K0)
        u2 = (Q.T @ ys) ** 2
        bounds = [tuple(np.log(SIGNAL_BOUNDS)), tuple(np.log(self.noise_bounds))]
        starts = [np.array([0.0, math.log(self.noise)])]
        rng = np.random.default_rng(self.random_state)
        for _ in range(int(self.n_restarts_optimizer)):
            starts.append(np.array([rng.uniform(*b) for b in bounds]))
        best = None
        for x0 in starts:
            res = scipy.optimize.minimize(_nll_eig, x0, args=(lam, u2), jac=True, method="L-BFGS-B", bounds=bounds)
            if best is None or res.fun < best.fun:
                best = res
        s, noise = np.exp(best.x)
        self._set_eigh_solution(lam, Q, ys, float(s), float(noise))

    def _set_eigh_solution(self, lam: np.ndarray, Q: np.ndarray, ys: np.ndarray, s: float, noise: float) -> None:
        """Dual coefficients (s K0 + sigma^2 I)^-1 y and the log marginal likelihood at (s, sigma^2)."""
        d = s * lam + noise
        u = Q.T @ ys
        self.signal_variance_ = float(s)
        self.noise_variance_ = float(noise)
        self.alpha_ = Q @ (u / d)
        self.log_marginal_likelihood_value_ = -float(_nll_eig(np.log([s, noise]), lam, u**2)[0])
        self.kernel_ = (f"{s:.4g} * SoapKernel(zeta={int(self.zeta)}, mode={self.soap_mode}) "
                        f"+ WhiteKernel({noise:.4g})")
        self._eig_ = (lam, Q, d)
        self.y_train_scaled_ = np.asarray(ys, dtype=np.float64)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write the fitted GPR to one file (format of :mod:`tnmat._estimator_file`): parameters, fitted
        hyper-parameters, scaling and the training descriptors and targets.  Loading
        (:func:`tnmat.training.load_estimator`) refactorises the kernel at the stored hyper-parameters, without
        re-optimising, so predictions are those of the saved model (to rounding, O(n^3) once)."""
        if not hasattr(self, "alpha_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("GPRRegressor is not fitted yet; call fit before save")
        params = self.get_params(deep=False)
        if not isinstance(params.get("random_state"), int | np.integer | type(None)):
            params["random_state"] = None
        fitted: dict[str, Any] = {k: getattr(self, k) for k in (
            "y_mean_", "y_std_", "n_features_in_", "n_parameters_", "signal_variance_", "noise_variance_",
            "log_marginal_likelihood_value_", "length_scale_", "x_mean_", "x_std_") if hasattr(self, k)}
        if hasattr(self, "gp_"):
            fitted.update(route="sklearn", theta=self.gp_.kernel_.theta, X_train=self.gp_.X_train_,
                          y_train=np.asarray(self.gp_.y_train_).ravel())
        else:
            fitted.update(route="eigh", y_train=self.y_train_scaled_)
            if isinstance(self.X_train_, LegTensor):
                fitted.update(X_train=self.X_train_.values, X_train_legs=list(self.X_train_.legs),
                              X_train_structure_index=self.X_train_.structure_index)
            else:
                fitted.update(X_train=self.X_train_)
        return write_estimator_file(path, type(self).__name__, params, fitted, extra=extra)

    @classmethod
    def _from_file(cls, blob: dict[str, Any], path: Path | None = None) -> GPRRegressor:
        """Inverse of :meth:`save` from the loaded file contents (the loader this class registers with
        :mod:`tnmat._estimator_file`; ``path`` only names the file in messages)."""
        params = dict(blob["params"])
        if isinstance(params.get("noise_bounds"), list):
            params["noise_bounds"] = tuple(params["noise_bounds"])
        est = cls(**params)
        est._validate()
        f = blob["fitted"]

        def arr(v: Any) -> Any:
            return v.numpy() if isinstance(v, torch.Tensor) else v

        for k in ("y_mean_", "y_std_", "n_features_in_", "n_parameters_", "length_scale_", "x_mean_", "x_std_"):
            if k in f:
                setattr(est, k, arr(f[k]))
        X, ys = arr(f["X_train"]), arr(f["y_train"])
        if f["route"] == "sklearn":
            kern = est._sklearn_kernel(int(est.n_features_in_)).clone_with_theta(arr(f["theta"]))
            est._fit_sklearn_gp(kern, X, ys, optimise=False)
        elif f["route"] == "eigh":
            if "X_train_legs" in f:
                sidx = f.get("X_train_structure_index")
                est.X_train_ = LegTensor(torch.as_tensor(X), tuple(f["X_train_legs"]), structure_index=sidx)
                K0 = local_soap_kernel(est.X_train_, zeta=int(est.zeta))
            else:
                est.X_train_ = X
                K0 = soap_kernel(X, zeta=int(est.zeta))
            lam, Q = est._eigh(K0)
            est._set_eigh_solution(lam, Q, ys, float(f["signal_variance_"]), float(f["noise_variance_"]))
        else:
            raise ValueError(f"unknown GPR route {f['route']!r}")
        if not (np.isfinite(est.alpha_).all() and math.isfinite(float(est.y_std_))):
            raise ValueError("restored GPR has non-finite coefficients")
        est.extra_ = dict(blob.get("extra") or {})
        return est

    # ------------------------------------------------------------------ predict
    def _cross_kernel(self, X: Any) -> np.ndarray:
        """K0(X, X_train) for the SOAP kernel (eigh route)."""
        if self.soap_mode == "local":
            if not (isinstance(X, LegTensor) and X.is_per_atom):
                raise ValueError("GPRRegressor.predict: soap_mode='local' needs a per-atom LegTensor")
            return local_soap_kernel(X, self.X_train_, zeta=int(self.zeta))
        F = _matrix(X, "predict")
        self._check_width(F)
        return soap_kernel(F, self.X_train_, zeta=int(self.zeta))

    def _check_width(self, F: np.ndarray) -> None:
        if F.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {F.shape[1]} features, but GPRRegressor is expecting {self.n_features_in_} "
                             "features as input")

    def predict(self, X: LegTensor | np.ndarray, return_std: bool = False):
        """Posterior mean (and, with ``return_std``, the posterior standard deviation of the latent function
        plus the fitted noise, as scikit-learn reports it) in the units of y."""
        if not hasattr(self, "alpha_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("GPRRegressor is not fitted yet; call fit first")
        if hasattr(self, "gp_"):
            F = _matrix(X, "predict")
            self._check_width(F)
            Z = F if self.kernel == "soap" else (F - self.x_mean_) / self.x_std_
            out = self.gp_.predict(Z, return_std=return_std)
            if return_std:
                mean, std = out
                return mean * self.y_std_ + self.y_mean_, std * self.y_std_
            return out * self.y_std_ + self.y_mean_
        Kx = self._cross_kernel(X)
        mean = self.signal_variance_ * (Kx @ self.alpha_)
        mean = mean * self.y_std_ + self.y_mean_
        if not return_std:
            return mean
        lam, Q, d = self._eig_
        V = (Kx @ Q) * self.signal_variance_
        var = self.signal_variance_ + self.noise_variance_ - np.sum(V**2 / d, axis=1)
        return mean, np.sqrt(np.clip(var, 0.0, None)) * self.y_std_


register_loader(GPRRegressor.__name__, GPRRegressor._from_file)
