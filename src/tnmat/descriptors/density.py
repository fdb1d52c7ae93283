"""Atom-centred density expansion A[i, a, n, l, m] (paper eqs. 5-8).

``A[i, a, n, lm] = sum_{j in N(i), species(j) = a} f_c(r_ij) R_nl(r_ij) Y_lm(r_ij_hat)``
with real spherical harmonics (Condon-Shortley phase, m = -l..l, flat index lm = l*l + l + m; see
docs/conventions.md).  R_nl is g_nl for the delta density (ACE) and the Gaussian radial integral I_nl
for the Gaussian-smeared density (SOAP); see :mod:`tnmat.descriptors.radial`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
import vesin
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from tnmat.descriptors.neighbors import PairList, build_pairs, species_indices
from tnmat.descriptors.radial import (
    cutoff_function,
    gto_basis,
    primitive_exponents,
)
from tnmat.legtensor import LegTensor
from tnmat.so3 import real_spherical_harmonics

__all__ = ["AtomicDensity"]

_DENSITIES = ("gaussian", "delta")
_RADIAL = ("gto",)
#: Most radial functions: beyond ~16 (r_cut 6 A) the GTO basis is linearly dependent anyway.
MAX_N_MAX = 64


def _check_basis(r_basis: float, n_max: int, l_max: int) -> None:
    """``ValueError`` naming r_cut and n_max when the orthonormal GTO basis cannot be built (r_cut <= 1 A
    makes the primitives coincide; too many radial functions make them linearly dependent)."""
    if n_max > MAX_N_MAX:
        raise ValueError(f"AtomicDensity: n_max={n_max} radial functions is more than {MAX_N_MAX}; the GTO "
                         "basis is linearly dependent beyond ~16 at r_cut 6 A")
    try:
        gto_basis(r_basis, n_max, l_max)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise ValueError(f"AtomicDensity: no orthonormal GTO radial basis for r_cut={r_basis:g} A with "
                         f"n_max={n_max} ({exc}); use a larger r_cut (> 1 A, e.g. 4-6 A) or fewer radial "
                         "functions") from None


def as_frames(frames: Any, who: str) -> list[Atoms]:
    """``frames`` (one ASE Atoms or a sequence of them) as a list; ``TypeError`` naming ``who`` otherwise (a
    file name is not read here: use :func:`tnmat.data.read_structures`)."""
    if isinstance(frames, Atoms):
        return [frames]
    if isinstance(frames, str | bytes) or hasattr(frames, "__fspath__"):
        raise TypeError(f"{who}: got the path {str(frames)!r}, expected ASE Atoms or a list of them (read files "
                        "with tnmat.data.read_structures or ase.io.read)")
    out = list(frames)
    bad = next((k for k, a in enumerate(out) if not isinstance(a, Atoms)), None)
    if bad is not None:
        raise TypeError(f"{who}: structure {bad} is a {type(out[bad]).__name__}, expected ase.Atoms")
    return out
_CUTOFFS = ("cosine", "step")
_BACKENDS = ("auto", "numba", "torch")
#: evaluation settings, not hyper-parameters: left out of get_params (saved models, cache keys)
_RUNTIME = ("backend", "n_jobs")


def _symbol(s: str | int) -> str:
    if isinstance(s, int | np.integer):
        if not 0 < int(s) < len(chemical_symbols):
            raise ValueError(f"AtomicDensity: unknown atomic number {s}")
        return chemical_symbols[int(s)]
    if s not in atomic_numbers:
        raise ValueError(f"AtomicDensity: unknown chemical symbol {s!r}")
    return str(s)


@dataclass(frozen=True, kw_only=True)
class AtomicDensity:
    """Hyper-parameters and evaluation of the neighbour-density expansion (immutable, validated).

    Parameters
    ----------
    species: neighbour species (symbols or atomic numbers); their order defines the ``a`` leg.
    r_cut: neighbour cutoff radius in Angstrom.
    n_max: number of radial functions (n = 0..n_max-1; ``n_max=4`` means four, as in DScribe).
    l_max: largest angular momentum (inclusive).
    density: ``"gaussian"`` (SOAP; the centre atom's own Gaussian is included, as in SOAP/DScribe) or
        ``"delta"`` (ACE; no self term).
    sigma: Gaussian width in Angstrom (``gaussian`` only).
    radial_basis: ``"gto"`` (DScribe's orthonormal Gaussian-type orbitals).
    basis_r_cut: radius over which the GTO decay points are spread (default: ``r_cut``).  Set it to
        DScribe's ``r_cut`` together with ``r_cut = r_cut_dscribe + sigma*sqrt(-2 ln 1e-3)`` and
        ``cutoff_function="step"`` to reproduce DScribe exactly (see :meth:`dscribe_equivalent`).
    cutoff_function: ``"cosine"`` (smooth switch over ``cutoff_width`` ending at ``r_cut``) or ``"step"``.
    cutoff_width: width of the cosine switching region in Angstrom.
    backend: ``"numba"`` (compiled fused per-pair kernels, CPU), ``"torch"`` (the reference, any device) or
        ``"auto"`` (numba on CPU, torch on other devices; numba measured 6x faster on one core for the
        power spectrum and 32x for the bispectrum, ``benchmarks/descriptors.py``, docs/results/descriptors.md).
        Both give the same values to ~1e-14 relative.
    n_jobs: numba threads (joblib convention: -1 = all cores); results are bitwise identical for any value.
        Default 1: for the power spectrum two threads gave 1.87x (averaged) and 1.71-1.82x (per atom) on the
        idle 2-core machine (results/descriptors/power_spectrum_vs_dscribe.json) but only 1.07-1.25x with another
        process on one core (chunk_size_loaded.json); the bispectrum, order-4 and backward kernels
        were not measured under load.
    """

    species: tuple[str, ...]
    r_cut: float
    n_max: int
    l_max: int
    density: str = "gaussian"
    sigma: float = 0.5
    radial_basis: str = "gto"
    basis_r_cut: float | None = None
    cutoff_function: str = "cosine"
    cutoff_width: float = 0.5
    backend: str = field(default="auto", compare=False)
    n_jobs: int | None = field(default=1, compare=False)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.species, str | int):
            raise TypeError("AtomicDensity: species must be a sequence of symbols, e.g. ('Al', 'O')")
        sp = tuple(_symbol(s) for s in self.species)
        if not sp:
            raise ValueError("AtomicDensity: species must not be empty")
        if len(set(sp)) != len(sp):
            raise ValueError(f"AtomicDensity: duplicate species in {sp}")
        object.__setattr__(self, "species", sp)
        if not (isinstance(self.r_cut, int | float) and np.isfinite(self.r_cut) and self.r_cut > 0):
            raise ValueError(f"AtomicDensity: r_cut must be a positive number, got {self.r_cut!r}")
        for name in ("n_max", "l_max"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool):
                raise TypeError(f"AtomicDensity: {name} must be an integer, got {v!r}")
        if self.n_max < 1:
            raise ValueError(f"AtomicDensity: n_max counts radial functions and must be >= 1, got {self.n_max}")
        if not 0 <= self.l_max <= 12:
            raise ValueError(f"AtomicDensity: l_max must be in 0..12, got {self.l_max}")
        if self.density not in _DENSITIES:
            raise ValueError(f"AtomicDensity: density must be one of {_DENSITIES}, got {self.density!r}")
        if self.radial_basis not in _RADIAL:
            raise ValueError(f"AtomicDensity: radial_basis must be one of {_RADIAL}, got {self.radial_basis!r}")
        if self.cutoff_function not in _CUTOFFS:
            raise ValueError(
                f"AtomicDensity: cutoff_function must be one of {_CUTOFFS}, got {self.cutoff_function!r}"
            )
        if self.density == "gaussian" and not (self.sigma > 0 and np.isfinite(self.sigma)):
            raise ValueError(f"AtomicDensity: sigma must be a finite number > 0, got {self.sigma!r}")
        if self.cutoff_function == "cosine" and not 0 < self.cutoff_width <= self.r_cut:
            raise ValueError(f"AtomicDensity: cutoff_width must be in (0, r_cut], got {self.cutoff_width!r}")
        if self.basis_r_cut is not None and not self.basis_r_cut > 1.0:
            raise ValueError(f"AtomicDensity: basis_r_cut must be > 1 A, got {self.basis_r_cut!r}")
        if self.backend not in _BACKENDS:
            raise ValueError(f"AtomicDensity: backend must be one of {_BACKENDS}, got {self.backend!r}")
        from tnmat.descriptors._compiled import resolve_jobs

        resolve_jobs(self.n_jobs)  # validates
        _check_basis(self.basis_r_cut or self.r_cut, self.n_max, self.l_max)
        object.__setattr__(self, "r_cut", float(self.r_cut))
        object.__setattr__(self, "n_max", int(self.n_max))
        object.__setattr__(self, "l_max", int(self.l_max))

    # ------------------------------------------------------------------ parameters
    @classmethod
    def dscribe_equivalent(
        cls, *, species: Sequence[str], r_cut: float, n_max: int, l_max: int, sigma: float
    ) -> AtomicDensity:
        """Settings that reproduce ``dscribe.descriptors.SOAP(rbf="gto", weighting=None)``: DScribe keeps
        neighbours up to r_cut + sigma*sqrt(-2 ln 1e-3) with no smoothing, and spreads its GTOs to r_cut."""
        pad = sigma * np.sqrt(-2.0 * np.log(1e-3))
        return cls(species=tuple(species), r_cut=r_cut + pad, n_max=n_max, l_max=l_max, density="gaussian",
                   sigma=sigma, basis_r_cut=r_cut, cutoff_function="step")

    def get_params(self) -> dict[str, Any]:
        """JSON-serialisable hyper-parameters (``AtomicDensity(**params)`` rebuilds the object)."""
        p = {f.name: getattr(self, f.name) for f in fields(self) if f.init and f.name not in _RUNTIME}
        p["species"] = list(self.species)
        return p

    @property
    def species_numbers(self) -> tuple[int, ...]:
        return tuple(atomic_numbers[s] for s in self.species)

    @property
    def n_lm(self) -> int:
        return (self.l_max + 1) ** 2

    def compiled(self, device: str | torch.device | None = None) -> bool:
        """Whether the compiled kernels evaluate this density on ``device`` (``backend`` setting)."""
        cpu = device is None or torch.device(device).type == "cpu"
        if self.backend == "numba" and not cpu:
            raise ValueError(f"AtomicDensity: backend='numba' runs on the CPU only, got device {device!r}")
        return cpu and self.backend != "torch"

    # ------------------------------------------------------------------ radial machinery (cached)
    def _basis(self) -> tuple[np.ndarray, np.ndarray]:
        if "basis" not in self._cache:
            self._cache["basis"] = gto_basis(self.basis_r_cut or self.r_cut, self.n_max, self.l_max)
        return self._cache["basis"]

    def _tensors(self, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
        """Per-(dtype, device) constants: exponents gamma[l, n'], and the per-l matrices
        M_l = beta_l diag(prefactor_l) that turn primitive projections into basis coefficients."""
        key = ("tensors", dtype, str(device))
        if key not in self._cache:
            alphas, betas = self._basis()
            gamma_, pref = primitive_exponents(self.density, alphas, self.sigma)
            lm_l = np.repeat(np.arange(self.l_max + 1), 2 * np.arange(self.l_max + 1) + 1)
            self._cache[key] = {
                "gamma": torch.as_tensor(gamma_.T.copy(), dtype=dtype, device=device),  # (n', l)
                "transform": torch.as_tensor(betas * pref[:, None, :], dtype=dtype, device=device),
                "l_of_lm": torch.as_tensor(lm_l, device=device),
                "parity": torch.as_tensor((-1.0) ** lm_l, dtype=dtype, device=device),
                "self": torch.as_tensor(betas[0] @ pref[0], dtype=dtype, device=device),
            }
        return self._cache[key]

    def compiled_constants(self) -> Any:
        """The plain values the compiled kernels read (:class:`~tnmat.descriptors._compiled.DensityConstants`),
        built once per calculator."""
        from tnmat.descriptors._compiled import DensityConstants, constant_arrays

        if "compiled" not in self._cache:
            cut = (self.r_cut, self.cutoff_width, self.cutoff_function == "cosine")
            arrays = constant_arrays(self._tensors(torch.float64, torch.device("cpu")), self.density, self.l_max, cut)
            self._cache["compiled"] = DensityConstants(tuple(self.species_numbers), self.n_max, self.n_lm,
                                                       float(self.r_cut), self.n_jobs, arrays)
        return self._cache["compiled"]

    def radial(self, r: torch.Tensor) -> torch.Tensor:
        """R_nl(r) times the cutoff function, shape (len(r), n_max, l_max+1) (g_nl for the delta density,
        the Gaussian radial integral I_nl for the Gaussian one)."""
        t = self._tensors(r.dtype, r.device)
        prim = r[:, None, None] ** torch.arange(self.l_max + 1, device=r.device) * torch.exp(
            -t["gamma"] * (r * r)[:, None, None])  # (P, n', l)
        fc = cutoff_function(r, self.r_cut, self.cutoff_width, self.cutoff_function)
        return torch.einsum("lnk,pkl->pnl", t["transform"], prim) * fc[:, None, None]

    # ------------------------------------------------------------------ expansion
    def expand_pairs(self, pairs: PairList) -> torch.Tensor:
        """A[i, a, n, lm] for the atoms of a :class:`PairList`; shape (n_atoms, n_species, n_max, n_lm).

        Each listed pair (i, j, v = r_j - r_i) contributes to centre i with neighbour species a_j and
        direction v, and, for half lists, to centre j with species a_i and direction -v, using
        d^l Y_lm(-v) = (-1)^l d^l Y_lm(v): the per-pair work is done once for both centres."""
        vec = pairs.vectors
        dtype, device = vec.dtype, vec.device
        t = self._tensors(dtype, device)
        n_atoms, n_sp = pairs.n_atoms, len(self.species)
        d2 = (vec * vec).sum(1)
        if len(d2) and float(d2.detach().min()) < 1e-16:
            raise ValueError("AtomicDensity: two atoms at the same position (distance < 1e-8 A)")
        d = torch.sqrt(d2)
        sh = real_spherical_harmonics(vec, self.l_max, normalize=True)  # (P, lm)
        # g[p, n', l] = d^l exp(-gamma_{n'l} d^2) f_c(d): the d^l makes d^l Y_lm a regular solid harmonic
        powers = [torch.ones_like(d)]
        for _ in range(self.l_max):
            powers.append(powers[-1] * d)
        dl = torch.stack(powers, dim=1)  # (P, l)
        if self.cutoff_function != "step":  # the neighbour list already enforces d <= r_cut
            dl = dl * cutoff_function(d, self.r_cut, self.cutoff_width, self.cutoff_function)[:, None]
        g = torch.exp(-t["gamma"] * d2[:, None, None]) * dl[:, None, :]  # (P, n', l)
        # per-l broadcasting products written in place: much faster than gathering g over lm
        contrib = torch.empty((len(d), self.n_max, self.n_lm), dtype=dtype, device=device)
        for l in range(self.l_max + 1):
            sl = slice(l * l, (l + 1) * (l + 1))
            if vec.requires_grad:
                contrib = contrib.clone() if l == 0 else contrib
                contrib[:, :, sl] = g[:, :, l, None] * sh[:, None, sl]
            else:
                torch.mul(g[:, :, l, None], sh[:, None, sl], out=contrib[:, :, sl])
        species = pairs.atom_species.to(device)
        center, neighbor = pairs.center.to(device), pairs.neighbor.to(device)
        prim = torch.zeros((n_atoms * n_sp, self.n_max, self.n_lm), dtype=dtype, device=device)
        prim.index_add_(0, center * n_sp + species[neighbor], contrib)
        if pairs.half:
            mirrored = torch.zeros_like(prim)
            mirrored.index_add_(0, neighbor * n_sp + species[center], contrib)
            prim = prim + mirrored * t["parity"]
        prim = prim.reshape(n_atoms, n_sp, self.n_max, self.n_lm)
        if self.density == "gaussian":
            # the centre's own Gaussian (d = 0): only l = 0 survives, Y_00 = 1/sqrt(4 pi); added after the
            # transform below, so it is kept separately
            own = torch.zeros((n_atoms, n_sp, self.n_max), dtype=dtype, device=device)
            own[torch.arange(n_atoms, device=device), species] = t["self"] / np.sqrt(4 * np.pi)
        blocks = []
        for l in range(self.l_max + 1):
            blk = prim[..., l * l : (l + 1) * (l + 1)]
            blocks.append(torch.einsum("nk,xakm->xanm", t["transform"][l], blk))
        out = torch.cat(blocks, dim=-1)
        if self.density == "gaussian":
            out[..., 0] += own
        return out

    def iter_chunks(
        self, frames: Sequence[Atoms], *, dtype: torch.dtype = torch.float64, device: str | None = None,
        max_atoms: int = 1024, n_jobs: int | None = None, reuse: bool = False, max_structures: int | None = None,
    ) -> Iterator[tuple[int, int, PairList | ChunkAtoms, torch.Tensor]]:
        """Yield (first, stop, atoms, A) for consecutive chunks of frames (bounded memory): at most ``max_atoms``
        atoms and ``max_structures`` structures (a chunk holds one structure at least); ``atoms`` has
        ``atom_species`` and ``atom_structure`` (the pair list on the torch path).  ``reuse`` (compiled path,
        float64): every chunk's A is written into one buffer, so a yielded A is overwritten by the next chunk;
        for callers that are done with a chunk before asking for the next (no fresh memory per chunk)."""
        compiled = self.compiled(device)
        buffer = np.empty(max_atoms * len(self.species) * self.n_max * self.n_lm) if reuse and compiled else None
        start = 0
        n = len(frames)
        while start < n:
            stop, atoms = start, 0
            while stop < n and (atoms == 0 or (atoms + len(frames[stop]) <= max_atoms
                                               and (max_structures is None or stop - start < max_structures))):
                atoms += len(frames[stop])
                stop += 1
            if compiled:
                from tnmat.descriptors._compiled import expand_frames, numba_threads

                with numba_threads(self.n_jobs if n_jobs is None else n_jobs):
                    a, sp, st = expand_frames(self.compiled_constants(), frames[start:stop], start, buffer)
                yield start, stop, ChunkAtoms(torch.from_numpy(sp), torch.from_numpy(st)), \
                    torch.from_numpy(a).to(dtype)
                start = stop
                continue
            pairs = build_pairs(frames[start:stop], self.r_cut, self.species_numbers, dtype=dtype, offset=start)
            if device is not None:
                pairs.vectors = pairs.vectors.to(device)
            yield start, stop, pairs, self.expand_pairs(pairs)
            start = stop

    def compute(
        self, frames: Sequence[Atoms] | Atoms, *, dtype: torch.dtype = torch.float64, device: str | None = None,
        n_jobs: int | None = None,
    ) -> LegTensor:
        """Per-atom expansion for a list of ASE structures: LegTensor with legs ("a", "n", "lm")."""
        frames = as_frames(frames, "AtomicDensity.compute")
        if not frames:
            raise ValueError("AtomicDensity.compute: no structures given")
        parts, sidx = [], []
        for _, _, pairs, a in self.iter_chunks(frames, dtype=dtype, device=device, n_jobs=n_jobs):
            parts.append(a)
            sidx.append(pairs.atom_structure)
        return LegTensor(torch.cat(parts), ("a", "n", "lm"), structure_index=torch.cat(sidx),
                         meta={"calculator": "AtomicDensity", "params": self.get_params()})

    def expand_positions(
        self, positions: torch.Tensor, numbers: np.ndarray, cell: torch.Tensor | None = None,
        pbc: bool | Sequence[bool] = False,
    ) -> torch.Tensor:
        """A[i, a, n, lm] of one structure from torch positions (and cell), differentiable in both.

        The neighbour list is built from detached values; pair vectors are rebuilt in torch as
        r_j - r_i + S @ cell so gradients flow to positions and cell (stress needs the latter)."""
        numbers = np.asarray(numbers)
        pbc_arr = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
        box = cell.detach().cpu().numpy() if (cell is not None and pbc_arr.any()) else np.zeros((3, 3))
        periodic = bool(pbc_arr.all()) if pbc_arr.all() or not pbc_arr.any() else [bool(p) for p in pbc_arr]
        nl = vesin.NeighborList(cutoff=self.r_cut, full_list=False, sorted=True)
        i, j, s = nl.compute(positions.detach().cpu().numpy(), box, periodic, quantities="ijS")
        i_t, j_t = torch.from_numpy(i.astype(np.int64)), torch.from_numpy(j.astype(np.int64))
        vec = positions[j_t] - positions[i_t]
        if cell is not None and pbc_arr.any():
            vec = vec + torch.from_numpy(s.astype(np.float64)).to(positions) @ cell
        pairs = PairList(
            center=i_t, neighbor=j_t, vectors=vec,
            atom_species=torch.from_numpy(species_indices(numbers, self.species_numbers, "structure")),
            atom_structure=torch.zeros(len(numbers), dtype=torch.long),
            pair_ptr=np.array([0, len(i)]), atom_ptr=np.array([0, len(numbers)]),
        )
        if self.compiled(positions.device):
            from tnmat.descriptors._compiled import DensityFunction, numba_threads

            with numba_threads(self.n_jobs):
                return DensityFunction.apply(vec, self.compiled_constants(), pairs, self.expand_pairs)
        return self.expand_pairs(pairs)


@dataclass
class ChunkAtoms:
    """Species index and structure index of every atom of a chunk (what the compiled path yields instead of
    a pair list: its pairs are never stored)."""

    atom_species: torch.Tensor
    atom_structure: torch.Tensor
