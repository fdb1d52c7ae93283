"""Integer parameters given as numpy integers (grids built with numpy) are accepted wherever ints are."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone


@pytest.fixture(scope="module")
def small():
    from tnmat.data import embedded_default
    from tnmat.descriptors import AtomicDensity, Invariants

    ds = embedded_default(small=True).subset(range(40))
    X = Invariants(AtomicDensity(species=ds.species, r_cut=4.0, n_max=2, l_max=1), order=2).compute(ds.structures)
    return X, np.asarray(ds.targets["mixing_energy"])


@pytest.mark.parametrize("solver", ["sweep", "adam"])
@pytest.mark.parametrize("name", ["MPSRegressor", "TTNRegressor"])
def test_numpy_integers_fit_like_ints(name, solver, small, tmp_path):
    import tnmat.training as tr

    cls = getattr(tr, name)
    own = dict(n_sweeps=2) if solver == "sweep" else dict(max_epochs=3, batch_size=16)  # each solver's settings
    ints = dict(bond_dim=3, random_state=0, solver=solver, **own)
    as_numpy = {k: np.int64(v) if isinstance(v, int) else v for k, v in ints.items()}
    a = cls(**ints).fit(*small)
    b = clone(cls(**as_numpy)).fit(*small)
    np.testing.assert_allclose(a.predict(small[0]), b.predict(small[0]), rtol=1e-6, atol=1e-9)
    b.save(tmp_path / "m.tnmat")
    assert tr.load_estimator(tmp_path / "m.tnmat").bond_dim == 3


def test_numpy_integers_in_members_and_layer_sizes():
    from tnmat.equivariant.estimator import EquivariantRegressor
    from tnmat.training import DNNRegressor, MPSRegressor

    MPSRegressor(solver="sweep", n_members=np.int32(2), alpha_selection="evidence",
                 validation_fraction=0.0)._check_params()
    DNNRegressor(hidden_layer_sizes=(np.int64(4), np.int16(2)))._check_params()
    EquivariantRegressor(model="mps", bond_dim=np.int64(3))._check()


@pytest.mark.parametrize("bad", [True, 2.0, np.float64(2.0), 0, np.int64(-1)])
def test_non_integers_and_bools_are_still_refused(bad):
    from tnmat.training import MPSRegressor

    with pytest.raises(ValueError, match="bond_dim"):
        MPSRegressor(bond_dim=bad)._check_params()
