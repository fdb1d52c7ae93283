"""The mean of several fitted MPS / TTN estimators as one fitted estimator holding one network.

Members fitted on the same data with different ``random_state`` (initial network; with held-out rows also
the validation fifth) disagree by their optimisation noise; their mean prediction is lower in error (on
NMD18, docs/results/sweep.md).  Because the prediction is y_mean + intercept + y_std * W(x_scaled) and the
weight tensors add (:func:`tnmat.networks.direct_sum`), the mean of members that share the input and
target scaling is itself one network of the same kind with the summed bond dimensions, then rounded to the
rank of the mean across each bond (:func:`tnmat.networks.rounding.round_network`, lossless at rtol 1e-12): it
saves, loads, predicts and goes through the entanglement tools like any single fit.

The scalings agree when every member standardises from the same rows: fit them with
``validation_fraction=0`` (e.g. with ``alpha_selection="evidence"``, which needs no held-out rows).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from tnmat.networks.direct_sum import direct_sum
from tnmat.networks.rounding import round_network

__all__ = ["ensemble_mean"]

_SCALING = ("x_mean_", "x_std_")


def _check_members(members: Sequence[Any]) -> None:
    if len(members) == 0:
        raise ValueError("ensemble_mean: no estimators given")
    first = members[0]
    for i, m in enumerate(members):
        check_is_fitted(m, "network_")
        if type(m) is not type(first):
            raise ValueError(f"ensemble_mean: member {i} is a {type(m).__name__}, member 0 a "
                             f"{type(first).__name__}")
        if m.per_atom_ != first.per_atom_ or tuple(m.leg_sizes_) != tuple(first.leg_sizes_):
            raise ValueError(f"ensemble_mean: member {i} was fitted on other inputs (legs {m.leg_sizes_}, "
                             f"per atom {m.per_atom_}) than member 0 ({first.leg_sizes_}, {first.per_atom_})")
        for name in _SCALING:
            if not torch.equal(getattr(m, name), getattr(first, name)):
                raise ValueError(f"ensemble_mean: member {i}'s input scaling ({name}) differs from member 0's: "
                                 "fit every member on the same rows with validation_fraction=0")
        if (m.y_mean_, m.y_std_) != (first.y_mean_, first.y_std_):
            raise ValueError(f"ensemble_mean: member {i}'s target scaling differs from member 0's: fit every "
                             "member on the same rows with validation_fraction=0")


def ensemble_mean(members: Sequence[Any]) -> Any:
    """One fitted estimator predicting the mean of ``members`` (fitted MPS or TTN estimators with equal
    scalings, see the module docstring).  Its ``network_`` is the rounded direct sum of theirs, ``intercept_`` the
    mean intercept; ``history_`` keeps each member's history under "members"."""
    _check_members(members)
    out = copy.deepcopy(members[0])
    out.network_ = round_network(direct_sum([m.network_ for m in members]))  # lossless, rtol 1e-12
    out.intercept_ = float(np.mean([m.intercept_ for m in members]))
    out.n_parameters_ = int(sum(p.numel() for p in out.network_.parameters() if p.requires_grad))
    out.history_ = {"members": [m.history_ for m in members],
                    "member_random_states": [m.random_state for m in members]}
    out.fit_seconds_ = float(sum(getattr(m, "fit_seconds_", 0.0) for m in members))
    return out
