"""tnmat: tensor-network regression of materials properties on SO(3)-invariant atomic descriptors.

Layers (dependencies point down only): ``so3`` -> ``data`` / ``descriptors`` -> ``networks`` /
``baselines`` -> ``training`` -> ``entanglement`` / ``experiments`` -> ``plots`` / ``cli``.
"""

from tnmat.legtensor import LegTensor

__version__ = "0.1.0"
__all__ = ["LegTensor", "__version__"]
