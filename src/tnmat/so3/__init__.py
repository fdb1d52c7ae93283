"""SO(3) algebra: spherical harmonics, Clebsch-Gordan / 3j / 6j symbols, Wigner D, 2jm tensors.

Pure functions (numpy / torch), no I/O, imports nothing else from tnmat.  Conventions: docs/conventions.md.
"""

from tnmat.so3.cartesian import (
    matrix_to_voigt,
    spherical_to_symmetric,
    spherical_to_vector,
    symmetric_basis,
    symmetric_to_spherical,
    vector_to_spherical,
    voigt_to_matrix,
)
from tnmat.so3.clebsch_gordan import (
    cap,
    clebsch_gordan,
    clebsch_gordan_coefficient,
    cup,
    real_clebsch_gordan,
    triangle,
    wigner_3j,
    wigner_3j_tensor,
)
from tnmat.so3.recoupling import f_symbol, r_symbol, wigner_6j
from tnmat.so3.rotations import (
    real_wigner_D_from_euler,
    real_wigner_D_torch,
    rotation_from_euler,
    wigner_D_from_euler,
    wigner_small_d,
)
from tnmat.so3.spherical_harmonics import (
    complex_spherical_harmonics,
    real_spherical_harmonics,
    real_to_complex_matrix,
    sh_index,
)
from tnmat.so3.wigner import real_wigner_D, wigner_D

__all__ = [
    "matrix_to_voigt",
    "spherical_to_symmetric",
    "spherical_to_vector",
    "symmetric_basis",
    "symmetric_to_spherical",
    "vector_to_spherical",
    "voigt_to_matrix",
    "cap",
    "clebsch_gordan",
    "clebsch_gordan_coefficient",
    "complex_spherical_harmonics",
    "cup",
    "f_symbol",
    "real_clebsch_gordan",
    "real_spherical_harmonics",
    "real_to_complex_matrix",
    "real_wigner_D",
    "real_wigner_D_from_euler",
    "real_wigner_D_torch",
    "rotation_from_euler",
    "r_symbol",
    "sh_index",
    "triangle",
    "wigner_3j",
    "wigner_3j_tensor",
    "wigner_6j",
    "wigner_D",
    "wigner_D_from_euler",
    "wigner_small_d",
]
