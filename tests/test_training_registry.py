"""The one model table (tnmat.training.registry): strict parameters, one list of names, grids per preset
that reproduce the keys of the committed learning-curve fits."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tnmat.baselines import GPRRegressor
from tnmat.networks import KINDS, make_network
from tnmat.training import MODEL_KINDS, MPORegressor
from tnmat.training.registry import (
    MODEL_NAMES,
    MODELS,
    PRESETS,
    check_params,
    make_estimator,
    model_spec,
    preset_grids,
)

RESULTS = Path(__file__).resolve().parents[1] / "results" / "learning_curve"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_builds_with_exactly_its_parameters(name):
    spec = model_spec(name)
    est = make_estimator(name)
    assert isinstance(est, spec.estimator)
    assert set(est.get_params()) - set(spec.implied) == set(spec.parameters)
    for key, value in spec.implied.items():
        assert est.get_params()[key] == value


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_unknown_parameter_is_an_error_listing_the_model_parameters(name):
    with pytest.raises(ValueError, match="no parameter") as info:
        make_estimator(name, no_such_parameter=1)
    assert "no_such_parameter" in str(info.value)
    for p in model_spec(name).parameters:
        assert p in str(info.value)


def test_implied_arguments_are_not_parameters():
    assert make_estimator("gpr-soap").kernel == "soap"
    with pytest.raises(ValueError, match="kernel"):
        make_estimator("gpr-rbf", kernel="soap")
    with pytest.raises(ValueError, match="bond_dim"):
        make_estimator("dense", bond_dim=4)  # the dense model has no bond dimension: never silently dropped
    with pytest.raises(ValueError, match="unknown model 'peps'"):
        make_estimator("peps")


def test_parameters_reach_the_estimator():
    est = make_estimator("mpo", bond_dim=3, input_offset=1.0, random_state=7)
    assert isinstance(est, MPORegressor)
    assert (est.bond_dim, est.input_offset, est.random_state) == (3, 1.0, 7)
    assert isinstance(make_estimator("gpr-rbf", noise=0.5), GPRRegressor)


def test_one_list_of_network_kinds():
    assert MODEL_KINDS is KINDS
    assert sorted(s.network for s in MODELS.values() if s.network) == sorted(KINDS)
    for spec in MODELS.values():
        if spec.network is not None:
            est = make_estimator(spec.name)
            assert est._kind() == spec.network
            make_network(spec.network, (2, 3), None if spec.network == "dense" else 2)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_grids_name_only_parameters_the_model_takes(preset):
    grids = preset_grids(preset)
    assert set(grids) == set(MODEL_NAMES)
    for name, grid in grids.items():
        check_params(name, grid)
        check_params(name, PRESETS[preset].fixed_params(name))
    assert PRESETS[preset].fixed_params("gpr-rbf") == {}


def _records(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh]


@pytest.mark.parametrize("folder", ["paper_relaxed", "paper_vegard"])
def test_paper_preset_reproduces_the_keys_of_the_committed_fits(folder):
    """The paper learning curves were run with the paper preset and Adam: its grids and training settings from
    the table with ``solver="adam"`` must give exactly the stored task keys, so a rerun resumes instead of
    refitting; under the default policy the tensor networks' tasks are new ones (sweeps), the baselines' the
    same."""
    from tnmat.experiments.learning_curve import learning_curve_tasks

    records = _records(RESULTS / folder / "fits.jsonl.gz")
    models = sorted({r["model"] for r in records})
    splits = sorted({r["split"] for r in records})
    (dataset,) = {r["params"]["extra"]["dataset"] for r in records}
    preset = PRESETS["paper"]
    from tnmat.experiments.store import config_key

    def keys(solver: str) -> dict[str, set[str]]:
        tasks = learning_curve_tasks(models, preset.sizes, splits, grids=preset_grids("paper"), solver=solver,
                                     fixed={m: preset.fixed_params(m) for m in models}, dataset=dataset, seed=0)
        return {m: {config_key(t) for t in tasks if t["model"] == m} for m in models}

    adam, auto = keys("adam"), keys("auto")
    stored = {m: {r["key"] for r in records if r["model"] == m} for m in models}
    assert all(stored[m] <= adam[m] for m in models)
    assert len(records) > 1000
    for m in models:  # mps, mpo: sweeps now; dnn, gpr-*: unchanged
        assert (stored[m] <= auto[m]) == (m not in ("mps", "mpo", "ttn")), m


def test_every_committed_fit_names_only_parameters_of_its_model():
    paths = sorted(RESULTS.glob("*/fits.jsonl.gz"))
    assert paths
    for path in paths:
        for r in _records(path):
            check_params(r["model"], {k: v for k, v in r["params"].items() if k != "extra"})
