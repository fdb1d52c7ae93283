"""The applicability check flags structures unlike every training structure in real space: expanded (Bohr
read as Angstrom) or compressed cells, and clusters or slabs predicted by a bulk model; held-out structures of
the same kind are not flagged; models saved before the geometry was recorded still load and predict."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.io import write
from ase.neighborlist import neighbor_list

from tnmat.cli import main
from tnmat.data.domain_geometry import GeometryRange, pair_statistics


@pytest.fixture(scope="module")
def alloys():
    """alloys-small: training and held-out structures by its split."""
    from tnmat.data import embedded_default

    ds = embedded_default(small=True)
    test = ds.metadata["split"] == "test"
    return ([a for a, t in zip(ds.structures, test, strict=True) if not t],
            [a for a, t in zip(ds.structures, test, strict=True) if t])


def _scaled(frames, factor):
    out = []
    for a in frames:
        b = a.copy()
        b.set_cell(a.cell * factor, scale_atoms=True)
        out.append(b)
    return out


def _slabs_and_clusters(frames):
    out = []
    for k, a in enumerate(frames):
        b = a.repeat(2)
        if k % 2:
            b.pbc = False  # a cluster
        else:
            b.pbc = (True, True, False)  # a slab
            b.center(vacuum=6.0, axis=2)
        out.append(b)
    return out


def test_pair_statistics_agree_with_ase(alloys):
    for atoms in [alloys[0][3], bulk("Cu", "fcc", a=3.6), _slabs_and_clusters(alloys[0][:2])[1]]:
        i, j, d = neighbor_list("ijd", atoms, 5.0)
        stats = pair_statistics(atoms, 5.0)
        sym = np.array(atoms.get_chemical_symbols())
        for a in set(sym):
            counts = np.bincount(i, minlength=len(atoms))[sym == a]
            assert stats[f"{a}-*"][1:] == (counts.min(), counts.max())
            assert stats[f"{a}-*"][0] == pytest.approx(d[sym[i] == a].min())


def test_held_out_structures_are_inside(alloys):
    train, test = alloys
    geo = GeometryRange.of(train, 6.0)
    assert geo.outside(test) == [""] * len(test)


@pytest.mark.parametrize("factor", [1.89, 1 / 1.89, 0.8])
def test_expanded_and_compressed_cells_are_flagged(factor, alloys):
    train, test = alloys
    reasons = GeometryRange.of(train, 6.0).outside(_scaled(test, factor))
    assert all("shortest distance" in r or "neighbour count" in r for r in reasons)


def test_clusters_and_slabs_of_a_bulk_model_are_flagged(alloys):
    train, test = alloys
    reasons = GeometryRange.of(train, 6.0).outside(_slabs_and_clusters(test[:6]))
    assert all("periodicity" in r for r in reasons)
    assert all("neighbour count" in r for r in reasons)  # surface atoms lose neighbours, whatever the pbc


def test_round_trip_of_the_stored_form(alloys):
    geo = GeometryRange.of(alloys[0], 6.0)
    back = GeometryRange.from_dict(torch.load(_saved(geo.to_dict()), weights_only=True))
    assert back == geo


def _saved(obj):
    import io

    from tnmat._estimator_file import plain

    buf = io.BytesIO()
    torch.save(plain(obj, "geometry"), buf)
    buf.seek(0)
    return buf


@pytest.fixture(scope="module")
def fitted(alloys, tmp_path_factory):
    """A model fitted on the training structures, and a file of held-out, expanded, cluster and slab ones."""
    from tnmat.data import embedded_default

    tmp = tmp_path_factory.mktemp("domain")
    data = embedded_default(small=True).subset(range(60)).to_extxyz(tmp / "d.extxyz")
    model = tmp / "m.tnmat"
    assert main(["fit", str(data), "--model", "mps", "--bond-dim", "3", "--sweeps", "2", "--n-max", "2",
                 "--l-max", "1", "-q", "-o", str(model)]) == 0
    held = alloys[1][:4]
    frames = held + _scaled(held, 1.89) + _slabs_and_clusters(held[:2])
    new = tmp / "new.extxyz"
    write(new, frames)
    return model, new, tmp


def _rows(fitted, model, capsys):
    out = fitted[2] / "p.csv"
    assert main(["predict", str(model), str(fitted[1]), "-q", "-o", str(out)]) == 0
    return list(csv.DictReader(out.open())), capsys.readouterr().out


def test_predict_flags_them_with_reasons(fitted, capsys):
    rows, printed = _rows(fitted, fitted[0], capsys)
    assert [r["outside_training_range"] for r in rows] == ["0"] * 4 + ["1"] * 6
    assert [bool(r["outside_reason"]) for r in rows] == [False] * 4 + [True] * 6
    assert all("periodicity" in r["outside_reason"] for r in rows[8:])
    assert "outside the training range: 6 of 10 structures" in printed


def test_a_model_saved_without_geometry_still_predicts(fitted, capsys):
    from tnmat._estimator_file import content_checksum

    blob = torch.load(fitted[0], weights_only=True)
    del blob["extra"]["info"]["domain"]["geometry"]
    blob["checksum"] = content_checksum(blob)
    old = fitted[2] / "old.tnmat"
    torch.save(blob, old)
    rows, _ = _rows(fitted, old, capsys)
    assert [r["outside_training_range"] for r in rows][:4] == ["0"] * 4
    assert all(not r["outside_reason"] or "descriptor range" in r["outside_reason"] for r in rows)
