"""The compiled (numba) density kernels against the torch reference: values, gradients, neighbour lists,
thread-count independence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms

from conftest import random_cluster, random_crystal
from tnmat.descriptors import AtomicDensity, Invariants
from tnmat.descriptors.neighbors import build_pairs

SPECIES = ("O", "Al")


def density(**kw) -> AtomicDensity:
    base = dict(species=SPECIES, r_cut=4.0, n_max=3, l_max=3, density="gaussian", sigma=0.5)
    base.update(kw)
    return AtomicDensity(**base)


def frames_mixed() -> list[Atoms]:
    slab = random_crystal(21, n=4)
    slab.pbc = (True, True, False)  # mixed periodicity: vesin pair lists + the pair kernel
    big = random_crystal(22, n=4).repeat((5, 5, 5))  # 500 atoms (vesin path when DIRECT_MAX_ATOMS < 500)
    return [random_crystal(2), random_cluster(1), slab, big, random_crystal(3, n=1)]


@pytest.mark.parametrize("kw", [{}, {"density": "delta", "l_max": 5}, {"cutoff_function": "step"},
                                {"n_max": 1, "l_max": 0}])
def test_compiled_equals_torch_reference(kw, monkeypatch):
    from tnmat.descriptors import neighbors

    monkeypatch.setattr(neighbors, "DIRECT_MAX_ATOMS", 400)  # the 500-atom cell takes the vesin pair path
    frames = frames_mixed()
    fast = density(backend="numba", **kw).compute(frames).values
    ref = density(backend="torch", **kw).compute(frames).values
    assert ref.abs().max() > 1e-3
    torch.testing.assert_close(fast, ref, atol=1e-12 * ref.abs().max(), rtol=1e-12)


def test_dscribe_equivalent_sphere_equal():
    d = AtomicDensity.dscribe_equivalent(species=SPECIES, r_cut=3.5, n_max=3, l_max=2, sigma=0.4)
    frames = [random_crystal(5), random_crystal(6, n=2)]
    fast = Invariants(d, order=2).compute(frames).values
    ref = Invariants(AtomicDensity(**{**d.get_params(), "species": SPECIES}, backend="torch"), order=2).compute(
        frames).values
    torch.testing.assert_close(fast, ref, atol=1e-12 * ref.abs().max(), rtol=1e-12)


def _pair_set(p) -> list[tuple]:
    rows = []
    for a, b, v in zip(p.center.tolist(), p.neighbor.tolist(), p.vectors.numpy(), strict=True):
        v = np.round(v, 9) + 0.0
        if a > b or (a == b and tuple(v) < tuple(-v + 0.0)):
            a, b, v = b, a, -v + 0.0
        rows.append((a, b, *v))
    return sorted(rows)


def test_direct_neighbour_search_equals_vesin():
    frames = [random_crystal(2), random_cluster(1), random_crystal(8, n=1), random_crystal(9, n=6)]
    direct = build_pairs(frames, 6.0, (8, 13), method="direct")
    ves = build_pairs(frames, 6.0, (8, 13), method="vesin")
    assert len(direct.center) == len(ves.center) > 100
    assert _pair_set(direct) == _pair_set(ves)
    # shifts reproduce the vectors: v = r_j - r_i + S @ cell (frame 0 is periodic)
    pos = np.concatenate([a.positions for a in frames])
    sl = slice(direct.pair_ptr[0], direct.pair_ptr[1])
    v = pos[direct.neighbor[sl]] - pos[direct.center[sl]] + direct.shifts[sl] @ frames[0].cell.array
    np.testing.assert_allclose(v, direct.vectors[sl].numpy(), atol=1e-12)


def test_gradients_compiled_finite_differences_and_equal_torch():
    atoms = random_crystal(11, n=3)
    w = None
    grads = {}
    for backend in ("numba", "torch"):
        dens = density(l_max=2, n_max=2, backend=backend)
        calc = Invariants(dens, order=2)
        if w is None:
            w = torch.randn(calc.sizes, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

        def f(p, c, dens=dens, calc=calc, w=w):
            return (calc.from_expansion(dens.expand_positions(p, atoms.numbers, c, pbc=True)).sum(0) * w).sum()

        pos = torch.tensor(atoms.positions, requires_grad=True)
        cell = torch.tensor(atoms.cell.array, requires_grad=True)
        if backend == "numba":
            assert torch.autograd.gradcheck(f, (pos, cell), eps=1e-6, atol=1e-6)
        grads[backend] = torch.autograd.grad(f(pos, cell), (pos, cell))
    for g_fast, g_ref in zip(grads["numba"], grads["torch"], strict=True):
        torch.testing.assert_close(g_fast, g_ref, atol=1e-12 * g_ref.abs().max(), rtol=1e-10)


def test_double_backward_falls_back_to_reference():
    """create_graph (training on forces) differentiates the gradient itself: same as the torch path."""
    atoms = random_cluster(12)
    out = {}
    for backend in ("numba", "torch"):
        dens = density(l_max=2, n_max=2, backend=backend, cutoff_function="cosine")
        pos = torch.tensor(atoms.positions, requires_grad=True)
        energy = (dens.expand_positions(pos, atoms.numbers) ** 2).sum()
        (forces,) = torch.autograd.grad(energy, pos, create_graph=True)
        (hess_row,) = torch.autograd.grad(forces[0, 0], pos)
        out[backend] = (forces.detach(), hess_row)
    for a, b in zip(out["numba"], out["torch"], strict=True):
        torch.testing.assert_close(a, b, atol=1e-11 * b.abs().max(), rtol=1e-10)


def test_thread_count_does_not_change_results():
    frames = [random_crystal(k, n=3 + k % 4) for k in range(12)] + [random_cluster(5)]
    dens = density()
    one = Invariants(dens, order=2).compute(frames, average=False, n_jobs=1).values
    two = Invariants(dens, order=2).compute(frames, average=False, n_jobs=2).values
    assert torch.equal(one, two)  # bitwise: every structure is summed by one thread in a fixed order


def test_output_mapped_up_front_gives_the_same_values(monkeypatch):
    from tnmat.descriptors import _compiled

    frames = [random_crystal(k, n=3 + k % 4) for k in range(6)]
    calc = Invariants(density(), order=2)
    plain = calc.compute(frames, average=False, n_jobs=2).values
    monkeypatch.setattr(_compiled, "POPULATE_BYTES", 0)  # every output goes through madvise(POPULATE_WRITE)
    for jobs in (1, 2):
        assert torch.equal(calc.compute(frames, average=False, n_jobs=jobs).values, plain)
        assert torch.equal(calc.compute(frames, n_jobs=jobs).values, calc.compute(frames, n_jobs=1).values)


def test_coincident_atoms_named():
    atoms = random_crystal(2)
    atoms.positions[1] = atoms.positions[0]
    with pytest.raises(ValueError, match="structure 1.*same position"):
        density(backend="numba").compute([random_crystal(3), atoms])


def test_bad_backend_and_jobs():
    with pytest.raises(ValueError, match="backend"):
        density(backend="cuda")
    with pytest.raises(ValueError, match="n_jobs"):
        density(n_jobs=0)
    assert "backend" not in density().get_params()  # runtime settings are not hyper-parameters


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("average,center", [(True, False), (False, False), (True, True), (False, True)])
def test_compiled_invariants_equal_torch_reference(order, average, center):
    kw = dict(species=("O", "Al", "Ga"), r_cut=4.0, n_max=2, l_max={2: 4, 3: 3, 4: 2}[order], sigma=0.5)
    frames = [random_crystal(2, symbols=("O", "Al", "Ga")), random_cluster(1, symbols=("O", "Al", "Ga")),
              random_crystal(4, n=2, symbols=("Ga", "O"))]
    fast = Invariants(AtomicDensity(**kw), order=order, center_species=center).compute(frames, average=average)
    ref = Invariants(AtomicDensity(**kw, backend="torch"), order=order, center_species=center).compute(
        frames, average=average)
    assert fast.legs == ref.legs and fast.values.shape == ref.values.shape
    scale = ref.values.abs().max()
    assert scale > 1e-3
    torch.testing.assert_close(fast.values, ref.values, atol=1e-12 * scale, rtol=1e-12)
    if not average:
        assert torch.equal(fast.structure_index, ref.structure_index)


def test_bispectrum_unique_entries_expand_to_full():
    dens = density(species=("O", "Al", "Ga"), n_max=2, l_max=3)
    frames = [random_crystal(7, symbols=("O", "Al", "Ga")), random_cluster(8, symbols=("O", "Al", "Ga"))]
    full = Invariants(dens, order=3, center_species=True).compute(frames)
    calc = Invariants(dens, order=3, center_species=True, unique=True)
    uniq = calc.compute(frames)
    assert uniq.legs == ("c", "u") and uniq.values.shape[-1] < full.values[0, 0].numel() / 5
    torch.testing.assert_close(calc.expand(uniq.values), full.values, atol=1e-14 * full.values.abs().max(), rtol=0)
    # the unique entries are entries of the full tensor (channel p = a n_max + n, n_max = 2)
    keys = calc._bispectrum().unique_keys()
    p, l = keys[:, :3], keys[:, 3:]
    picked = full.values[:, :, p[:, 0] // 2, p[:, 1] // 2, p[:, 2] // 2, p[:, 0] % 2, p[:, 1] % 2, p[:, 2] % 2,
                         l[:, 0], l[:, 1], l[:, 2]]
    torch.testing.assert_close(picked, uniq.values, atol=1e-14 * full.values.abs().max(), rtol=0)


@pytest.mark.parametrize("order", [3, 4])
@pytest.mark.parametrize("average", [True, False])
def test_bispectrum_thread_count_does_not_change_results(order, average):
    # bitwise: the rows come from a shared work queue, but each row is summed by one thread in a fixed order
    frames = [random_crystal(k, n=2 + k % 3) for k in range(8)] + [random_cluster(3)]
    calc = Invariants(density(l_max=2, n_max=2), order=order, unique=order == 3, center_species=order == 3)
    one = calc.compute(frames, average=average, n_jobs=1).values
    assert torch.equal(one, calc.compute(frames, average=average, n_jobs=2).values)
    assert one.abs().max() > 1e-3


def test_unique_only_for_bispectrum():
    with pytest.raises(ValueError, match="unique"):
        Invariants(density(), order=2, unique=True)


def test_branch_free_exp_within_one_ulp():
    from numba import njit

    from tnmat.descriptors._pair_math import _exp

    @njit
    def run(x):
        out = np.empty_like(x)
        for q in range(len(x)):
            out[q] = _exp(x[q])
        return out

    x = np.concatenate([np.random.default_rng(0).uniform(-708.0, 700.0, 100_000), [0.0, -1e-300, 1.0, -0.5 * np.log(2)],
                        -np.logspace(-12, 2.8, 1000)])
    got, ref = run(x), np.exp(x)
    assert np.max(np.abs(got - ref) / ref) <= 2.3e-16  # one ulp
    assert run(np.array([0.0]))[0] == 1.0
    floor = run(np.array([-800.0, -708.0]))
    assert floor[0] == floor[1] and abs(floor[1] / np.exp(-708.0) - 1) < 2.3e-16  # documented floor


def test_cost_order_and_work_queue_take_every_item_once():
    import numba
    from numba import njit, prange

    from tnmat.descriptors._compiled import numba_threads
    from tnmat.descriptors._kernels import claim, cost_order

    cost = np.random.default_rng(1).uniform(1.0, 50.0, 37) ** 2
    order = cost_order(cost)
    assert sorted(order.tolist()) == list(range(len(cost))) and np.all(np.diff(cost[order]) <= 0)

    @njit(parallel=True)
    def take(n):
        queue, seen = np.zeros(1, dtype=np.int64), np.zeros(n, dtype=np.int64)
        for _ in prange(numba.get_num_threads()):
            while True:
                k = claim(queue)
                if k >= n:
                    break
                seen[k] += 1
        return seen

    for jobs in (1, 2):
        with numba_threads(jobs):
            seen = take(20000)
        assert np.all(seen == 1)  # every item taken exactly once, whatever the thread count


def test_thread_count_does_not_change_pair_kernel(monkeypatch):
    from tnmat.descriptors import neighbors

    monkeypatch.setattr(neighbors, "DIRECT_MAX_ATOMS", 400)  # the 500-atom cell and the slab take vesin's pairs
    frames = frames_mixed()
    one = density().compute(frames, n_jobs=1).values
    two = density().compute(frames, n_jobs=2).values
    assert torch.equal(one, two)


def test_register_solid_harmonics_equal_table_recurrence():
    from numba import njit

    from tnmat.descriptors._pair_math import _solid_harmonics, _solid_harmonics_values, sh_tables
    from tnmat.so3 import real_spherical_harmonics

    @njit
    def both(v, l_max, kappa, top, ca, cb):
        n = (l_max + 1) ** 2
        tab, reg = np.empty((4, n)), np.empty(n)
        cs, ss, pl, dd = np.empty(l_max + 1), np.empty(l_max + 1), np.empty((l_max + 1, l_max + 1)), np.empty((2, 1))
        _solid_harmonics(v[0], v[1], v[2], l_max, kappa, top, ca, cb, cs, ss, pl, tab, False, dd, dd, pl, pl)
        _solid_harmonics_values(v[0], v[1], v[2], l_max, kappa, top, ca, cb, reg)
        return tab[0], reg

    rng = np.random.default_rng(3)
    for l_max in (0, 1, 2, 3, 6, 12):
        for v in rng.normal(size=(5, 3)):
            tab, reg = both(v, l_max, *sh_tables(l_max))
            assert np.array_equal(tab, reg)
            # and both are d^l Y_lm (the torch reference)
            d = np.linalg.norm(v)
            ref = real_spherical_harmonics(torch.from_numpy(v[None]), l_max, normalize=True)[0].numpy()
            ls = np.repeat(np.arange(l_max + 1), 2 * np.arange(l_max + 1) + 1)
            np.testing.assert_allclose(reg, ref * d**ls, rtol=1e-12, atol=1e-12 * np.abs(ref * d**ls).max())


def test_chunks_bounded_by_structures():
    frames = [random_crystal(k, n=2 + k % 3) for k in range(7)]
    dens = density()
    chunks = [(first, stop) for first, stop, _, _ in dens.iter_chunks(frames, max_atoms=10**6, max_structures=3)]
    assert chunks == [(0, 3), (3, 6), (6, 7)]
    one = [(f, s) for f, s, _, _ in dens.iter_chunks(frames, max_atoms=1, max_structures=3)]
    assert one == [(k, k + 1) for k in range(7)]  # a chunk holds one structure at least
