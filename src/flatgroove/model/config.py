"""Model hyperparameters, with defaults in code; saved with every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

VARIANTS = ("vae", "vhp", "flat")


@dataclass
class ModelConfig:
    variant: str = "flat"  # vae | vhp | flat (DESIGN §4)
    latent_dim: int = 32
    enc_hidden: int = 128  # per direction, 2-layer BiLSTM
    enc_layers: int = 2
    dec_hidden: int = 192
    dec_layers: int = 2
    step_embed: int = 16  # learned embedding of the step index fed with z at every step
    prior_hidden: int = 256  # VHP prior networks p(z|zeta), q(zeta|z)
    prior_samples: int = 4  # importance samples for the VHP KL
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {VARIANTS}")
        if self.latent_dim < 1:
            raise ValueError("latent_dim must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return settings_from_dict(cls, d, "model")


def settings_from_dict(cls, d: dict, what: str):
    """A settings dataclass from a dict (a TOML table), naming any key it does not know."""
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} settings: {sorted(unknown)}")
    return cls(**d)
