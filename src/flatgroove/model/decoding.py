"""The decoding rule: how hit probabilities p become the on/off hits a listener hears.

A fixed 0.5 threshold makes what is heard change only when a cell crosses 0.5, so a decoder
can move a lot in p (what the flatness loss sees) while nothing audible happens, then flip many
cells at one step. A *threshold pattern* gives every cell (step, drum) its own threshold,
fixed once (seeded) and the same for every path, every model call and live play. Along a path
a cell then sounds when p passes its own threshold, and the expected number of cells that flip
per step follows Σ|Δp| over cells whose p lies in [low, high]: evenness in p becomes evenness in
what is heard. Per drum the 32 thresholds are the evenly spaced quantiles of U(low, high) in a
seeded order (stratified, not i.i.d.), so no drum is biased loud or quiet.

A *count* rule sounds, in each groove, the K most probable cells, K = round(Σp): as many hits as
the decoder expects. Between two grooves p is a blend and a fixed threshold sounds the union of
both grooves' likely cells (midpoints 1.2× as dense as their ends); the count keeps the density of
a groove (EXPERIMENTS E32).

The rule is saved in checkpoints; generation, evaluation, the jam and the page all use it via
GrooveVAE.decode.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from flatgroove.drums import N_DRUMS
from flatgroove.groove import N_STEPS
from flatgroove.model.config import settings_from_dict

KINDS = ("threshold", "pattern", "count")


@dataclass(frozen=True)
class DecodingRule:
    kind: str = "threshold"
    threshold: float = 0.5  # kind "threshold": one threshold for every cell
    low: float = 0.2  # kind "pattern": thresholds spread over [low, high]
    high: float = 0.8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown decoding rule {self.kind!r}; choose one of {KINDS}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must lie in (0, 1)")
        if not 0.0 < self.low <= self.high < 1.0:
            raise ValueError("pattern bounds need 0 < low <= high < 1")
        if self.seed < 0:
            raise ValueError(f"a pattern's seed must be >= 0, got {self.seed}")

    @cached_property
    def thresholds(self) -> np.ndarray:
        """(32, 9) float32: each cell's threshold (a count rule has none: its cut depends on p)."""
        if self.kind == "count":
            raise ValueError("a count rule has no fixed thresholds; use hits(p)")
        if self.kind == "threshold":
            return np.full((N_STEPS, N_DRUMS), self.threshold, np.float32)
        rng = np.random.default_rng(self.seed)
        q = (np.arange(N_STEPS) + 0.5) / N_STEPS
        cols = [self.low + (self.high - self.low) * rng.permutation(q) for _ in range(N_DRUMS)]
        return np.stack(cols, axis=1).astype(np.float32)

    def hits(self, p) -> np.ndarray:
        """Binary hits (..., 32, 9) float32 from probabilities p (..., 32, 9)."""
        p = np.asarray(p, dtype=np.float32)
        if self.kind != "count":
            return (p >= self.thresholds).astype(np.float32)
        flat = p.reshape(*p.shape[:-2], -1)
        k = np.rint(flat.sum(-1, keepdims=True))
        # rank of each cell, most probable first (stable: ties go to the earlier cell)
        rank = np.argsort(np.argsort(-flat, axis=-1, kind="stable"), axis=-1, kind="stable")
        return (rank < k).astype(np.float32).reshape(p.shape)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> DecodingRule:
        return settings_from_dict(cls, d, "decoding rule") if d else cls()

    def describe(self) -> str:
        if self.kind == "threshold":
            return f"threshold {self.threshold:g}"
        if self.kind == "count":
            return "count: the round(Σp) most probable cells"
        return f"threshold pattern U({self.low:g}, {self.high:g}), seed {self.seed}"


def parse_rule(spec: str) -> DecodingRule:
    """'threshold', 'threshold:0.4', 'pattern', 'pattern:0.2:0.8', 'pattern:0.2:0.8:7', 'count'."""
    parts = spec.split(":")
    if spec == "count":
        return DecodingRule("count")
    most = {"threshold": 2, "pattern": 4}.get(parts[0])
    if most is not None and len(parts) > most:  # a field left over is a typo, not a default
        raise ValueError(f"bad decoding rule {spec!r}: {parts[0]} takes at most {most - 1} "
                         "numbers; use threshold[:T], pattern[:LOW:HIGH[:SEED]] or count")
    try:
        if parts[0] == "threshold":
            return DecodingRule("threshold", threshold=float(parts[1]) if len(parts) > 1 else 0.5)
        if parts[0] == "pattern":
            lo = float(parts[1]) if len(parts) > 1 else 0.2
            hi = float(parts[2]) if len(parts) > 2 else 0.8
            seed = int(parts[3]) if len(parts) > 3 else 0
            return DecodingRule("pattern", low=lo, high=hi, seed=seed)
    except ValueError as e:
        raise ValueError(f"bad decoding rule {spec!r}: {e}") from None
    raise ValueError(f"bad decoding rule {spec!r}; use threshold[:T], pattern[:LOW:HIGH[:SEED]] or count")
