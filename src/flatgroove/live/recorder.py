"""Listening: the drummer's notes, placed on the running bar's 16th grid (DESIGN §3, §6).

A note's beat position comes from the clock at the moment it arrived; it is quantised to
the nearest 16th with its offset kept (in [-0.5, 0.5) of a step), so a note played a hair
before a bar line belongs to the new bar. Two hits of one class in one step: the louder
wins, as in MIDI files. The last two bars are always available as a Groove.
"""

from __future__ import annotations

import math

import numpy as np

from flatgroove.drums import N_DRUMS, pitch_map
from flatgroove.groove import STEPS_PER_BAR, Groove

_BarArrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def _empty_bar() -> _BarArrays:
    z = np.zeros((STEPS_PER_BAR, N_DRUMS), np.float32)
    return z, z.copy(), z.copy()


class Recorder:
    """Per-bar grids of what the drummer played. Only the last `keep_bars` bars are kept
    (memory stays flat over a long session) unless `keep_all` (simulation, for the session
    file)."""

    def __init__(self, drum_map: str = "gm", keep_bars: int = 8, keep_all: bool = False) -> None:
        self.map = pitch_map(drum_map)
        self.keep_bars = keep_bars
        self.keep_all = keep_all
        self.bars: dict[int, _BarArrays] = {}
        self.n_notes = 0
        self.unmapped = 0

    def add(self, beat: float, pitch: int, velocity: int) -> tuple[int, int] | None:
        """Place a note-on at `beat`; returns (bar, step) or None for an unmapped pitch."""
        drum = self.map.get(int(pitch))
        if drum is None:
            self.unmapped += 1
            return None
        step = beat * 4.0
        grid = math.floor(step + 0.5)
        off = float(np.clip(round(step - grid, 6), -0.5, 0.5))  # no float dust
        bar, s = divmod(grid, STEPS_PER_BAR)
        hits, vels, offs = self.bars.setdefault(bar, _empty_bar())
        v = float(np.clip(velocity / 127.0, 0.0, 1.0))
        if not hits[s, drum] or v >= vels[s, drum]:
            hits[s, drum], vels[s, drum], offs[s, drum] = 1.0, v, off
        self.n_notes += 1
        return bar, s

    def bar(self, bar: int) -> _BarArrays:
        return self.bars.get(bar) or _empty_bar()

    def hits_in(self, bar: int) -> int:
        return int(self.bars[bar][0].sum()) if bar in self.bars else 0

    def window(self, end_bar: int, tempo: float, now_beat: float | None = None) -> Groove:
        """The two bars before `end_bar` (bars end_bar-2 and end_bar-1) as a Groove.

        With `now_beat` inside bar end_bar-1 (the engine decides before the bar line), the
        steps of that bar not yet played are filled from the same steps of the bar before:
        drummers mostly repeat, and an empty tail would read as a break."""
        a, b = self.bar(end_bar - 2), self.bar(end_bar - 1)
        hits = np.concatenate([a[0], b[0]])
        vels = np.concatenate([a[1], b[1]])
        offs = np.concatenate([a[2], b[2]])
        if now_beat is not None:
            played = math.floor(now_beat * 4.0 + 0.5) - (end_bar - 1) * STEPS_PER_BAR
            if 0 <= played < STEPS_PER_BAR:
                tail = slice(STEPS_PER_BAR + played, 2 * STEPS_PER_BAR)
                src = slice(played, STEPS_PER_BAR)
                hits[tail], vels[tail], offs[tail] = a[0][src], a[1][src], a[2][src]
        return Groove(hits, vels, offs, float(np.clip(tempo, 20.0, 400.0)),
                      name=f"drummer bars {end_bar - 1}-{end_bar}")

    def prune(self, current_bar: int) -> None:
        if self.keep_all:
            return
        for k in [k for k in self.bars if k < current_bar - self.keep_bars]:
            del self.bars[k]

    def clear(self) -> None:
        self.bars.clear()


def bars_to_grooves(
    bars: dict[int, _BarArrays], n_bars: int, tempo: float, name: str = ""
) -> list[Groove | None]:
    """Bar grids -> one Groove per 2 bars (None where both bars are silent)."""
    out: list[Groove | None] = []
    for k in range(0, n_bars, 2):
        a, b = bars.get(k), bars.get(k + 1)
        if (a is None or not a[0].any()) and (b is None or not b[0].any()):
            out.append(None)
            continue
        a = a or _empty_bar()
        b = b or _empty_bar()
        out.append(Groove(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]),
                          np.concatenate([a[2], b[2]]), float(np.clip(tempo, 20.0, 400.0)),
                          name=f"{name} bars {k + 1}-{k + 2}".strip()))
    return out


__all__ = ["Recorder", "bars_to_grooves"]
