"""The many-species power spectrum as 5 legs of dimension 8 (paper Section IV C, the BA10 autoencoder input).

Exact mapping used here (for the 7 EMT metals, n_max = 8, l_max = 8):

1. Power spectrum B2[a1, a2, n1, n2, l] (legs of sizes S, S, n_max, n_max, l_max + 1 = 7, 7, 8, 8, 9;
   28224 entries), averaged over the atoms of each structure.
2. Keep the independent entries under the exchange (a1, n1) <-> (a2, n2) (B2 is symmetric under it):
   the entries with (a1, n1) <= (a2, n2) lexicographically (:meth:`LegTensor.independent_mask` with pairs
   (a1, a2), (n1, n2)), taken in C order of (a1, a2, n1, n2, l), i.e. l fastest.  For S = 7, n_max = 8:
   F = (S n_max)(S n_max + 1)/2 (l_max + 1) = 56 * 57 / 2 * 9 = 14364 features f = 0..F-1.
3. Zero-pad the feature vector to 8^5 = 32768 and reshape in C order to (8, 8, 8, 8, 8):
   f = 4096 q1 + 512 q2 + 64 q3 + 8 q4 + q5, legs named q1..q5.  Features f >= F are exact zeros (so for
   S = 7 only q1 in 0..3 carries data).

The legs of the result have no physical meaning of their own; the mapping only gives a tensor with
uniform small legs on which MPS / MPO models and the MPO autoencoder act site by site.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from ase import Atoms

from tnmat.legtensor import LegTensor

__all__ = ["independent_padded", "padded_power_spectrum", "PS_PAIRS"]

#: the exchange symmetry of the power spectrum: (a1, n1) <-> (a2, n2)
PS_PAIRS = (("a1", "a2"), ("n1", "n2"))


def independent_padded(descriptor: LegTensor, *, pairs: Sequence[tuple[str, str]] = PS_PAIRS, n_sites: int = 5,
                       site_dim: int = 8) -> LegTensor:
    """Independent entries of ``descriptor`` (C order), zero-padded to site_dim**n_sites and reshaped to
    ``n_sites`` legs ``q1..qN`` of dimension ``site_dim`` (module docstring).  Raises when they do not fit."""
    if descriptor.is_per_atom:
        raise ValueError("independent_padded: the descriptor is per-atom; average it first (structure_mean())")
    feats = descriptor.independent_features(pairs)
    total = site_dim**n_sites
    if feats.shape[1] > total:
        raise ValueError(f"independent_padded: {feats.shape[1]} independent entries of legs {descriptor.legs} "
                         f"{descriptor.sizes} do not fit into {n_sites} legs of dimension {site_dim} ({total})")
    values = torch.nn.functional.pad(feats, (0, total - feats.shape[1]))
    meta = dict(descriptor.meta)
    meta["padding"] = {"source_legs": list(descriptor.legs), "source_sizes": list(descriptor.sizes),
                       "pairs": [list(p) for p in pairs], "n_features": int(feats.shape[1]),
                       "n_sites": n_sites, "site_dim": site_dim}
    return LegTensor(values.reshape(len(values), *([site_dim] * n_sites)),
                     tuple(f"q{k}" for k in range(1, n_sites + 1)), meta=meta)


def padded_power_spectrum(frames: Sequence[Atoms], *, species: Sequence[str], r_cut: float = 5.0, n_max: int = 8,
                          l_max: int = 8, sigma: float = 0.5, n_sites: int = 5, site_dim: int = 8,
                          max_atoms: int = 256, progress: bool | None = None) -> LegTensor:
    """Structure-averaged power spectrum (paper eq. 22) of ``frames`` mapped by :func:`independent_padded`.

    Computed in chunks of ``max_atoms`` atoms so the full per-atom tensor (S^2 n_max^2 (l_max+1) entries per
    atom) is never held for the whole set."""
    from tnmat.descriptors import AtomicDensity, Invariants

    inv = Invariants(AtomicDensity(species=tuple(species), r_cut=r_cut, n_max=n_max, l_max=l_max, sigma=sigma),
                     order=2)
    frames = list(frames)
    parts = []
    step = 200  # structures per call: bounds the memory of the averaged (S, S, n, n, l) block too
    for s in range(0, len(frames), step):
        ps = inv.compute(frames[s : s + step], average=True, max_atoms=max_atoms, progress=progress)
        parts.append(independent_padded(ps, n_sites=n_sites, site_dim=site_dim))
    meta = dict(parts[0].meta)
    meta["descriptor"] = {"species": list(species), "r_cut": r_cut, "n_max": n_max, "l_max": l_max, "sigma": sigma}
    return LegTensor(torch.cat([p.values for p in parts]), parts[0].legs, meta=meta)
