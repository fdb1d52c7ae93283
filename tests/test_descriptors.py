"""Truths of the density expansion and the fusion-tree invariants / equivariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import roots_legendre

from conftest import random_cluster, random_crystal, random_rotation
from tnmat.descriptors import AtomicDensity, Equivariants, Invariants, couple_paths
from tnmat.descriptors.radial import gaussian_radial_integral_table, gto_basis
from tnmat.so3 import real_clebsch_gordan, real_wigner_D

SPECIES = ("O", "Al")


def density(**kw) -> AtomicDensity:
    base = dict(species=SPECIES, r_cut=4.0, n_max=3, l_max=3, density="gaussian", sigma=0.5)
    base.update(kw)
    return AtomicDensity(**base)


def rotated(atoms, rot):
    out = atoms.copy()
    out.positions = atoms.positions @ rot.T
    if atoms.pbc.any():
        out.cell = atoms.cell.array @ rot.T
    return out


ORDERS = [(1, {}), (2, {}), (3, {"l_max": 2}), (4, {"l_max": 1, "n_max": 2})]


@pytest.mark.parametrize("dens", ["gaussian", "delta"])
@pytest.mark.parametrize("order,kw", ORDERS)
def test_invariance_rotation_translation_permutation(dens, order, kw):
    calc = Invariants(density(density=dens, **kw), order=order)
    for atoms in (random_cluster(1), random_crystal(2)):
        ref = calc.compute([atoms], average=False).values
        scale = ref.abs().max()
        assert scale > 1e-3  # nontrivial
        rot = calc.compute([rotated(atoms, random_rotation(3))], average=False).values
        torch.testing.assert_close(rot, ref, atol=1e-10 * scale, rtol=1e-9)
        moved = atoms.copy()
        moved.positions += np.array([0.37, -1.3, 2.1])
        torch.testing.assert_close(calc.compute([moved], average=False).values, ref, atol=1e-10 * scale, rtol=1e-9)
        perm = np.random.default_rng(4).permutation(len(atoms))
        permuted = calc.compute([atoms[perm]], average=False).values
        torch.testing.assert_close(permuted, ref[perm], atol=1e-10 * scale, rtol=1e-9)


@pytest.mark.parametrize("order,L", [(1, 2), (2, 1), (2, 2), (3, 1)])
def test_equivariance(order, L):
    calc = Equivariants(density(l_max=2), order=order, L=L)
    atoms = random_cluster(5)
    rot = random_rotation(6)
    ref = calc.compute([atoms], average=False).values
    out = calc.compute([rotated(atoms, rot)], average=False).values
    d = torch.as_tensor(real_wigner_D(L, rot), dtype=ref.dtype)
    expected = torch.einsum("...m,km->...k", ref, d)
    assert ref.abs().max() > 1e-3
    torch.testing.assert_close(out, expected, atol=1e-10 * ref.abs().max(), rtol=1e-9)


def test_equivariants_L0_equal_invariants():
    dens = density(l_max=2)
    atoms = random_cluster(7)
    inv = Invariants(dens, order=3).compute([atoms]).values
    eq = Equivariants(dens, order=3, L=0).compute([atoms]).values
    # Equivariant layout keeps k2 (= l3 here) and m (size 1): select the diagonal k2 = l3
    l3 = torch.arange(3)
    eq_diag = eq[..., l3, l3, 0]
    torch.testing.assert_close(eq_diag, inv)


def test_equivariants_order2_L0_is_the_power_spectrum_on_the_diagonal():
    # lambda-SOAP with L = 0 keeps the (l1, l2, m) legs; l1 = l2 = l is the power spectrum B2[..., l]
    dens = density(l_max=2)
    atoms = random_cluster(7)
    inv = Invariants(dens, order=2).compute([atoms]).values
    eq = Equivariants(dens, order=2, L=0).compute([atoms]).values
    l = torch.arange(3)
    torch.testing.assert_close(eq[..., l, l, 0], inv)
    off = eq.clone()
    off[..., l, l, 0] = 0
    assert off.abs().max() == 0  # l1 != l2 cannot couple to L = 0


def test_power_spectrum_is_l0_coupled_product_and_paper_formula():
    dens = density()
    a = dens.compute([random_cluster(8)]).values
    calc = Invariants(dens, order=2)
    fast = calc.from_expansion(a)
    s, n = a.shape[1], a.shape[2]
    for ls, _ks, t in couple_paths(a, 2, 0, dens.l_max):
        if ls[0] != ls[1]:
            continue
        l = ls[0]
        coupled = t[..., 0].reshape(-1, s, n, s, n).permute(0, 1, 3, 2, 4)
        torch.testing.assert_close(fast[..., l], coupled)
        # paper: (-1)^l / sqrt(2l+1) sum_m A_real A_real
        blk = a[..., l * l : (l + 1) ** 2]
        paper = (-1) ** l / np.sqrt(2 * l + 1) * torch.einsum("xanm,xbkm->xabnk", blk, blk)
        torch.testing.assert_close(fast[..., l], paper)


@pytest.mark.parametrize("reps", [(2, 1, 1), (2, 2, 1)])
def test_supercell_invariance_of_structure_average(reps):
    calc = Invariants(density(r_cut=5.0), order=2)
    atoms = random_crystal(9)  # cell ~3.3 A < r_cut: periodic images are essential
    ref = calc.compute([atoms]).values
    sup = calc.compute([atoms.repeat(reps)]).values
    torch.testing.assert_close(sup, ref, atol=1e-10 * ref.abs().max(), rtol=1e-9)


def _so3_quadrature(n: int):
    """Exact quadrature on SO(3) for Wigner-D entries of degree < n: Euler ZYZ, Gauss-Legendre in cos b."""
    from scipy.spatial.transform import Rotation

    x, w = roots_legendre(n)
    ang = 2 * np.pi * np.arange(2 * n) / (2 * n)
    rots, weights = [], []
    for cb, wb in zip(x, w, strict=True):
        for a in ang:
            for g in ang:
                rots.append(Rotation.from_euler("ZYZ", [a, np.arccos(cb), g]).as_matrix())
                weights.append(wb / 2 / (2 * n) ** 2)
    return rots, np.array(weights)


@pytest.mark.parametrize("order", [2, 3])
def test_fusion_tree_equals_haar_integral(order):
    """Paper eq. 12: the Haar average of the product state (D(R)A)^(x)nu projects onto invariants."""
    dens = density(l_max=2, n_max=2, species=("Al",))
    a = dens.compute([random_cluster(10, symbols=("Al",))]).values[:1]  # one atom: (1, 1, 2, 9)
    blocks = [a[0, 0, 1, l * l : (l + 1) ** 2].numpy() for l in range(3)]  # radial channel n = 1
    rots, weights = _so3_quadrature(6 if order == 2 else 8)
    inv = Invariants(dens, order=order).compute([random_cluster(10, symbols=("Al",))], average=False).values[0]
    for ls in ([(1, 1), (2, 2)] if order == 2 else [(1, 1, 2), (2, 2, 2), (1, 2, 1)]):
        ds = [[real_wigner_D(l, r) for r in rots] for l in ls]
        prod = blocks[ls[0]]
        for l in ls[1:]:
            prod = np.multiply.outer(prod, blocks[l])
        haar = np.zeros_like(prod)
        for k, wk in enumerate(weights):
            rotated_prod = ds[0][k] @ blocks[ls[0]]
            for j, l in enumerate(ls[1:], start=1):
                rotated_prod = np.multiply.outer(rotated_prod, ds[j][k] @ blocks[l])
            haar += wk * rotated_prod
        # unit invariant vector of the (only) tree for these l's
        if order == 2:
            v = real_clebsch_gordan(ls[0], ls[1], 0)[:, :, 0]
            b = inv[(0, 0, 1, 1, ls[0])].item()
        else:
            v = np.einsum("ijk,kl->ijl", real_clebsch_gordan(ls[0], ls[1], ls[2]),
                          real_clebsch_gordan(ls[2], ls[2], 0)[:, :, 0])
            b = inv[(0, 0, 0, 1, 1, 1, *ls)].item()
        np.testing.assert_allclose(haar, v * b, atol=1e-10 * np.abs(prod).max())
        assert abs(b) > 1e-4


def test_gradients_finite_differences():
    dens = density(l_max=2, n_max=2)
    calc = Invariants(dens, order=2)
    atoms = random_crystal(11, n=3)
    numbers = atoms.numbers

    def f(pos, cell):
        a = dens.expand_positions(pos, numbers, cell, pbc=True)
        return calc.from_expansion(a).sum(0)

    pos = torch.tensor(atoms.positions, requires_grad=True)
    cell = torch.tensor(atoms.cell.array, requires_grad=True)
    w = torch.randn(calc.sizes, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p, c: (f(p, c) * w).sum(), (pos, cell), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("sigma", [0.3, 0.5, 0.9])
def test_closed_form_radial_integral_matches_quadrature(sigma):
    """The closed-form Gaussian-density projection equals brute-force quadrature of its definition."""
    dens = density(l_max=4, n_max=4, sigma=sigma, cutoff_function="step")
    alphas, betas = gto_basis(dens.r_cut, dens.n_max, dens.l_max)
    d = np.array([0.3, 1.234567, 2.71828, 3.9])
    exact = gaussian_radial_integral_table(d, sigma, alphas, betas, n_quad=400)
    closed = dens.radial(torch.tensor(d)).numpy()
    np.testing.assert_allclose(closed, exact, rtol=1e-9, atol=1e-12 * np.abs(exact).max())


def test_gto_basis_orthonormal():
    alphas, betas = gto_basis(5.0, 5, 3)
    r, w = np.polynomial.legendre.leggauss(400)
    r, w = 10 * (r + 1) / 2, 10 * w / 2
    for l in range(4):
        g = betas[l] @ (r[None, :] ** l * np.exp(-alphas[l][:, None] * r[None, :] ** 2))
        np.testing.assert_allclose((g * w * r**2) @ g.T, np.eye(5), atol=1e-8)


def test_bad_inputs_named():
    with pytest.raises(ValueError, match="n_max"):
        AtomicDensity(species=SPECIES, r_cut=4.0, n_max=0, l_max=2)
    with pytest.raises(ValueError, match="r_cut"):
        AtomicDensity(species=SPECIES, r_cut=-1.0, n_max=2, l_max=2)
    with pytest.raises(ValueError, match="Xx"):
        AtomicDensity(species=("Xx",), r_cut=4.0, n_max=2, l_max=2)
    with pytest.raises(ValueError, match="density"):
        AtomicDensity(species=SPECIES, r_cut=4.0, n_max=2, l_max=2, density="slater")
    calc = Invariants(density(), order=2)
    frames = [random_cluster(1), random_cluster(2, symbols=("Al", "Cu"))]
    with pytest.raises(ValueError, match=r"structure 1.*Cu"):
        calc.compute(frames)
    from ase import Atoms

    with pytest.raises(ValueError, match="structure 0.*empty"):
        calc.compute([Atoms()])
    with pytest.raises(ValueError, match="order"):
        Invariants(density(), order=7)


def test_legs_and_float32():
    calc = Invariants(density(), order=2)
    out = calc.compute([random_cluster(1), random_crystal(2)], dtype=torch.float32)
    assert out.legs == ("a1", "a2", "n1", "n2", "l")
    assert out.sizes == (2, 2, 3, 3, 4)
    assert out.values.dtype == torch.float32
    ref = calc.compute([random_cluster(1), random_crystal(2)])
    torch.testing.assert_close(out.values.double(), ref.values, rtol=1e-4, atol=1e-4 * ref.values.abs().max())
    # symmetry a1 n1 <-> a2 n2 of the power spectrum
    torch.testing.assert_close(ref.values, ref.values.permute(0, 2, 1, 4, 3, 5))


def test_center_species_blocks_sum_to_plain_average():
    dens = density(l_max=2)
    frames = [random_crystal(12), random_cluster(13)]
    plain = Invariants(dens, order=2).compute(frames)
    split = Invariants(dens, order=2, center_species=True).compute(frames)
    assert split.legs == ("c", "a1", "a2", "n1", "n2", "l")
    torch.testing.assert_close(split.values.sum(1), plain.values)
    # the block of a centre species absent from a structure is exactly zero
    only_al = random_cluster(14, symbols=("Al",))
    vals = Invariants(dens, order=2, center_species=True).compute([only_al]).values
    assert float(vals[0, SPECIES.index("O")].abs().max()) == 0.0
    assert float(vals[0, SPECIES.index("Al")].abs().max()) > 0.0
