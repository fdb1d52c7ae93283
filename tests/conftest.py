"""Shared test helpers: random structures, random rotations, the NMD18 location."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

REPO = Path(__file__).resolve().parents[1]


def nmd18_root() -> Path | None:
    """The NMD18 folder: $TNMAT_NMD18, else ../shared/data/nmd18 beside the checkout."""
    env = os.environ.get("TNMAT_NMD18")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data" / "nmd18"]:
        if (cand / "train.csv").exists():
            return cand
    return None


@pytest.fixture
def nmd18_path() -> Path:
    root = nmd18_root()
    if root is None:
        pytest.skip("NMD18 not found: set TNMAT_NMD18 or place it at ../shared/data/nmd18")
    return root


def random_rotation(seed: int) -> np.ndarray:
    """A Haar-random proper rotation matrix (scipy), fixed by ``seed``."""
    return Rotation.random(random_state=seed).as_matrix()


def random_cluster(seed: int, n: int = 7, symbols=("Al", "O"), box: float = 3.2, min_dist: float = 0.9) -> Atoms:
    """A non-periodic cluster of ``n`` atoms with a minimum separation (rejection sampling)."""
    rng = np.random.default_rng(seed)
    pos: list[np.ndarray] = []
    while len(pos) < n:
        p = rng.uniform(-box / 2, box / 2, 3)
        if all(np.linalg.norm(p - q) > min_dist for q in pos):
            pos.append(p)
    syms = [symbols[k % len(symbols)] for k in range(n)]
    rng.shuffle(syms)
    return Atoms(syms, positions=np.array(pos))


def random_crystal(seed: int, n: int = 5, symbols=("Al", "O"), a: float = 3.3) -> Atoms:
    """A small triclinic periodic cell (smaller than typical cutoffs, so images matter)."""
    rng = np.random.default_rng(seed)
    cell = a * (np.eye(3) + 0.15 * rng.standard_normal((3, 3)))
    while True:
        frac = rng.uniform(0, 1, (n, 3))
        atoms = Atoms([symbols[k % len(symbols)] for k in range(n)], scaled_positions=frac, cell=cell, pbc=True)
        if n == 1 or atoms.get_all_distances(mic=True)[np.triu_indices(n, 1)].min() > 1.0:
            return atoms
