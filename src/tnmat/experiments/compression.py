"""Compression experiments on the many-species alloy benchmark (paper Section IV C, Fig. 17, Table I).

Data (:func:`alloy_benchmark_data`): the BA10-style binary alloys of :func:`tnmat.data.embedded_default`
(10 binaries over the 7 EMT metals, EMT mixing energies of unrelaxed structures; a stand-in for the DFT BA10
set), 1600 training and 1000 test structures drawn by a seeded permutation of all 15950, power spectrum with
n_max = 8, l_max = 8 (r_cut 5 A, sigma 0.5 A), independent entries zero-padded to 5 legs of dimension 8
(mapping in :mod:`tnmat.compression.padding`).  Inputs are standardised entry-wise with the training
statistics (padding stays exactly zero); targets in eV/atom, errors reported in meV/atom.

* :func:`run_ttsvd_experiment` (Fig. 17): each structure's standardised tensor is TT-SVD factorised with
  maximum bond chi_in; a supervised MPO (chi = 4) is trained and evaluated on the factorised inputs
  (contracted in the Fig. 8b order); the dense-input MPO is the reference.
* :func:`run_autoencoder_experiment` (Table I): MPO autoencoder (chi_enc = chi_dec = 6) for each d_latent,
  reconstruction errors on the test set, then a supervised MPS (chi = 10) trained on the encoded inputs;
  plus the uncompressed row (the same MPS on the 8^5 input).

Every finished configuration is written at once to the :class:`~tnmat.experiments.store.ResultStore` and
skipped on a rerun (resumable).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tnmat.compression import n_input_parameters, tt_svd, tt_to_dense
from tnmat.descriptor_cache import cached_legtensor
from tnmat.experiments.splits import torch_train_validation
from tnmat.experiments.store import config_key
from tnmat.legtensor import LegTensor
from tnmat.metrics import rmse_mae
from tnmat.networks import MPO, MPS
from tnmat.threads import thread_limited
from tnmat.training import MPOAutoencoder
from tnmat.training._data import Rows
from tnmat.training.engine import TrainConfig, predict_rows, train_network
from tnmat.training.params import PARAMS

__all__ = ["alloy_benchmark_data", "run_ttsvd_experiment", "run_autoencoder_experiment", "fit_factorised",
           "FitSettings", "TTSVDSettings", "AutoencoderSettings",
           "compression_tables",
           "AlloyBenchmark"]

DESCRIPTOR = {"r_cut": 5.0, "sigma": 0.5, "n_max": 8, "l_max": 8, "n_sites": 5, "site_dim": 8}


class AlloyBenchmark(dict):
    """Dictionary with x_train, x_test (standardised LegTensors (n, 8,8,8,8,8)), y_train, y_test (eV/atom,
    float64 tensors), train_index, test_index (rows of the full dataset), meta."""


def _default_cache() -> Path:
    from tnmat.data.alloys import alloy_cache_dir

    return alloy_cache_dir() / "compression"


def alloy_benchmark_data(*, n_train: int = 1600, n_test: int = 1000, seed: int = 0,
                         cache_dir: str | Path | None = None, progress: bool = False,
                         n_systems: int = 10) -> AlloyBenchmark:
    """The Fig. 17 / Table I inputs (module docstring); descriptors cached as a LegTensor .npz keyed by
    every parameter."""
    from tnmat.compression.padding import padded_power_spectrum
    from tnmat.data import generate_binary_alloys

    ds = generate_binary_alloys(n_systems=n_systems, progress=progress)
    n = len(ds)
    if n_train + n_test > n:
        raise ValueError(f"alloy_benchmark_data: {n_train} + {n_test} structures requested, the set has {n}")
    perm = np.random.default_rng(seed).permutation(n)
    train_idx, test_idx = perm[:n_train], perm[n_train : n_train + n_test]
    rows = np.concatenate([train_idx, test_idx])
    params = {"n_systems": n_systems, "rows": hashlib.sha1(rows.tobytes()).hexdigest(), "species": list(ds.species),
              **DESCRIPTOR, "version": 1}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(cache_dir) if cache_dir is not None else _default_cache()
    path = cache / f"alloy-ps-padded-{key}.npz"

    def compute() -> LegTensor:
        frames = [ds.structures[i] for i in rows]
        x = padded_power_spectrum(frames, species=ds.species, r_cut=DESCRIPTOR["r_cut"], n_max=DESCRIPTOR["n_max"],
                                  l_max=DESCRIPTOR["l_max"], sigma=DESCRIPTOR["sigma"],
                                  n_sites=DESCRIPTOR["n_sites"], site_dim=DESCRIPTOR["site_dim"], progress=progress)
        return x.replace(meta={**x.meta, "benchmark": params})

    x = cached_legtensor(path, compute)
    y = torch.as_tensor(np.asarray(ds.targets["mixing_energy"])[rows], dtype=torch.float64)
    xt, mean, std = x.select(np.arange(n_train)).standardise()
    xs, _, _ = x.select(np.arange(n_train, n_train + n_test)).standardise(mean, std)
    meta = {"dataset": ds.name, "n_train": n_train, "n_test": n_test, "seed": seed, "descriptor": DESCRIPTOR,
            "species": list(ds.species), "n_features": x.meta.get("padding", {}).get("n_features"),
            "cache": str(path)}
    return AlloyBenchmark(x_train=xt, x_test=xs, y_train=y[:n_train], y_test=y[n_train:], train_index=train_idx,
                          test_index=test_idx, meta=meta)


# ---------------------------------------------------------------------------------------------- training
Inputs = torch.Tensor | list[torch.Tensor]


def _rows(x: Inputs, idx: torch.Tensor) -> Inputs:
    return [c[idx] for c in x] if isinstance(x, list) else x[idx]


def _to(x: Inputs, dtype: torch.dtype) -> Inputs:
    return [c.to(dtype) for c in x] if isinstance(x, list) else x.to(dtype)


def _predict(net: torch.nn.Module, x: Inputs, chunk: int = 256) -> torch.Tensor:
    """net(x) for dense or factorised rows, ``chunk`` rows at a time (the 8^5 inputs are large)."""
    return predict_rows(net, Rows(x=x), max_rows=chunk)


def fit_factorised(net: torch.nn.Module, x_train: Inputs, y_train: torch.Tensor, x_val: Inputs | None,
                   y_val: torch.Tensor | None, *, learning_rate: float = PARAMS["learning_rate"].default,
                   batch_size: int = 32,
                   max_epochs: int = 100, patience: int | None = 10, seed: int = 0) -> dict[str, Any]:
    """Train a network of :mod:`tnmat.networks` on dense inputs (batch, *sizes) or factorised inputs (a list
    of cores (batch, r, d, r')) with the one training engine (:func:`tnmat.training.engine.train_network`:
    Adam on the MSE of standardised targets, early stopping on the validation MSE, best weights restored).
    Returns {"history" (losses in standardised units), "y_mean", "y_std", "seconds"}; predictions in
    target units are ``net(x) * y_std + y_mean``."""
    dt = next(net.parameters()).dtype
    y_mean, y_std = float(y_train.mean()), float(y_train.std())
    yv = None if y_val is None else ((y_val - y_mean) / y_std).to(dt)
    cfg = TrainConfig(learning_rate=learning_rate, batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                      weight_decay=0.0, lr_schedule=None, description=type(net).__name__)
    t0 = time.perf_counter()
    res = train_network(net, Rows(x=_to(x_train, dt)), ((y_train - y_mean) / y_std).to(dt), cfg,
                        val=None if x_val is None else Rows(x=_to(x_val, dt)), y_val=yv,
                        generator=torch.Generator().manual_seed(seed))
    return {"history": res.history, "y_mean": y_mean, "y_std": y_std, "seconds": time.perf_counter() - t0}


def _errors_mev(pred_ev: torch.Tensor, y_ev: torch.Tensor) -> dict[str, float]:
    rmse, mae = rmse_mae(y_ev.double(), pred_ev.double(), what="compression experiment")
    return {"rmse_mev": rmse, "mae_mev": mae}


def _summary_history(h: dict[str, list[float]]) -> dict[str, Any]:
    val = [v for v in h["val_loss"] if math.isfinite(v)]
    return {"epochs": len(h["train_loss"]), "best_epoch": int(np.argmin(val)) if val else None,
            "seconds_per_epoch": float(np.mean(h["seconds"])) if h["seconds"] else None,
            "final_train_mse": h["train_loss"][-1] if h["train_loss"] else None,
            "best_val_mse": min(val) if val else None}


def _open_store(store: Any):  # noqa: ANN202
    from tnmat.experiments.store import ResultStore

    return store if isinstance(store, ResultStore) else ResultStore(store)


# ---------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class FitSettings:
    """Adam settings of one fit (:func:`fit_factorised` or the autoencoder): early stopping on the
    validation MSE after ``patience`` epochs without improvement (None: run all epochs)."""

    learning_rate: float = PARAMS["learning_rate"].default
    batch_size: int = 32
    max_epochs: int = 100
    patience: int | None = 10


@dataclass(frozen=True)
class TTSVDSettings:
    """Fig. 17: a supervised MPO of bond ``bond_dim`` on inputs TT-SVD-factorised at each ``chi_in`` (and on
    the dense inputs when ``dense_reference``), trained with ``fit`` in ``dtype``."""

    chi_in: Sequence[int] = (1, 2, 4, 8, 16, 32)
    bond_dim: int = 4
    dense_reference: bool = True
    fit: FitSettings = FitSettings(max_epochs=60, patience=8)
    dtype: str = "float32"


@dataclass(frozen=True)
class AutoencoderSettings:
    """Table I: an MPO autoencoder (chi_enc = chi_dec = ``bond_dim_ae``, trained with ``ae`` on at most
    ``ae_n_train`` rows) for each ``d_latent``, then an MPS of bond ``bond_dim_mps`` trained with ``mps`` on
    the encoded inputs; ``uncompressed`` adds the MPS on the raw inputs."""

    d_latent: Sequence[int] = (6, 4, 2)
    bond_dim_ae: int = 6
    bond_dim_mps: int = 10
    uncompressed: bool = True
    ae: FitSettings = FitSettings(learning_rate=3e-3, max_epochs=20, patience=5)
    ae_n_train: int | None = None
    mps: FitSettings = FitSettings()
    dtype: str = "float32"


def _fit_keys(fit: FitSettings) -> dict[str, Any]:
    """The stored names of the fit settings (they enter the result keys, so they never change)."""
    return {"lr": fit.learning_rate, "batch_size": fit.batch_size, "max_epochs": fit.max_epochs,
            "patience": fit.patience}


def _fit(net: torch.nn.Module, x: Inputs, y: torch.Tensor, split: tuple[torch.Tensor, torch.Tensor],
         fit: FitSettings, seed: int) -> dict[str, Any]:
    tr, va = split
    return fit_factorised(net, _rows(x, tr), y[tr], _rows(x, va), y[va], learning_rate=fit.learning_rate,
                          batch_size=fit.batch_size, max_epochs=fit.max_epochs, patience=fit.patience, seed=seed)


# ---------------------------------------------------------------------------------------------- Fig. 17
def _ttsvd_inputs(xtr: torch.Tensor, xte: torch.Tensor, chi: int | None) -> tuple[Inputs, Inputs, int, float]:
    """(train inputs, test inputs, N_in per structure, relative test-input error) at ``chi`` (None: dense)."""
    if chi is None:
        return xtr, xte, math.prod(xtr.shape[1:]), 0.0
    x_fit, x_test = tt_svd(xtr, max_bond=chi), tt_svd(xte, max_bond=chi)
    return x_fit, x_test, n_input_parameters(x_fit), float((tt_to_dense(x_test) - xte).norm() / xte.norm())


@thread_limited
def run_ttsvd_experiment(data: AlloyBenchmark, *, store: str | Path, settings: TTSVDSettings = TTSVDSettings(),
                         threads: int | None = None) -> dict[str, Any]:
    """Fig. 17 on ``data`` (:func:`alloy_benchmark_data`): supervised MPO on TT-SVD-factorised inputs for each
    chi_in, plus the dense-input reference (:class:`TTSVDSettings`).  Each finished fit is stored at once
    (experiment "compression-ttsvd") and skipped on a rerun.  Returns {"rows": [...], "dense_size": entries
    of a dense input, "meta": ...}."""
    st, meta, sett = _open_store(store), data["meta"], settings
    n_train, seed = meta["n_train"], meta["seed"]
    split = torch_train_validation(n_train, seed=seed + 1)
    dt = getattr(torch, sett.dtype)
    xtr, xte = data["x_train"].values, data["x_test"].values
    dense_size = math.prod(xtr.shape[1:])
    for chi in list(sett.chi_in) + ([None] if sett.dense_reference else []):
        cfg = {"experiment": "compression-ttsvd", "chi_in": chi, "bond_dim": sett.bond_dim, "n_train": n_train,
               "n_test": meta["n_test"], "seed": seed, **_fit_keys(sett.fit), "dtype": sett.dtype,
               "descriptor": DESCRIPTOR}
        key = config_key(cfg)
        if st.has(key):
            continue
        t0 = time.perf_counter()
        x_fit, x_test, n_in, rel = _ttsvd_inputs(xtr, xte, chi)
        t_svd = time.perf_counter() - t0
        net = MPO(xtr.shape[1:], sett.bond_dim, dtype=dt, seed=seed)
        fit = _fit(net, x_fit, data["y_train"], split, sett.fit, seed)
        t1 = time.perf_counter()
        pred = _predict(net, _to(x_test, dt))
        t_pred = time.perf_counter() - t1
        pred = pred.double() * fit["y_std"] + fit["y_mean"]
        metrics = {**_errors_mev(pred, data["y_test"]), "n_in": n_in, "n_in_fraction": n_in / dense_size,
                   "input_relative_error": rel, "n_parameters": sum(p.numel() for p in net.parameters())}
        st.put(key, {"experiment": "compression-ttsvd", "model": f"mpo-chi{sett.bond_dim}", "n_train": n_train,
                     "split": f"seed{seed}", "params": cfg, "metrics": metrics,
                     "timings": {"ttsvd_s": t_svd, "fit_s": fit["seconds"], "predict_test_s": t_pred,
                                 **_summary_history(fit["history"])}})
    rows = [r for r in st.results("compression-ttsvd")
            if r["params"].get("bond_dim") == sett.bond_dim and r["params"].get("seed") == seed
            and r["params"].get("n_train") == n_train and r["params"].get("max_epochs") == sett.fit.max_epochs]
    rows.sort(key=lambda r: (r["params"]["chi_in"] is None, r["params"]["chi_in"] or 0))
    out = [{"chi_in": r["params"]["chi_in"], **r["metrics"], "fit_s": r["timings"]["fit_s"],
            "epochs": r["timings"]["epochs"], "seconds_per_epoch": r["timings"]["seconds_per_epoch"]} for r in rows]
    # the figure is drawn by the commands layer (``tnmat compress ttsvd``) from these rows
    return {"rows": out, "dense_size": dense_size, "meta": meta}


# ---------------------------------------------------------------------------------------------- Table I
PAPER_TABLE_I = {  # Sommer & Dunham, Table I (DFT BA10): test RMSE (MAE) meV/atom of the chi=10 MPS
    None: (14.8, 9.9), 6: (16.3, 11.2), 4: (19.3, 13.9), 2: (103.2, 77.8)}


def _encode(data: AlloyBenchmark, dl: int, sett: AutoencoderSettings, split: tuple[torch.Tensor, torch.Tensor],
            model_dir: str | Path | None) -> tuple[torch.Tensor, torch.Tensor, dict, dict]:
    """Train the autoencoder of latent dimension ``dl``; (standardised encoded train and test inputs,
    metrics, timings)."""
    dt = getattr(torch, sett.dtype)
    xtr, xte = data["x_train"].values.to(dt), data["x_test"].values.to(dt)
    seed = data["meta"]["seed"]
    t0 = time.perf_counter()
    ae = MPOAutoencoder(d_latent=dl, bond_dim_encoder=sett.bond_dim_ae, bond_dim_decoder=sett.bond_dim_ae,
                        learning_rate=sett.ae.learning_rate, batch_size=sett.ae.batch_size,
                        max_epochs=sett.ae.max_epochs, patience=sett.ae.patience, dtype=sett.dtype,
                        random_state=seed, init_noise=1e-2)
    tr, va = split
    ae_tr = tr if sett.ae_n_train is None else tr[:sett.ae_n_train]
    ae_va = va if sett.ae_n_train is None else va[: max(32, sett.ae_n_train // 4)]
    ae.fit(xtr[ae_tr], X_val=xtr[ae_va])
    timings = {"ae_fit_s": time.perf_counter() - t0, "ae": _summary_history(ae.history_)}
    rec = ae.reconstruction_errors(xte)
    metrics = {"recon_rmse": rec["rmse"], "recon_mae": rec["mae"], "recon_relative": rec["relative"],
               "ae_parameters": ae.n_parameters_}
    if model_dir is not None:
        ae.save(Path(model_dir) / f"autoencoder-dlat{dl}.pt")
    z_all, mean, std = LegTensor(ae.transform(xtr).double(), data["x_train"].legs).standardise()
    return z_all.values.to(dt), ((ae.transform(xte).double() - mean) / std).to(dt), metrics, timings


@thread_limited
def run_autoencoder_experiment(data: AlloyBenchmark, *, store: str | Path,
                               settings: AutoencoderSettings = AutoencoderSettings(),
                               model_dir: str | Path | None = None, threads: int | None = None) -> dict[str, Any]:
    """Table I on ``data`` (:func:`alloy_benchmark_data`, 20 % of its training rows for early stopping): for
    each d_latent an MPO autoencoder, its test reconstruction RMSE/MAE (standardised descriptor units) and
    the test RMSE/MAE of an MPS trained on the encoded inputs; plus the uncompressed row
    (:class:`AutoencoderSettings`).  Each row is stored at once (experiment "compression-autoencoder").
    Returns {"rows": [...], "paper": PAPER_TABLE_I, "meta": ...}."""
    st, meta, sett = _open_store(store), data["meta"], settings
    n_train, seed = meta["n_train"], meta["seed"]
    split = torch_train_validation(n_train, seed=seed + 1)
    dt = getattr(torch, sett.dtype)
    d_in, n_sites = data["x_train"].values.shape[1], data["x_train"].values.ndim - 1
    for dl in ([None] if sett.uncompressed else []) + list(sett.d_latent):
        cfg = {"experiment": "compression-autoencoder", "d_latent": dl, "bond_dim_ae": sett.bond_dim_ae,
               "bond_dim_mps": sett.bond_dim_mps, "n_train": n_train, "n_test": meta["n_test"], "seed": seed,
               "ae": {**_fit_keys(sett.ae), "n_train": sett.ae_n_train}, "mps": _fit_keys(sett.mps),
               "dtype": sett.dtype, "descriptor": DESCRIPTOR}
        key = config_key(cfg)
        if st.has(key):
            continue
        metrics: dict[str, Any] = {"compression_ratio": 1.0 if dl is None else (dl / d_in) ** n_sites}
        if dl is None:
            ztr, zte, timings = data["x_train"].values.to(dt), data["x_test"].values.to(dt), {}
            metrics.update(recon_rmse=0.0, recon_mae=0.0, recon_relative=0.0)
        else:
            ztr, zte, rec, timings = _encode(data, dl, sett, split, model_dir)
            metrics.update(rec)
        net = MPS(ztr.shape[1:], sett.bond_dim_mps, dtype=dt, seed=seed)
        fit = _fit(net, ztr, data["y_train"], split, sett.mps, seed)
        pred = _predict(net, zte).double() * fit["y_std"] + fit["y_mean"]
        metrics.update(_errors_mev(pred, data["y_test"]), mps_parameters=sum(p.numel() for p in net.parameters()))
        timings.update(mps_fit_s=fit["seconds"], mps=_summary_history(fit["history"]))
        st.put(key, {"experiment": "compression-autoencoder", "model": f"mps-chi{sett.bond_dim_mps}",
                     "n_train": n_train, "split": f"seed{seed}", "params": cfg, "metrics": metrics,
                     "timings": timings})
    return {"rows": _autoencoder_rows(st, sett, n_train, seed, d_in),
            "paper": {str(k): v for k, v in PAPER_TABLE_I.items()}, "meta": meta}


def _autoencoder_rows(st: Any, sett: AutoencoderSettings, n_train: int, seed: int, d_in: int) -> list[dict]:
    """The stored Table I rows of these settings, largest d_latent first, with the paper's numbers."""
    rows = [r for r in st.results("compression-autoencoder")
            if r["params"].get("bond_dim_ae") == sett.bond_dim_ae and r["params"].get("seed") == seed
            and r["params"].get("n_train") == n_train and r["params"]["ae"].get("max_epochs") == sett.ae.max_epochs]
    rows.sort(key=lambda r: -(r["params"]["d_latent"] or d_in + 1))
    out = []
    for r in rows:
        dl = r["params"]["d_latent"]
        paper = PAPER_TABLE_I.get(dl)
        out.append({"d_latent": dl, **r["metrics"], "paper_rmse_mev": paper[0] if paper else None,
                    "paper_mae_mev": paper[1] if paper else None,
                    "ae_epochs": r["timings"].get("ae", {}).get("epochs"), "mps_epochs": r["timings"]["mps"]["epochs"]})
    return out


# ---------------------------------------------------------------------------------------------- reporting
def compression_tables(store: str | Path) -> str:
    """Markdown tables of every stored Fig. 17 and Table I row (ours beside the paper's Table I)."""
    st = _open_store(store)
    lines = ["| chi_in | N_in | N_in / 8^5 | input rel. error | test RMSE (MAE) meV/atom | epochs (max) | s/epoch |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    rows = sorted(st.results("compression-ttsvd"),
                  key=lambda r: (r["params"]["max_epochs"], r["params"]["chi_in"] is None, r["params"]["chi_in"] or 0))
    for r in rows:
        m, t = r["metrics"], r["timings"]
        chi = "dense" if r["params"]["chi_in"] is None else r["params"]["chi_in"]
        lines.append(f"| {chi} | {m['n_in']} | {m['n_in_fraction']:.4f} | {m['input_relative_error']:.3f} | "
                     f"{m['rmse_mev']:.1f} ({m['mae_mev']:.1f}) | {t['epochs']} ({r['params']['max_epochs']}) | "
                     f"{t['seconds_per_epoch']:.1f} |")
    lines += ["", "| d_latent | compression | recon. RMSE (MAE), std. units | recon. rel. error | "
              "MPS test RMSE (MAE) meV/atom | paper (DFT BA10) | AE epochs (max) | MPS epochs (max) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ae_rows = sorted(st.results("compression-autoencoder"),
                     key=lambda r: (r["params"]["ae"]["max_epochs"], -(r["params"]["d_latent"] or 99)))
    for r in ae_rows:
        m = r["metrics"]
        dl = r["params"]["d_latent"]
        paper = PAPER_TABLE_I.get(dl)
        lines.append(f"| {'8 (none)' if dl is None else dl} | {m['compression_ratio']:.4f} | "
                     f"{m['recon_rmse']:.3f} ({m['recon_mae']:.3f}) | {m['recon_relative']:.3f} | "
                     f"{m['rmse_mev']:.1f} ({m['mae_mev']:.1f}) | "
                     f"{'' if paper is None else f'{paper[0]} ({paper[1]})'} | "
                     f"{r['timings'].get('ae', {}).get('epochs', '-')} ({r['params']['ae']['max_epochs']}) | "
                     f"{r['timings']['mps']['epochs']} ({r['params']['mps']['max_epochs']}) |")
    return "\n".join(lines)
