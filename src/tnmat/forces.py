"""Conservative forces and stress of a scalar energy model by automatic differentiation (paper App. C).

A fitted :class:`~tnmat.model.StructureModel` whose regressor is a torch network (tensor networks, DNN)
predicts an energy per atom ``e(B)`` from the SO(3)-invariant descriptors; the total energy of a structure is
``E = N e`` (tnmat's energy targets are per atom; pass ``extensive=True`` for a model fitted on total
energies).  The descriptors are rebuilt in torch from the positions and the cell
(:meth:`AtomicDensity.expand_positions`, the differentiable torch path, whatever kernel ``compute`` uses),
so

* forces ``F_i = -dE/dr_i`` (eV/A),
* stress ``sigma = (1/V) dE/d(epsilon)`` (eV/A^3, ASE's sign: positive under tension) for the homogeneous
  strain ``r -> r (1 + epsilon)``, ``cell -> cell (1 + epsilon)``, symmetrised,

both exact derivatives of the predicted energy.  The network is evaluated in float64 (a float64 copy of a
float32 network), so finite differences agree to ~1e-8 and MD conserves the model's energy.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ase import Atoms

__all__ = ["EnergyModel", "ForceResult", "per_atom_descriptor", "energy_forces_stress", "predicts_total_energy"]


def per_atom_descriptor(descriptor: Any, positions: torch.Tensor, numbers: np.ndarray,
                        cell: torch.Tensor | None, pbc: Any) -> torch.Tensor:
    """Per-atom descriptor (N, *descriptor.sizes) of one structure, differentiable in positions and cell
    (the torch path of :class:`~tnmat.descriptors.Invariants` / ``Equivariants``)."""
    a = descriptor.density.expand_positions(positions, numbers, cell, pbc=pbc)
    b = descriptor.from_expansion(a)
    if getattr(descriptor, "center_species", False):
        from tnmat.descriptors.neighbors import species_indices

        sp = torch.from_numpy(species_indices(np.asarray(numbers), descriptor.density.species_numbers, "structure"))
        onehot = b.new_zeros((b.shape[0], len(descriptor.density.species), *b.shape[1:]))
        onehot[torch.arange(b.shape[0]), sp] = b
        b = onehot
    return b


class EnergyModel:
    """The energy per atom of a fitted StructureModel as a differentiable torch function of per-atom
    descriptors: ``energies(B, structure_of_row, n_structures) -> (n_structures,)`` (float64).

    Raises ``TypeError`` for regressors without a torch network (e.g. the GPR baseline)."""

    def __init__(self, model: Any) -> None:
        reg = model.regressor
        if not hasattr(reg, "network_") or not hasattr(reg, "x_mean_"):
            raise TypeError(f"{type(reg).__name__}: forces need a fitted torch network regressor (tensor network "
                            "or DNN); this regressor has no differentiable network")
        self.model = model
        self.descriptor = model.descriptor
        self.net = copy.deepcopy(reg.network_).to(device="cpu", dtype=torch.float64).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.x_mean = reg.x_mean_.to(torch.float64)
        self.x_std = reg.x_std_.to(torch.float64)
        self.y_mean = float(reg.y_mean_)
        self.y_std = float(reg.y_std_)
        self.intercept = float(getattr(reg, "intercept_", 0.0))
        self.local = bool(getattr(reg, "per_atom_", model.local))
        legs = tuple(getattr(reg, "legs_", self.descriptor.legs))
        own = tuple(self.descriptor.legs)
        if sorted(legs) != sorted(own):
            legs = own  # fitted on plain arrays: the descriptor's own order
        self.perm = [own.index(leg) for leg in legs]
        self.net_sizes = tuple(reg._network_sizes(tuple(reg.leg_sizes_)))

    def _network(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, *[p + 1 for p in self.perm])
        z = (x - self.x_mean) / self.x_std
        return self.net(z.reshape(z.shape[0], *self.net_sizes))

    def energies(self, b: torch.Tensor, row_structure: torch.Tensor, n_structures: int) -> torch.Tensor:
        """Predicted energy per atom of every structure from per-atom descriptors ``b`` (rows, *sizes)."""
        counts = torch.bincount(row_structure, minlength=n_structures).to(torch.float64)
        if self.local:  # mean of the per-atom network (paper eq. 1)
            out = torch.zeros(n_structures, dtype=torch.float64).index_add(0, row_structure, self._network(b))
            y = out / counts
        else:  # network on the structure-averaged descriptor (paper eq. 22)
            mean = torch.zeros((n_structures, *b.shape[1:]), dtype=torch.float64).index_add(0, row_structure, b)
            y = self._network(mean / counts.reshape(-1, *([1] * (b.ndim - 1))))
        return self.y_mean + self.intercept + self.y_std * y


@dataclass
class ForceResult:
    """Total energies (n,) in eV, forces (one (N_k, 3) array per structure) in eV/A and stress (n, 3, 3)
    in eV/A^3 (NaN for non-periodic structures)."""

    energy: np.ndarray
    forces: list[np.ndarray]
    stress: np.ndarray


def _chunks(frames: Sequence[Atoms], max_atoms: int) -> list[tuple[int, int]]:
    out, start = [], 0
    while start < len(frames):
        stop, atoms = start, 0
        while stop < len(frames) and (atoms == 0 or atoms + len(frames[stop]) <= max_atoms):
            atoms += len(frames[stop])
            stop += 1
        out.append((start, stop))
        start = stop
    return out


def predicts_total_energy(model: Any) -> bool:
    """Whether a StructureModel's prediction is the cell's total energy (``extensive``), from the units it was
    fitted in (:func:`tnmat.data.units.target_units`): per structure -> True, per atom (or no units) -> False;
    a per-cation model (NMD18 formation energy) -> ``ValueError``: neither ``e`` nor ``N e`` is the energy of
    the cell, so its gradient is no force."""
    units = str(getattr(model, "units", ""))
    if units.endswith("/structure"):
        return True
    if units.endswith("/cation"):
        raise ValueError(f"the model predicts {getattr(model, 'target', 'its target')!r} per cation (NMD18 "
                         "formation energy); forces and an ASE calculator need a per-atom or total energy model "
                         "(pass extensive=... to override)")
    return False


def energy_forces_stress(model: Any, frames: Sequence[Atoms] | Atoms, *, extensive: bool = False,
                         forces: bool = True, stress: bool = True, max_atoms: int = 512) -> ForceResult:
    """Energies, forces ``-dE/dr`` and stress ``(1/V) dE/d(epsilon)`` of every structure (module docstring).

    ``model``: a fitted StructureModel or an :class:`EnergyModel`.  Structures are processed in batches of
    about ``max_atoms`` atoms: one network evaluation and one backward pass per batch (the energies of
    different structures are independent, so the gradient of their sum gives every structure's forces)."""
    em = model if isinstance(model, EnergyModel) else EnergyModel(model)
    frames = [frames] if isinstance(frames, Atoms) else list(frames)
    energies = np.zeros(len(frames))
    all_forces: list[np.ndarray] = []
    all_stress = np.full((len(frames), 3, 3), np.nan)
    for start, stop in _chunks(frames, max_atoms):
        pos_t, eps_t, rows, owner = [], [], [], []
        for k, atoms in enumerate(frames[start:stop]):
            pos = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=forces)
            periodic = bool(np.any(atoms.pbc))
            eps = torch.zeros((3, 3), dtype=torch.float64, requires_grad=stress and bool(np.all(atoms.pbc)))
            deform = torch.eye(3, dtype=torch.float64) + eps
            cell = torch.tensor(atoms.cell.array, dtype=torch.float64) @ deform if periodic else None
            b = per_atom_descriptor(em.descriptor, pos @ deform, atoms.numbers, cell, atoms.pbc)
            pos_t.append(pos)
            eps_t.append(eps)
            rows.append(b)
            owner.append(torch.full((len(atoms),), k, dtype=torch.long))
        n_at = torch.tensor([len(a) for a in frames[start:stop]], dtype=torch.float64)
        e_per_atom = em.energies(torch.cat(rows), torch.cat(owner), stop - start)
        e_total = e_per_atom if extensive else e_per_atom * n_at
        energies[start:stop] = e_total.detach().numpy()
        wrt = [p for p in pos_t if p.requires_grad] + [e for e in eps_t if e.requires_grad]
        grads = torch.autograd.grad(e_total.sum(), wrt, allow_unused=True) if wrt else []
        gi = iter(grads)
        g_pos = [next(gi) if p.requires_grad else None for p in pos_t]
        g_eps = [next(gi) if e.requires_grad else None for e in eps_t]
        for k, atoms in enumerate(frames[start:stop]):
            if forces:
                g = g_pos[k]
                all_forces.append(np.zeros((len(atoms), 3)) if g is None else -g.numpy())
            if g_eps[k] is not None:
                g = g_eps[k].numpy()
                all_stress[start + k] = (g + g.T) / 2 / atoms.get_volume()
    return ForceResult(energy=energies, forces=all_forces, stress=all_stress)
