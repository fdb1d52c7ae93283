"""Stoudenmire-Schwab MPS on the flattened, standardised descriptor (paper eq. 19, Fig. 11).

Each feature x_i (i = 1..n_features) is standardised, z_i = (x_i - mean_i) / scale_i, and mapped to
phi(z_i) = [1 - z_i, z_i]; y = sum_s prod_i phi(z_i)[s_i] A_1[s_1] ... A_N[s_N]: an MPS with d = 2 and one
site per feature, i.e. y = <W, phi(z_1) (x) ... (x) phi(z_N)> with W of shape (2,) * N.
"""

from __future__ import annotations

import torch
from torch import nn

from tnmat.legtensor import LegTensor
from tnmat.networks._init import make_generator
from tnmat.networks.base import TensorNetwork, chain_to_dense
from tnmat.networks.mps import mps_cores_init

__all__ = ["FeatureMapMPS", "feature_map"]


def feature_map(z: torch.Tensor) -> torch.Tensor:
    """phi(z) = [1 - z, z] on the last axis (paper eq. 19): (..., ) -> (..., 2)."""
    return torch.stack([1 - z, z], dim=-1)


class FeatureMapMPS(TensorNetwork):
    """MPS over the features with the local map phi(z) = [1 - z, z] (paper eq. 19).

    Parameters
    ----------
    n_features: number of sites (features after flattening).
    bond_dim: uniform virtual bond chi.
    init: ``"identity"`` (default): A_k[:, s, :] = I + eps G_k[s].  Because phi_0 + phi_1 = 1, the
        noiseless network returns 1 for every input for any N; eps^2 = log(1 + chi) / (3 N chi) (3 =
        E|phi(z)|^2 for standardised z) bounds the growth of the bond vector (see ``_init``).
        ``"canonical"`` and ``"gaussian"`` as for :class:`MPS`.

    The buffers ``feature_mean`` / ``feature_scale`` (default 0 / 1) standardise raw inputs; set them with
    :meth:`set_standardisation` (the training engine does it from the training set).
    """

    def __init__(
        self,
        n_features: int,
        bond_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        init: str | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if int(n_features) < 1:
            raise ValueError(f"FeatureMapMPS: n_features must be >= 1, got {n_features}")
        super().__init__((2,) * int(n_features), bond_dim)
        self.n_features = int(n_features)
        self.init = init or "identity"
        g = make_generator(seed, generator)
        cores = mps_cores_init(self.sizes, self.bond_dim, self.init, g, feature_sum_one=True, v=3.0)
        self.cores = nn.ParameterList([nn.Parameter(c.to(dtype)) for c in cores])
        self.register_buffer("feature_mean", torch.zeros(self.n_features, dtype=dtype))
        self.register_buffer("feature_scale", torch.ones(self.n_features, dtype=dtype))

    def set_standardisation(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """Use z = (x - mean) / scale; zero scales (constant features) are replaced by one."""
        mean = torch.as_tensor(mean).reshape(-1)
        scale = torch.as_tensor(scale).reshape(-1)
        if mean.numel() != self.n_features or scale.numel() != self.n_features:
            raise ValueError(f"FeatureMapMPS: mean/scale must have {self.n_features} entries")
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        self.feature_mean.copy_(mean)
        self.feature_scale.copy_(scale)

    def forward(self, x: torch.Tensor | LegTensor) -> torch.Tensor:
        """One scalar per row; x of shape (batch, ...) with n_features entries per row (flattened)."""
        if isinstance(x, list | tuple):
            raise TypeError("FeatureMapMPS acts on features, not on factorised (MPS) inputs")
        if isinstance(x, LegTensor):
            x = x.values
        x = torch.as_tensor(x)
        b = x.shape[0]
        if x[0].numel() != self.n_features:
            raise ValueError(
                f"FeatureMapMPS: input rows have {x[0].numel()} entries (shape {tuple(x.shape)}), "
                f"expected n_features={self.n_features}"
            )
        z = (x.reshape(b, -1).to(self.feature_mean) - self.feature_mean) / self.feature_scale
        phi = feature_map(z)  # (b, N, 2)
        # transfer matrices of all sites at once, then a left-to-right sweep of the bond vector (b, chi):
        # cost N * b * chi^2
        cores = list(self.cores)
        env = torch.einsum("bs,sc->bc", phi[:, 0], cores[0][0])
        if self.n_features > 2:
            mid = torch.stack(cores[1:-1])  # (N-2, chi, 2, chi)
            mats = torch.einsum("bns,nasc->nbac", phi[:, 1:-1], mid)
            for m in mats:
                env = torch.einsum("ba,bac->bc", env, m)
        if self.n_features > 1:
            env = torch.einsum("ba,bs,as->b", env, phi[:, -1], cores[-1][..., 0])
        return env.reshape(b)

    def to_dense(self) -> torch.Tensor:
        """W of shape (2,) * n_features (only for small n_features): y = <W, phi(z_1) (x) ... (x) phi(z_N)>."""
        if self.n_features > 24:
            raise ValueError(f"FeatureMapMPS.to_dense: 2^{self.n_features} entries is too large")
        return chain_to_dense(list(self.cores))

    def extra_repr(self) -> str:
        return f"n_features={self.n_features}, bond_dim={self.bond_dim}"
