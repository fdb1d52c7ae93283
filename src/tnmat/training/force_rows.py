"""Force rows for force-matched fitting of structure-averaged energy models (MPS, TTN, dense).

A structure-averaged model predicts the energy per atom e = y_mean + b + y_std <W, x> with
x = (Bbar - x_mean) / x_std and Bbar the mean of the per-atom descriptors, so the total energy is E = N e and

    F_{j,alpha} = -dE/dr_{j,alpha} = -N y_std <W, (dBbar/dr_{j,alpha}) / x_std>,

linear in W like the energy.  A force component is therefore one more row of every local least-squares
problem of the sweeps: the input row dx = (dBbar/dr) / x_std (no mean shift, no intercept) and the target
-F / (N y_std) (no y_mean).  :class:`ForceRows` carries, per structure, the Jacobian dBbar/dr (3 N_s rows,
ordered atom by atom, x, y, z) and the reference forces; :func:`derivative_rows` turns them into the
standardised rows and their weights.

Weights (``force_weight``): per structure s with weight w_s the fit minimises

    w_s [ (de_s / y_std)^2 + force_weight * mean_{j,alpha} (dF_{j,alpha} / sigma_F)^2 ]

(de, dF the errors; y_std the energies' standard deviation, sigma_F the RMS force component of the training
structures): force_weight is the weight of a structure's mean squared force error relative to its squared
energy error, each in units of its own spread.  In standardised units a force row's weight is
w_s force_weight N_s y_std^2 / (3 sigma_F^2).

Cost of the Jacobian (:func:`descriptor_jacobian`): one forward pass of the torch descriptor with a double
backward (the vector-Jacobian product g(u) = J^T u is linear in u, so J v = d(g(u) . v)/du), then 3 N_s backward
passes through that graph: 0.7 s for a 32-atom rattled-alloys cell (1024 features, r_cut 6 A, one core);
memory 3 N_s x features floats per structure.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["ForceRows", "DerivativeRows", "descriptor_jacobian", "force_rows", "derivative_rows", "force_scale",
           "predict_forces"]


@dataclass
class ForceRows:
    """Per structure: ``jacobians[s]`` (3 N_s, *sizes) = dBbar/dr of the structure-averaged descriptor (leg
    order ``legs``) and ``forces[s]`` (N_s, 3) in eV/A.  Shapes and finite values are checked on
    construction (one-line ``ValueError``)."""

    jacobians: list[torch.Tensor]
    forces: list[np.ndarray]
    legs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.jacobians = [torch.as_tensor(j, dtype=torch.float64) for j in self.jacobians]
        self.forces = [np.asarray(f, dtype=np.float64) for f in self.forces]
        if len(self.jacobians) != len(self.forces):
            raise ValueError(f"ForceRows: {len(self.jacobians)} Jacobians but forces of {len(self.forces)} "
                             "structures")
        sizes = {tuple(j.shape[1:]) for j in self.jacobians}
        if len(sizes) > 1:
            raise ValueError(f"ForceRows: the Jacobians have different feature shapes {sorted(sizes)}")
        for s, (j, f) in enumerate(zip(self.jacobians, self.forces, strict=True)):
            if f.ndim != 2 or f.shape[1] != 3 or 3 * f.shape[0] != j.shape[0]:
                raise ValueError(f"ForceRows: structure {s}: forces of shape {f.shape}, expected ({j.shape[0] // 3}, "
                                 f"3) for a Jacobian with {j.shape[0]} rows (3 per atom)")
            if not np.isfinite(f).all() or not bool(torch.isfinite(j).all()):
                raise ValueError(f"ForceRows: structure {s}: forces or Jacobian hold NaN/inf")

    def __len__(self) -> int:
        return len(self.forces)

    @property
    def n_atoms(self) -> np.ndarray:
        return np.array([len(f) for f in self.forces], dtype=np.int64)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(self.jacobians[0].shape[1:]) if self.jacobians else ()

    def subset(self, idx: Sequence[int] | np.ndarray | None) -> ForceRows:
        """The structures ``idx`` (all when None)."""
        if idx is None:
            return self
        return ForceRows([self.jacobians[int(i)] for i in idx], [self.forces[int(i)] for i in idx], self.legs)

    def check(self, owner: str, n_structures: int, sizes: tuple[int, ...], what: str = "forces") -> None:
        """One-line ``ValueError`` unless there is one entry per structure on features of ``sizes``."""
        if len(self) != n_structures:
            raise ValueError(f"{owner}: {what} holds {len(self)} structures, the inputs {n_structures}")
        if len(self) and math.prod(self.sizes) != math.prod(sizes):
            raise ValueError(f"{owner}: {what} has Jacobians over features {self.sizes}, the inputs {sizes}")


def descriptor_jacobian(descriptor: Any, atoms: Any) -> torch.Tensor:
    """dBbar/dr (3N, *sizes): the Jacobian of the structure-averaged descriptor Bbar = (1/N) sum_i B_i with
    respect to the positions (rows atom by atom, x, y, z), by automatic differentiation through the torch
    path of the descriptor (module docstring: one double backward, then 3N backward passes)."""
    from tnmat.forces import per_atom_descriptor

    # the compiled kernels' backward is not differentiable again; the torch path is
    calc = dataclasses.replace(descriptor, density=dataclasses.replace(descriptor.density, backend="torch"))
    pos = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=True)
    periodic = bool(np.any(atoms.pbc))
    cell = torch.tensor(atoms.cell.array, dtype=torch.float64) if periodic else None
    with torch.enable_grad():
        bbar = per_atom_descriptor(calc, pos, atoms.numbers, cell, atoms.pbc).mean(0)
        u = torch.zeros(bbar.numel(), dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(bbar.reshape(-1) @ u, pos, create_graph=True)
        g = g.reshape(-1)
        rows = [torch.autograd.grad(g[k], u, retain_graph=k < len(g) - 1)[0] for k in range(len(g))]
    return torch.stack(rows).reshape(len(g), *bbar.shape)


def force_rows(descriptor: Any, structures: Sequence[Any], forces: Sequence[np.ndarray] | None = None, *,
               progress: bool = False) -> ForceRows:
    """:class:`ForceRows` of ``structures``: their descriptor Jacobians (:func:`descriptor_jacobian`) and
    forces (``forces``, else each structure's ``arrays["forces"]``)."""
    structures = list(structures)
    if forces is None:
        missing = [k for k, a in enumerate(structures) if "forces" not in a.arrays]
        if missing:
            raise ValueError(f"force_rows: structures {missing[:5]} carry no forces (arrays['forces'])")
        forces = [a.arrays["forces"] for a in structures]
    forces = list(forces)
    if len(forces) != len(structures):
        raise ValueError(f"force_rows: forces of {len(forces)} structures for {len(structures)} structures")
    bad = [k for k, (a, f) in enumerate(zip(structures, forces, strict=True)) if np.shape(f) != (len(a), 3)]
    if bad:  # before any Jacobian is computed
        k = bad[0]
        raise ValueError(f"force_rows: structure {k}: forces of shape {np.shape(forces[k])}, expected "
                         f"({len(structures[k])}, 3)")
    it = structures
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(structures, desc="descriptor Jacobians", unit="struct")
    jac = [descriptor_jacobian(descriptor, a) for a in it]
    return ForceRows(jac, forces, tuple(descriptor.legs))


@dataclass(frozen=True)
class DerivativeRows:
    """Standardised derivative rows: inputs dx (m, *network sizes), targets dy (m,), weights (m,)."""

    dx: torch.Tensor
    dy: torch.Tensor
    dweights: torch.Tensor


def force_scale(rows: ForceRows) -> float:
    """sigma_F: the RMS force component of ``rows`` (1 when every force is zero)."""
    f = np.concatenate([f.reshape(-1) for f in rows.forces]) if len(rows) else np.zeros(0)
    s = float(np.sqrt(np.mean(f * f))) if len(f) else 0.0
    return s if s > 0 else 1.0


def derivative_rows(rows: ForceRows, *, x_std: torch.Tensor, y_std: float, force_weight: float, sigma_f: float,
                    net_sizes: tuple[int, ...], perm: Sequence[int] | None = None,
                    sample_weight: np.ndarray | None = None) -> DerivativeRows:
    """dx = (dBbar/dr) / x_std, dy = -F / (N y_std), weight w_s force_weight N y_std^2 / (3 sigma_F^2) (module
    docstring); ``perm`` reorders the Jacobians' legs to the fitted order."""
    dxs, dys, dws = [], [], []
    for s, (j, f) in enumerate(zip(rows.jacobians, rows.forces, strict=True)):
        if perm is not None:
            j = j.permute(0, *[p + 1 for p in perm])
        n = len(f)
        dxs.append((j.reshape(j.shape[0], *x_std.shape) / x_std).reshape(j.shape[0], *net_sizes))
        dys.append(torch.as_tensor(-f.reshape(-1) / (n * y_std)))
        w = 1.0 if sample_weight is None else float(sample_weight[s])
        dws.append(torch.full((3 * n,), w * force_weight * n * y_std**2 / (3 * sigma_f**2), dtype=torch.float64))
    return DerivativeRows(torch.cat(dxs), torch.cat(dys), torch.cat(dws))


def predict_forces(est: Any, rows: ForceRows) -> list[np.ndarray]:
    """Forces (N_s, 3) in eV/A of a fitted structure-averaged estimator from the descriptor Jacobians:
    F = -N y_std <W, J / x_std> (module docstring)."""
    from tnmat.training._data import DTYPES

    perm = _perm(est, rows)
    out = []
    for j, f in zip(rows.jacobians, rows.forces, strict=True):
        if perm is not None:
            j = j.permute(0, *[p + 1 for p in perm])
        sizes = est._network_sizes(tuple(est.leg_sizes_))
        dx = (j.reshape(j.shape[0], *est.x_std_.shape) / est.x_std_).reshape(j.shape[0], *sizes)
        with torch.no_grad():
            g = est.network_(dx.to(device=est.device_, dtype=DTYPES[est.dtype])).to("cpu", torch.float64)
        out.append((-len(f) * est.y_std_ * g).numpy().reshape(-1, 3))
    return out


def _perm(est: Any, rows: ForceRows) -> list[int] | None:
    """Leg permutation from the Jacobians' order to the fitted one (None when they agree or are unnamed)."""
    fitted = tuple(getattr(est, "legs_", ()) or ())
    if rows.legs is None or not fitted or tuple(rows.legs) == fitted or sorted(rows.legs) != sorted(fitted):
        return None
    return [tuple(rows.legs).index(leg) for leg in fitted]
