"""Splits and stratified subsets: exact sizes, nesting, proportional allocation, distribution matching."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp

from tnmat.experiments.splits import (
    official_and_random_splits,
    priority_order,
    strata,
    stratified_subsets,
    train_validation_split,
)


def _pool_quantities(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x_al = rng.choice(np.linspace(0, 1, 9), size=n)  # discrete compositions with many ties, as in NMD18
    x_ga = (1 - x_al) * rng.choice(np.linspace(0, 1, 5), size=n)
    vol = 10 + 3 * x_al - 2 * x_ga + 0.3 * rng.normal(size=n)
    energy = 0.1 * x_al * (1 - x_al) + 0.05 * rng.gamma(2.0, size=n)
    return {"volume_per_atom": vol, "x_al": x_al, "x_ga": x_ga, "energy": energy}


def test_subsets_exact_unique_nested_and_from_pool() -> None:
    q = _pool_quantities(1000)
    pool = np.setdiff1d(np.arange(1000), np.arange(0, 1000, 5))
    subs = stratified_subsets(q, [50, 100, 400, 800], seed=3, pool=pool)
    for m, idx in subs.items():
        assert len(idx) == m and len(np.unique(idx)) == m
        assert np.isin(idx, pool).all()
    assert np.array_equal(subs[100][:50], subs[50]) and np.isin(subs[400], subs[800]).all()
    again = stratified_subsets(q, [50], seed=3, pool=pool)
    assert np.array_equal(again[50], subs[50])  # reproducible
    assert not np.array_equal(stratified_subsets(q, [50], seed=4, pool=pool)[50], subs[50])
    with pytest.raises(ValueError, match="sizes"):
        stratified_subsets(q, [len(pool) + 1], seed=0, pool=pool)


def test_every_prefix_is_a_proportional_allocation() -> None:
    rng = np.random.default_rng(1)
    labels = rng.choice(12, size=500, p=np.r_[0.3, 0.2, np.full(10, 0.05)])
    order = priority_order(labels, seed=0)
    assert sorted(order) == list(range(500))
    share = np.bincount(labels) / 500
    counts = np.zeros(12)
    worst = 0.0
    for m, i in enumerate(order, start=1):
        counts[labels[i]] += 1
        worst = max(worst, np.max(np.abs(counts - m * share)))
    assert worst < 1.0


def test_marginals_match_pool_better_than_random_sampling() -> None:
    q = _pool_quantities(2000, seed=2)
    m = 100
    ks_strat, ks_rand = [], []
    for seed in range(20):
        idx = stratified_subsets(q, [m], seed=seed, n_bins=3)[m]
        rnd = np.random.default_rng(100 + seed).choice(2000, size=m, replace=False)
        ks_strat.append(np.mean([ks_2samp(v[idx], v).statistic for v in q.values()]))
        ks_rand.append(np.mean([ks_2samp(v[rnd], v).statistic for v in q.values()]))
    # the stratified draw is systematically closer to the pool than simple random sampling
    assert np.mean(ks_strat) < 0.75 * np.mean(ks_rand)
    assert np.mean(ks_strat) < 0.1


def test_strata_bins_are_quantiles_and_ties_share_a_bin() -> None:
    x = np.r_[np.zeros(50), np.arange(1, 51, dtype=float)]
    lab = strata({"x": x}, n_bins=2)
    assert (lab[:50] == lab[0]).all() and (lab[50:] != lab[0]).all()
    y = np.arange(100.0)
    lab = strata(y, n_bins=4)
    assert np.array_equal(np.bincount(lab), [25, 25, 25, 25])
    with pytest.raises(ValueError, match="'v' is not finite for structure 3"):
        strata({"v": np.r_[1.0, 2, 3, np.nan]})


def test_official_and_random_splits_partition_the_data() -> None:
    mask = np.zeros(3000, dtype=bool)
    mask[2400:] = True
    splits = official_and_random_splits(3000, test_size=600, n_splits=10, seed=0, official_test=mask)
    assert [s.name for s in splits][:2] == ["official", "random-0"] and len(splits) == 11
    assert np.array_equal(splits[0].test, np.arange(2400, 3000))
    for s in splits:
        assert len(s.test) == 600 and len(s.pool) == 2400
        assert len(np.intersect1d(s.pool, s.test)) == 0
        assert np.array_equal(np.sort(np.r_[s.pool, s.test]), np.arange(3000))
    assert len({tuple(s.test[:5]) for s in splits[1:]}) == 10  # different random test sets
    again = official_and_random_splits(3000, test_size=600, n_splits=10, seed=0)
    assert np.array_equal(again[3].test, splits[4].test)


def test_train_validation_split() -> None:
    idx = np.arange(100, 150)
    tr, va = train_validation_split(idx, val_fraction=0.2, seed=1)
    assert len(va) == 10 and len(tr) == 40
    assert np.array_equal(np.sort(np.r_[tr, va]), idx)
    tr2, _ = train_validation_split(np.arange(2), val_fraction=0.2, seed=0)
    assert len(tr2) == 1
