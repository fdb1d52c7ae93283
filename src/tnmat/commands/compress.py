"""``tnmat compress ttsvd|autoencoder``: compression of large descriptors on the many-species alloy set
(paper Fig. 17 and Table I), into a resumable SQLite file, with the Markdown tables and the figure."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from tnmat.commands._common import experiment_options, ints, option

NAME = "compress"
HELP = "compress large descriptors (TT-SVD inputs, MPO autoencoder)"
DESCRIPTION = ("ttsvd: supervised MPO on TT-SVD-factorised inputs versus chi_in (paper Fig. 17); autoencoder: MPO "
               "autoencoder at several latent dimensions and an MPS on the encoded inputs (Table I).  Many-species "
               "alloy set, n_max = l_max = 8.")
OPTIONS = [
    option("action", choices=["ttsvd", "autoencoder"], help="which experiment"),
    option("--chi-in", default="1,2,4,8,16,32", help="ttsvd: input bond dimensions"),
    option("--d-latent", default="6,4,2", help="autoencoder: latent site dimensions"),
    option("--bond-dim", type=int, default=None, help="supervised model bond (ttsvd MPO 4, MPS 10)"),
    option("--bond-dim-ae", type=int, default=6, help="autoencoder encoder/decoder bond (default 6)"),
    option("--n-train", type=int, default=1600, help="training structures (default 1600)"),
    option("--n-test", type=int, default=1000, help="test structures (default 1000)"),
    option("--epochs", type=int, default=60, help="epochs of the supervised fits"),
    option("--ae-epochs", type=int, default=20, help="autoencoder epochs"),
    option("--cache", default=None, help="folder for cached descriptors"),
    *experiment_options("compression.sqlite", "compression", "folder for figures and tables"),
]


def run(args: argparse.Namespace) -> int:
    """Load the benchmark data -> run the experiment on it -> report -> plot."""
    from tnmat.data.units import target_units
    from tnmat.experiments import compression as comp
    from tnmat.plots.compression import plot_ttsvd
    from tnmat.reports import atomic_write

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = args.results or str(out / "compression.sqlite")
    data = comp.alloy_benchmark_data(n_train=args.n_train, n_test=args.n_test, seed=args.seed, cache_dir=args.cache,
                                     progress=not args.quiet)
    if args.action == "ttsvd":
        default = comp.TTSVDSettings()
        settings = replace(default, chi_in=tuple(ints(args.chi_in)), bond_dim=args.bond_dim or default.bond_dim,
                           fit=replace(default.fit, max_epochs=args.epochs))
        res = comp.run_ttsvd_experiment(data, store=store, settings=settings, threads=args.threads)
        plot_ttsvd(res["rows"], out / "fig17_ttsvd.png", res["dense_size"],
                   units=target_units(res["meta"]["dataset"], "mixing_energy"))
    else:
        default = comp.AutoencoderSettings()
        settings = replace(default, d_latent=tuple(ints(args.d_latent)), bond_dim_ae=args.bond_dim_ae,
                           bond_dim_mps=args.bond_dim or default.bond_dim_mps,
                           ae=replace(default.ae, max_epochs=args.ae_epochs),
                           mps=replace(default.mps, max_epochs=args.epochs))
        comp.run_autoencoder_experiment(data, store=store, settings=settings, model_dir=out / "models",
                                        threads=args.threads)
    tables = comp.compression_tables(store)
    atomic_write(out / f"{args.action}.md", tables)
    print(tables)
    print(f"wrote {out / (args.action + '.md')} (results in {store})")
    return 0
