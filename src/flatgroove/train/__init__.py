"""Training: objectives of the three variants, GECO, checkpoints and resumable runs."""

from flatgroove.train.config import TrainConfig, load_config
from flatgroove.train.constraint import Geco

__all__ = ["Geco", "TrainConfig", "load_config"]
