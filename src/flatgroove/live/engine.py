"""The live engine: listens, decides bar by bar, asks the model off-thread, plays on time.

One engine serves both the live jam and the simulation; only the time source, the ports
and the worker differ. `Engine.step(now)` does everything that is due at `now` and returns
when it next needs to run; the caller sleeps until then (live) or jumps there (simulation).

Per bar b (bar b spans beats [4b, 4b+4)):
  - at beat 4b - decode_lead it is *planned*: the mode decides whether the machine plays,
    and which latent point; a decode request goes to the worker (never blocking);
  - at beat 4b - commit_lead its notes are *committed* to the scheduler: the decoded
    pattern if it is ready, else the previous bar again (and the log says so);
  - at beat 4b it *starts*: the previous bar's log line is complete.

The decode worker (requests, InlineWorker, ThreadWorker) lives in `flatgroove.live.worker`.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mido
import numpy as np

from flatgroove.drums import OUTPUT_PITCHES
from flatgroove.groove import STEPS_PER_BAR, Groove
from flatgroove.live.clock import PPQN, InternalClock, MidiClock
from flatgroove.live.controls import ControlMap, Target
from flatgroove.live.recorder import Recorder
from flatgroove.live.scheduler import Scheduler
from flatgroove.live.worker import (
    DecodeRequest,
    DecodeResult,
    InlineWorker,
    Model,
    Source,
    ThreadWorker,
    run_request,
)

# sampled and captured targets kept of each kind (the oldest gives way to the next)
OWN_TARGETS = 8


# -- what happened -------------------------------------------------------------------------------
@dataclass
class BarLog:
    """One bar of the session: what the machine did and why (bar is 0-based)."""

    bar: int
    mode: str = ""
    a: float = 0.0
    target: str = ""
    bpm: float = 0.0
    plays: bool = False
    role: str = ""  # e.g. "call 1/2", "answer 2/2", "plays along", "morph 3/8 t=0.29", "hold"
    source: str = ""  # "new pattern", "repeat (late)", "repeat (failed)", "silent", ...
    ready_beats: float | None = None  # how long before the bar line its pattern was ready
    drummer_hits: int = 0
    machine_hits: int = 0
    events: list[str] = field(default_factory=list)

    def line(self, events: bool = True) -> str:
        """The bar's status line, then (events) what happened in it, one per line."""
        ready = f"ready {self.ready_beats:4.1f} beats early" if self.ready_beats is not None else ""
        who = f"{self.role:<18}" if self.role else " " * 18
        return (f"bar {self.bar + 1:>3}  {self.mode:<9} a={self.a:.2f} target={self.target:<12} "
                f"{who} drummer {self.drummer_hits:>2} hits  machine {self.machine_hits:>2} hits"
                f"{'  ' + self.source if self.source else ''}"
                f"{'  ' + ready if ready else ''}").rstrip() + "".join(
                    f"\n          - {e}" for e in (self.events if events else ()))


@dataclass
class LogEntry:
    time: float
    bar: int
    text: str


@dataclass
class _Plan:
    bar: int
    mode: str
    a: float
    target: str
    plays: bool
    role: str
    request: int | None = None
    half: int = 0


Input = Any  # ports.MemoryInput / ports.TimedInput: drain(max_n) -> [(t, msg or bytes)]


class Engine:
    """The jam. Build it with its parts; drive it with `step(now)` (see module docstring)."""

    commit_lead = 0.25  # beats: notes go to the scheduler this long before the bar line
    flood_per_bar = 256  # messages of one CC within a bar that count as a flood
    max_batch = 256  # input messages handled per step; the rest wait one step, so a flood
    #                  of messages cannot hold up notes that are due

    def __init__(
        self,
        model: Model,
        out: Any,
        inputs: list[Input],
        controls: ControlMap | None = None,
        clock: InternalClock | MidiClock | None = None,
        worker: InlineWorker | ThreadWorker | None = None,
        bank: list[Target] | None = None,
        end_bar: int | None = None,
        on_log: Callable[[str], None] | None = None,
        on_bar: Callable[[BarLog], None] | None = None,
        keep_history: bool = False,
        target: str | int | None = None,
        rng_seed: int | None = None,
    ) -> None:
        self.model = model
        self.controls = c = controls or ControlMap.load()
        self.clock = clock or InternalClock(120.0)
        self.worker = worker or InlineWorker(model)
        self.inputs = inputs
        self.scheduler = Scheduler(out, channel=c.out_channel, record=keep_history,
                                   on_error=self._send_failed)
        self.recorder = Recorder(c.drum_map, keep_all=keep_history)
        self.keep_history = keep_history
        self.end_bar = end_bar
        self.on_log = on_log
        self.on_bar = on_bar
        self.mode = c.mode
        self.a = c.a
        self.temperature = c.temperature
        self.morph_bars = c.morph_bars
        self.decode_lead = c.decode_lead
        self.note_length = c.note_length
        self.rng = np.random.default_rng(c.seed if rng_seed is None else rng_seed)
        self.bank: list[Target] = list(bank or [])
        self.target: Target = self._initial_target(target)
        self._pending_mode: str | None = None
        self._made: dict[str, int] = {}  # samples and captures made, for their names
        self._own: dict[str, deque[Target]] = {}  # those still in the bank, oldest first
        self._mode_anchor = 0
        self._morph_from: Source | None = None
        self._morph_anchor = 0
        self._morph_restart = self.mode == "morph"
        self.hold = False
        self.last_z: np.ndarray | None = None
        self._last_played: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._last_played_bar: int | None = None
        self._req_id = 0
        self.plans: dict[int, _Plan] = {}
        self.results: dict[int, DecodeResult] = {}
        self.requests: dict[int, DecodeRequest] = {}
        self.ready_margins: list[tuple[int, float, float]] = []  # (bar, seconds, beats) early
        self.next_plan_bar = 0
        self.next_commit_bar = 0
        self.current_bar = -1
        self.bar_logs: dict[int, BarLog] = {}
        self.machine_bars: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.log: list[LogEntry] = []
        self.halted = isinstance(self.clock, MidiClock)  # wait for the external clock's Start
        self.halt_reason = "waiting for MIDI clock Start (or Continue)" if self.halted else ""
        self.stopped = False
        self.stop_reason = ""
        self._stop_request: str | None = None
        self.malformed = 0
        self.unexpected: Counter[str] = Counter()
        self._cc_counts: Counter[tuple[int, int]] = Counter()
        self._logged_bpm = self.clock.bpm
        # (beat, BPM) from the start: the tempo map of the session, for its MIDI file.
        self.tempo_changes: list[tuple[float, float]] = [(0.0, float(self.clock.bpm))]
        self.current_groove: Groove | None = None  # what the machine plays now (for the view)
        self.n_steps = 0
        self.n_in = 0  # input messages handled
        self._finished = -1  # last bar whose log is complete
        self.lock = threading.Lock()  # guards what the view reads

    # -- set-up ---------------------------------------------------------------------------------
    def _initial_target(self, target: str | int | None) -> Target:
        if target is not None:
            t = self._find_target(target)
            if t is None:
                from flatgroove.live.controls import load_target

                t = load_target(str(target), self.controls.drum_map)
                self.bank.append(t)
            return t
        if self.bank:
            return self.bank[0]
        return Target("origin", z=np.zeros(self.model.latent_dim, np.float32))

    def _find_target(self, spec: str | int) -> Target | None:
        if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
            i = int(spec)
            return self.bank[i] if 0 <= i < len(self.bank) else None
        for t in self.bank:
            if t.name.lower() == str(spec).lower():
                return t
        return None

    # -- logging ----------------------------------------------------------------------------------
    def say(self, text: str, now: float, bar: int | None = None) -> None:
        b = self.current_bar if bar is None else bar
        if self.end_bar is not None:
            b = min(b, self.end_bar - 1)
        self.log.append(LogEntry(now, b, text))
        self._bar_log(max(b, 0)).events.append(text)
        if self.on_log is not None:
            self.on_log(f"bar {b + 1}: {text}" if b >= 0 else text)

    def _bar_log(self, bar: int) -> BarLog:
        if bar not in self.bar_logs:
            self.bar_logs[bar] = BarLog(bar)
        return self.bar_logs[bar]

    # -- the step ------------------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """Thread-safe: ask the engine to stop cleanly at its next step (port monitor, UI)."""
        self._stop_request = reason

    def _send_failed(self, e: Exception) -> None:
        self._stop_request = f"sending to the output port failed ({e})"

    def step(self, now: float) -> float:
        """Do what is due at `now`; returns the time the engine next needs to run."""
        if self.stopped:
            return math.inf
        self.n_steps += 1
        if self._stop_request is not None:
            self.stop(now, self._stop_request)
            return math.inf
        more = self._drain(now)
        self._poll_worker(now)
        note = self.clock.check(now)
        if note:
            self._halt(now, note)
        if not self.clock.running:
            if not self.halted:
                self._halt(now, "clock stopped")
            return now if more else now + 0.05
        if self.halted:
            self._resume(now)
        beat = self.clock.beat_at(now)
        self._catch_up(now, beat)
        end = self.end_bar if self.end_bar is not None else math.inf
        while self.current_bar + 1 <= beat / 4 and self.current_bar + 1 <= end:
            self._bar_start(self.current_bar + 1, now)
        while self.next_plan_bar < end and beat >= 4 * self.next_plan_bar - self.decode_lead:
            self._plan(self.next_plan_bar, now, beat)
            self.next_plan_bar += 1
        while self.next_commit_bar < end and beat >= 4 * self.next_commit_bar - self.commit_lead:
            self._commit(self.next_commit_bar, now)
            self.next_commit_bar += 1
        cap = self._cap_beat()
        self.scheduler.dispatch(now, self.clock, cap)
        if self.end_bar is not None and self.current_bar >= self.end_bar and not len(self.scheduler):
            self.stop(now, "end of session")
            return math.inf
        return now if more else self._next_wake(now, cap)

    def _cap_beat(self) -> float | None:
        if isinstance(self.clock, MidiClock):
            return (self.clock.ticks + 1) / PPQN
        return None

    def _next_wake(self, now: float, cap: float | None) -> float:
        t = now + 0.05  # check in regularly anyway (stall detection, port monitor, view)
        nb = self.scheduler.next_beat()
        if nb is not None and (cap is None or nb <= cap + 1e-9):
            t = min(t, self.clock.time_at(nb))
        end = self.end_bar if self.end_bar is not None else math.inf
        for bar, beat in ((self.next_plan_bar, 4 * self.next_plan_bar - self.decode_lead),
                          (self.next_commit_bar, 4 * self.next_commit_bar - self.commit_lead),
                          (self.current_bar + 1 - 1e-9, 4 * (self.current_bar + 1))):
            if bar < end and (cap is None or beat <= cap):
                t = min(t, self.clock.time_at(beat))
        if isinstance(self.clock, MidiClock) and self.clock.last_tick is not None:
            t = min(t, self.clock.last_tick + self.clock.timeout_beats * PPQN * self.clock.period
                    + 1e-6)
        return max(t, now + 1e-6)

    # -- input -----------------------------------------------------------------------------------------
    def _drain(self, now: float) -> bool:
        """Handle waiting input; returns True if more is waiting than one batch."""
        budget = self.max_batch
        coalesced: dict[str, Any] = {}
        more = False
        for port in self.inputs:
            items = port.drain(budget)
            budget -= len(items)
            clock_ok = getattr(port, "clock_source", True)
            for t, item in items:
                self._handle(t, item, coalesced, clock_ok)
            if budget <= 0:
                more = True
                break
        for kind, value in coalesced.items():  # CCs: only the last value of a batch counts
            self.apply(kind, value, now)
        return more and any(p.pending() for p in self.inputs)

    def _handle(self, t: float, item: Any, coalesced: dict[str, Any], clock_ok: bool = True) -> None:
        self.n_in += 1
        if isinstance(item, mido.Message):
            msg = item
        else:
            try:
                msg = mido.Message.from_bytes(list(item))
            except (ValueError, TypeError, IndexError):
                self.malformed += 1
                return
        kind = msg.type
        if kind in ("clock", "start", "stop", "continue"):
            if isinstance(self.clock, MidiClock) and clock_ok:
                note = self.clock.on_message(t, kind)
                if note and kind == "stop":
                    self._halt(t, "MIDI clock Stop")
                elif note:
                    self.say(note, t)
            return  # an internal clock ignores any clock; a MIDI clock follows --clock's port only
        if kind in ("active_sensing", "songpos", "song_select", "tune_request", "reset"):
            return  # harmless housekeeping some devices send
        if kind in ("note_on", "note_off", "control_change", "program_change"):
            acts = self.controls.actions(msg)
            if acts:
                for a in acts:
                    if msg.type == "control_change":
                        self._cc_counts[(msg.channel, msg.control)] += 1
                        coalesced[a[0]] = a[1]
                    else:
                        self.apply(a[0], a[1] if len(a) > 1 else None, t)
                return
            drums = self.controls.drum_channel is None or msg.channel == self.controls.drum_channel
            if kind == "note_on" and msg.velocity > 0 and drums and not self.controls.claims(msg):
                placed = (self.recorder.add(self.clock.beat_at(t), msg.note, msg.velocity)
                          if self.clock.running else True)
                if placed is None:
                    self.unexpected[f"unmapped drum note {msg.note}"] += 1
                return
            if drums or self.controls.claims(msg):
                return  # note-offs, hi-hat pedal CCs: part of drumming, not for us
        self.unexpected[kind] += 1

    def apply(self, kind: str, value: Any, now: float) -> None:
        """Apply one control action (see ControlMap.actions; the simulation also uses
        "bpm" and "morph_bars")."""
        plan_bar = self.next_plan_bar + 1  # 1-based bar from which a change is heard
        if kind == "a":
            self.a = float(np.clip(value, 0.0, 1.0))
        elif kind == "temperature":
            self.temperature = float(value)
        elif kind == "target" or kind == "step":
            if kind == "step":
                i = self.bank.index(self.target) if self.target in self.bank else -1
                t = self.bank[(i + value) % len(self.bank)] if self.bank else None
            else:
                t = self._find_target(value)
            if t is None:
                self.say(f"no target {value!r} in the bank ({len(self.bank)} slots)", now)
                return
            self._set_target(t, now)
        elif kind == "capture":
            end = self.current_bar  # the last two complete bars
            g = self.recorder.window(end, self.clock.bpm)
            if not g.n_hits:
                self.say("capture: the drummer's last 2 bars are silent; nothing captured", now)
                return
            g.name = f"capture {self._count('capture')}"
            t = Target(g.name, groove=g)
            self._keep_own(t, "capture")
            self.say(f"captured bars {max(end - 1, 1)}-{max(end, 1)} as '{t.name}' "
                     f"({g.n_hits} hits)", now)
            self._set_target(t, now)
        elif kind == "sample":
            z = self.rng.standard_normal(self.model.latent_dim).astype(np.float32)
            t = Target(f"sample {self._count('sample')}", z=z * np.float32(self.temperature))
            self._keep_own(t, "sample")
            self.say(f"sampled target '{t.name}' (temperature {self.temperature:.2f})", now)
            self._set_target(t, now)
        elif kind == "mode":
            if value != self.mode or value == "morph":
                self._pending_mode = value
                self.say(f"mode -> {value} from bar {plan_bar}", now)
            elif self._pending_mode is not None:
                # back to the mode that plays now before the change took effect: cancel it
                self._pending_mode = None
                self.say(f"mode stays {value}", now)
        elif kind == "hold":
            self.hold = not self.hold
            if self.hold:
                n = self.scheduler.all_notes_off(now)
                # bars already planned (within decode_lead of their bar line) fall silent too,
                # so a hold silences the next bar whenever in the bar it is pressed
                for b, plan in self.plans.items():
                    if b >= self.next_commit_bar and plan.plays:
                        plan.plays, plan.role = False, "hold"
                        log = self._bar_log(b)
                        log.role, log.plays = plan.role, plan.plays
                self.say(f"hold: machine silent ({n} notes ended)", now)
            else:
                self.say(f"hold released: machine plays from bar {plan_bar}", now)
        elif kind == "bpm":
            if isinstance(self.clock, InternalClock):
                old = self.clock.bpm
                self.clock.set_tempo(float(value), now)
                self.tempo_changes.append((max(0.0, self.clock.beat_at(now)), float(value)))
                self.say(f"tempo {old:.1f} -> {float(value):.1f} BPM", now)
        elif kind == "morph_bars":
            self.morph_bars = int(value)

    def _count(self, kind: str) -> int:
        self._made[kind] = self._made.get(kind, 0) + 1
        return self._made[kind]

    def _keep_own(self, t: Target, kind: str) -> None:
        """Add a sampled or captured target; past OWN_TARGETS of a kind the oldest gives way
        (its slot, so other targets keep their numbers): a long jam's bank stays small."""
        own = self._own.setdefault(kind, deque())
        if len(own) >= OWN_TARGETS:
            old = own.popleft()
            i = next((i for i, b in enumerate(self.bank) if b is old), None)
            if i is not None:
                self.bank[i] = t
            else:
                self.bank.append(t)
        else:
            self.bank.append(t)
        own.append(t)

    def _set_target(self, t: Target, now: float) -> None:
        self.target = t
        self.say(f"target -> {t.name} from bar {self.next_plan_bar + 1}", now)
        if self.mode == "morph":
            self._morph_restart = True

    def _poll_worker(self, now: float) -> None:
        for r in self.worker.poll(now):
            self.results[r.id] = r
            if r.error is None:
                bar_line = self.clock.time_at(4 * r.bar)
                early = bar_line - r.ready
                self.ready_margins.append((r.bar, early, early * self.clock.bpm / 60.0))
        # Old results are not needed once their bars have been committed.
        for k in [k for k, r in self.results.items() if r.bar < self.next_commit_bar - 2]:
            del self.results[k]
            self.requests.pop(k, None)

    # -- clock states --------------------------------------------------------------------------------------
    def _halt(self, now: float, why: str) -> None:
        if self.halted:
            return
        self.halted = True
        self.halt_reason = why
        n = self.scheduler.all_notes_off(now)
        self.say(f"{why}; holding ({n} notes ended, all notes off)", now)

    def _resume(self, now: float) -> None:
        self.halted = False
        beat = self.clock.beat_at(now)
        bar = math.floor(beat / 4 + 1e-9)
        first = bar + 1 if beat - 4 * bar > 1e-6 else bar
        first = max(first, self.current_bar + 1)
        self.current_bar = first - 1
        # Bars planned before the halt lost their notes with it: plan them again.
        self.next_plan_bar = self.next_commit_bar = first
        self.say(f"clock running ({self.clock.source}, {self.clock.bpm:.1f} BPM); "
                 f"machine from bar {first + 1}", now, bar=max(first - 1, 0))

    def _catch_up(self, now: float, beat: float) -> None:
        """After a stall of the process itself (suspend, debugger), skip rather than replay."""
        behind = beat - (4 * self.next_commit_bar - self.commit_lead)
        if behind > 4:
            first = math.floor(beat / 4) + 1
            self.say(f"engine fell {behind / 4:.1f} bars behind; skipping to bar {first + 1}", now)
            self.scheduler.all_notes_off(now)
            self.current_bar = first - 1
            self.next_plan_bar = self.next_commit_bar = first

    # -- bars ------------------------------------------------------------------------------------------------
    def _bar_start(self, bar: int, now: float) -> None:
        self.current_bar = bar
        if isinstance(self.clock, MidiClock) and abs(self.clock.bpm / self._logged_bpm - 1) > 0.015:
            self.say(f"tempo {self._logged_bpm:.1f} -> {self.clock.bpm:.1f} BPM (external clock)",
                     now, bar)
            self._logged_bpm = self.clock.bpm
            self.tempo_changes.append((4.0 * bar, float(self.clock.bpm)))
        prev = bar - 1
        if prev >= 0:
            self._finish_bar(prev, now)
        self.recorder.prune(bar)
        with self.lock:
            p = self.plans.get(bar)
            r = self.results.get(p.request) if p and p.request is not None else None
            self.current_groove = r.groove if r is not None and p is not None and p.plays else None
        for k in [k for k in self.plans if k < bar - 4]:
            del self.plans[k]
        if not self.keep_history:  # a long live session keeps only recent history
            for k in [k for k in self.bar_logs if k < bar - 16]:
                del self.bar_logs[k]
            if len(self.log) > 1000:
                del self.log[:-500]
            if len(self.ready_margins) > 1000:
                del self.ready_margins[:-500]

    def _finish_bar(self, bar: int, now: float) -> None:
        if bar <= self._finished:
            return
        self._finished = bar
        log = self._bar_log(bar)
        log.drummer_hits = self.recorder.hits_in(bar)
        # said like every other event (the bar's log, the session log and on_log), so a
        # listener to on_log has every event once and can print bar lines without them
        for (ch, cc), n in sorted(self._cc_counts.items()):
            if n >= self.flood_per_bar:
                self.say(f"CC {cc} (channel {ch + 1}) flood: {n} messages in the bar, "
                         f"coalesced to the last value (a={self.a:.2f})", now, bar)
        self._cc_counts.clear()
        if self.unexpected:
            what = ", ".join(f"{k} x{n}" for k, n in sorted(self.unexpected.items()))
            self.say(f"ignored unexpected messages: {what}", now, bar)
            self.unexpected.clear()
        if self.malformed:
            self.say(f"ignored {self.malformed} malformed messages", now, bar)
            self.malformed = 0
        if self.scheduler.dropped_late:
            self.say(f"dropped {self.scheduler.dropped_late} notes that were too late", now, bar)
            self.scheduler.dropped_late = 0
        if self.on_bar is not None:
            self.on_bar(log)

    def finish(self, now: float) -> None:
        """Close the last bar's log (simulation end)."""
        last = self.current_bar if self.end_bar is None else min(self.current_bar, self.end_bar - 1)
        if last >= 0:
            self._finish_bar(last, now)

    def _plan(self, bar: int, now: float, beat: float) -> None:
        if self._pending_mode is not None:
            self.mode, self._pending_mode = self._pending_mode, None
            self._mode_anchor = bar
            if self.mode == "morph":
                self._morph_restart = True
        mode, a, target = self.mode, self.a, self.target
        plan = _Plan(bar, mode, a, target.name, plays=True, role="")
        tempo = float(np.clip(self.clock.bpm, 20.0, 400.0))

        def drummer() -> Source:
            return Source(1.0, groove=self.recorder.window(bar, tempo, beat))

        def tgt(w: float) -> Source:
            return Source(w, groove=target.groove, z=target.z, key=target.key)

        if self.hold:
            plan.plays, plan.role = False, "hold"
        elif mode == "answer":
            pos = (bar - self._mode_anchor) % 4
            if pos < 2:
                plan.plays, plan.role = False, f"call {pos + 1}/2"
            else:
                prev = self.plans.get(bar - 1)
                if pos == 3 and prev is not None and prev.request is not None and prev.mode == "answer":
                    plan.request, plan.half = prev.request, 1
                    plan.a, plan.target = prev.a, prev.target
                else:
                    d = drummer()
                    d.weight = 1.0 - a
                    plan.request = self._submit(bar, [d, tgt(a)], tempo, now)
                    plan.half = 0 if pos == 2 else 1
                plan.role = f"answer {pos - 1}/2"
        elif mode == "accompany":
            d = drummer()
            d.weight = 1.0 - a
            plan.request = self._submit(bar, [d, tgt(a)], tempo, now)
            plan.role = "plays along"
        else:  # morph
            if self._morph_restart or self._morph_from is None:
                self._morph_restart = False
                self._morph_anchor = bar
                self._morph_from = (Source(1.0, z=self.last_z.copy()) if self.last_z is not None
                                    else drummer())
            k = bar - self._morph_anchor
            n = self.morph_bars
            t = 1.0 if n <= 1 else min(1.0, k / (n - 1))
            src = self._morph_from
            plan.request = self._submit(
                bar, [Source(1.0 - t, groove=src.groove, z=src.z), tgt(t)], tempo, now)
            plan.half = k % 2
            plan.a = t
            plan.role = f"morph {min(k + 1, n)}/{n} t={t:.2f}"
        self.plans[bar] = plan
        log = self._bar_log(bar)
        log.mode, log.a, log.target, log.bpm = plan.mode, plan.a, plan.target, tempo
        log.role, log.plays = plan.role, plan.plays

    def _submit(self, bar: int, sources: list[Source], tempo: float, now: float) -> int:
        keep = [s for s in sources if s.weight != 0.0] or sources[:1]
        self._req_id += 1
        req = DecodeRequest(self._req_id, bar, keep, tempo, now)
        self.requests[req.id] = req
        self.worker.submit(req)
        return req.id

    def _commit(self, bar: int, now: float) -> None:
        plan = self.plans.get(bar)
        log = self._bar_log(bar)
        if plan is None or not plan.plays:
            log.source = "silent"
            self._record_machine(bar, None)
            return
        self._poll_worker(now)  # a result may have come in since this step began
        res = self.results.get(plan.request) if plan.request is not None else None
        if res is not None and res.groove is not None:
            s = slice(plan.half * STEPS_PER_BAR, (plan.half + 1) * STEPS_PER_BAR)
            arrays = (res.groove.hits[s], res.groove.velocities[s], res.groove.offsets[s])
            self.last_z = res.z
            fresh = self.plans.get(bar - 1) is None or self.plans[bar - 1].request != plan.request
            log.source = "new pattern" if fresh else "pattern, 2nd bar"
            if fresh:
                early = self.clock.time_at(4 * bar) - res.ready
                log.ready_beats = early * self.clock.bpm / 60.0
        else:
            why = "failed" if res is not None else "late"
            if res is not None:
                self.say(f"decode failed ({res.error}); repeating the previous bar", now, bar)
            elif self._last_played is not None:
                self.say(f"pattern for bar {bar + 1} not ready at the bar line; "
                         f"repeating bar {self._last_played_bar + 1}", now, bar)  # type: ignore[operator]
            else:
                self.say(f"pattern for bar {bar + 1} not ready; machine silent", now, bar)
            arrays = self._last_played
            log.source = f"repeat ({why})" if arrays is not None else f"silent ({why})"
            if arrays is None:
                self._record_machine(bar, None)
                return
        self._schedule_bar(bar, arrays)
        self._last_played = arrays
        self._last_played_bar = bar
        log.machine_hits = int(arrays[0].sum())
        self._record_machine(bar, arrays)

    def _schedule_bar(self, bar: int, arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        hits, vels, offs = arrays
        for step, drum in zip(*np.nonzero(hits)):
            t_steps = float(step) + float(offs[step, drum])
            vel = int(np.clip(round(float(vels[step, drum]) * 127), 1, 127))
            self.scheduler.note(4 * bar + t_steps / 4.0, OUTPUT_PITCHES[drum], vel, self.note_length)

    def _record_machine(self, bar: int, arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> None:
        if self.keep_history and arrays is not None:
            self.machine_bars[bar] = (arrays[0].copy(), arrays[1].copy(), arrays[2].copy())

    # -- stopping ------------------------------------------------------------------------------------------------
    def stop(self, now: float, reason: str) -> None:
        """Stop cleanly: every sounding note ended, CC 123, then no more output."""
        if self.stopped:
            return
        n = self.scheduler.all_notes_off(now)
        self.stopped = True
        self.stop_reason = reason
        self.say(f"stopped: {reason} ({n} notes ended, all notes off)", now)

    def close(self) -> None:
        self.worker.close()

    # -- for the view -----------------------------------------------------------------------------------------------
    def snapshot(self, now: float) -> dict[str, Any]:
        beat = self.clock.beat_at(now) if self.clock.running else float("nan")
        with self.lock:
            machine = self.current_groove
        end = self.current_bar + 1 if self.current_bar >= 1 else 2
        return {
            "bar": self.current_bar,
            "beat": beat,
            "bpm": self.clock.bpm,
            "clock": self.clock.source,
            "running": self.clock.running and not self.halted,
            "halt": self.halt_reason if self.halted else "",
            "mode": self.mode,
            "pending_mode": self._pending_mode,
            "a": self.a,
            "target": self.target.name,
            "hold": self.hold,
            "ready": self.ready_margins[-1] if self.ready_margins else None,
            "drummer": self.recorder.window(end, self.clock.bpm),
            "machine": machine,
            "plan": self.plans.get(self.current_bar),
            "log": [e.text for e in self.log[-6:]],
            "stopped": self.stop_reason if self.stopped else "",
        }


__all__ = [
    "BarLog",
    "DecodeRequest",
    "DecodeResult",
    "Engine",
    "InlineWorker",
    "LogEntry",
    "Model",
    "Source",
    "ThreadWorker",
    "run_request",
]
