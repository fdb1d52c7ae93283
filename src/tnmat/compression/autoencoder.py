"""MPO autoencoder: compress every leg of a descriptor tensor from d_in to d_latent (paper Fig. 18, Table I).

Encoder: an open-boundary MPO with cores E_k of shape (chi_{k-1}, d_latent, d_in_k, chi_k) (index order
left, out, in, right; bond chi_enc), mapping x (batch, d_in_1, ..., d_in_N) to

    z[b, o_1..o_N] = sum_{i} E_1[o_1, i_1] ... E_N[o_N, i_N] x[b, i_1..i_N]         (compressed tensor)

and a decoder MPO D_k (chi_{k-1}, d_in_k, d_latent, chi_k) (bond chi_dec) mapping z back to x_hat.  Both
are applied to the dense tensor site by site (:func:`mpo_apply`), cost O(batch * D * d * chi^2) per site
with D the size of the dense tensor: linear in the number of sites, the MPO itself is never densified.
Training: Adam on the reconstruction MSE mean((x_hat - x)^2) with early stopping on a validation split.

Initialisation ``"identity"``: every core is the (truncated) identity delta(o, i) on the first bond channel
plus Gaussian noise of standard deviation ``init_noise``; with d_latent = d_in and no noise the autoencoder is
exactly the identity, and for d_latent < d_in it starts as the projection onto the first d_latent basis
states of every leg.  Estimator conventions as in :mod:`tnmat.training` (no logic in ``__init__``, fitted
attributes end in ``_``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tnmat.compression._training import adam_loop
from tnmat.legtensor import LegTensor

__all__ = ["MPOAutoencoder", "MPOMap", "mpo_apply", "AUTOENCODER_FORMAT"]

#: identifies files written by :meth:`MPOAutoencoder.save` (bump the version when the layout changes)
AUTOENCODER_FORMAT = ("tnmat.MPOAutoencoder", 1)


def mpo_apply(cores: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """y[b, o_1..o_N] = sum_i M_1[o_1, i_1] ... M_N[o_N, i_N] x[b, i_1..i_N] for cores (chi_l, d_out, d_in,
    chi_r) with open boundaries; contracted site by site, state (b, outputs done, chi, inputs to do)."""
    b = x.shape[0]
    state = x.reshape(b, 1, 1, -1)
    for core in cores:
        p = state.shape[1]
        d_in = core.shape[2]
        state = state.reshape(b, p, core.shape[0], d_in, -1)
        state = torch.einsum("bpcir,coie->bpoer", state, core).reshape(b, p * core.shape[1], core.shape[-1], -1)
    return state.reshape(b, *[c.shape[1] for c in cores])


def _identity_noise_core(chi_l: int, d_out: int, d_in: int, chi_r: int, noise: float,
                         g: torch.Generator) -> torch.Tensor:
    core = noise * torch.randn(chi_l, d_out, d_in, chi_r, generator=g, dtype=torch.float64)
    m = min(d_out, d_in)
    core[0, torch.arange(m), torch.arange(m), 0] += 1.0
    return core


class MPOMap(nn.Module):
    """An MPO mapping (batch, d_in_1..d_in_N) -> (batch, d_out_1..d_out_N) with uniform bond ``bond_dim``."""

    def __init__(self, d_in: Sequence[int], d_out: Sequence[int], bond_dim: int, *, init_noise: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        n = len(d_in)
        bonds = [1] + [bond_dim] * (n - 1) + [1]
        self.cores = nn.ParameterList([
            nn.Parameter(_identity_noise_core(bonds[k], d_out[k], d_in[k], bonds[k + 1], init_noise, generator))
            for k in range(n)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mpo_apply(list(self.cores), x)

    def to_dense(self) -> torch.Tensor:
        """The operator as a tensor (d_out_1..d_out_N, d_in_1..d_in_N) in float64 (small sizes only)."""
        n = len(self.cores)
        w = self.cores[0].detach().double()[0]  # (o, i, r)
        for c in self.cores[1:]:
            w = torch.tensordot(w, c.detach().double(), dims=([w.ndim - 1], [0]))
        w = w[..., 0]  # (o1, i1, o2, i2, ...)
        return w.permute([2 * k for k in range(n)] + [2 * k + 1 for k in range(n)])


class _Pair(nn.Module):
    def __init__(self, encoder: MPOMap, decoder: MPOMap) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder


class MPOAutoencoder:
    """Encoder/decoder MPOs trained on the reconstruction MSE (module docstring).

    Parameters (keyword-only, validated at ``fit``)
    -----------------------------------------------
    d_latent : latent dimension of every leg (int, or one per leg).
    bond_dim_encoder, bond_dim_decoder : chi_enc, chi_dec.
    learning_rate, batch_size, max_epochs, patience : Adam settings; early stopping on the validation loss.
    validation_fraction : share of the rows held out when ``X_val`` is not given (0: monitor training loss).
    init_noise : standard deviation of the noise added to the identity cores.
    dtype : "float64" or "float32".  random_state : int seed (initialisation, split, shuffling).

    Fitted attributes: ``encoder_``, ``decoder_`` (:class:`MPOMap`), ``leg_sizes_``, ``latent_sizes_``,
    ``history_`` (train_loss / val_loss MSE per epoch, seconds), ``n_epochs_``, ``best_epoch_``,
    ``compression_ratio_`` (prod d_latent / prod d_in), ``n_parameters_``.
    """

    def __init__(self, *, d_latent: int | Sequence[int] = 4, bond_dim_encoder: int = 6, bond_dim_decoder: int = 6,
                 learning_rate: float = 1e-3, batch_size: int = 64, max_epochs: int = 200,
                 patience: int | None = 20, validation_fraction: float = 0.2, init_noise: float = 1e-2,
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

    _PARAMS = ("d_latent", "bond_dim_encoder", "bond_dim_decoder", "learning_rate", "batch_size", "max_epochs",
               "patience", "validation_fraction", "init_noise", "dtype", "random_state", "verbose")

    # ------------------------------------------------------------------ sklearn plumbing
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params: Any) -> MPOAutoencoder:
        for k, v in params.items():
            if k not in self._PARAMS:
                raise ValueError(f"MPOAutoencoder: unknown parameter {k!r}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return f"MPOAutoencoder({', '.join(f'{k}={getattr(self, k)!r}' for k in self._PARAMS)})"

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

    # ------------------------------------------------------------------ estimator API
    def fit(self, X: Any, y: Any = None, *, X_val: Any = None) -> MPOAutoencoder:
        """Train encoder and decoder on the reconstruction MSE of X (y is ignored)."""
        x = self._as_tensor(X, "X")
        sizes = tuple(int(s) for s in x.shape[1:])
        latent = self._validate(sizes)
        seed = 0 if self.random_state is None else int(self.random_state)
        g = torch.Generator().manual_seed(seed)
        if X_val is not None:
            xv = self._as_tensor(X_val, "X_val", sizes)
            xt = x
        elif self.validation_fraction > 0:
            perm = torch.randperm(len(x), generator=g)
            n_val = max(1, int(round(self.validation_fraction * len(x))))
            xv, xt = x[perm[:n_val]], x[perm[n_val:]]
        else:
            xv, xt = None, x
        if len(xt) == 0:
            raise ValueError("MPOAutoencoder: no training rows left after the validation split")
        dt = self._torch_dtype()
        enc = MPOMap(sizes, latent, self.bond_dim_encoder, init_noise=self.init_noise, generator=g).to(dt)
        dec = MPOMap(latent, sizes, self.bond_dim_decoder, init_noise=self.init_noise, generator=g).to(dt)
        pair = _Pair(enc, dec)

        def recon_mse(batch: torch.Tensor) -> torch.Tensor:
            return (dec(enc(batch)) - batch).pow(2).mean()

        def val() -> float:
            return float(sum(recon_mse(xv[s : s + 512]).item() * len(xv[s : s + 512])
                             for s in range(0, len(xv), 512)) / len(xv))

        history = adam_loop(list(pair.parameters()), pair, lambda idx: recon_mse(xt[idx]), len(xt),
                            val if xv is not None else None, learning_rate=float(self.learning_rate),
                            batch_size=int(self.batch_size), max_epochs=int(self.max_epochs),
                            patience=self.patience, generator=g, name="MPOAutoencoder")
        self.encoder_, self.decoder_ = enc, dec
        self.leg_sizes_, self.latent_sizes_ = sizes, latent
        self.history_ = history
        self.n_epochs_ = len(history["train_loss"])
        monitored = history["val_loss"] if xv is not None else history["train_loss"]
        self.best_epoch_ = int(np.argmin(monitored))
        self.compression_ratio_ = math.prod(latent) / math.prod(sizes)
        self.n_parameters_ = sum(p.numel() for p in pair.parameters())
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

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        return self.fit(X, **fit_params).transform(X)

    def reconstruction_errors(self, X: Any) -> dict[str, float]:
        """Entry-wise RMSE and MAE of decoder(encoder(x)) - x over all rows and entries, and the relative
        Frobenius error ||x_hat - x|| / ||x||."""
        self._check_fitted()
        x = self._as_tensor(X, "X", self.leg_sizes_)
        xh = self._apply(self.decoder_, self._apply(self.encoder_, x))
        diff = xh - x
        return {"rmse": float(diff.pow(2).mean().sqrt()), "mae": float(diff.abs().mean()),
                "relative": float(diff.norm() / x.norm().clamp_min(1e-300))}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write hyper-parameters, fitted cores and history to one file (torch format, tensors only)."""
        self._check_fitted()
        path = Path(path)
        state = {
            "format": AUTOENCODER_FORMAT[0], "version": AUTOENCODER_FORMAT[1],
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()},
            "leg_sizes": list(self.leg_sizes_), "latent_sizes": list(self.latent_sizes_),
            "encoder": [c.detach().cpu() for c in self.encoder_.cores],
            "decoder": [c.detach().cpu() for c in self.decoder_.cores],
            "history": self.history_, "best_epoch": self.best_epoch_,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> MPOAutoencoder:
        """Read a file written by :meth:`save` (clear error for foreign, corrupted or other-version files)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such MPOAutoencoder file")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle/zip errors all mean "not our file"
            raise ValueError(f"{path}: not a readable MPOAutoencoder file ({exc})") from exc
        if not isinstance(state, dict) or state.get("format") != AUTOENCODER_FORMAT[0]:
            raise ValueError(f"{path}: not an MPOAutoencoder file")
        if state.get("version") != AUTOENCODER_FORMAT[1]:
            raise ValueError(f"{path}: MPOAutoencoder file version {state.get('version')} is not supported "
                             f"(this tnmat reads version {AUTOENCODER_FORMAT[1]})")
        params = dict(state["params"])
        if isinstance(params.get("d_latent"), list):
            params["d_latent"] = tuple(params["d_latent"])
        est = cls(**params)
        sizes, latent = tuple(state["leg_sizes"]), tuple(state["latent_sizes"])
        g = torch.Generator().manual_seed(0)
        dt = est._torch_dtype()
        enc = MPOMap(sizes, latent, est.bond_dim_encoder, init_noise=0.0, generator=g).to(dt)
        dec = MPOMap(latent, sizes, est.bond_dim_decoder, init_noise=0.0, generator=g).to(dt)
        with torch.no_grad():
            for p, v in zip(enc.cores, state["encoder"], strict=True):
                p.copy_(v)
            for p, v in zip(dec.cores, state["decoder"], strict=True):
                p.copy_(v)
        est.encoder_, est.decoder_ = enc.eval(), dec.eval()
        est.leg_sizes_, est.latent_sizes_ = sizes, latent
        est.history_, est.best_epoch_ = state["history"], int(state["best_epoch"])
        est.n_epochs_ = len(est.history_["train_loss"])
        est.compression_ratio_ = math.prod(latent) / math.prod(sizes)
        est.n_parameters_ = sum(c.numel() for c in enc.cores) + sum(c.numel() for c in dec.cores)
        return est
