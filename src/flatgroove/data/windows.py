"""`WindowSet`: a dataset of 2-bar windows as arrays, with per-window metadata.

Both the Groove MIDI Dataset and plain MIDI folders build one; training loads its
features as tensors, evaluation and the browser read its metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flatgroove.drums import N_DRUMS
from flatgroove.groove import Groove

# Per-window metadata columns (strings, one array each).
META_COLUMNS = ("file", "split", "drummer", "style", "beat_type")


@dataclass
class WindowSet:
    features: np.ndarray  # (n, 32, 27) float32: hits | velocities | offsets
    tempos: np.ndarray  # (n,) float32 BPM
    starts: np.ndarray  # (n,) int: first bar of the window in its file
    meta: dict[str, np.ndarray]  # META_COLUMNS -> (n,) str arrays
    skipped: list[tuple[str, str]]  # (file, reason) of sources that could not be read

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, mask: np.ndarray) -> WindowSet:
        mask = np.asarray(mask)
        return WindowSet(
            self.features[mask],
            self.tempos[mask],
            self.starts[mask],
            {k: v[mask] for k, v in self.meta.items()},
            self.skipped,
        )

    def filter(
        self,
        split: str | None = None,
        beat_type: str | None = None,
        drummer: str | None = None,
        style: str | None = None,
    ) -> WindowSet:
        """Windows matching every given field (`style` matches the primary style, e.g. 'funk')."""
        mask = np.ones(len(self), bool)
        for col, want in (("split", split), ("beat_type", beat_type), ("drummer", drummer)):
            if want is not None:
                mask &= self.meta[col] == want
        if style is not None:
            primary = np.array([s.split("/")[0].split("-")[0] for s in self.meta["style"]])
            mask &= (primary == style) | (self.meta["style"] == style)
        if mask.all():
            return self  # nothing filtered out: no need to copy the arrays
        return self.subset(mask)

    def groove(self, i: int) -> Groove:
        f = self.features[i]
        return Groove(
            f[:, :N_DRUMS],
            f[:, N_DRUMS : 2 * N_DRUMS],
            f[:, 2 * N_DRUMS :],
            float(self.tempos[i]),
            name=f"{self.meta['file'][i]}@{int(self.starts[i])}",
        )

    def tensors(self):
        """The features as a float32 torch tensor (n, 32, 27), sharing memory."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.features))

    def split_counts(self) -> dict[str, int]:
        names, counts = np.unique(self.meta["split"], return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts)}

    def hits_per_drum(self) -> np.ndarray:
        return self.features[:, :, :N_DRUMS].sum(axis=(0, 1)).astype(np.int64)

    @staticmethod
    def concat(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, str]]],
               skipped: list[tuple[str, str]]) -> WindowSet:
        """From per-file (features, starts, tempos, meta) tuples."""
        from flatgroove.groove import N_FEATURES, N_STEPS

        if not parts:
            return WindowSet(
                np.zeros((0, N_STEPS, N_FEATURES), np.float32),
                np.zeros(0, np.float32),
                np.zeros(0, np.int64),
                {c: np.zeros(0, dtype="<U1") for c in META_COLUMNS},
                skipped,
            )
        feats = np.concatenate([p[0] for p in parts])
        starts = np.concatenate([p[1] for p in parts]).astype(np.int64)
        tempos = np.concatenate([p[2] for p in parts]).astype(np.float32)
        meta = {
            c: np.concatenate([np.full(len(p[0]), p[3].get(c, "")) for p in parts]).astype(str)
            for c in META_COLUMNS
        }
        return WindowSet(feats, tempos, starts, meta, skipped)
