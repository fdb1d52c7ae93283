"""Latent spaces of a trained MERA on NMD18 (paper Section IV D, Fig. 16).

A binary MERA (:class:`tnmat.training.MERARegressor`) is trained on the formation energies of 1000 NMD18
structures (a seeded subset of the official training set; 20 % of them for early stopping) from the
structure-averaged SOAP power spectrum (r_cut 6 A, n_max 4, l_max 3, species O, Al, Ga, In; legs
a1, a2, n1, n2, l of size 4).  It is then applied to all 3000 structures; the standardised input and the
output of every hidden layer (:meth:`tnmat.networks.MERA.latent`) are embedded in 2-D with t-SNE
(scikit-learn, perplexity 30, PCA initialisation) and coloured by composition (RGB = Al, Ga, In cation
fractions), spacegroup and formation energy.

To quantify what the eye sees, every embedding also gets 5-fold k-nearest-neighbour scores (k = 10) in the
2-D plane: spacegroup classification accuracy and the R^2 of composition (x_Al, x_In) and formation energy.
The result record (experiment "latent-tsne") is written to the ResultStore; rerunning with the same
configuration reads the stored record and only redraws when asked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tnmat.descriptors.presets import PRESETS
from tnmat.legtensor import LegTensor
from tnmat.metrics import rmse_mae
from tnmat.threads import thread_limited

__all__ = ["LatentSettings", "run_latent_experiment", "knn_scores", "nmd18_power_spectrum"]

SOAP = {"species": ("O", "Al", "Ga", "In"),
        **{k: getattr(PRESETS["fast"], k) for k in ("r_cut", "n_max", "l_max", "sigma")}}


def nmd18_power_spectrum(ds: Any, *, descriptors: str | Path | None = None, progress: bool = False) -> LegTensor:
    """Structure-averaged power spectrum of ``ds`` with :data:`SOAP`; ``descriptors`` is an optional
    LegTensor file computed with the same settings for the same structures (checked: row count, settings,
    and three recomputed rows)."""
    from tnmat.descriptors import AtomicDensity, Invariants

    inv = Invariants(AtomicDensity(species=SOAP["species"], r_cut=SOAP["r_cut"], n_max=SOAP["n_max"],
                                   l_max=SOAP["l_max"], sigma=SOAP["sigma"]), order=2)
    if descriptors is not None and Path(descriptors).is_file():
        x = LegTensor.load(descriptors)
        dens = x.meta.get("params", {}).get("density", {})
        ok = (len(x) == len(ds) and not x.is_per_atom and tuple(dens.get("species", ())) == SOAP["species"]
              and all(dens.get(k) == SOAP[k] for k in ("r_cut", "n_max", "l_max", "sigma")))
        if ok:
            probe = [0, len(ds) // 2, len(ds) - 1]
            ref = inv.compute([ds.structures[i] for i in probe], progress=False).values
            ok = torch.allclose(x.values[probe], ref, rtol=1e-8, atol=1e-12)
        if not ok:
            raise ValueError(f"{descriptors}: descriptors do not match the NMD18 structures / SOAP settings {SOAP}")
        return x
    return inv.compute(ds.structures, progress=progress)


def knn_scores(embedding: np.ndarray, *, spacegroup: np.ndarray, composition: np.ndarray, energy: np.ndarray,
               k: int = 10, seed: int = 0) -> dict[str, float]:
    """5-fold k-NN scores of a 2-D embedding: spacegroup accuracy, R^2 of composition and of energy."""
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    cv = KFold(5, shuffle=True, random_state=seed)
    return {
        "spacegroup_accuracy": float(cross_val_score(KNeighborsClassifier(k), embedding, spacegroup, cv=cv).mean()),
        "composition_r2": float(cross_val_score(KNeighborsRegressor(k), embedding, composition, cv=cv).mean()),
        "energy_r2": float(cross_val_score(KNeighborsRegressor(k), embedding, energy, cv=cv).mean()),
    }


@dataclass(frozen=True)
class LatentSettings:
    """Fig. 16: a MERA of bond ``bond_dim`` trained (Adam, float64) on ``n_train`` structures drawn by
    ``seed`` from the official training split, t-SNE with ``perplexity``."""

    n_train: int = 1000
    bond_dim: int = 4
    max_epochs: int = 300
    patience: int | None = 30
    learning_rate: float = 3e-3
    batch_size: int = 32
    seed: int = 0
    perplexity: float = 30.0


def _labels(ds: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(formation energy, composition (x_Al, x_Ga, x_In), spacegroup) of the NMD18 structures."""
    meta = ds.metadata
    comp = np.stack([np.asarray(meta["x_al"], float), np.asarray(meta["x_ga"], float),
                     np.asarray(meta["x_in"], float)], 1)
    return np.asarray(ds.targets["formation_energy"], dtype=float), comp, np.asarray(meta["spacegroup"]).astype(int)


def _fit_mera(ds: Any, x: LegTensor, sett: LatentSettings) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    """Train the MERA; (estimator, feature spaces: standardised input and every hidden layer, summary)."""
    from tnmat.training import MERARegressor

    energy = _labels(ds)[0]
    train_pool = np.flatnonzero(np.asarray(ds.metadata["split"]) == "train")
    chosen = np.random.default_rng(sett.seed).choice(train_pool, size=sett.n_train, replace=False)
    rest = np.setdiff1d(np.arange(len(ds)), chosen)
    est = MERARegressor(bond_dim=sett.bond_dim, max_epochs=sett.max_epochs, patience=sett.patience,
                        learning_rate=sett.learning_rate, batch_size=sett.batch_size, random_state=sett.seed,
                        dtype="float64")
    t0 = time.perf_counter()
    est.fit(x.select(chosen), energy[chosen])
    t_fit = time.perf_counter() - t0
    rest_rmse, rest_mae = rmse_mae(energy[rest], est.predict(x.select(rest)), what="latent: MERA")
    net = est.network_
    xs = ((x.values - est.x_mean_) / est.x_std_).to(next(net.parameters()).dtype)
    with torch.no_grad():
        hidden = [h.double().numpy() for h in net.latent(xs)]
    spaces = {"input": xs.reshape(len(xs), -1).double().numpy(), **{f"layer{k + 1}": h for k, h in
                                                                    enumerate(hidden)}}
    summary = {"n_parameters": int(est.n_parameters_), "epochs": int(est.n_epochs_), "rest_rmse_mev": rest_rmse,
               "rest_mae_mev": rest_mae, "n_rest": int(len(rest)), "fit_s": t_fit}
    return est, spaces, summary


@thread_limited
def run_latent_experiment(ds: Any, x: LegTensor, *, store: str | Path, settings: LatentSettings = LatentSettings(),
                          threads: int | None = None) -> dict[str, Any]:
    """Fig. 16 on the NMD18 dataset ``ds`` and its power spectra ``x`` (:func:`nmd18_power_spectrum`): train the
    MERA, embed input and hidden layers with t-SNE and score the embeddings.  Returns the stored record: MERA
    test errors (meV/cation on the structures not used for training), per-embedding k-NN scores, feature
    dimensions, and ``embeddings_file`` (the 2-D embeddings, .npz) from which ``tnmat latent`` draws the
    figure.  A stored record with its embeddings is returned without refitting."""
    from sklearn.manifold import TSNE

    from tnmat.experiments.compression import _open_store
    from tnmat.experiments.store import config_key

    if len(x) != len(ds):
        raise ValueError(f"latent experiment: {len(x)} descriptor rows for {len(ds)} structures")
    st, sett = _open_store(store), settings
    cfg = {"experiment": "latent-tsne", "n_train": sett.n_train, "bond_dim": sett.bond_dim,
           "max_epochs": sett.max_epochs, "patience": sett.patience, "lr": sett.learning_rate,
           "batch_size": sett.batch_size, "seed": sett.seed, "perplexity": sett.perplexity,
           "soap": {k: list(v) if isinstance(v, tuple) else v for k, v in SOAP.items()}}
    key = config_key(cfg)
    emb_path = Path(store).with_name(f"latent-embeddings-{key[:10]}.npz") if not hasattr(store, "path") else None
    record = st.get(key)
    if record is None or emb_path is None or not emb_path.is_file():
        energy, comp, sg = _labels(ds)
        est, spaces, mera = _fit_mera(ds, x, sett)
        embeddings, scores, dims = {}, {}, {}
        t0 = time.perf_counter()
        for name, feats in spaces.items():
            # t-SNE needs distinct points; constant columns carry nothing and are dropped
            feats = feats[:, feats.std(0) > 1e-12]
            dims[name] = int(feats.shape[1])
            e = TSNE(n_components=2, perplexity=sett.perplexity, init="pca", random_state=sett.seed).fit_transform(
                feats)
            embeddings[name] = e
            scores[name] = knn_scores(e, spacegroup=sg, composition=comp[:, [0, 2]], energy=energy, seed=sett.seed)
        t_fit = mera.pop("fit_s")
        record = {"experiment": "latent-tsne", "params": cfg, "mera": mera, "feature_dims": dims, "knn": scores,
                  "timings": {"fit_s": t_fit, "tsne_s": time.perf_counter() - t0}}
        if not st.has(key):
            st.put(key, record)
        if emb_path is not None:
            np.savez_compressed(emb_path, **embeddings)
        record = st.get(key) or record
    if emb_path is not None and emb_path.is_file():
        record["embeddings_file"] = str(emb_path)  # the commands layer draws the figure from it
    return record
