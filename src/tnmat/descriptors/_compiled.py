"""Glue between :class:`~tnmat.descriptors.density.AtomicDensity` and the compiled kernels.

- :func:`expand_frames`: A for a chunk of ASE structures, neighbour search fused into the kernel (small
  periodic or open cells) or vesin pair lists + the pair kernel (large or mixed-periodicity cells).
- :class:`DensityFunction`: torch autograd Function on pair vectors whose backward is the compiled transpose
  (:func:`~tnmat.descriptors._kernels.density_backward`); gradients to positions and cell flow through the
  torch expression ``v = r_j - r_i + S @ cell`` that builds the vectors.  Double backward (create_graph,
  e.g. training on forces) falls back to differentiating the torch reference.
- :func:`chunk_rows` and :func:`output_tensor`: the rows and the preallocated output that
  ``Invariants.compute`` fills chunk by chunk with the invariant kernels (no per-chunk copies).

Everything here takes plain values (:class:`DensityConstants`, arrays, pair lists), never the calculator
objects, so the calculators import this module and not the other way round.
- :func:`numba_threads` (from :mod:`tnmat.descriptors._kernels`): run with a given numba thread count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numba
import numpy as np
import torch
from ase import Atoms

from tnmat.descriptors import _kernels as K
from tnmat.descriptors import neighbors
from tnmat.descriptors._kernels import numba_threads, resolve_jobs
from tnmat.descriptors._pair_math import sh_tables
from tnmat.descriptors.neighbors import PairList, _check_frame, build_pairs, species_indices

__all__ = ["DensityConstants", "DensityFunction", "constant_arrays", "expand_frames", "numba_threads", "output_tensor",
           "resolve_jobs", "chunk_rows"]

@dataclass(frozen=True)
class DensityConstants:
    """What the compiled kernels need of an :class:`~tnmat.descriptors.density.AtomicDensity`, as plain values:
    the species' atomic numbers, n_max, the number of (l, m), the cutoff (Angstrom), the thread count, and
    ``arrays`` = (gamma (n', l), transform (l, n, n'), self term (n,) or empty, sh tables, cut) in float64
    (:func:`tnmat.descriptors._kernels.density_forward`).  Built by ``AtomicDensity.compiled_constants``."""

    species_numbers: tuple[int, ...]
    n_max: int
    n_lm: int
    r_cut: float
    n_jobs: int | None
    arrays: tuple

    @property
    def n_species(self) -> int:
        return len(self.species_numbers)


def constant_arrays(tensors: dict[str, torch.Tensor], density: str, l_max: int, cut: tuple[float, float, bool]
                    ) -> tuple:
    """The kernels' ``arrays`` from a density's float64 CPU tensors (gamma, transform, self) and cutoff."""
    self_term = (tensors["self"].numpy() / np.sqrt(4 * np.pi)) if density == "gaussian" else np.zeros(0)
    return (np.ascontiguousarray(tensors["gamma"].numpy()), np.ascontiguousarray(tensors["transform"].numpy()),
            np.ascontiguousarray(self_term), sh_tables(l_max), np.array([cut[0], cut[1], 1.0 if cut[2] else 0.0]))


def _name(frames: Sequence[Atoms], offset: int, k: int) -> str:
    atoms = frames[k]
    return f"structure {offset + k}" + (f" ({atoms.info['id']})" if "id" in atoms.info else "")


def _raise_coincident(bad: np.ndarray, frames: Sequence[Atoms], offset: int, idx: np.ndarray) -> None:
    if bad.any():
        raise ValueError(f"AtomicDensity: {_name(frames, offset, int(idx[np.argmax(bad)]))}: two atoms at the same "
                         "position (distance < 1e-8 A)")


def _chunk_arrays(density: DensityConstants, frames: Sequence[Atoms], offset: int) -> dict[str, np.ndarray]:
    """Sizes, positions, cells, pbc and species indices of a chunk, checked with whole-chunk array operations
    (per-structure checks cost ~30 us each, serial Python next to the parallel kernels); the per-structure
    checks run only to name the structure when something is wrong."""
    sizes = np.array([len(a) for a in frames], dtype=np.int64)
    positions = np.concatenate([a.positions for a in frames]) if sizes.sum() else np.zeros((0, 3))
    cells = np.stack([a.cell.array for a in frames])
    pbc = np.stack([a.pbc for a in frames])
    numbers = np.concatenate([a.numbers for a in frames]) if sizes.sum() else np.zeros(0, dtype=np.int64)
    degenerate = pbc.any(1) & (np.abs(np.linalg.det(cells)) < 1e-8)
    lut = np.full(max(max(density.species_numbers), int(numbers.max(initial=0))) + 1, -1, dtype=np.int64)
    lut[list(density.species_numbers)] = np.arange(len(density.species_numbers))
    species = lut[numbers]
    structure = np.repeat(np.arange(offset, offset + len(frames), dtype=np.int64), sizes)
    if (sizes == 0).any() or degenerate.any() or not np.isfinite(positions).all() or (species < 0).any():
        for k, atoms in enumerate(frames):
            _check_frame(atoms, _name(frames, offset, k))
            species_indices(atoms.numbers, density.species_numbers, _name(frames, offset, k))
    return {"sizes": sizes, "positions": np.ascontiguousarray(positions, dtype=np.float64), "cells": cells,
            "pbc": pbc, "species": species, "structure": structure}


def expand_frames(density: DensityConstants, frames: Sequence[Atoms], offset: int,
                  buffer: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A (N, S, n, lm) float64, atom species (N,), atom structure (N,)) for a chunk of structures.  With a
    float64 ``buffer`` of at least N S n lm numbers, A is a view into it (no allocation per chunk: fresh
    memory costs a page fault per 4 KB, results/descriptors/per_atom_memory*.json); a smaller buffer
    is not used."""
    c = _chunk_arrays(density, frames, offset)
    sizes, pbc, species_all = c["sizes"], c["pbc"], c["species"]
    atom_ptr = np.concatenate([[0], np.cumsum(sizes)])
    consts = density.arrays
    n_sp = density.n_species
    shape = (len(species_all), n_sp, density.n_max, density.n_lm)
    size = int(np.prod(shape))
    # a chunk larger than the buffer (one structure above max_atoms) gets memory of its own
    out = buffer[:size].reshape(shape) if buffer is not None and buffer.size >= size else np.empty(shape)
    direct = (pbc.all(1) | ~pbc.any(1)) & (sizes <= neighbors.DIRECT_MAX_ATOMS)
    groups = [(np.flatnonzero(direct), True), (np.flatnonzero(~direct), False)]
    for idx, fused in groups:
        if not len(idx):
            continue
        whole = len(idx) == len(frames)
        rows = np.arange(len(species_all)) if whole else np.concatenate(
            [np.arange(atom_ptr[k], atom_ptr[k + 1]) for k in idx])
        dest = out if whole else np.empty((len(rows), *shape[1:]))
        if fused:
            periodic = pbc[idx].all(1)
            cells = np.where(periodic[:, None, None], c["cells"][idx], np.eye(3))
            ptr = np.concatenate([[0], np.cumsum(sizes[idx])])
            _, bad = K.density_forward_direct(c["positions"][rows], cells, np.linalg.inv(cells), periodic, ptr,
                                              species_all[rows], n_sp, consts,
                                              K.cost_order(_direct_cost(sizes[idx], cells, periodic, density.r_cut)),
                                              dest, numba.get_num_threads())
        else:
            pairs = build_pairs([frames[k] for k in idx], density.r_cut, density.species_numbers, method="vesin")
            _, bad = _pair_forward(density, pairs.vectors.double().numpy(), pairs, dest)
        _raise_coincident(bad, frames, offset, idx)
        if not whole:
            out[rows] = dest
    return out, species_all, c["structure"]


def _direct_cost(sizes: np.ndarray, cells: np.ndarray, periodic: np.ndarray, r_cut: float) -> np.ndarray:
    """Relative cost of the fused kernel per structure: its pair count, n^2 (4/3 pi r_cut^3) / 2V for a periodic
    cell (uniform density), n^2 / 2 for an open one, plus n (the per-atom transform).  The pair count predicts
    the measured per-structure time to 5 % on NMD18 (results/descriptors/descriptors_cost_model.json)."""
    n = sizes.astype(np.float64)
    vol = np.abs(np.linalg.det(cells))
    dense = np.where(periodic, 4.0 / 3.0 * np.pi * r_cut**3 / np.where(periodic, vol, 1.0), 1.0)
    return n * n * dense / 2.0 + n


def _pair_forward(density: DensityConstants, vec: np.ndarray, pairs: PairList,
                  out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    cost = np.diff(pairs.pair_ptr).astype(np.float64) + np.diff(pairs.atom_ptr)
    if out is None:
        out = np.empty((len(pairs.atom_species), density.n_species, density.n_max, density.n_lm))
    return K.density_forward(np.ascontiguousarray(vec, dtype=np.float64), pairs.center.numpy(),
                             pairs.neighbor.numpy(), pairs.pair_ptr, pairs.atom_ptr,
                             pairs.atom_species.numpy().astype(np.int64), density.n_species, density.arrays,
                             K.cost_order(cost), out, numba.get_num_threads())


class DensityFunction(torch.autograd.Function):
    """A = expansion(pair vectors) with the compiled forward and backward (see module docstring)."""

    @staticmethod
    def forward(ctx, vec: torch.Tensor, density: DensityConstants, pairs: PairList,  # type: ignore[override]
                reference: Callable[[PairList], torch.Tensor]) -> torch.Tensor:
        a, bad = _pair_forward(density, vec.detach().cpu().double().numpy(), pairs)
        if bad.any():
            raise ValueError("AtomicDensity: structure: two atoms at the same position (distance < 1e-8 A)")
        ctx.save_for_backward(vec)
        ctx.density, ctx.pairs, ctx.reference = density, pairs, reference
        return torch.from_numpy(a).to(vec.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:  # type: ignore[override]
        (vec,) = ctx.saved_tensors
        density, pairs = ctx.density, ctx.pairs
        if torch.is_grad_enabled():
            # create_graph: the gradient itself must be differentiable -> the torch reference, evaluated on the
            # saved input (it keeps its graph to positions and cell)
            with torch.enable_grad():
                ref = ctx.reference(PairList(pairs.center, pairs.neighbor, vec, pairs.atom_species,
                                             pairs.atom_structure, pairs.half))
                (g,) = torch.autograd.grad(ref, vec, grad, create_graph=True)
            return g, None, None, None
        with numba_threads(density.n_jobs):
            gv = K.density_backward(np.ascontiguousarray(grad.detach().cpu().double().numpy()),
                                    vec.detach().cpu().double().numpy(), pairs.center.numpy(),
                                    pairs.neighbor.numpy(), pairs.pair_ptr, pairs.atom_ptr,
                                    pairs.atom_species.numpy().astype(np.int64), density.arrays)
        return torch.from_numpy(gv).to(vec), None, None, None


def chunk_rows(atoms, first: int, stop: int, average: bool, n_species: int, center: bool) -> tuple[np.ndarray, ...]:
    """Output row of every atom of a chunk, (row pointer, atoms sorted by row, per-atom weight, n_rows):
    rows are structures (average) or atoms, times the centre species when ``center`` (absent: zero rows)."""
    species = atoms.atom_species.numpy()
    x = len(species)
    if average:
        local = atoms.atom_structure.numpy() - first
        scale = 1.0 / np.bincount(local, minlength=stop - first)[local]
        base, n_base = local, stop - first
    else:
        scale, base, n_base = np.ones(x), np.arange(x), x
    rows = base * n_species + species if center else base
    n_rows = n_base * (n_species if center else 1)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))])
    return ptr, np.argsort(rows, kind="stable"), scale, n_rows


#: Outputs of at least this many bytes are mapped up front (:func:`output_tensor`).
POPULATE_BYTES = 64 * 2**20
_MADV_POPULATE_WRITE = 23  # Linux >= 5.14


def _populate(t: torch.Tensor) -> None:
    """Map the pages of ``t`` now (madvise MADV_POPULATE_WRITE: one call instead of a page fault per 4 KB).
    Where the call is unsupported nothing happens and the kernels fault the pages in as they write."""
    import ctypes

    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = 4096
    lo = -(-t.data_ptr() // page) * page
    hi = (t.data_ptr() + t.numel() * t.element_size()) // page * page
    if hi > lo:
        madvise(lo, hi - lo, _MADV_POPULATE_WRITE)


def output_tensor(shape: tuple[int, ...], dtype: torch.dtype, n_jobs: int = 1) -> torch.Tensor:
    """Uninitialised output of :func:`compute_invariants` (the kernels write every entry), in 4 KB pages
    (torch.empty): 2 MB huge pages took 3x longer to map on first touch on the 2-core VM.  With one thread a
    large output (per-atom NMD18: 1.5 GB) is mapped up front: 0.52-0.54 s of system time against 0.65-1.8 s
    for page faults inside the kernels.  With more threads the kernels fault their own rows in parallel,
    which was as fast as mapping up front: two threads calling madvise on halves did not scale
    (results/descriptors/per_atom_memory*.json)."""
    t = torch.empty(shape, dtype=dtype)
    if n_jobs == 1 and t.numel() * t.element_size() >= POPULATE_BYTES:
        _populate(t)
    return t
