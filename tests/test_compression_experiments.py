"""Compression experiment helpers (the full runs live in results/compression; these check the pieces)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnmat.compression import tt_svd
from tnmat.experiments.compression import fit_factorised
from tnmat.experiments.latent import knn_scores
from tnmat.networks import MPO, MPS
from tnmat.plots.compression import plot_ttsvd


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _problem(n=120, sizes=(3, 3, 3), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *sizes, generator=g, dtype=torch.float64)
    w = torch.randn(*sizes, generator=g, dtype=torch.float64)
    y = torch.einsum("b...,...->b", x, w) + 0.01 * torch.randn(n, generator=g, dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("cls,chi", [(MPS, 3), (MPO, 2)])
def test_training_on_full_rank_factorised_inputs_equals_dense_training(cls, chi):
    # the factorised forward is the same function of the weights, so gradients, Adam steps and the
    # early-stopping decisions coincide up to round-off
    x, y = _problem()
    runs = []
    for inputs in (x, tt_svd(x)):
        net = cls((3, 3, 3), chi, dtype=torch.float64, seed=1)
        tr = inputs[:90] if isinstance(inputs, torch.Tensor) else [c[:90] for c in inputs]
        va = inputs[90:] if isinstance(inputs, torch.Tensor) else [c[90:] for c in inputs]
        out = fit_factorised(net, tr, y[:90], va, y[90:], learning_rate=1e-2, batch_size=30, max_epochs=8,
                             patience=None, seed=0)
        runs.append((net(x), out["history"]["val_loss"]))
    assert np.allclose(runs[0][1], runs[1][1], rtol=1e-8)
    assert torch.allclose(runs[0][0], runs[1][0], atol=1e-8)


def test_fit_factorised_learns_a_planted_linear_model():
    x, y = _problem(n=300)
    net = MPS((3, 3, 3), 9, dtype=torch.float64, seed=0)  # chi = 9 represents any 3x3x3 tensor
    out = fit_factorised(net, x[:240], y[:240], x[240:], y[240:], learning_rate=2e-2, batch_size=40,
                         max_epochs=150, patience=20, seed=0)
    with torch.no_grad():
        pred = net(x[240:]) * out["y_std"] + out["y_mean"]
    assert float((pred - y[240:]).pow(2).mean() / y[240:].var()) < 5e-2  # untrained: ~1


def test_knn_scores_separate_structure_from_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 2, 3], 60)
    centres = np.array([[0, 0], [20, 0], [0, 20]])
    emb = centres[labels - 1] + rng.normal(size=(180, 2))
    energy = emb[:, 0] + 0.01 * rng.normal(size=180)
    good = knn_scores(emb, spacegroup=labels, composition=emb[:, 1], energy=energy)
    assert good["spacegroup_accuracy"] > 0.99 and good["energy_r2"] > 0.95
    noise = knn_scores(rng.normal(size=(180, 2)), spacegroup=labels, composition=emb[:, 1], energy=energy)
    assert noise["spacegroup_accuracy"] < 0.6 and noise["energy_r2"] < 0.3


def test_ttsvd_figure_is_written(tmp_path):
    rows = [{"chi_in": c, "rmse_mev": 10.0 / c, "mae_mev": 7.0 / c, "n_in": 40 * c} for c in (1, 2, 4)]
    rows.append({"chi_in": None, "rmse_mev": 3.0, "mae_mev": 2.0, "n_in": 32768})
    path = plot_ttsvd(rows, tmp_path / "f.png", 32768)
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


def test_latent_figure_has_one_row_of_panels_per_encoder(tmp_path):
    import matplotlib.image as mpimg

    from tnmat.plots.compression import plot_latent

    rng = np.random.default_rng(1)
    comp = rng.dirichlet(np.ones(3), size=50)
    sg, energy = rng.choice([12, 33, 227], size=50), rng.normal(size=50)
    heights = []
    for names in (["input"], ["input", "mpo", "pca"]):
        emb = {n: rng.normal(size=(50, 2)) for n in names}
        path = plot_latent(emb, comp, sg, energy, tmp_path / f"latent{len(names)}.png")
        assert path.read_bytes()[:4] == b"\x89PNG"
        heights.append(mpimg.imread(path).shape[0])
    assert heights[1] == pytest.approx(3 * heights[0], rel=0.02)  # figure height is 3 inches per encoder row
