"""The jam without hardware: the same engine on a virtual clock with in-memory ports.

A drummer (a MIDI performance, a groove, or a built-in name) is played into the engine's
input, a script of control changes is applied bar by bar, and everything the machine sends
is kept with its virtual time. Nothing depends on the wall clock, so a session is
reproducible to the message: it is the demo, and it is what the tests drive.
"""

from __future__ import annotations

import heapq
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mido
import numpy as np

from flatgroove.groove import STEPS_PER_BAR, Groove
from flatgroove.live.clock import InternalClock, VirtualTime
from flatgroove.live.controls import (
    MAX_SESSION_BARS,
    Change,
    ControlMap,
    Script,
    Target,
    load_bank,
    load_target,
)
from flatgroove.live.controls import settings as check_settings
from flatgroove.live.engine import BarLog, Engine, InlineWorker, LogEntry, Model
from flatgroove.live.ports import MemoryInput, MemoryOutput
from flatgroove.live.recorder import bars_to_grooves
from flatgroove.live.scheduler import Sent


class VirtualRunner:
    """Drives an engine on virtual time: it jumps straight to the next moment anything
    happens (an engine wake-up, an input message, a decode becoming ready)."""

    def __init__(self, engine: Engine, vt: VirtualTime, port: MemoryInput) -> None:
        self.engine, self.vt, self.port = engine, vt, port
        self._by_time: list[tuple[float, int, Any]] = []
        self._by_beat: list[tuple[float, int, Any]] = []
        self._seq = 0

    def at_time(self, t: float, item: Any) -> None:
        """Feed `item` (a mido Message, raw bytes, or a callable(now)) at time t."""
        self._seq += 1
        heapq.heappush(self._by_time, (t, self._seq, item))

    def at_beat(self, beat: float, item: Any) -> None:
        """Feed `item` at a beat position: its time follows the engine's clock, tempo
        changes included (the drummer keeps to the beat)."""
        self._seq += 1
        heapq.heappush(self._by_beat, (beat, self._seq, item))

    def _deliver(self, item: Any, now: float) -> None:
        if callable(item):
            item(now)
        else:
            self.port.feed(now, item)

    def run(self, until: float = math.inf, max_steps: int = 10_000_000) -> None:
        e = self.engine
        for _ in range(max_steps):
            now = self.vt.now()
            wake = e.step(now)
            if e.stopped or now >= until:
                return
            cands = [wake, until]
            if self._by_time:
                cands.append(self._by_time[0][0])
            if self._by_beat and e.clock.running:
                cands.append(e.clock.time_at(self._by_beat[0][0]))
            r = e.worker.next_ready()
            if r is not None:
                cands.append(r)
            t = min(cands)
            if t == math.inf:
                return
            self.vt.advance_to(t)
            now = self.vt.now()
            while self._by_time and self._by_time[0][0] <= now + 1e-12:
                self._deliver(heapq.heappop(self._by_time)[2], now)
            while (self._by_beat and e.clock.running
                   and e.clock.time_at(self._by_beat[0][0]) <= now + 1e-12):
                self._deliver(heapq.heappop(self._by_beat)[2], now)
        raise RuntimeError("simulation did not finish (engine never stopped)")


@dataclass
class SessionResult:
    """What happened in a simulated session.

    bars: one BarLog per bar (mode, a, target, role, hits, how early the pattern was ready,
    events); drummer / machine: one Groove per 2 bars as heard / as played (None: silent);
    sent: every MIDI message the machine sent, with its virtual time and due time;
    start: the virtual time of bar 1's downbeat."""

    bars: list[BarLog]
    drummer: list[Groove | None]
    machine: list[Groove | None]
    sent: list[Sent]
    log: list[LogEntry]
    tempo: float
    start: float
    n_bars: int
    controls: ControlMap
    ready_margins: list[tuple[int, float, float]] = field(default_factory=list)
    tempo_changes: list[tuple[float, float]] = field(default_factory=list)  # (beat, BPM)

    @property
    def seconds_per_bar(self) -> float:
        return 4 * 60.0 / self.tempo

    def note_events(self) -> list[tuple[float, str, int, int]]:
        """(time, 'on' | 'off', pitch, velocity) of every note message sent."""
        out = []
        for s in self.sent:
            m = s.message
            if m.type == "note_on" and m.velocity > 0:
                out.append((s.time, "on", m.note, m.velocity))
            elif m.type in ("note_off", "note_on"):
                out.append((s.time, "off", m.note, 0))
        return out

    def hanging_notes(self) -> list[int]:
        """Pitches left sounding at the end (should be none)."""
        on: set[int] = set()
        for _, kind, pitch, _ in self.note_events():
            if kind == "on":
                on.add(pitch)
            else:
                on.discard(pitch)
        return sorted(on)

    def annotations(self) -> dict[int, str]:
        """Bar (0-based) -> what changed there, for the piano roll."""
        out: dict[int, str] = {}
        prev: BarLog | None = None
        for b in self.bars:
            bits = []
            if prev is None or b.mode != prev.mode:
                bits.append(b.mode)
            if b.target and (prev is None or b.target != prev.target):
                bits.append(f"→ {b.target}")
            if b.mode != "morph" and (prev is None or abs(b.a - prev.a) > 0.04):
                bits.append(f"a={b.a:.2f}")
            if any("not ready" in e or "failed" in e for e in b.events):
                bits.append("late")
            if bits:
                out[b.bar] = " ".join(bits)
            prev = b
        return out

    def summary(self) -> str:
        lines = [b.line() for b in self.bars]
        n_on = sum(1 for e in self.note_events() if e[1] == "on")
        early = [m[2] for m in self.ready_margins]
        lines.append(
            f"{self.n_bars} bars at {self._tempo_text()} BPM; machine sent {n_on} notes"
            + (f"; patterns ready {min(early):.2f}-{max(early):.2f} beats before their bar line"
               if early else "")
            + (f"; HANGING NOTES {self.hanging_notes()}" if self.hanging_notes() else "")
        )
        return "\n".join(lines)

    def _tempo_text(self) -> str:
        bpms = [b for _, b in self.tempo_changes] or [self.tempo]
        lo, hi = min(bpms), max(bpms)
        return f"{lo:.1f}" if hi - lo < 0.05 else f"{lo:.1f}-{hi:.1f}"

    # -- files ----------------------------------------------------------------------------------
    def write_midi(self, path: str | os.PathLike) -> Path:
        """Drummer and machine on two tracks (channel 10), 2-bar slots, None = rest."""
        from flatgroove.midi import write_midi

        n = max(len(self.drummer), len(self.machine))
        empty = Groove.empty(self.tempo)
        drummer = self.drummer + [None] * (n - len(self.drummer))
        machine = self.machine + [None] * (n - len(self.machine))
        # write_midi skips None slots; a track must have one groove for its type, so an
        # all-silent lane gets an empty groove.
        parts = [drummer if any(drummer) else [empty], machine if any(machine) else [empty]]
        # The session's tempo changes (script or knob) go into the file's tempo map.
        tempo_map = self.tempo_changes or [(0.0, self.tempo)]
        return write_midi(parts, path, tempo_map=tempo_map, track_names=["drummer", "machine"])

    def write_wav(self, path: str | os.PathLike, midi_path: str | os.PathLike | None = None,
                  soundfont: str | os.PathLike | None = None) -> Path:
        """Render the session's MIDI (so the same tempo map) on the built-in kit, or with a
        SoundFont (a .sf2 path or 'gm'; flatgroove.audio)."""
        from flatgroove.audio import render_to_wav

        tmp = None
        if midi_path is None:  # a private temporary file (never a name beside the user's)
            fd, name = tempfile.mkstemp(suffix=".mid")
            os.close(fd)
            tmp = Path(name)
            midi_path = self.write_midi(tmp)
        try:
            return render_to_wav(midi_path, path, soundfont=soundfont)
        finally:
            if tmp is not None and tmp.exists():
                tmp.unlink()

    def write_png(self, path: str | os.PathLike, title: str | None = None) -> Path:
        from flatgroove.plots import session_roll

        return session_roll(self.drummer, self.machine, path, self.annotations(), title=title)


def _drummer_events(
    drummer: Any, bars: int | None, drum_map: str
) -> tuple[list[tuple[float, int, int]], int, float | None]:
    """(beat, pitch, velocity) note-ons, the number of bars, and the drummer's tempo."""
    from flatgroove.drums import OUTPUT_PITCHES
    from flatgroove.midi import DrumPart, read_drums

    if isinstance(drummer, (str, os.PathLike)):
        spec = str(drummer)
        if Path(spec).exists() or spec.lower().endswith((".mid", ".midi")):
            drummer = read_drums(spec, drum_map=drum_map)
        else:
            drummer = load_target(spec).groove
    if isinstance(drummer, DrumPart):
        # A real performance: the notes as played (pitches mapped back to output pitches).
        ev = [(float(s) / 4.0, OUTPUT_PITCHES[int(d)], int(np.clip(round(v * 127), 1, 127)))
              for s, d, v in zip(drummer.steps, drummer.drums, drummer.velocities)]
        n = bars if bars is not None else drummer.n_bars
        return [e for e in ev if e[0] < 4 * n], n, drummer.tempo
    if isinstance(drummer, Groove):
        n = bars if bars is not None else 16
        loop = [drummer] * math.ceil(n / 2)
        tempo: float | None = drummer.tempo
    elif isinstance(drummer, list):
        loop = drummer
        n = bars if bars is not None else 2 * len(loop)
        tempo = next((g.tempo for g in loop if g is not None), None)
    else:
        raise TypeError(f"drummer must be a Groove, a list of Grooves, a MIDI path or a "
                        f"built-in name, got {type(drummer).__name__}")
    ev = []
    for k, g in enumerate(loop):
        if g is None:
            continue
        for t, drum, vel in g.notes():
            beat = (k * 2 * STEPS_PER_BAR + t) / 4.0
            if beat < 4 * n:
                ev.append((beat, OUTPUT_PITCHES[drum], vel))
    return ev, n, tempo


def simulate(
    model: Model,
    drummer: Groove | list[Groove | None] | str | os.PathLike,
    script: Script | str | os.PathLike | dict | None = None,
    bars: int | None = None,
    *,
    controls: ControlMap | str | os.PathLike | None = None,
    bpm: float | None = None,
    mode: str | None = None,
    a: float | None = None,
    target: str | int | None = None,
    seed: int | None = None,
    decode_latency: float | Callable[[int], float] | None = None,
    bank: list[Groove | Target] | None = None,
    inputs: list[tuple[float, Any]] | None = None,
    on_bar: Callable[[BarLog], None] | None = None,
    on_log: Callable[[str], None] | None = None,
) -> SessionResult:
    """Run a whole session on a virtual clock and return what happened.

    model: anything with latent_dim, encode(grooves) and decode(z, tempo).
    drummer: a Groove (looped), a list of Grooves (2 bars each, None = the drummer rests),
      a built-in groove name, or a MIDI file (played as recorded, micro-timing and all).
    script: a Script, a TOML path or text, or a dict: `[[change]]` tables with `bar` (1-based)
      and one control (`cc`+`value`, `note`, `program`, `mode`, `target`, `a`, `bpm`,
      `capture`, `sample`, `temperature`, `morph_bars`, `hold`); top-level settings `bars`,
      `bpm`, `mode`, `a`, `target`, `seed`, `temperature`, `morph_bars`, `decode_latency`,
      `drum_map`. Keyword arguments override the script's settings.
    bars: session length (default: the script's `bars`, else the MIDI file's length, else
      16 or 4 bars past the last scripted change).
    decode_latency: virtual seconds each decode takes, or a function of the bar (0-based)
      giving them (to rehearse late patterns).
    bank: targets to use instead of the controls file's bank (Grooves are named by .name).
    inputs: extra (virtual time, message or raw bytes) fed to the input port; time 0 is bar
      1's downbeat.
    """
    given = {k: v for k, v in (("bars", bars), ("bpm", bpm), ("mode", mode), ("a", a),
                               ("target", target), ("seed", seed)) if v is not None}
    if decode_latency is not None and not callable(decode_latency):
        given["decode_latency"] = decode_latency
    check_settings(given, "simulate")  # the same schema as a script's settings
    if script is None:
        script = Script()
    elif isinstance(script, dict):
        script = Script.from_dict(script)
    elif isinstance(script, (str, os.PathLike)) and not isinstance(script, Script):
        s = str(script)
        script = Script.load(s) if "\n" not in s and Path(s).suffix == ".toml" else Script.from_text(s)
    assert isinstance(script, Script)
    st = script.settings
    cmap = controls if isinstance(controls, ControlMap) else ControlMap.load(controls)
    for key, val in (("mode", mode if mode is not None else st.get("mode")),
                     ("a", a if a is not None else st.get("a")),
                     ("seed", seed if seed is not None else st.get("seed")),
                     ("temperature", st.get("temperature")),
                     ("morph_bars", st.get("morph_bars")),
                     ("drum_map", st.get("drum_map"))):
        if val is not None:
            setattr(cmap, key, val)
    latency = decode_latency if decode_latency is not None else float(st.get("decode_latency", 0.0))
    n_req = bars if bars is not None else st.get("bars")
    events, n_bars, drummer_tempo = _drummer_events(drummer, n_req, cmap.drum_map)
    if n_req is None and script.last_bar + 3 > n_bars:
        # Long enough to hear the last scripted change (the drummer rests past the file).
        n_bars = min(script.last_bar + 3, MAX_SESSION_BARS)
        events, _, _ = _drummer_events(drummer, n_bars, cmap.drum_map)
    tempo = float(bpm or st.get("bpm") or drummer_tempo or 120.0)

    vt = VirtualTime(0.0)
    start = (cmap.decode_lead + 1.0) * 60.0 / tempo  # bar 1 starts after the first plan
    clock = InternalClock(tempo, start=start)
    port = MemoryInput()
    out = MemoryOutput(vt.now)
    if bank is not None:
        targets = [b if isinstance(b, Target) else Target(b.name or f"groove {i + 1}", groove=b)
                   for i, b in enumerate(bank)]
        problems: list[str] = []
    else:
        targets, problems = load_bank(cmap.bank, cmap.drum_map)
    tgt = target if target is not None else st.get("target")
    engine = Engine(model, out, [port], cmap, clock, InlineWorker(model, latency), targets,
                    end_bar=n_bars, on_bar=on_bar, on_log=on_log, keep_history=True, target=tgt)
    for p in problems:
        engine.say(f"bank: {p}", 0.0, bar=0)
    runner = VirtualRunner(engine, vt, port)
    drum_ch = cmap.drum_channel if cmap.drum_channel is not None else 9
    for beat, pitch, vel in events:
        runner.at_beat(beat, mido.Message("note_on", channel=drum_ch, note=pitch, velocity=vel))
        runner.at_beat(beat + 0.1, mido.Message("note_off", channel=drum_ch, note=pitch))
    for ch in script.changes:
        runner.at_beat(_change_beat(ch, cmap), _change_item(ch, cmap, engine))
    for t, item in inputs or []:
        runner.at_time(start + t, item)
    runner.run()
    engine.finish(vt.now())
    engine.close()
    bar_logs = [engine.bar_logs.get(b, BarLog(b)) for b in range(n_bars)]
    return SessionResult(
        bars=bar_logs,
        drummer=bars_to_grooves(engine.recorder.bars, n_bars, tempo, "drummer"),
        machine=bars_to_grooves(engine.machine_bars, n_bars, tempo, "machine"),
        sent=engine.scheduler.sent,
        log=engine.log,
        tempo=tempo,
        start=start,
        n_bars=n_bars,
        controls=cmap,
        ready_margins=engine.ready_margins,
        tempo_changes=list(engine.tempo_changes),
    )


def _change_beat(ch: Change, cmap: ControlMap) -> float:
    if ch.beat is not None:
        return 4.0 * (ch.bar - 1) + (ch.beat - 1.0)
    if ch.kind == "bpm":  # on the bar line itself (notes are timed when due, so the bar keeps time)
        return 4.0 * (ch.bar - 1)
    return 4.0 * (ch.bar - 1) - cmap.decode_lead - 0.01  # just before the bar is planned


def _change_item(ch: Change, cmap: ControlMap, engine: Engine) -> Any:
    v = ch.values
    ctl = cmap.control_channel if cmap.control_channel is not None else 0
    channel = v["channel"] - 1 if "channel" in v else ctl
    if ch.kind == "cc":
        return mido.Message("control_change", channel=channel, control=v["cc"], value=v["value"])
    if ch.kind == "note":
        return mido.Message("note_on", channel=channel, note=v["note"], velocity=v["velocity"])
    if ch.kind == "program":
        return mido.Message("program_change", channel=channel, program=v["program"])

    def act(now: float) -> None:
        if ch.kind == "target" and engine._find_target(v["target"]) is None:
            try:  # a built-in or file not in the bank: add it
                engine.bank.append(load_target(str(v["target"]), cmap.drum_map))
            except Exception as e:  # noqa: BLE001 - the session goes on, and says why
                engine.say(f"script: {e}", now)
                return
            engine.apply("target", len(engine.bank) - 1, now)
            return
        value = v.get(ch.kind, True)
        engine.apply(ch.kind, value, now)

    return act


__all__ = ["SessionResult", "VirtualRunner", "simulate"]
