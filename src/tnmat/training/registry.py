"""The one model table: model name -> estimator class, the hyper-parameters it takes, its grids for each
preset, and the run sizes of the presets.  Units-free: targets and their units are the caller's.

Strict everywhere: :func:`make_estimator` refuses a parameter the model does not take (the error lists the
ones it takes), because a silently dropped setting would make different runs the same fit.

Presets (learning curve, paper Section IV A): ``quick`` (about a minute on the small alloy set: one grid
point per model, few epochs) and ``paper`` (the paper's protocol: 10 splits, 600 test structures, sizes
50..2400).  A model's grid for a preset is searched on the validation set; the kernel settings of the
GPRs are fitted by the marginal likelihood instead, so their grids are empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tnmat._estimator_file import load_estimator_file
from tnmat.baselines.ce import ClusterExpansionRegressor
from tnmat.baselines.gpr import GPRRegressor
from tnmat.networks import KINDS as NETWORK_KINDS
from tnmat.training.estimators import (
    DenseACERegressor,
    DNNRegressor,
    FeatureMapMPSRegressor,
    MERARegressor,
    MPORegressor,
    MPSRegressor,
    TTNRegressor,
)
from tnmat.training.params import PARAMS, resolve_loss, resolve_solver

__all__ = ["ModelSpec", "Preset", "MODELS", "MODEL_NAMES", "PRESETS", "model_spec", "make_estimator",
           "check_params", "for_solver", "task_estimator", "preset_grids", "load_estimator", "takes_structures"]

Grid = Mapping[str, Sequence[Any]]


@dataclass(frozen=True)
class ModelSpec:
    """One row of the table.  ``implied`` are constructor arguments the name fixes (the GPR kernel); they
    are not parameters of the model.  ``network`` is the :mod:`tnmat.networks` kind of a tensor network.
    ``inputs``: what ``fit``/``predict`` take, ``"descriptors"`` (a LegTensor) or ``"structures"`` (a list of
    ASE structures on ideal lattice sites: the cluster expansion)."""

    name: str
    estimator: type
    grids: Mapping[str, Grid]
    implied: Mapping[str, Any] = field(default_factory=dict)
    network: str | None = None
    inputs: str = "descriptors"

    @property
    def parameters(self) -> tuple[str, ...]:
        """The hyper-parameters the model takes (its estimator's signature, less the implied ones)."""
        return tuple(sorted(set(self.estimator._get_param_names()) - set(self.implied)))

    def grid(self, preset: str) -> dict[str, list[Any]]:
        """The model's grid for ``preset`` (a copy)."""
        if preset not in self.grids:
            raise ValueError(f"model {self.name!r} has no grid for preset {preset!r} (it has {sorted(self.grids)})")
        return {k: list(v) for k, v in self.grids[preset].items()}


@dataclass(frozen=True)
class Preset:
    """Run sizes of a learning-curve preset; ``training`` is applied to every model trained by epochs
    (the models that take all of its parameters)."""

    sizes: tuple[int, ...]
    splits: int
    test_size: int
    training: Mapping[str, Any]

    def fixed_params(self, model: str) -> dict[str, Any]:
        """The preset's training settings for ``model`` ({} for models not trained by epochs, the GPRs)."""
        spec = model_spec(model)
        return dict(self.training) if set(self.training) <= set(spec.parameters) else {}


PRESETS: dict[str, Preset] = {
    "quick": Preset(sizes=(40, 80), splits=2, test_size=40, training={"max_epochs": 40, "patience": 10}),
    "paper": Preset(sizes=(50, 100, 200, 400, 800, 1600, 2400), splits=10, test_size=600,
                    training={"max_epochs": 1000, "patience": 50}),
}


def _tn_grids(paper_bonds: list[int]) -> dict[str, Grid]:
    """Tensor-network grids: 2 learning rates x the given bond dimensions (paper), chi 4 at 1e-2 (quick)."""
    return {"paper": {"bond_dim": paper_bonds, "learning_rate": [1e-3, 1e-2]},
            "quick": {"bond_dim": [4], "learning_rate": [1e-2]}}


_NO_GRID: dict[str, Grid] = {"paper": {}, "quick": {}}

#: name -> row, in the order the CLI lists the models.  Grids are small on purpose: 6 fits per tensor
#: network at most, 4 for the DNN.
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("mps", MPSRegressor, _tn_grids([4, 8, 16]), network="mps"),
    ModelSpec("mpo", MPORegressor, _tn_grids([4, 8, 16]), network="mpo"),
    ModelSpec("ttn", TTNRegressor, _tn_grids([4, 8, 16]), network="ttn"),
    ModelSpec("mera", MERARegressor, _tn_grids([4, 8]), network="mera"),
    ModelSpec("dense", DenseACERegressor, {"paper": {"learning_rate": [1e-3, 1e-2], "weight_decay": [0.0, 1e-4]},
                                           "quick": {"learning_rate": [1e-2]}}, network="dense"),
    ModelSpec("feature-map-mps", FeatureMapMPSRegressor, _tn_grids([4, 8]), network="feature-map-mps"),
    ModelSpec("dnn", DNNRegressor, {"paper": {"learning_rate": [1e-4, 1e-3], "weight_decay": [0.0, 1e-4]},
                                    "quick": {"learning_rate": [1e-3]}}),
    ModelSpec("gpr-rbf", GPRRegressor, _NO_GRID, implied={"kernel": "rbf"}),
    ModelSpec("gpr-soap", GPRRegressor, _NO_GRID, implied={"kernel": "soap"}),
    ModelSpec("ce", ClusterExpansionRegressor, _NO_GRID, inputs="structures"),
)}

MODEL_NAMES: tuple[str, ...] = tuple(MODELS)

if sorted(s.network for s in MODELS.values() if s.network) != sorted(NETWORK_KINDS):  # pragma: no cover
    raise ImportError("the model table and tnmat.networks.KINDS disagree on the tensor networks")


def model_spec(name: str) -> ModelSpec:
    """The table row of ``name``; an unknown name is an error listing the known ones."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}") from None


def takes_structures(name: str) -> bool:
    """Whether model ``name`` fits and predicts on structures (ideal sites) rather than descriptors."""
    return model_spec(name).inputs == "structures"


def check_params(name: str, params: Mapping[str, Any]) -> None:
    """ValueError when ``params`` holds a parameter model ``name`` does not take (listing the ones it takes)."""
    spec = model_spec(name)
    unknown = sorted(set(params) - set(spec.parameters))
    if unknown:
        raise ValueError(f"model {name!r} has no parameter(s) {unknown} (it has {', '.join(spec.parameters)})")


def make_estimator(name: str, **params: Any) -> Any:
    """A fresh estimator for model ``name`` with ``params`` set (strict: see :func:`check_params`)."""
    check_params(name, params)
    spec = model_spec(name)
    return spec.estimator(**spec.implied, **params)


def for_solver(name: str, params: Mapping[str, Any], solver: str) -> dict[str, Any]:
    """The parameters of a stored experiment task of model ``name`` under ``solver`` (the default policy of
    :mod:`tnmat.training.params`, resolved per network): parameters of another solver dropped, and the
    resolved solver and loss written out, except Adam's.  A stored task without a ``solver`` therefore means
    Adam, as it did before sweeps were a solver (see :func:`task_estimator`), so stored keys keep their
    meaning.  Parameters that name their solver, and models without the table's solver (DNN, GPR), are
    returned unchanged: an explicit task means what it says."""
    spec = model_spec(name)
    if spec.network is None or "solver" not in spec.parameters or "solver" in params:
        return dict(params)
    resolved = resolve_solver(spec.network, params.get("solver", solver))
    out = {k: v for k, v in params.items()
           if k not in PARAMS or PARAMS[k].solvers is None or resolved in PARAMS[k].solvers}
    out.pop("solver", None)
    if resolved == "adam":
        return out
    return {**out, "solver": resolved, "loss": resolve_loss(resolved, out.get("loss", "auto"))}


def task_estimator(name: str, params: Mapping[str, Any]) -> Any:
    """The estimator of a stored experiment task.  Stored tensor-network tasks keep the meaning they had when
    written: no ``solver`` means Adam and no ``loss`` least squares (see :func:`for_solver`), and settings of
    another solver are ignored (older sweep tasks carried Adam's settings beside ``solver="sweep"``)."""
    spec = model_spec(name)
    if spec.network is not None and "solver" in spec.parameters:
        params = {"solver": "adam", "loss": "squared_error", **params}
        resolved = resolve_solver(spec.network, params["solver"])
        params = {k: v for k, v in params.items()
                  if k not in PARAMS or PARAMS[k].solvers is None or resolved in PARAMS[k].solvers}
    return make_estimator(name, **params)


def preset_grids(preset: str) -> dict[str, dict[str, list[Any]]]:
    """Every model's grid for ``preset`` (model name -> {parameter: values})."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    return {name: spec.grid(preset) for name, spec in MODELS.items()}


def load_estimator(path: str | Path) -> Any:
    """Any fitted estimator of the table saved with its ``save`` method (one file format,
    :mod:`tnmat._estimator_file`); importing this module registers every table class's loader."""
    return load_estimator_file(path)
