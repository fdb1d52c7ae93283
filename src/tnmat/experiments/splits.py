"""Train/test splits and stratified training subsets for learning curves (paper Section IV A).

Protocol: 10 splits of the data into a test set (600 structures for NMD18) and a pool; from each pool,
nested training subsets of fixed sizes whose distributions of volume, composition and energy match the
pool; each subset split 80/20 into training and validation.

The official split (:func:`official_test`): a dataset whose ``metadata["split"]`` labels both ``"train"``
and ``"test"`` structures (NMD18's Kaggle 2400/600 split) has one; ``tnmat fit`` tests on it, the learning
curve uses it as an extra split when its test set has the requested size.  Without one, ``tnmat fit``
holds out a seeded random fifth (:func:`holdout_split`).

Stratified subsets (:func:`stratified_subsets`).  Each quantity (e.g. volume per atom, cation fractions,
formation energy) is cut into ``n_bins`` quantile bins of the pool (ties share a bin); the joint bin tuple
is the stratum of a structure.  Members of each stratum are put in a random (seeded) order.  One global
*priority order* of the pool is then built greedily: position m+1 goes to the stratum with the largest
deficit (m+1) p_s - k_s (p_s: the stratum's share of the pool, k_s: how many of its members are already
placed; ties broken at random), taking that stratum's next member.  A subset of size m is the first m
entries of the order, so

* every size is exact and subsets are nested (the subset of 100 lies inside the subset of 200), which
  makes learning curves smoother than independent draws;
* every prefix is a proportional allocation: |k_s(m) - m p_s| < 1 for each stratum at every m
  (a sequential quota method; no merging of small strata is needed: a stratum with p_s m < 1 simply
  waits for its turn).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np
import torch
from scipy.stats import rankdata

__all__ = ["Split", "official_and_random_splits", "random_splits", "stratified_subsets", "strata",
           "train_validation_split", "torch_train_validation", "priority_order", "official_test", "holdout_split",
           "FixedTestSplits"]


class Split(NamedTuple):
    """A named partition of structure indices into a pool (training candidates) and a test set."""

    name: str
    pool: np.ndarray
    test: np.ndarray


def _quantity_matrix(quantities: Mapping[str, np.ndarray] | np.ndarray) -> tuple[np.ndarray, list[str]]:
    if isinstance(quantities, Mapping):
        names = list(quantities)
        cols = [np.asarray(quantities[k], dtype=np.float64).ravel() for k in names]
        if len({len(c) for c in cols}) > 1:
            raise ValueError(f"stratification quantities have different lengths: "
                             f"{ {k: len(c) for k, c in zip(names, cols, strict=True)} }")
        Q = np.column_stack(cols) if cols else np.zeros((0, 0))
    else:
        Q = np.asarray(quantities, dtype=np.float64)
        if Q.ndim == 1:
            Q = Q[:, None]
        if Q.ndim != 2:
            raise ValueError(f"stratification quantities must be 1-D or 2-D, got shape {Q.shape}")
        names = [f"column {j}" for j in range(Q.shape[1])]
    for j, name in enumerate(names):
        bad = np.flatnonzero(~np.isfinite(Q[:, j]))
        if len(bad):
            raise ValueError(f"stratification quantity {name!r} is not finite for structure {int(bad[0])}")
    return Q, names


def strata(quantities: Mapping[str, np.ndarray] | np.ndarray, *, n_bins: int = 3) -> np.ndarray:
    """Stratum label per row: the joint tuple of quantile bins (``n_bins`` per quantity) as one integer."""
    Q, _ = _quantity_matrix(quantities)
    n = Q.shape[0]
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    label = np.zeros(n, dtype=np.int64)
    for j in range(Q.shape[1]):
        r = rankdata(Q[:, j], method="average")  # ties (e.g. equal compositions) share a rank, hence a bin
        b = np.minimum(((r - 0.5) / n * n_bins).astype(np.int64), n_bins - 1)
        label = label * n_bins + b
    return np.unique(label, return_inverse=True)[1]


def priority_order(labels: np.ndarray, *, seed: int | np.random.Generator) -> np.ndarray:
    """Order of the rows such that every prefix is a proportional sample of the strata (module docstring)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    n = len(labels)
    uniq, inv = np.unique(labels, return_inverse=True)
    members = [rng.permutation(np.flatnonzero(inv == s)) for s in range(len(uniq))]
    share = np.array([len(m) for m in members], dtype=np.float64) / n
    taken = np.zeros(len(uniq), dtype=np.int64)
    sizes = np.array([len(m) for m in members])
    jitter = rng.random(len(uniq)) * 1e-9  # random tie-break among equal deficits, fixed per stratum
    order = np.empty(n, dtype=np.int64)
    for m in range(n):
        deficit = (m + 1) * share - taken + jitter
        deficit[taken >= sizes] = -np.inf
        s = int(np.argmax(deficit))
        order[m] = members[s][taken[s]]
        taken[s] += 1
    return order


def stratified_subsets(quantities: Mapping[str, np.ndarray] | np.ndarray, sizes: Iterable[int], *,
                       seed: int, pool: np.ndarray | None = None, n_bins: int = 3) -> dict[int, np.ndarray]:
    """Nested training subsets of the given sizes whose distributions of ``quantities`` match the pool.

    ``quantities``: per-structure arrays (dict name -> array, or an (n, k) array) for *all* structures;
    ``pool``: indices of the candidate structures (default: all).  Returns ``{size: indices}`` with indices
    into the full arrays, sorted in priority order (so ``subsets[m1]`` is a prefix of ``subsets[m2]``)."""
    Q, _ = _quantity_matrix(quantities)
    pool = np.arange(Q.shape[0]) if pool is None else np.asarray(pool, dtype=np.int64)
    if len(np.unique(pool)) != len(pool):
        raise ValueError("stratified_subsets: pool has duplicate indices")
    sizes = [int(s) for s in sizes]
    too_big = [s for s in sizes if s > len(pool) or s < 1]
    if too_big:
        raise ValueError(f"stratified_subsets: sizes {too_big} are not between 1 and the pool size {len(pool)}")
    order = pool[priority_order(strata(Q[pool], n_bins=n_bins), seed=seed)]
    return {s: order[:s].copy() for s in sizes}


def random_splits(n: int, *, test_size: int = 600, n_splits: int = 10, seed: int = 0) -> list[Split]:
    """``n_splits`` independent random partitions of range(n) into a test set of ``test_size`` and a pool."""
    if not 0 < test_size < n:
        raise ValueError(f"random_splits: test_size={test_size} must be between 1 and n-1={n - 1}")
    out = []
    for k in range(n_splits):
        perm = np.random.default_rng([seed, k]).permutation(n)
        out.append(Split(f"random-{k}", np.sort(perm[test_size:]), np.sort(perm[:test_size])))
    return out


def official_and_random_splits(n: int, *, test_size: int = 600, n_splits: int = 10, seed: int = 0,
                               official_test: np.ndarray | None = None) -> list[Split]:
    """The paper's protocol: ``n_splits`` random splits (see :func:`random_splits`), preceded by the official
    split (named ``"official"``) when ``official_test`` is given (boolean mask or indices of the official
    test structures, e.g. ``metadata["split"] == "test"`` for NMD18's Kaggle 2400/600 split)."""
    splits = random_splits(n, test_size=test_size, n_splits=n_splits, seed=seed)
    if official_test is None:
        return splits
    t = np.asarray(official_test)
    test = np.flatnonzero(t) if t.dtype == bool else np.unique(t.astype(np.int64))
    if t.dtype == bool and len(t) != n:
        raise ValueError(f"official_test mask has length {len(t)}, expected {n}")
    if len(test) == 0 or len(test) >= n:
        raise ValueError("official_test selects no structures or all of them")
    pool = np.setdiff1d(np.arange(n), test)
    return [Split("official", pool, test), *splits]


def train_validation_split(indices: np.ndarray, *, val_fraction: float = 0.2,
                           seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random ``1 - val_fraction`` / ``val_fraction`` partition of ``indices`` (at least one of each)."""
    indices = np.asarray(indices)
    if len(indices) < 2:
        raise ValueError(f"train_validation_split: need at least 2 indices, got {len(indices)}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = min(max(1, round(val_fraction * len(indices))), len(indices) - 1)
    perm = np.random.default_rng(seed).permutation(len(indices))
    return indices[np.sort(perm[n_val:])], indices[np.sort(perm[:n_val])]


def torch_train_validation(n: int, *, seed: int, val_fraction: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Train / validation positions of ``range(n)`` from ``torch.randperm`` seeded with ``seed``: the first
    ``round(val_fraction * n)`` of the permutation validate (unsorted).  The compression experiments' rule,
    kept apart from :func:`train_validation_split` because their committed results were drawn with it."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(val_fraction * n))
    return perm[n_val:], perm[:n_val]


def official_test(labels: np.ndarray | None, *, size: int | None = None) -> np.ndarray | None:
    """Indices of the official test structures: where ``labels`` (``metadata["split"]``) is ``"test"``, if
    the labels mark both training and test structures (and, given ``size``, exactly ``size`` test ones);
    else None."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    test = np.flatnonzero(labels == "test")
    if len(test) == 0 or not (labels == "train").any() or (size is not None and len(test) != size):
        return None
    return test


def holdout_split(n: int, *, official: np.ndarray | None = None, seed: int = 0,
                  test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: the official test set when given, else a seeded random ``test_fraction``
    (at least one structure) of range(n); both sorted."""
    if official is not None:
        test = np.unique(np.asarray(official, dtype=np.int64))
        return np.setdiff1d(np.arange(n), test), test
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(n * test_fraction + 1e-9))  # n // 5 for the default fifth
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


class FixedTestSplits:
    """One fixed test set of ``test_size`` structures (drawn once from ``seed``) and ``n_splits`` random
    training subsets of the rest (nested over sizes: the subset of 100 is a prefix of that of 1000), each
    split ``1 - val_fraction`` / ``val_fraction`` into fitted and validation structures (the protocol of
    the entanglement experiments)."""

    def __init__(self, n: int, *, sizes: Iterable[int], n_splits: int, test_size: int, seed: int,
                 val_fraction: float = 0.2) -> None:
        sizes = sorted({int(s) for s in sizes})
        if not 0 < test_size < n:
            raise ValueError(f"test_size={test_size} must be between 1 and n-1={n - 1}")
        if not sizes or sizes[0] < 2 or sizes[-1] > n - test_size:
            raise ValueError(f"training sizes {sizes} must lie in [2, {n - test_size}] (n={n}, test_size={test_size})")
        if n_splits < 1:
            raise ValueError(f"n_splits must be >= 1, got {n_splits}")
        perm = np.random.default_rng([seed, 7919]).permutation(n)
        self.test = np.sort(perm[:test_size])
        self.pool = np.sort(perm[test_size:])
        self.sizes, self.n_splits, self.val_fraction = sizes, int(n_splits), float(val_fraction)
        self._orders = [self.pool[np.random.default_rng([seed, k]).permutation(len(self.pool))]
                        for k in range(n_splits)]

    def indices(self, split: int, n_train: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fit, validation, test) structure indices for split ``split`` and subset size ``n_train``."""
        if not 0 <= split < self.n_splits:
            raise KeyError(f"split {split} out of range (n_splits={self.n_splits})")
        sub = self._orders[split][: int(n_train)]
        fit, val = train_validation_split(sub, val_fraction=self.val_fraction, seed=[int(n_train), split])
        return fit, val, self.test
