"""Writing a finished figure: one place for the PNG conventions of every plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_figure(fig: Any, path: str | Path, *, dpi: int = 130) -> Path:
    """Save ``fig`` as ``path`` (parent folders created), close it so long runs do not accumulate figures,
    and return the path."""
    import matplotlib.pyplot as plt

    from tnmat.reports import atomic_path

    path = Path(path)
    try:
        with atomic_path(path) as tmp:  # written to a temporary name and renamed: never a half-written PNG
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return path
