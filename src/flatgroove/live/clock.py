"""Time for the live engine: where "now" comes from, and where the beat is (DESIGN §6).

Two time sources share one interface so that the engine code is the same live and in
simulation: `SystemTime` (the monotonic clock, real sleeping) and `VirtualTime` (a number
the simulation advances). Two beat clocks map time to beats: `InternalClock` (a tempo) and
`MidiClock` (follows an external 24 ppqn MIDI clock, estimating the tempo from the ticks).
Beats count from 0 at the start; bar b spans beats [4b, 4b + 4) (4/4 only).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

PPQN = 24  # MIDI clock ticks per quarter note
BEATS_PER_BAR = 4


class SystemTime:
    """The machine's monotonic clock (the same clock in every process, so a listener in
    another process can compare its timestamps with ours)."""

    virtual = False

    def now(self) -> float:
        return time.monotonic()

    def wait(self, until: float, wake: threading.Event | None = None) -> None:
        """Sleep until `until` or until `wake` is set (new input), whichever is first."""
        delay = until - time.monotonic()
        if delay <= 0:
            return
        if wake is None:
            time.sleep(delay)
        elif wake.wait(delay):
            wake.clear()


class VirtualTime:
    """A clock that only moves when told to: the simulation sets `t`."""

    virtual = True

    def __init__(self, t: float = 0.0) -> None:
        self.t = float(t)

    def now(self) -> float:
        return self.t

    def advance_to(self, t: float) -> None:
        if t > self.t:
            self.t = float(t)


class InternalClock:
    """A steady tempo anchored at (t0, beat0); tempo changes re-anchor at the moment of the
    change, so the beat position is continuous and already scheduled events (kept in beats)
    simply move with the new tempo."""

    source = "internal"

    def __init__(self, bpm: float = 120.0, start: float = 0.0) -> None:
        self._check(bpm)
        self.bpm = float(bpm)
        self.t0 = float(start)
        self.beat0 = 0.0
        self.running = True

    @staticmethod
    def _check(bpm: float) -> None:
        if not (math.isfinite(bpm) and 20.0 <= bpm <= 400.0):
            raise ValueError(f"tempo must be between 20 and 400 BPM, got {bpm}")

    def beat_at(self, t: float) -> float:
        return self.beat0 + (t - self.t0) * self.bpm / 60.0

    def time_at(self, beat: float) -> float:
        return self.t0 + (beat - self.beat0) * 60.0 / self.bpm

    def set_tempo(self, bpm: float, t: float) -> None:
        self._check(bpm)
        self.beat0 = self.beat_at(t)
        self.t0 = float(t)
        self.bpm = float(bpm)

    def check(self, t: float) -> str | None:
        return None  # an internal clock never stalls


class MidiClock:
    """Follows MIDI clock: 24 ticks per quarter note, Start / Stop / Continue.

    The position is the tick count (exact); the tempo is the slope of a least-squares line
    through the last `window` tick times, which averages out the interface's jitter and
    follows a tempo change within about half a beat. Between ticks the position is
    extrapolated, but never past the next tick that has not arrived yet, so a clock that
    slows down or stops cannot make us run ahead by more than one tick (~20 ms at 120 BPM).

    A Start after the clock has run moves on to the next bar line, so bar numbers keep
    increasing over a session (the engine never sees time go backwards).
    """

    source = "external"

    def __init__(self, bpm: float = 120.0, timeout_beats: float = 2.0, window: int = 12) -> None:
        self.period = 60.0 / (bpm * PPQN)  # seconds per tick
        self.timeout_beats = timeout_beats
        self.ticks = -1  # index of the last tick received; the first tick after Start is 0
        self.last_tick: float | None = None
        self.running = False
        self.stalled = False
        self._recent: deque[tuple[int, float]] = deque(maxlen=max(3, window))
        self._started_once = False

    @property
    def bpm(self) -> float:
        return 60.0 / (self.period * PPQN)

    # -- input ----------------------------------------------------------------------------
    def on_message(self, t: float, kind: str) -> str | None:
        """Feed a realtime message ('clock', 'start', 'stop', 'continue'); returns a note
        of what changed for the log, or None."""
        if kind == "clock":
            return self._tick(t)
        if kind == "start":
            if self._started_once:
                # Restart at the next bar line; -1 so the next tick lands on it.
                per_bar = PPQN * BEATS_PER_BAR
                self.ticks = (self.ticks // per_bar + 1) * per_bar - 1
            self._started_once = True
            self.running, self.stalled = True, False
            self.last_tick = t
            self._recent.clear()
            return "clock start"
        if kind == "stop":
            # a Stop after a stall ends the stall too: ticks a stopped device keeps sending
            # must not restart the machine while the DAW stands still
            was = self.running or self.stalled
            self.running, self.stalled = False, False
            return "clock stop" if was else None
        if kind == "continue":
            self.running, self.stalled = True, False
            self.last_tick = t
            self._recent.clear()
            return "clock continue"
        return None

    def _tick(self, t: float) -> str | None:
        note = None
        if not self.running:
            if self.stalled:
                # Ticks came back after a stall: carry on where we were.
                self.running, self.stalled = True, False
                self._recent.clear()
                note = "clock ticks again; continuing"
            else:
                return None  # ticks while stopped only keep a device's tempo alive
        self.ticks += 1
        self.last_tick = t
        self._recent.append((self.ticks, t))
        self._estimate()
        return note

    def _estimate(self) -> None:
        n = len(self._recent)
        if n < 3:
            return
        ks = [k for k, _ in self._recent]
        ts = [t for _, t in self._recent]
        mk, mt = sum(ks) / n, sum(ts) / n
        var = sum((k - mk) ** 2 for k in ks)
        if var <= 0:
            return
        slope = sum((k - mk) * (t - mt) for k, t in zip(ks, ts)) / var
        # A tempo jump leaves old ticks in the window: if the last 3 intervals agree with each
        # other but not with the fit, restart the window from them (follow within 3 ticks).
        last = [ts[i] - ts[i - 1] for i in range(n - 3, n)]
        lo, hi = min(last), max(last)
        if hi > 0 and hi - lo < 0.15 * hi and abs(hi - slope) > 0.15 * slope:
            keep = list(self._recent)[-4:]
            self._recent.clear()
            self._recent.extend(keep)
            slope = (keep[-1][1] - keep[0][1]) / (keep[-1][0] - keep[0][0])
        # A plausible MIDI clock lies between 20 and 400 BPM; ignore absurd estimates
        # (a burst of ticks delivered at once) rather than jump to them.
        if 60.0 / (400.0 * PPQN) <= slope <= 60.0 / (20.0 * PPQN):
            self.period = slope

    # -- queries --------------------------------------------------------------------------
    def beat_at(self, t: float) -> float:
        if self.last_tick is None:
            return self.ticks / PPQN
        frac = (t - self.last_tick) / self.period if self.running else 0.0
        return (self.ticks + min(max(frac, 0.0), 1.0)) / PPQN

    def time_at(self, beat: float) -> float:
        last = self.last_tick if self.last_tick is not None else 0.0
        return last + (beat * PPQN - self.ticks) * self.period

    def check(self, t: float) -> str | None:
        """Detect a clock that stopped without a Stop message (cable pulled, DAW crashed)."""
        if not self.running or self.last_tick is None:
            return None
        silent = t - self.last_tick
        if silent > self.timeout_beats * PPQN * self.period:
            self.running, self.stalled = False, True
            return f"external clock lost: no ticks for {silent:.2f} s (> {self.timeout_beats:g} beats)"
        return None


__all__ = ["BEATS_PER_BAR", "PPQN", "InternalClock", "MidiClock", "SystemTime", "VirtualTime"]
