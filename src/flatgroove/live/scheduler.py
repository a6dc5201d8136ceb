"""The output side: notes kept in beats, sent on time, never left hanging.

Events are queued by beat position, not by time, and turned into a time only when they are
due (`clock.time_at(beat)`), so a tempo change or an external clock that drifts moves the
notes that are already queued. Every note-on queues its note-off; a second note-on of a
sounding pitch first ends the old note; `all_notes_off` ends everything that sounds and
sends CC 123, used on stop, on error and on Ctrl-C.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import mido

DRUM_CHANNEL = 9  # MIDI channel 10, zero-based


class Clock(Protocol):
    def time_at(self, beat: float) -> float: ...


class Output(Protocol):
    def send(self, msg: mido.Message) -> None: ...


@dataclass
class Sent:
    """One message that went out: when, when it should have, and on which beat."""

    time: float  # when it was sent (the time source's clock)
    scheduled: float  # when it was due (same clock); equal to `time` for immediate messages
    beat: float  # its beat position (nan for immediate messages)
    message: mido.Message


class Scheduler:
    """A priority queue of note events in beats, dispatched against a clock.

    `late_drop_s`: a note-on more than this late is dropped (its note-off too) instead of
    played out of time; note-offs are always sent, however late.
    """

    def __init__(
        self,
        out: Output,
        channel: int = DRUM_CHANNEL,
        late_drop_s: float = 0.05,
        record: bool = True,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.out = out
        self.channel = channel
        self.late_drop_s = late_drop_s
        self.record = record
        self.on_error = on_error
        self._heap: list[tuple[float, int, int, int, int]] = []  # beat, seq, kind, pitch, vel
        self._seq = 0
        self.sounding: dict[int, int] = {}  # pitch -> seq of the note-on that sounds
        self._skip: set[int] = set()  # note-ons dropped as too late: skip their note-offs
        self.sent: list[Sent] = []
        self.dropped_late = 0
        self.n_on = 0
        self.n_off = 0

    # -- queueing ---------------------------------------------------------------------------
    def note(self, beat: float, pitch: int, velocity: int, length_beats: float) -> None:
        """Queue a note: its note-on at `beat`, its note-off `length_beats` later."""
        self._seq += 1
        on_id = self._seq
        heapq.heappush(self._heap, (beat, on_id, 1, pitch, velocity))
        # Note-offs sort after note-ons at equal beats via their larger seq; they carry the
        # seq of their note-on so a retriggered pitch is not cut by the older note's off.
        self._seq += 1
        heapq.heappush(self._heap, (beat + length_beats, self._seq, 0, pitch, on_id))

    def clear(self) -> int:
        """Forget every queued event (sounding notes keep sounding: call all_notes_off)."""
        n = sum(1 for e in self._heap if e[2] == 1)
        self._heap.clear()
        return n

    def __len__(self) -> int:
        return len(self._heap)

    def next_beat(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    # -- sending ------------------------------------------------------------------------------
    def _send(self, msg: mido.Message, now: float, scheduled: float, beat: float) -> None:
        try:
            self.out.send(msg)
        except Exception as e:  # a port that vanished: stop cleanly, say why
            if self.on_error is not None:
                self.on_error(e)
            else:
                raise
        if self.record:
            self.sent.append(Sent(now, scheduled, beat, msg))

    def _off(self, pitch: int, now: float, scheduled: float, beat: float) -> None:
        self.sounding.pop(pitch, None)
        self.n_off += 1
        self._send(
            mido.Message("note_off", channel=self.channel, note=pitch, velocity=0), now, scheduled, beat
        )

    def dispatch(self, now: float, clock: Clock, until_beat: float | None = None) -> int:
        """Send every event whose time has come; returns how many were sent.

        `until_beat` caps what may go out: an external clock's position is only known up to
        its next tick, so nothing beyond it is sent on a prediction alone."""
        n = 0
        while self._heap:
            beat, seq, kind, pitch, val = self._heap[0]
            t = clock.time_at(beat)
            if t > now + 1e-9 or (until_beat is not None and beat > until_beat + 1e-9):
                break
            heapq.heappop(self._heap)
            if kind == 1:
                if now - t > self.late_drop_s:
                    self.dropped_late += 1
                    self._skip.add(seq)
                    continue
                if pitch in self.sounding:  # retrigger: end the old note first
                    self._off(pitch, now, t, beat)
                self.sounding[pitch] = seq
                self.n_on += 1
                msg = mido.Message("note_on", channel=self.channel, note=pitch, velocity=val)
                self._send(msg, now, t, beat)
            else:
                if val in self._skip:
                    self._skip.discard(val)
                    continue
                if self.sounding.get(pitch) != val:
                    continue  # already ended by a retrigger or all_notes_off
                self._off(pitch, now, t, beat)
            n += 1
        return n

    def all_notes_off(self, now: float) -> int:
        """End every sounding note now (explicit note-offs), then CC 123 on the channel, and
        drop everything queued. Returns how many notes were sounding."""
        self.clear()
        self._skip.clear()
        n = len(self.sounding)
        for pitch in sorted(self.sounding):
            self._off(pitch, now, now, float("nan"))
        self._send(
            mido.Message("control_change", channel=self.channel, control=123, value=0),
            now, now, float("nan"),
        )
        return n


__all__ = ["DRUM_CHANNEL", "Scheduler", "Sent"]
