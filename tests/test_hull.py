"""Convex hulls (tnmat.experiments.hull): planted ground states are found exactly, and scoring."""

from __future__ import annotations

import numpy as np
import pytest

from tnmat.experiments.hull import enumerate_configurations, fractions, hull_distances, hull_rows, score_hull


def _planted_ternary(seed: int = 0):
    """Compositions on a grid of the ternary simplex; energies = a convex function at planted ground states,
    everything else planted above the hull by a known amount."""
    rng = np.random.default_rng(seed)
    grid = [(i / 6, j / 6) for i in range(7) for j in range(7 - i)]
    x = np.array([(1 - a - b, a, b) for a, b in grid])
    base = -0.2 * (x[:, 0] * x[:, 1] + 2 * x[:, 1] * x[:, 2] + 0.5 * x[:, 0] * x[:, 2])  # strictly convex mixing
    above = np.where(rng.random(len(x)) < 0.5, rng.uniform(0.001, 0.05, len(x)), 0.0)
    above[np.isclose(x.max(axis=1), 1.0)] = 0.0  # pure elements are always on the hull
    e = base + above
    return x, e, above


def _lp_hull_energy(x: np.ndarray, e: np.ndarray, p: int) -> float:
    """The lower hull's energy at point p by its definition: min sum_i l_i e_i over convex combinations of all
    points with the composition of p (a linear program)."""
    from scipy.optimize import linprog

    a_eq = np.vstack([x.T, np.ones(len(x))])
    res = linprog(e, A_eq=a_eq, b_eq=np.append(x[p], 1.0), bounds=(0, None), method="highs")
    return float(res.fun)


def test_hull_of_planted_energies_is_found_exactly():
    x, e, above = _planted_ternary()
    d = hull_distances(x, e)
    reference = np.array([e[p] - _lp_hull_energy(x, e, p) for p in range(len(x))])
    np.testing.assert_allclose(d, np.maximum(reference, 0), atol=1e-10)
    # the unlifted points lie on a strictly convex surface, so each is a ground state, and no lifted one is
    assert np.all(d[above == 0] <= 1e-12)
    assert np.all((d > 1e-9) <= (above > 0)) and np.all(d <= above + 1e-12)
    # a binary: two ground states and one point planted 10 meV/atom above the tie line
    xb = np.array([[1, 0], [0.5, 0.5], [0.25, 0.75], [0, 1]])
    eb = np.array([0.0, -0.1, -0.05 + 0.01, 0.0])
    np.testing.assert_allclose(hull_distances(xb, eb), [0, 0, 0.01, 0], atol=1e-12)


def test_scores_count_found_and_false_ground_states():
    x, e, above = _planted_ternary(1)
    perfect = score_hull(x, e, e)
    assert perfect.found_fraction == 1.0 and perfect.false_ground_states == () and perfect.hull_distance_mae_meV == 0
    lifted = e.copy()
    gs = np.flatnonzero((above == 0) & ~np.isclose(x.max(axis=1), 1.0))
    lifted[gs[0]] += 0.2  # one ground state missed
    dropped = e.copy()
    off = int(np.argmax(above))
    dropped[off] -= 1.0  # a false ground state, planted above[off] eV/atom above the true hull
    s1, s2 = score_hull(x, e, lifted), score_hull(x, e, dropped)
    assert s1.n_found == perfect.n_found - 1
    assert len(s2.false_ground_states) == 1
    assert s2.worst_false_meV == pytest.approx(1000 * hull_distances(x, e)[off]) and s2.worst_false_meV > 0


def test_enumeration_and_rows():
    structures = enumerate_configurations(["Cu", "Au"], "fcc", 4)
    assert len(structures) > 20
    e = np.array([-0.01 * len(a) * (s := fractions([a], ["Cu", "Au"])[0, 0]) * (1 - s) for a in structures])
    rows = hull_rows(structures, e, ["Cu", "Au"])
    assert set(rows[0]) >= {"id", "formula", "x_Cu", "x_Au", "energy_meV_per_atom", "hull_distance_meV_per_atom"}
    assert sum(r["on_hull"] for r in rows) >= 3
    with pytest.raises(ValueError, match="pure element"):
        hull_distances(np.array([[0.5, 0.5], [0, 1]]), np.zeros(2))
