"""MPO autoencoder: compress every leg of a descriptor tensor from d_in to d_latent (paper Fig. 18, Table I).

Encoder: an open-boundary MPO with cores E_k of shape (chi_{k-1}, d_latent, d_in_k, chi_k) (bond chi_enc),
mapping x (batch, d_in_1, ..., d_in_N) to

    z[b, o_1..o_N] = sum_{i} E_1[o_1, i_1] ... E_N[o_N, i_N] x[b, i_1..i_N]         (compressed tensor)

and a decoder MPO D_k (chi_{k-1}, d_in_k, d_latent, chi_k) (bond chi_dec) mapping z back to x_hat; both are
:class:`tnmat.networks.MPOMap` networks, applied site by site (the MPO is never densified).  Training: the
one training engine (:func:`tnmat.training.engine.train_network`, Adam) on the reconstruction MSE
mean((x_hat - x)^2), early stopping on a validation split, best weights restored.  Saved in the one
estimator file (:mod:`tnmat._estimator_file`).

Initialisation: every core is the (truncated) identity delta(o, i) on the first bond channel plus Gaussian
noise of standard deviation ``init_noise``; with d_latent = d_in and no noise the autoencoder is exactly the
identity, and for d_latent < d_in it starts as the projection onto the first d_latent basis states of every
leg.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from tnmat._estimator_file import load_estimator_file, plain, register_loader, write_estimator_file
from tnmat.legtensor import LegTensor
from tnmat.networks import MPOMap
from tnmat.training._data import Rows
from tnmat.training.engine import TrainConfig, train_network
from tnmat.training.params import PARAMS

__all__ = ["MPOAutoencoder"]


class MPOAutoencoder(TransformerMixin, BaseEstimator):
    """Encoder/decoder MPOs trained on the reconstruction MSE (module docstring).

    Parameters (keyword-only, validated at ``fit``)
    -----------------------------------------------
    d_latent : latent dimension of every leg (int, or one per leg).
    bond_dim_encoder, bond_dim_decoder : chi_enc, chi_dec.
    learning_rate, batch_size, max_epochs, patience : Adam settings; early stopping on the validation loss
        (without validation rows all ``max_epochs`` run and the epoch of lowest training loss is kept).
    validation_fraction : share of the rows held out when ``X_val`` is not given (0: monitor training loss).
    init_noise : standard deviation of the noise added to the identity cores.
    dtype : "float64" or "float32".  random_state : int seed (initialisation, split, shuffling).
    verbose : 0 silent, >= 1 a progress bar on a terminal, >= 2 one line per epoch.

    Fitted attributes: ``encoder_``, ``decoder_`` (:class:`~tnmat.networks.MPOMap`), ``leg_sizes_``,
    ``latent_sizes_``, ``history_`` (train_loss / val_loss MSE per epoch, lr, seconds), ``n_epochs_``,
    ``best_epoch_``, ``compression_ratio_`` (prod d_latent / prod d_in), ``n_parameters_``; after
    :meth:`load` also ``extra_``.
    """

    def __init__(self, *, d_latent: int | Sequence[int] = 4, bond_dim_encoder: int = 6, bond_dim_decoder: int = 6,
                 learning_rate: float = PARAMS["learning_rate"].default, batch_size: int = PARAMS["batch_size"].default,
                 max_epochs: int = 200, patience: int | None = 20,
                 validation_fraction: float = PARAMS["validation_fraction"].default, init_noise: float = 1e-2,
                 dtype: str = "float64", random_state: int | None = None, verbose: int = 0) -> None:
        self.d_latent = d_latent
        self.bond_dim_encoder = bond_dim_encoder
        self.bond_dim_decoder = bond_dim_decoder
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.init_noise = init_noise
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def _torch_dtype(self) -> torch.dtype:
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"MPOAutoencoder: dtype must be 'float32' or 'float64', got {self.dtype!r}")
        return getattr(torch, self.dtype)

    def _validate(self, sizes: tuple[int, ...]) -> tuple[int, ...]:
        def pos_int(name: str, v: Any) -> None:
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"MPOAutoencoder: {name} must be a positive int, got {v!r}")

        for name in ("bond_dim_encoder", "bond_dim_decoder", "batch_size", "max_epochs"):
            pos_int(name, getattr(self, name))
        if self.patience is not None:
            pos_int("patience", self.patience)
        if not (isinstance(self.learning_rate, float | int) and self.learning_rate > 0):
            raise ValueError(f"MPOAutoencoder: learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"MPOAutoencoder: validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if not self.init_noise >= 0:
            raise ValueError(f"MPOAutoencoder: init_noise must be >= 0, got {self.init_noise!r}")
        lat = (self.d_latent,) * len(sizes) if isinstance(self.d_latent, int | np.integer) else tuple(self.d_latent)
        if len(lat) != len(sizes):
            raise ValueError(f"MPOAutoencoder: d_latent has {len(lat)} entries for {len(sizes)} legs {sizes}")
        for v in lat:
            pos_int("d_latent", v)
        self._torch_dtype()
        return tuple(int(v) for v in lat)

    # ------------------------------------------------------------------ input handling
    def _as_tensor(self, X: Any, name: str, sizes: tuple[int, ...] | None = None) -> torch.Tensor:
        if isinstance(X, LegTensor):
            if X.is_per_atom:
                raise ValueError(f"MPOAutoencoder: {name} is per-atom; average it first (structure_mean())")
            X = X.values
        x = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
        if x.ndim < 2:
            raise ValueError(f"MPOAutoencoder: {name} must have shape (n, d_1, ..., d_N), got {tuple(x.shape)}")
        if sizes is not None and tuple(x.shape[1:]) != sizes:
            raise ValueError(f"MPOAutoencoder: {name} has leg sizes {tuple(x.shape[1:])}, expected {sizes}")
        x = x.to(self._torch_dtype())
        if not torch.isfinite(x).all():
            raise ValueError(f"MPOAutoencoder: {name} contains NaN or inf")
        return x

    @staticmethod
    def _wrap(like: Any, values: torch.Tensor, encoded: bool) -> Any:
        """Return the output in the input's type (LegTensor, torch tensor or numpy array)."""
        if isinstance(like, LegTensor):
            meta = dict(like.meta)
            meta["mpo_autoencoder"] = "encoded" if encoded else "decoded"
            return like.replace(values=values, meta=meta)
        if isinstance(like, torch.Tensor):
            return values
        return values.numpy()

    def _check_fitted(self) -> None:
        if not hasattr(self, "encoder_"):
            raise RuntimeError("MPOAutoencoder: call fit before transform/inverse_transform/save")

    def _networks(self, sizes: tuple[int, ...], latent: tuple[int, ...], noise: float,
                  g: torch.Generator) -> torch.nn.Sequential:
        """decoder(encoder(x)) as one module (encoder cores drawn first, then decoder cores)."""
        dt = self._torch_dtype()
        enc = MPOMap(sizes, latent, self.bond_dim_encoder, init_noise=noise, generator=g, dtype=dt)
        dec = MPOMap(latent, sizes, self.bond_dim_decoder, init_noise=noise, generator=g, dtype=dt)
        return torch.nn.Sequential(enc, dec)

    def _set_fitted(self, net: torch.nn.Sequential, sizes: tuple[int, ...], latent: tuple[int, ...]) -> None:
        self.encoder_, self.decoder_ = net[0].eval(), net[1].eval()
        self.leg_sizes_, self.latent_sizes_ = sizes, latent
        self.compression_ratio_ = math.prod(latent) / math.prod(sizes)
        self.n_parameters_ = sum(p.numel() for p in net.parameters())

    # ------------------------------------------------------------------ estimator API
    def fit(self, X: Any, y: Any = None, *, X_val: Any = None) -> MPOAutoencoder:
        """Train encoder and decoder on the reconstruction MSE of X (y is ignored)."""
        x = self._as_tensor(X, "X")
        sizes = tuple(int(s) for s in x.shape[1:])
        latent = self._validate(sizes)
        g = torch.Generator().manual_seed(0 if self.random_state is None else int(self.random_state))
        if X_val is not None:
            xv, xt = self._as_tensor(X_val, "X_val", sizes), x
        elif self.validation_fraction > 0:
            perm = torch.randperm(len(x), generator=g)
            n_val = max(1, int(round(self.validation_fraction * len(x))))
            xv, xt = x[perm[:n_val]], x[perm[n_val:]]
        else:
            xv, xt = None, x
        if len(xt) == 0:
            raise ValueError("MPOAutoencoder: no training rows left after the validation split")
        net = self._networks(sizes, latent, float(self.init_noise), g)
        cfg = TrainConfig(learning_rate=float(self.learning_rate), batch_size=int(self.batch_size),
                          max_epochs=int(self.max_epochs), patience=self.patience, weight_decay=0.0,
                          lr_schedule=None, verbose=int(self.verbose), description="MPOAutoencoder")
        # the target of every row is the row itself: the engine's MSE is the reconstruction error
        res = train_network(net, Rows(x=xt), xt, cfg, val=None if xv is None else Rows(x=xv), y_val=xv,
                            generator=g)
        self._set_fitted(net, sizes, latent)
        self.history_ = res.history
        self.n_epochs_, self.best_epoch_ = res.n_epochs, res.best_epoch
        return self

    @torch.no_grad()
    def _apply(self, net: MPOMap, x: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        return torch.cat([net(x[s : s + chunk]) for s in range(0, len(x), chunk)]) if len(x) else net(x)

    def transform(self, X: Any) -> Any:
        """The compressed tensor encoder(x), shape (n, d_latent_1, ..., d_latent_N), in X's type."""
        self._check_fitted()
        return self._wrap(X, self._apply(self.encoder_, self._as_tensor(X, "X", self.leg_sizes_)), True)

    def inverse_transform(self, Z: Any) -> Any:
        """The reconstruction decoder(z), shape (n, d_in_1, ..., d_in_N), in Z's type."""
        self._check_fitted()
        return self._wrap(Z, self._apply(self.decoder_, self._as_tensor(Z, "Z", self.latent_sizes_)), False)

    def reconstruction_errors(self, X: Any) -> dict[str, float]:
        """Entry-wise RMSE and MAE of decoder(encoder(x)) - x over all rows and entries, and the relative
        Frobenius error ||x_hat - x|| / ||x||."""
        self._check_fitted()
        x = self._as_tensor(X, "X", self.leg_sizes_)
        diff = self._apply(self.decoder_, self._apply(self.encoder_, x)) - x
        return {"rmse": float(diff.pow(2).mean().sqrt()), "mae": float(diff.abs().mean()),
                "relative": float(diff.norm() / x.norm().clamp_min(1e-300))}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write parameters, fitted cores and history to the one estimator file."""
        self._check_fitted()
        net = torch.nn.Sequential(self.encoder_, self.decoder_)
        fitted = {"leg_sizes_": list(self.leg_sizes_), "latent_sizes_": list(self.latent_sizes_),
                  "n_epochs_": self.n_epochs_, "best_epoch_": self.best_epoch_}
        return write_estimator_file(path, type(self).__name__, self.get_params(), fitted, extra=extra,
                                    history=plain(self.history_, "history"),
                                    state_dict={k: v.detach().cpu() for k, v in net.state_dict().items()})

    @classmethod
    def _from_file(cls, blob: dict[str, Any], path: Path | None = None) -> MPOAutoencoder:
        """Inverse of :meth:`save` from the file's contents (the loader registered for this class)."""
        params = dict(blob["params"])
        if isinstance(params.get("d_latent"), list):
            params["d_latent"] = tuple(params["d_latent"])
        est = cls(**params)
        f = blob["fitted"]
        sizes, latent = tuple(int(s) for s in f["leg_sizes_"]), tuple(int(s) for s in f["latent_sizes_"])
        est._validate(sizes)
        net = est._networks(sizes, latent, 0.0, torch.Generator().manual_seed(0))
        net.load_state_dict(blob["state_dict"])
        est._set_fitted(net, sizes, latent)
        est.history_ = {k: list(v) for k, v in blob["history"].items()}
        est.n_epochs_, est.best_epoch_ = int(f["n_epochs_"]), int(f["best_epoch_"])
        est.extra_ = dict(blob.get("extra") or {})
        return est

    @classmethod
    def load(cls, path: str | Path) -> MPOAutoencoder:
        """Read a file written by :meth:`save` (clear error for foreign, corrupted or other-version files)."""
        est = load_estimator_file(path)
        if not isinstance(est, cls):
            raise ValueError(f"{path}: holds a {type(est).__name__}, not an MPOAutoencoder")
        return est


register_loader(MPOAutoencoder.__name__, MPOAutoencoder._from_file)
