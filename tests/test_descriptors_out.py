"""Invariants.compute(out=...): values written into a caller's buffer are bitwise those of a fresh call (compiled
and torch paths, per atom and averaged, any thread count); every bad buffer is refused before any work."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from conftest import random_cluster, random_crystal
from tnmat.descriptors import AtomicDensity, Equivariants, Invariants

SPECIES = ("O", "Al")


def density(**kw) -> AtomicDensity:
    return AtomicDensity(**{**dict(species=SPECIES, r_cut=4.0, n_max=2, l_max=2, sigma=0.5), **kw})


def frames() -> list:
    return [random_crystal(k, n=2 + k % 3) for k in range(5)] + [random_cluster(6)]


CALCS = {
    "power spectrum": dict(order=2),
    "power spectrum, centre species": dict(order=2, center_species=True),
    "bispectrum unique": dict(order=3, unique=True, center_species=True),
    "bispectrum full": dict(order=3),
    "order 4": dict(order=4),
}


@pytest.mark.parametrize("kind", list(CALCS))
@pytest.mark.parametrize("average", [True, False])
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_out_bitwise_equal_to_fresh_output(kind, average, backend):
    if backend == "torch" and CALCS[kind].get("unique"):
        pytest.skip("unique=True is computed by the compiled path only")
    calc = Invariants(density(l_max=1 if CALCS[kind]["order"] == 4 else 2, backend=backend), **CALCS[kind])
    fr = frames()
    for jobs in (1, 2):
        fresh = calc.compute(fr, average=average, n_jobs=jobs)
        buf = torch.full(calc.output_shape(fr, average=average), float("nan"), dtype=torch.float64)
        for _ in range(2):  # the same buffer twice, as in an MD loop
            res = calc.compute(fr, average=average, n_jobs=jobs, out=buf)
            assert res.values is buf and res.legs == fresh.legs
            assert torch.equal(buf, fresh.values)
        if not average:
            assert torch.equal(res.structure_index, fresh.structure_index)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_out_float32_and_equivariants(backend):
    fr = frames()
    calc = Invariants(density(backend=backend), order=2)
    buf = torch.empty(calc.output_shape(fr, average=False), dtype=torch.float32)
    calc.compute(fr, average=False, dtype=torch.float32, out=buf)
    assert torch.equal(buf, calc.compute(fr, average=False, dtype=torch.float32).values)
    eq = Equivariants(density(backend=backend), order=2, L=1)
    buf = torch.empty(eq.output_shape(fr), dtype=torch.float64)
    assert torch.equal(eq.compute(fr, out=buf).values, eq.compute(fr).values)


def test_out_memmap(tmp_path):
    fr = frames()
    calc = Invariants(density(), order=2)
    shape = calc.output_shape(fr, average=False)
    mm = np.memmap(tmp_path / "b2.dat", dtype=np.float64, mode="w+", shape=shape)
    calc.compute(fr, average=False, out=torch.from_numpy(mm), n_jobs=2)
    mm.flush()
    back = np.memmap(tmp_path / "b2.dat", dtype=np.float64, mode="r", shape=shape)
    assert np.array_equal(back, calc.compute(fr, average=False).values.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about the read-only array; the check must refuse it
        ro = torch.from_numpy(back)
    with pytest.raises(ValueError, match="read-only memory"):
        calc.compute(fr, average=False, out=ro)
    assert np.array_equal(back, calc.compute(fr, average=False).values.numpy())  # the probe changed nothing


def test_output_shape_matches_compute():
    fr = frames()
    for kw in CALCS.values():
        calc = Invariants(density(l_max=1), **kw)
        for average in (True, False):
            assert calc.output_shape(fr, average=average) == tuple(calc.compute(fr, average=average).values.shape)
    assert Invariants(density(), order=2).output_shape(fr[0]) == (1, 2, 2, 2, 2, 3)


def _bad_buffers(shape: tuple[int, ...]) -> dict[str, tuple[object, type, str]]:
    f8 = dict(dtype=torch.float64)
    transposed = torch.empty(shape[::-1], **f8).permute(*reversed(range(len(shape))))
    return {
        "numpy": (np.empty(shape), TypeError, r"out must be a torch.Tensor, got ndarray"),
        "shape": (torch.empty((shape[0] + 1, *shape[1:]), **f8), ValueError,
                  rf"out has shape \({shape[0] + 1}, .*expected \({shape[0]}, "),
        "dtype": (torch.empty(shape, dtype=torch.float32), ValueError,
                  r"out has dtype torch.float32, expected torch.float64"),
        "device": (torch.empty(shape, device="meta", **f8), ValueError, r"out is on device meta, expected cpu"),
        "contiguous": (transposed, ValueError, r"out is not contiguous"),
        "grad": (torch.empty(shape, requires_grad=True, **f8), ValueError, r"out requires grad"),
        "sparse": (torch.empty(shape, **f8).to_sparse(), ValueError,
                   r"out has layout torch.sparse_coo, expected torch.strided"),
    }


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("field", ["numpy", "shape", "dtype", "device", "contiguous", "grad", "sparse"])
def test_bad_out_refused_before_any_work(backend, field, monkeypatch):
    fr = frames()
    calc = Invariants(density(backend=backend), order=2)
    buf, error, message = _bad_buffers(calc.output_shape(fr, average=False))[field]

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the buffer was checked")

    monkeypatch.setattr(AtomicDensity, "iter_chunks", no_work)
    with pytest.raises(error, match="Invariants.compute: " + message):
        calc.compute(fr, average=False, out=buf)
