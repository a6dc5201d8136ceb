"""The recurrent VAE family: `vae`, `vhp` and `flat` (DESIGN §4)."""

from flatgroove.model.config import VARIANTS, ModelConfig
from flatgroove.model.vae import GrooveVAE

__all__ = ["VARIANTS", "GrooveVAE", "ModelConfig"]
