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

Stress (virial) rows, the same way: with the homogeneous strain r -> r (1 + epsilon), cell -> cell (1 + epsilon),
sigma = (1/V) dE/d(epsilon) = (N y_std / V) <W, (dBbar/d epsilon) / x_std> (ASE's sign, eV/A^3), so each of the
6 independent components is a row with input (dBbar/d epsilon_ab, symmetrised) / x_std and target
sigma_ab V / (N y_std); ``stress_weight`` weighs a structure's mean squared stress error (in units of sigma_S, the
RMS stress component of the training structures) relative to its squared energy error.

Cost of the Jacobian (:func:`descriptor_jacobian`): one forward pass of the torch descriptor with a double
backward (the vector-Jacobian product g(u) = J^T u is linear in u, so J v = d(g(u) . v)/du), then 3 N_s backward
passes through that graph (9 for the strain): 115 s for the 320 training cells of rattled-alloys (9257 atoms, 1024
features, r_cut 6 A, one thread of a shared machine), 0.012 s per atom; memory 3 N_s x features floats per
structure.
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
           "stress_scale", "predict_forces", "predict_stress"]


@dataclass
class ForceRows:
    """Per structure: ``jacobians[s]`` (3 N_s, *sizes) = dBbar/dr of the structure-averaged descriptor (leg
    order ``legs``) and ``forces[s]`` (N_s, 3) in eV/A.  Shapes and finite values are checked on
    construction (one-line ``ValueError``)."""

    jacobians: list[torch.Tensor]
    forces: list[np.ndarray]
    legs: tuple[str, ...] | None = None
    #: stress (virial) rows, optional: dBbar/d(epsilon) (9, *sizes), the stress (3, 3) in eV/A^3 (ASE sign,
    #: sigma = (1/V) dE/d(epsilon)) and the cell volume in A^3 of every structure
    strain_jacobians: list[torch.Tensor] | None = None
    stress: list[np.ndarray] | None = None
    volumes: list[float] | None = None

    def __post_init__(self) -> None:
        self._check_stress()
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

    def _check_stress(self) -> None:
        given = [self.strain_jacobians is not None, self.stress is not None, self.volumes is not None]
        if not any(given):
            return
        if not all(given):
            raise ValueError("ForceRows: stress rows need strain_jacobians, stress and volumes together")
        self.strain_jacobians = [torch.as_tensor(j, dtype=torch.float64) for j in self.strain_jacobians]
        self.stress = [np.asarray(s, dtype=np.float64) for s in self.stress]
        self.volumes = [float(v) for v in self.volumes]
        n = len(self.jacobians)
        if not len(self.strain_jacobians) == len(self.stress) == len(self.volumes) == n:
            raise ValueError(f"ForceRows: stress rows of {len(self.stress)} structures for {n} structures")
        for s, (j, st, v) in enumerate(zip(self.strain_jacobians, self.stress, self.volumes, strict=True)):
            if j.shape[0] != 9 or st.shape != (3, 3) or not (v > 0 and math.isfinite(v)) \
                    or not np.isfinite(st).all() or not bool(torch.isfinite(j).all()):
                raise ValueError(f"ForceRows: structure {s}: stress {st.shape} and strain Jacobian {tuple(j.shape)} "
                                 "must be finite, (3, 3) and (9, ...), the volume finite and > 0")

    @property
    def has_stress(self) -> bool:
        return self.stress is not None

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

        def pick(items: list | None) -> list | None:
            return None if items is None else [items[int(i)] for i in idx]

        return ForceRows(pick(self.jacobians), pick(self.forces), self.legs, pick(self.strain_jacobians),
                         pick(self.stress), pick(self.volumes))

    def check(self, owner: str, n_structures: int, sizes: tuple[int, ...], what: str = "forces") -> None:
        """One-line ``ValueError`` unless there is one entry per structure on features of ``sizes``."""
        if len(self) != n_structures:
            raise ValueError(f"{owner}: {what} holds {len(self)} structures, the inputs {n_structures}")
        if len(self) and math.prod(self.sizes) != math.prod(sizes):
            raise ValueError(f"{owner}: {what} has Jacobians over features {self.sizes}, the inputs {sizes}")


def descriptor_jacobian(descriptor: Any, atoms: Any, *, wrt: str = "positions") -> torch.Tensor:
    """The Jacobian of the structure-averaged descriptor Bbar = (1/N) sum_i B_i, by automatic differentiation
    through the torch path of the descriptor (module docstring: one double backward, then one backward pass
    per row): ``wrt="positions"``: dBbar/dr (3N, *sizes), rows atom by atom, x, y, z; ``wrt="strain"``:
    dBbar/d(epsilon) (9, *sizes) for the homogeneous strain r -> r (1 + epsilon), cell -> cell (1 + epsilon)
    (rows epsilon_xx, epsilon_xy, ..., as :mod:`tnmat.forces` differentiates the stress)."""
    from tnmat.forces import per_atom_descriptor

    if wrt not in ("positions", "strain"):
        raise ValueError(f"descriptor_jacobian: wrt={wrt!r}; choose 'positions' or 'strain'")
    # the compiled kernels' backward is not differentiable again; the torch path is
    calc = dataclasses.replace(descriptor, density=dataclasses.replace(descriptor.density, backend="torch"))
    pos = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=wrt == "positions")
    eps = torch.zeros((3, 3), dtype=torch.float64, requires_grad=wrt == "strain")
    periodic = bool(np.any(atoms.pbc))
    deform = torch.eye(3, dtype=torch.float64) + eps
    cell = torch.tensor(atoms.cell.array, dtype=torch.float64) @ deform if periodic else None
    threads = torch.get_num_threads()
    # many small operations: one thread is 20x faster than two on a busy 2-core machine (0.13 s against 3 s
    # for a 32-atom cell)
    torch.set_num_threads(1)
    try:
        with torch.enable_grad():
            bbar = per_atom_descriptor(calc, pos @ deform, atoms.numbers, cell, atoms.pbc).mean(0)
            u = torch.zeros(bbar.numel(), dtype=torch.float64, requires_grad=True)
            (g,) = torch.autograd.grad(bbar.reshape(-1) @ u, pos if wrt == "positions" else eps, create_graph=True)
            g = g.reshape(-1)
            rows = [torch.autograd.grad(g[k], u, retain_graph=k < len(g) - 1)[0] for k in range(len(g))]
    finally:
        torch.set_num_threads(threads)
    return torch.stack(rows).reshape(len(g), *bbar.shape)


def force_rows(descriptor: Any, structures: Sequence[Any], forces: Sequence[np.ndarray] | None = None, *,
               stress: bool = False, progress: bool = False) -> ForceRows:
    """:class:`ForceRows` of ``structures``: their descriptor Jacobians (:func:`descriptor_jacobian`) and
    forces (``forces``, else each structure's ``arrays["forces"]``); with ``stress`` also the strain
    Jacobians and each structure's ``info["stress"]`` (Voigt or 3 x 3, eV/A^3, ASE sign)."""
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
    if stress:
        bad = [k for k, a in enumerate(structures) if "stress" not in a.info or not np.all(a.pbc)]
        if bad:
            raise ValueError(f"force_rows: structures {bad[:5]} carry no stress (info['stress']) or are not periodic")
    jac = [descriptor_jacobian(descriptor, a) for a in it]
    if not stress:
        return ForceRows(jac, forces, tuple(descriptor.legs))
    from ase.stress import voigt_6_to_full_3x3_stress

    sig = [np.asarray(a.info["stress"], dtype=np.float64) for a in structures]
    sig = [voigt_6_to_full_3x3_stress(s) if s.shape == (6,) else s for s in sig]
    strain = [descriptor_jacobian(descriptor, a, wrt="strain") for a in structures]
    return ForceRows(jac, forces, tuple(descriptor.legs), strain, sig, [a.get_volume() for a in structures])


@dataclass(frozen=True)
class DerivativeRows:
    """Standardised derivative rows: inputs dx (m, *network sizes), targets dy (m,), weights (m,)."""

    dx: torch.Tensor
    dy: torch.Tensor
    dweights: torch.Tensor


def force_scale(rows: ForceRows, weights: np.ndarray | None = None) -> float:
    """sigma_F: the RMS force component of ``rows``, each structure's components weighted by ``weights``
    (1 when every force is zero)."""
    return _rms([f.reshape(-1) for f in rows.forces], weights)


def stress_scale(rows: ForceRows, weights: np.ndarray | None = None) -> float:
    """sigma_S: the RMS stress component (eV/A^3, the 6 independent ones) of ``rows``, weighted as in
    :func:`force_scale` (1 when zero or absent)."""
    if not rows.has_stress:
        return 1.0
    return _rms([s[VOIGT[:, 0], VOIGT[:, 1]] for s in rows.stress], weights)


def _rms(parts: list[np.ndarray], weights: np.ndarray | None) -> float:
    """sqrt(sum_s w_s ||v_s||^2 / sum_s w_s len(v_s)) (1 when zero or empty): weight k = the structure k times."""
    w = np.ones(len(parts)) if weights is None else np.asarray(weights, dtype=np.float64)
    count = float(sum(ws * len(v) for ws, v in zip(w, parts, strict=True)))
    r = math.sqrt(sum(ws * float(v @ v) for ws, v in zip(w, parts, strict=True)) / count) if count > 0 else 0.0
    return r if r > 0 else 1.0


#: the independent components of a symmetric 3 x 3 tensor (Voigt order xx, yy, zz, yz, xz, xy)
VOIGT = np.array([[0, 0], [1, 1], [2, 2], [1, 2], [0, 2], [0, 1]])


def _symmetric_strain_rows(j: torch.Tensor) -> torch.Tensor:
    """(9, *f) rows d/d(epsilon_ab) -> (6, *f) rows of the symmetric strain, (d_ab + d_ba) / 2 (Voigt order)."""
    j = j.reshape(3, 3, *j.shape[1:])
    return torch.stack([(j[a, b] + j[b, a]) / 2 for a, b in VOIGT])


def derivative_rows(rows: ForceRows, *, x_std: torch.Tensor, y_std: float, force_weight: float, sigma_f: float,
                    net_sizes: tuple[int, ...], perm: Sequence[int] | None = None,
                    structure_weight: np.ndarray | None = None, stress_weight: float = 0.0,
                    sigma_s: float = 1.0) -> DerivativeRows:
    """Force rows dx = (dBbar/dr) / x_std, dy = -F / (N y_std), weight w_s force_weight N y_std^2 /
    (3 sigma_F^2) (module docstring); with ``stress_weight`` > 0 and stress in ``rows`` also the 6 stress rows
    dx = (dBbar/d(epsilon)) / x_std (symmetrised), dy = sigma V / (N y_std) (sigma = (1/V) dE/d(epsilon), E = N e),
    weight w_s stress_weight N^2 y_std^2 / (6 V^2 sigma_S^2).  ``perm`` reorders the legs to the fitted order."""
    dxs, dys, dws = [], [], []

    def add(j: torch.Tensor, target: np.ndarray, weight: float) -> None:
        if perm is not None:
            j = j.permute(0, *[p + 1 for p in perm])
        dxs.append((j.reshape(j.shape[0], *x_std.shape) / x_std).reshape(j.shape[0], *net_sizes))
        dys.append(torch.as_tensor(target, dtype=torch.float64))
        dws.append(torch.full((j.shape[0],), weight, dtype=torch.float64))

    for s, (j, f) in enumerate(zip(rows.jacobians, rows.forces, strict=True)):
        n, w = len(f), 1.0 if structure_weight is None else float(structure_weight[s])
        if force_weight > 0:
            add(j, -f.reshape(-1) / (n * y_std), w * force_weight * n * y_std**2 / (3 * sigma_f**2))
        if stress_weight > 0 and rows.has_stress:
            v, sig = rows.volumes[s], rows.stress[s][VOIGT[:, 0], VOIGT[:, 1]]
            add(_symmetric_strain_rows(rows.strain_jacobians[s]), sig * v / (n * y_std),
                w * stress_weight * n**2 * y_std**2 / (6 * v**2 * sigma_s**2))
    return DerivativeRows(torch.cat(dxs), torch.cat(dys), torch.cat(dws))


def _contract(est: Any, j: torch.Tensor, perm: list[int] | None) -> np.ndarray:
    """<W, J / x_std> of a fitted estimator for every row of J (rows, *descriptor sizes)."""
    from tnmat.training._data import DTYPES

    if perm is not None:
        j = j.permute(0, *[p + 1 for p in perm])
    sizes = est._network_sizes(tuple(est.leg_sizes_))
    dx = (j.reshape(j.shape[0], *est.x_std_.shape) / est.x_std_).reshape(j.shape[0], *sizes)
    with torch.no_grad():
        return est.network_(dx.to(device=est.device_, dtype=DTYPES[est.dtype])).to("cpu", torch.float64).numpy()


def predict_forces(est: Any, rows: ForceRows) -> list[np.ndarray]:
    """Forces (N_s, 3) in eV/A of a fitted structure-averaged estimator from the descriptor Jacobians:
    F = -N y_std <W, J / x_std> (module docstring)."""
    perm = _perm(est, rows)
    return [(-len(f) * est.y_std_ * _contract(est, j, perm)).reshape(-1, 3)
            for j, f in zip(rows.jacobians, rows.forces, strict=True)]


def predict_stress(est: Any, rows: ForceRows) -> np.ndarray:
    """Stress (n, 3, 3) in eV/A^3 (ASE sign) from the strain Jacobians: sigma = (N y_std / V) <W, sym(dBbar/d
    epsilon) / x_std> (as :mod:`tnmat.forces` symmetrises it)."""
    perm = _perm(est, rows)
    out = []
    for j, f, v in zip(rows.strain_jacobians, rows.forces, rows.volumes, strict=True):
        g = _contract(est, j, perm).reshape(3, 3)
        out.append(len(f) * est.y_std_ * (g + g.T) / 2 / v)
    return np.stack(out)


def _perm(est: Any, rows: ForceRows) -> list[int] | None:
    """Leg permutation from the Jacobians' order to the fitted one (None when they agree or are unnamed)."""
    fitted = tuple(getattr(est, "legs_", ()) or ())
    if rows.legs is None or not fitted or tuple(rows.legs) == fitted or sorted(rows.legs) != sorted(fitted):
        return None
    return [tuple(rows.legs).index(leg) for leg in fitted]
