"""Entanglement analysis of trained tensor networks (paper Section IV B, Figs. 13-15).

Pure functions on numpy/torch arrays (float64, natural log).  States: a dense tensor (one axis per leg)
or a list of MPS cores (chi_l, d, chi_r); an MPO enters through the Choi isomorphism
(:func:`choi_vectorise`).  :func:`network_state` extracts either form from a trained network.
Bipartitions name legs by axis index or, with ``legs=...``, by name; contiguity is not required.
"""

from tnmat.entanglement.entropy import (
    capacity_of_entanglement,
    entanglement_entropy,
    probabilities,
    renyi_entropy,
    spectrum_of,
    von_neumann_entropy,
)
from tnmat.entanglement.level_statistics import (
    MEAN_R_TILDE,
    MEAN_R_TILDE_SURMISE,
    WD_NORMALISATION,
    bin_probabilities,
    entanglement_energies,
    kl_divergence,
    level_spacings,
    mean_r_tilde,
    poisson_r_tilde_pdf,
    poisson_ratio_pdf,
    r_tilde,
    random_matrix_levels,
    spacing_ratios,
    wigner_dyson_r_tilde_pdf,
    wigner_dyson_ratio_pdf,
)
from tnmat.entanglement.operators import (
    choi_dense,
    choi_unvectorise,
    choi_vectorise,
    network_state,
    operator_schmidt_values,
)
from tnmat.entanglement.random_states import (
    ks_distance,
    marchenko_pastur_cdf,
    marchenko_pastur_pdf,
    marchenko_pastur_spectrum,
    mean_random_entropy,
    min_cut_entropy,
    page_entropy,
    page_entropy_real_approx,
    random_state,
)
from tnmat.entanglement.schmidt import (
    MPS_METHODS,
    mps_norm,
    mps_schmidt_values,
    mps_to_dense,
    normalise_spectrum,
    schmidt_values,
)

__all__ = [
    "schmidt_values", "mps_schmidt_values", "mps_to_dense", "mps_norm", "normalise_spectrum", "MPS_METHODS",
    "probabilities", "von_neumann_entropy", "renyi_entropy", "capacity_of_entanglement", "entanglement_entropy",
    "spectrum_of",
    "choi_vectorise", "choi_dense", "choi_unvectorise", "operator_schmidt_values", "network_state",
    "page_entropy", "page_entropy_real_approx", "mean_random_entropy", "min_cut_entropy",
    "random_state", "marchenko_pastur_pdf",
    "marchenko_pastur_cdf", "marchenko_pastur_spectrum", "ks_distance",
    "entanglement_energies", "level_spacings", "spacing_ratios", "r_tilde", "wigner_dyson_ratio_pdf",
    "poisson_ratio_pdf", "wigner_dyson_r_tilde_pdf", "poisson_r_tilde_pdf", "WD_NORMALISATION", "MEAN_R_TILDE",
    "MEAN_R_TILDE_SURMISE", "mean_r_tilde", "kl_divergence", "bin_probabilities", "random_matrix_levels",
]
