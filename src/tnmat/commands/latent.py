"""``tnmat latent``: t-SNE of a trained MERA's latent spaces on NMD18 (paper Fig. 16)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tnmat.commands._common import experiment_options, load_data, option

NAME = "latent"
HELP = "t-SNE of a trained MERA's latent spaces (paper Fig. 16)"
DESCRIPTION = ("Train a MERA on NMD18 power spectra and embed the input and every hidden layer's output with "
               "t-SNE, coloured by composition, spacegroup and energy.")
OPTIONS = [
    option("data", nargs="?", default="nmd18", help="NMD18 folder (default: $TNMAT_NMD18)"),
    option("--n-train", type=int, default=1000, help="training structures (default 1000)"),
    option("--bond-dim", type=int, default=4, help="MERA bond dimension (default 4)"),
    option("--epochs", type=int, default=300, help="maximum epochs (default 300)"),
    *experiment_options("latent.sqlite", "latent", "folder for the figure"),
]


def run(args: argparse.Namespace) -> int:
    """Load NMD18 -> describe (the Fig. 16 power spectrum) -> run -> report -> plot the stored embeddings."""
    from tnmat.experiments.latent import LatentSettings, nmd18_power_spectrum, run_latent_experiment
    from tnmat.plots.compression import plot_latent

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ds = load_data(args.data)
    x = nmd18_power_spectrum(ds, progress=not args.quiet)
    settings = LatentSettings(n_train=args.n_train, bond_dim=args.bond_dim, max_epochs=args.epochs, seed=args.seed)
    rec = run_latent_experiment(ds, x, store=args.results or str(out / "latent.sqlite"), settings=settings,
                                threads=args.threads)
    print({k: v for k, v in rec.items() if not isinstance(v, list | dict)})
    if rec.get("embeddings_file"):
        meta = ds.metadata
        comp = np.stack([np.asarray(meta[k], float) for k in ("x_al", "x_ga", "x_in")], 1)
        with np.load(rec["embeddings_file"]) as z:
            embeddings = {k: z[k] for k in z.files}
        figure = plot_latent(embeddings, comp, np.asarray(meta["spacegroup"]).astype(int),
                             np.asarray(ds.targets["formation_energy"], dtype=float), out / "fig16_latent_tsne.png")
        print(f"wrote {figure}")
    return 0
