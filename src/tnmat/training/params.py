"""The one declared home of the estimators' training parameters.

Every parameter of the torch estimators is one :class:`Param` row of :data:`PARAMS`: its name, default,
constraint, the solvers it applies to, its command-line flag and help text.  From this table come

* the estimators' ``__init__`` signatures and defaults (:func:`estimator_init`; scikit-learn reads them),
* the one validation at fit (:func:`validate_params`: constraints, then applicability to the resolved solver),
* the sweep fitter's settings (:func:`tnmat.training.sweep.estimator.sweep_config`),
* every command's option table (:func:`tnmat.commands._common.param_options`).

No default or constraint is written anywhere else (``tests/test_params.py`` checks this).

Default policy (one for Python and every command): ``solver="auto"`` and ``loss="auto"`` resolve per network
to the measured best, :func:`resolve_solver` / :func:`resolve_loss`: DMRG-style sweeps with the Huber loss for
the networks the sweep fitter supports (MPS, MPO, TTN, dense), Adam on the squared error for the others
(MERA, feature-map MPS).  Measured on NMD18's official split with r_c 8 A, n_max 8, l_max 6
(``results/sweep/sweep_nmd18_huber.json``): TTN test MAE 9.39 meV/cation (sweeps + Huber) against 11.14
(sweeps, least squares); the Adam-trained networks are worse at every learning-curve size
(``results/learning_curve/paper_relaxed*``, ``docs/results/sweep.md``).  The ridge strengths of the local
solves are chosen by the evidence with a fifth of the structures held out to stop the passes: the best or
within 0.12 meV of the best of three policies on NMD18 (two descriptors) and the alloys
(``benchmarks/default_policy.py``, ``results/defaults/default_policy.json``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Param", "PARAMS", "SOLVERS", "LOSSES", "SWEEP_KINDS", "estimator_init", "validate_params",
           "resolve_solver", "resolve_loss", "param_default"]

SOLVERS = ("auto", "sweep", "adam")
LOSSES = ("auto", "squared_error", "huber")
#: the network kinds the sweep fitter supports (the others are trained by Adam)
SWEEP_KINDS = ("mps", "mpo", "ttn", "dense")


def is_int(v: Any) -> bool:
    """An integer, Python or numpy (grids built with numpy), never a bool."""
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def is_real(v: Any) -> bool:
    """A finite real number, Python or numpy, never a bool."""
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_) \
        and math.isfinite(float(v))


@dataclass(frozen=True)
class Constraint:
    """``test(value) -> bool`` and the sentence an error shows (``"must be ..."``)."""

    test: Callable[[Any], bool]
    text: str
    choices: tuple[Any, ...] | None = None  # the values, for a constraint that lists them


def _int(lo: int) -> Constraint:
    return Constraint(lambda v: is_int(v) and v >= lo, f"must be an integer >= {lo}")


def _real(lo: float, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = True) -> Constraint:
    def test(v: Any) -> bool:
        if not is_real(v):
            return False
        above = v > lo if lo_open else v >= lo
        below = hi is None or (v < hi if hi_open else v <= hi)
        return above and below
    left, right = "(" if lo_open else "[", ")" if hi_open or hi is None else "]"
    return Constraint(test, f"must be a finite number in {left}{lo:g}, {'inf' if hi is None else f'{hi:g}'}{right}")


def _options(*values: Any) -> Constraint:
    return Constraint(lambda v: any(v is o or (o is not None and v == o) for o in values),
                      f"choose one of {', '.join(repr(o) for o in values)}", values)


def _optional(c: Constraint, none_means: str) -> Constraint:
    return Constraint(lambda v: v is None or c.test(v), f"{c.text}, or None ({none_means})")


def _int_sequence(allow_empty: bool) -> Constraint:
    def test(v: Any) -> bool:
        return (not isinstance(v, str | bytes) and isinstance(v, Iterable)
                and (allow_empty or len(list(v)) > 0) and all(is_int(s) and s >= 1 for s in v))
    return Constraint(test, "must be a sequence of positive integers" + ("" if allow_empty else " (non-empty)"))


def _reals(v: Any) -> bool:
    return (not isinstance(v, str | bytes) and isinstance(v, Iterable) and len(list(v)) > 0
            and all(is_real(a) and a >= 0 for a in v))


_BOOL = Constraint(lambda v: isinstance(v, bool | np.bool_), "must be True or False")
_ANY = Constraint(lambda v: True, "")
_CALLBACKS = Constraint(lambda v: v is None or (not isinstance(v, str | bytes) and isinstance(v, Iterable)
                                                and all(callable(cb) for cb in v)),
                        "must be None or a list of callables cb(estimator, epoch, step, logs)")
_SEED = Constraint(lambda v: v is None or (is_int(v) and 0 <= v < 2**32) or isinstance(v, np.random.RandomState),
                   "must be None, an integer in [0, 2**32) or a numpy RandomState")


@dataclass(frozen=True)
class Param:
    """One training parameter.  ``solvers``: the resolved solvers it applies to (None: every one); a value
    other than the default under another solver is refused, never ignored.  ``flag``/``cli_type`` put it on
    the command line (None: Python only)."""

    name: str
    default: Any
    constraint: Constraint
    help: str
    solvers: frozenset[str] | None = None
    flag: str | None = None
    cli_type: Callable[[str], Any] | None = None

    def check(self, owner: str, value: Any) -> None:
        """ValueError naming owner, parameter and value when ``value`` violates the constraint."""
        if not self.constraint.test(value):
            raise ValueError(f"{owner}: {self.name}={value!r} is invalid: {self.constraint.text}")


_SWEEP, _ADAM = frozenset({"sweep"}), frozenset({"adam"})

PARAMS: dict[str, Param] = {p.name: p for p in (
    # --- the network
    Param("bond_dim", 8, _int(1), "virtual bond dimension chi (the largest bond the sweeps may grow to)",
          flag="--bond-dim", cli_type=int),
    Param("fit_intercept", True, _BOOL, "train a scalar offset next to the multilinear network"),
    Param("input_offset", 0.0, _real(-math.inf), "MPO: constant added to every standardised input entry"),
    Param("squash", True, _BOOL, "feature-map MPS: min-max scale the features to [0, 1]"),
    Param("hidden_layer_sizes", (1024, 512, 256), _int_sequence(True), "DNN: widths of the hidden layers"),
    Param("dropout", 0.0, _real(0.0, 1.0), "DNN: dropout probability after each hidden ReLU"),
    # --- the solver
    Param("solver", "auto", _options(*SOLVERS),
          "'auto' (the measured best for the network: sweeps for MPS, MPO, TTN and dense, else Adam), 'sweep' "
          "(two-site alternating least squares, adaptive bonds) or 'adam' (mini-batch gradient descent)",
          flag="--solver"),
    Param("loss", "auto", _options(*LOSSES),
          "'auto' (Huber under sweeps, squared error under Adam and for fits with force or stress rows), 'huber' "
          "(sweeps only) or 'squared_error'",
          flag="--loss"),
    Param("huber_delta", 0.02, _real(0.0, None, lo_open=True),
          "Huber threshold in standard deviations of the training target (0.02: lowest validation MAE of "
          "0.01-0.2 on NMD18's official split, docs/results/sweep.md)", solvers=_SWEEP, flag="--huber-delta",
          cli_type=float),
    Param("n_sweeps", 6, _int(1), "most passes of the sweeps (they stop earlier when validation stalls)",
          solvers=_SWEEP, flag="--sweeps", cli_type=int),
    Param("svd_cutoff", 1e-8, _real(0.0, 1.0), "relative singular-value cutoff of a split (adaptive bonds)",
          solvers=_SWEEP),
    Param("alphas", None, Constraint(lambda v: v is None or _reals(v), "must be None or a non-empty list of "
                                     "finite numbers >= 0"),
          "ridge strengths scanned at every local solve (None: 1e-4..1e4, 17 values)", solvers=_SWEEP),
    Param("alpha_selection", "evidence", _options("validation", "evidence"),
          "each local ridge strength by the Bayesian evidence of the training rows (the validation part then only "
          "stops the passes) or chosen on the validation part; the evidence gave the lower test MAE on NMD18 "
          "(r6n4l3 11.65 vs 11.97, r8n8l6 9.40 vs 9.66 meV/cation) and the alloys (0.437 vs 0.437 meV/atom), "
          "results/defaults/default_policy.json",
          solvers=_SWEEP, flag="--alpha-selection"),
    Param("force_weight", 10.0, _real(0.0),
          "force matching (fit(..., forces=ForceRows)): weight of a structure's mean squared force error "
          "relative to its squared energy error, each in units of its training spread (0: energies only; 10: "
          "of 0, 0.1, 1, 10, 100 the lowest validation force RMSE, 0.028 eV/A, with the energy RMSE no worse than "
          "energies only, 3.30 against 3.55 meV/atom (Huber loss): TTN on rattled-alloys, "
          "results/forces/forces_matched.json)",
          solvers=_SWEEP, flag="--force-weight", cli_type=float),
    Param("stress_weight", 1.0, _real(0.0),
          "with force rows that carry the stress (force_rows(..., stress=True)): weight of a structure's mean "
          "squared stress error relative to its squared energy error, each in units of its training spread (0: no "
          "stress rows; 1: of 0, 1, 10, 100 at force_weight 10 the lowest sum of validation energy, force and "
          "stress RMSE relative to the stress-free fit's: 3.20 meV/atom, 0.033 eV/A, 0.22 GPa against 3.30, "
          "0.028, 0.43; TTN on rattled-alloys, results/forces/forces_matched.json)",
          solvers=_SWEEP, flag="--stress-weight", cli_type=float),
    Param("n_members", 1, _int(1), "MPS/TTN: fit K networks from independent initial states and keep their "
                                   "mean as one network with summed bonds", solvers=_SWEEP, flag="--members",
          cli_type=int),
    # --- Adam
    Param("learning_rate", 1e-3, _real(0.0, None, lo_open=True), "Adam learning rate", solvers=_ADAM,
          flag="--learning-rate", cli_type=float),
    Param("batch_size", 64, _int(1), "structures per Adam step", solvers=_ADAM, flag="--batch-size",
          cli_type=int),
    Param("max_epochs", 1000, _int(1), "most Adam epochs", solvers=_ADAM, flag="--epochs", cli_type=int),
    Param("patience", 50, _optional(_int(1), "no early stopping"),
          "epochs without validation improvement before Adam stops", solvers=_ADAM, flag="--patience",
          cli_type=int),
    Param("weight_decay", 0.0, _real(0.0), "L2 penalty added to the Adam gradient", solvers=_ADAM),
    Param("lr_schedule", None, _options(None, "plateau", "cosine"), "learning-rate schedule of Adam",
          solvers=_ADAM),
    # --- data and run time
    Param("leg_sizes", None, _optional(_int_sequence(False), "the array's own shape"),
          "leg sizes of plain-array inputs"),
    Param("validation_fraction", 0.2, _real(0.0, 1.0),
          "share of the training structures held out for early stopping / the sweep's selection",
          flag="--validation-fraction", cli_type=float),
    Param("standardize_inputs", True, _BOOL, "entry-wise (x - mean) / std from the training rows"),
    Param("input_scale_floor", 0.0, _real(0.0),
          "smallest input scale, relative to the RMS spread of the varying entries (0: plain standardisation). "
          "Measured (results/defaults/default_policy.json; results/defaults/alloys_relaxed_floor/learning_curve.csv): "
          "1e-3 removes the 1e6 meV/atom predictions of species pairs rare in 50 training structures "
          "(TTN RMSE 35.1 instead of 1.7e6) and lowers NMD18's MAE with nothing held out (9.25 against 9.39 "
          "meV/cation), but raises it with the default held-out fifth (9.50 against 9.40) and the alloy RMSE at "
          "100-200 structures (23.5 / 14.9 against 20.4 / 12.8): not the default"),
    Param("standardize_target", True, _BOOL, "fit on (y - mean) / std"),
    Param("dtype", "float32", _options("float32", "float64"), "floating-point type of the network"),
    Param("device", "cpu", _ANY, "'cpu', 'cuda', ... or 'auto'"),
    Param("random_state", 0, _SEED, "seed of initialisation, validation split and shuffling (a fixed default: "
          "the same data give the same model from Python and from every command)",
          flag="--seed", cli_type=int),
    Param("verbose", 0, _int(0), "0 silent; 1 progress bars; 2 one line per epoch"),
    Param("callbacks", None, _CALLBACKS, "epoch callbacks (Adam)"),
)}


def param_default(name: str) -> Any:
    """The table's default of ``name``."""
    return PARAMS[name].default


def estimator_init(names: Sequence[str], *, first: Mapping[str, Any] | None = None) -> Callable[..., None]:
    """An ``__init__`` taking exactly the keyword parameters ``names`` with the table's defaults (plus
    ``first``: parameters that are not training settings, such as the network kind, with their defaults).
    Its ``__signature__`` is explicit, which is what scikit-learn's ``get_params``/``clone`` read."""
    first = dict(first or {})
    defaults = {**first, **{n: PARAMS[n].default for n in names}}
    kw = inspect.Parameter.KEYWORD_ONLY
    sig = inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
                            + [inspect.Parameter(n, kw, default=d) for n, d in defaults.items()])

    def __init__(self: Any, **kwargs: Any) -> None:  # noqa: N807 - the generated constructor
        unknown = sorted(set(kwargs) - set(defaults))
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected parameter(s) {unknown}; it takes "
                            f"{', '.join(defaults)}")
        for n, d in defaults.items():
            setattr(self, n, kwargs.get(n, d))

    __init__.__signature__ = sig  # type: ignore[attr-defined]
    return __init__


def resolve_solver(kind: str, solver: str) -> str:
    """The solver ``solver`` means for network ``kind`` ("auto": sweeps where supported, else Adam)."""
    if solver == "auto":
        return "sweep" if kind in SWEEP_KINDS else "adam"
    return solver


def resolve_loss(solver: str, loss: str, *, derivative_rows: bool = False) -> str:
    """The loss ``loss`` means under the resolved ``solver`` ("auto": Huber under sweeps, except for fits with
    force or stress rows: squared error, as the Huber weights discount the energy rows that the derivative rows
    already outweigh.  On rattled-alloys' validation cells, TTN at the default weights (forces 10, stress 1):
    energy RMSE 2.63 meV/atom with the squared error against 3.20 with the Huber loss, force and stress RMSE
    0.033 eV/A and 0.22 GPa either way, results/forces/forces_matched.json; with forces alone, weights 10 and 0,
    the Huber loss was better in a separate run of the same validation fit, 3.30 against 4.11)."""
    if loss == "auto":
        return "huber" if solver == "sweep" and not derivative_rows else "squared_error"
    return loss


def validate_params(est: Any, names: Iterable[str], solver: str | None = None) -> None:
    """The one check of an estimator's training parameters at fit: every constraint of the table, then
    (given the resolved ``solver``) that no parameter of another solver was set away from its default."""
    owner = type(est).__name__
    names = [n for n in names if n in PARAMS]
    for n in names:
        PARAMS[n].check(owner, getattr(est, n))
    if solver is None:
        return
    changed = [f"{n}={getattr(est, n)!r}" for n in names
               if PARAMS[n].solvers is not None and solver not in PARAMS[n].solvers
               and not _same(getattr(est, n), PARAMS[n].default)]
    if changed:  # never ignore an option the user set
        applies = {PARAMS[c.split('=')[0]].solvers for c in changed}
        which = " / ".join(sorted(next(iter(s)) for s in applies))
        raise ValueError(f"{owner}: {', '.join(changed)} applies to solver={which!r} only (the solver is "
                         f"{solver!r}; set solver= to choose it)")


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) if not isinstance(a, list | tuple) else list(a) == list(b or [])
    except (TypeError, ValueError):
        return False
