"""Applicability range of tnmat predict: how many held-out structures of real data sets fall
outside the training descriptors' range at each margin, and how far structures with a unit error (positions
scaled by the Bohr/Angstrom factor 0.529) fall outside.  Writes results/domain/domain.json.

Run: python benchmarks/domain.py [--nmd18]   (NMD18 from $TNMAT_NMD18: official 2400/600 split)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tnmat import data
from tnmat.data.domain import DEFAULT_MARGIN, DescriptorRange
from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.experiments.splits import holdout_split, official_test

MARGINS = (0.0, 0.1, 0.25, 0.5, 1.0)
BOHR = 0.529177


def measure(ds, r_cut: float) -> dict:  # noqa: ANN001 (a Dataset)
    """Fractions of test structures flagged per margin; excess of the Bohr-scaled test structures."""
    calc = Invariants(AtomicDensity(species=ds.species, r_cut=r_cut, n_max=4, l_max=3), order=2)
    train, test = holdout_split(len(ds), official=official_test(ds.metadata.get("split")), seed=0)
    X = calc.compute(ds.structures, average=True)
    rng = DescriptorRange.of(X.select(train))
    exc = rng.excess(X.select(test))
    scaled = []
    for k in test[:50]:
        a = ds.structures[int(k)].copy()
        a.set_cell(a.cell * BOHR, scale_atoms=True)
        scaled.append(a)
    exc_bohr = rng.excess(calc.compute(scaled, average=True))
    return {"dataset": ds.name, "n_train": len(train), "n_test": len(test), "r_cut": r_cut,
            "flagged_fraction": {str(m): float(np.mean(exc > m)) for m in MARGINS},
            "test_excess_max": float(exc.max()), "bohr_scaled_n": len(scaled),
            "bohr_scaled_flagged_at_default": float(np.mean(exc_bohr > DEFAULT_MARGIN)),
            "bohr_scaled_excess_min": float(exc_bohr.min())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nmd18", action="store_true")
    p.add_argument("--out", default="results/domain/domain.json")
    args = p.parse_args()
    rows = [measure(data.embedded_default(small=True), 4.5)]
    if args.nmd18:
        rows.append(measure(data.load_nmd18(None), 6.0))
    out = {"default_margin": DEFAULT_MARGIN, "margins": list(MARGINS), "results": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
