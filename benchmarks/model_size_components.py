"""Model size against the number of components of a solid solution (2-7 EMT metals on fcc): cluster functions
of the cluster expansion (icet ``ClusterSpace``, the benchmark's cutoff sets), features of ridge on the averaged
power spectrum (r_c 6 A, n_max 4, l_max 3) and parameters of the TTN at bond cap 8 on the same legs (every bond
at its cap: an upper bound of the sweep-fitted network).  Sizes only: no fit.

    python benchmarks/model_size_components.py    # writes results/solid_solutions/model_size.json
"""

from __future__ import annotations

import json
from pathlib import Path

from ase.build import bulk
from icet import ClusterSpace

from tnmat.networks import make_network
from tnmat.reports import atomic_write

ELEMENTS = ("Cu", "Ag", "Au", "Ni", "Pd", "Pt", "Al")
CUTOFFS = {"[6]": [6.0], "[6, 4]": [6.0, 4.0], "[10, 4]": [10.0, 4.0]}


def main() -> None:
    prim = bulk("Cu", "fcc", a=3.8)
    rows = []
    for k in range(2, len(ELEMENTS) + 1):
        species = list(ELEMENTS[:k])
        row = {"components": k}
        for name, cut in CUTOFFS.items():
            row[f"ce {name}"] = len(ClusterSpace(prim, cutoffs=cut, chemical_symbols=[species]))
        sizes = (k, k, 4, 4, 4)
        row["ridge"] = k * k * 4 * 4 * 4
        net = make_network("ttn", sizes, 8)
        row["ttn chi<=8"] = int(sum(p.numel() for p in net.parameters()))
        rows.append(row)
        print(row)
    out = Path(__file__).resolve().parents[1] / "results" / "solid_solutions" / "model_size.json"
    atomic_write(out, json.dumps({"rows": rows, "command": "python benchmarks/model_size_components.py"}, indent=1))


if __name__ == "__main__":
    main()
