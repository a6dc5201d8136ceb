"""`Groove`: two bars of drums as hits, velocities and micro-timing offsets (DESIGN §3).

Everything in flatgroove speaks Groove: MIDI code makes and writes them, the model
encodes and decodes them, the live engine plays them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flatgroove.drums import DRUMS, N_DRUMS, SHORT_NAMES
from flatgroove.errors import GrooveError

STEPS_PER_BAR = 16
BARS = 2
N_STEPS = STEPS_PER_BAR * BARS
N_FEATURES = 3 * N_DRUMS  # hits, velocities, offsets per drum


@dataclass
class Groove:
    """hits (32, 9) in {0, 1}; velocities (32, 9) in [0, 1]; offsets (32, 9) in [-0.5, 0.5]
    of a step (positive = late); tempo in BPM. Silent cells carry velocity 0 and offset 0."""

    hits: np.ndarray
    velocities: np.ndarray
    offsets: np.ndarray
    tempo: float = 120.0
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        self.hits = self._check("hits", self.hits, 0.0, 1.0)
        if not np.all((self.hits == 0) | (self.hits == 1)):
            raise GrooveError("hits must be 0 or 1")
        self.velocities = self._check("velocities", self.velocities, 0.0, 1.0)
        self.offsets = self._check("offsets", self.offsets, -0.5, 0.5)
        # A silent cell has no velocity or timing; keeps equality and encodings canonical.
        self.velocities = np.where(self.hits > 0, self.velocities, 0.0).astype(np.float32)
        self.offsets = np.where(self.hits > 0, self.offsets, 0.0).astype(np.float32)
        try:
            self.tempo = float(self.tempo)
        except (TypeError, ValueError):
            raise GrooveError(f"tempo must be a number, got {self.tempo!r}") from None
        if not (np.isfinite(self.tempo) and 20.0 <= self.tempo <= 400.0):
            raise GrooveError(f"tempo must be between 20 and 400 BPM, got {self.tempo}")

    @staticmethod
    def _check(what: str, a: object, lo: float, hi: float) -> np.ndarray:
        try:
            arr = np.asarray(a, dtype=np.float32)
        except (TypeError, ValueError):
            raise GrooveError(
                f"{what} must be a ({N_STEPS}, {N_DRUMS}) array of numbers, got {a!r:.60}"
            ) from None
        if arr.shape != (N_STEPS, N_DRUMS):
            raise GrooveError(f"{what} must have shape ({N_STEPS}, {N_DRUMS}), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise GrooveError(f"{what} contains NaN or infinity")
        if arr.min() < lo or arr.max() > hi:
            raise GrooveError(
                f"{what} must lie in [{lo}, {hi}], got [{arr.min():.3f}, {arr.max():.3f}]"
            )
        return arr

    # -- construction -----------------------------------------------------------------
    @classmethod
    def empty(cls, tempo: float = 120.0) -> Groove:
        z = np.zeros((N_STEPS, N_DRUMS), np.float32)
        return cls(z, z.copy(), z.copy(), tempo)

    @classmethod
    def from_features(cls, x: np.ndarray, tempo: float = 120.0, threshold: float = 0.5) -> Groove:
        """From a (32, 27) feature array [hits | velocities | offsets] (hits may be probabilities)."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape != (N_STEPS, N_FEATURES):
            raise GrooveError(f"features must have shape ({N_STEPS}, {N_FEATURES}), got {x.shape}")
        hits = (x[:, :N_DRUMS] >= threshold).astype(np.float32)
        vel = np.clip(x[:, N_DRUMS : 2 * N_DRUMS], 0.0, 1.0)
        off = np.clip(x[:, 2 * N_DRUMS :], -0.5, 0.5)
        return cls(hits, vel, off, tempo)

    def to_features(self) -> np.ndarray:
        """(32, 27) float32: [hits | velocities | offsets], the model's input."""
        return np.concatenate([self.hits, self.velocities, self.offsets], axis=1)

    # -- queries ------------------------------------------------------------------------
    @property
    def n_hits(self) -> int:
        return int(self.hits.sum())

    @property
    def seconds_per_step(self) -> float:
        return 60.0 / self.tempo / 4.0

    @property
    def duration(self) -> float:
        """Length of the two bars in seconds."""
        return N_STEPS * self.seconds_per_step

    def notes(self) -> list[tuple[float, int, int]]:
        """(time in steps from the start, drum class, MIDI velocity 1..127), sorted by time."""
        out = []
        for step, drum in zip(*np.nonzero(self.hits)):
            t = float(step) + float(self.offsets[step, drum])
            vel = int(np.clip(round(float(self.velocities[step, drum]) * 127), 1, 127))
            out.append((t, int(drum), vel))
        out.sort()
        return out

    def bar(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = slice(i * STEPS_PER_BAR, (i + 1) * STEPS_PER_BAR)
        return self.hits[s], self.velocities[s], self.offsets[s]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Groove):
            return NotImplemented
        return (
            np.array_equal(self.hits, other.hits)
            and np.allclose(self.velocities, other.velocities)
            and np.allclose(self.offsets, other.offsets)
            and abs(self.tempo - other.tempo) < 1e-6
        )

    # -- rendering -----------------------------------------------------------------------
    def grid(self, title: str | None = None) -> str:
        """Text grid: a row per drum, a column per 16th, velocity as a digit 1-9 ('.' silent)."""
        lines = []
        head = title if title is not None else (self.name or "groove")
        lines.append(f"{head}  ({self.tempo:.0f} BPM, {self.n_hits} hits)")
        ruler = "".join(
            ("|" if s % STEPS_PER_BAR == 0 else "") + ("1234"[s // 4 % 4] if s % 4 == 0 else " ")
            for s in range(N_STEPS)
        )
        lines.append("    " + ruler + "|")
        for d in range(N_DRUMS):
            row = ""
            for s in range(N_STEPS):
                if s % STEPS_PER_BAR == 0:
                    row += "|"
                if self.hits[s, d]:
                    row += str(int(np.clip(np.ceil(self.velocities[s, d] * 9), 1, 9)))
                else:
                    row += "." if s % 4 else ":"
            lines.append(f"{SHORT_NAMES[d]:<3} {row}|")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.grid()

    def __repr__(self) -> str:
        return f"Groove(name={self.name!r}, tempo={self.tempo:.1f}, hits={self.n_hits})"


def stack_features(grooves: list[Groove]) -> np.ndarray:
    """(n, 32, 27) float32 features for a list of grooves."""
    if not grooves:
        return np.zeros((0, N_STEPS, N_FEATURES), np.float32)
    return np.stack([g.to_features() for g in grooves])


__all__ = [
    "BARS",
    "DRUMS",
    "N_DRUMS",
    "N_FEATURES",
    "N_STEPS",
    "STEPS_PER_BAR",
    "Groove",
    "GrooveError",
    "stack_features",
]
