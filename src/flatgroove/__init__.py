"""flatgroove: a drummer and a machine make music together through a flat latent space.

Follows Chen et al. (2022), "Flat Latent Manifolds for Human-machine Co-creation of Music".
"""

from __future__ import annotations

__version__ = "0.1.0"

from flatgroove.groove import Groove, GrooveError


def load_model(path=None, device: str = "cpu"):
    """A ready model (`encode`, `decode`, `reconstruct`); with no path, the shipped `flat` model."""
    from flatgroove.model.checkpoint import load_model as _load

    return _load(path, device=device)


__all__ = ["Groove", "GrooveError", "__version__", "load_model"]
