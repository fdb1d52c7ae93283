"""The cluster-expansion baseline (tnmat.baselines.ce): known interactions are recovered, the choice is made
by cross-validation on the training structures, and a saved model predicts identically."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from icet.tools import enumerate_structures

from tnmat.baselines.ce import ClusterExpansionRegressor, cluster_vectors
from tnmat.training.registry import make_estimator, model_spec, takes_structures


@pytest.fixture(scope="module")
def structures():
    prim = bulk("Cu", "fcc", a=3.8)
    return list(enumerate_structures(prim, range(1, 7), ["Cu", "Au"]))


def test_planted_interactions_are_recovered(structures):
    """A target made by random ECIs on a small cluster space is reproduced to rounding, ECIs included."""
    est = ClusterExpansionRegressor(cutoffs_grid=[(7.0, 5.0)], fit_methods=("least-squares",))
    est._setup(structures)
    cs = est._space((7.0, 5.0))
    A = cluster_vectors(cs, structures, est.volume_per_atom_, "test")
    eci = np.random.default_rng(0).normal(0.0, 0.01, len(cs))
    y = A @ eci
    est.fit(structures, y)
    assert len(structures) > len(cs)
    np.testing.assert_allclose(est.predict(structures), y, atol=1e-8)
    np.testing.assert_allclose(est.parameters_, eci, atol=1e-8)
    # predictions do not depend on the volume of the (ideal-site) input
    scaled = [a.copy() for a in structures[:5]]
    for a in scaled:
        a.set_cell(a.cell.array * 1.03, scale_atoms=True)
    np.testing.assert_allclose(est.predict(scaled), y[:5], atol=1e-8)


def test_cross_validation_chooses_on_training_data(structures):
    est = ClusterExpansionRegressor(cutoffs_grid=[(5.0,), (7.0, 5.0)], fit_methods=("least-squares", "lasso"))
    ref = ClusterExpansionRegressor(cutoffs_grid=[(7.0, 5.0)], fit_methods=("least-squares",))
    ref._setup(structures)
    cs = ref._space((7.0, 5.0))
    y = cluster_vectors(cs, structures, ref.volume_per_atom_, "t") @ np.random.default_rng(1).normal(0, 0.01, len(cs))
    est.fit(structures, y)
    assert len(est.cv_results_) == 4
    best = min(est.cv_results_, key=lambda r: r["rmse_validation"])
    assert est.cutoffs_ == best["cutoffs"] and est.fit_method_ == best["fit_method"]
    assert len(est.cutoffs_) == 2  # the planted triplets need the triplet cutoff


def test_save_load_round_trip(structures, tmp_path):
    from tnmat.training import load_estimator

    y = np.array([len(a) % 3 * 0.01 + a.numbers.mean() * 1e-4 for a in structures])
    est = ClusterExpansionRegressor(cutoffs_grid=[(6.0,)], fit_methods=("least-squares",)).fit(structures, y)
    est.save(tmp_path / "ce.pt")
    back = load_estimator(tmp_path / "ce.pt")
    assert isinstance(back, ClusterExpansionRegressor)
    np.testing.assert_array_equal(back.predict(structures), est.predict(structures))
    assert back.cutoffs_ == est.cutoffs_ and back.n_parameters_ == est.n_parameters_


def test_in_the_model_table_and_refuses_descriptors(structures):
    assert takes_structures("ce") and not takes_structures("ttn")
    assert model_spec("ce").estimator is ClusterExpansionRegressor
    est = make_estimator("ce", random_state=3)
    with pytest.raises(TypeError, match="list of ASE structures"):
        est.fit(np.zeros((4, 3)), np.zeros(4))
    fitted = ClusterExpansionRegressor(cutoffs_grid=[(6.0,)], fit_methods=("least-squares",))
    fitted.fit(structures, np.linspace(0, 1, len(structures)))
    other = bulk("Ag", "fcc", a=4.1)
    with pytest.raises(ValueError, match="structure 0: species Ag"):
        fitted.predict([other])
