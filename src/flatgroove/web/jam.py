"""A jam session for the browser: the live engine (flatgroove.live) on a background thread.

With no MIDI hardware, the drummer is simulated (a built-in groove, looped) and the engine
runs on its virtual clock, advanced in step with the wall clock, so the page sees and hears
a session in real time. The WebSocket's control messages (a, target, mode, capture, ...)
and any real MIDI controller given as an input steer the same engine: controller messages
are stamped with the monotonic clock and shifted onto the virtual one. Given a `clock` port,
the jam follows its MIDI clock (a DAW's Start, ticks, Stop) instead of its own tempo; until
the clock starts, the page says it is waiting for it (state `halt`, `clock_port`).

Everything that touches the engine happens on the jam thread; other threads only queue
controls and read the last published state.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import mido
import numpy as np
from pydantic import TypeAdapter

from flatgroove.drums import OUTPUT_PITCHES
from flatgroove.groove import Groove
from flatgroove.web import schemas as S
from flatgroove.web.service import ApiError, Studio, groove_json

log = logging.getLogger(__name__)

PITCH_DRUM = {p: i for i, p in enumerate(OUTPUT_PITCHES)}


def put_in_map_slot(bank: list, t) -> None:
    """One slot for targets clicked on the map or given as z: clicking around must not grow
    the bank (nor replace a bank groove whose name merely starts with "z", say "zouk")."""
    old = [i for i, b in enumerate(bank) if b.z is not None and (b.name == "z" or b.name.startswith("map ("))]
    if old:
        bank[old[0]] = t
    else:
        bank.append(t)


class ShiftedInput:
    """A port stamped with time.monotonic() (a real MIDI input), seen on the jam's virtual
    clock: t_virtual = (t - wall0) * speed."""

    def __init__(self, port: Any, wall0: float, speed: float) -> None:
        self.port, self.wall0, self.speed = port, wall0, speed

    def drain(self, max_n: int) -> list[tuple[float, Any]]:
        return [((t - self.wall0) * self.speed, m) for t, m in self.port.drain(max_n)]

    def pending(self) -> bool:
        return self.port.pending()


class Tee:
    """The engine's output: kept for the page, and sent on to any real MIDI outputs."""

    def __init__(self, now: Callable[[], float], outputs: list[Any]) -> None:
        self.now = now
        self.outputs = outputs
        self.sent: list[tuple[float, mido.Message]] = []

    def send(self, msg: mido.Message) -> None:
        self.sent.append((self.now(), msg))
        for o in self.outputs:
            o.send(msg)


class JamSession:
    """One shared session; start() is idempotent, stop() ends it with all notes off."""

    def __init__(
        self,
        studio: Studio,
        drummer: str = "rock",
        bpm: float | None = None,
        controls: str | None = None,
        inputs: list[Any] | None = None,
        outputs: list[Any] | None = None,
        publish_hz: float = 20.0,
        speed: float = 1.0,
        idle_stop_s: float | None = 120.0,
        mode: str | None = None,
        a: float | None = None,
        clock: Any | None = None,
    ) -> None:
        self.studio = studio
        # A port stamped with time.monotonic() (ports.TimedInput) whose MIDI clock drives
        # the jam; None: the internal clock at `bpm`.
        self.clock = clock
        self.drummer_name = drummer
        self.drummer = studio.builtin(drummer)
        self.bpm = bpm
        self.controls_path = controls
        self.inputs = list(inputs or [])
        self.outputs = list(outputs or [])
        self.publish_hz = publish_hz
        self.speed = speed
        self.idle_stop_s = idle_stop_s
        self.mode, self.a = mode, a
        self._q: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._state: dict[str, Any] = {"type": "state", "running": False, "seq": 0}
        self.seq = 0
        self._notes: deque[tuple[int, float, int, int, str]] = deque(maxlen=4000)
        self._note_id = 0
        self.clients = 0
        self._idle_since: float | None = None
        self.error = ""
        self.sessions = 0

    # -- life cycle ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        for _ in range(3):
            old = self._thread
            if old is not None and old.is_alive() and self._stop.is_set():
                old.join(5.0)  # a session that is stopping: let it finish, then start anew
            with self._lock:
                if self.running and self._stop.is_set():
                    continue  # it began to stop (idle) after the check: join it, unlocked
                if not self.running:
                    self._start_locked()
                return

    def _start_locked(self) -> None:
        self._stop.clear()
        self._q = queue.Queue()
        self.error = ""
        self.sessions += 1
        self._thread = threading.Thread(target=self._run, name="flatgroove-jam", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def connect(self) -> None:
        with self._lock:
            self.clients += 1
            self._idle_since = None
        self.start()

    def disconnect(self) -> None:
        with self._lock:
            self.clients = max(0, self.clients - 1)
            if self.clients == 0:
                self._idle_since = time.monotonic()

    @property
    def clock_port(self) -> str:
        """The name of the port whose MIDI clock the jam follows ('' on the internal clock)."""
        if self.clock is None:
            return ""
        return str(getattr(self.clock, "name", None) or "MIDI clock")

    # -- what the page reads ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        with self._lock:
            return self._state

    def notes_since(self, last_id: int) -> tuple[list[list[Any]], int]:
        """Notes heard since `last_id`: [virtual time, drum, velocity 1..127, 'd' | 'm']."""
        with self._lock:
            out = [[round(t, 4), d, v, who] for i, t, d, v, who in self._notes if i > last_id]
            return out, self._note_id

    @property
    def last_note_id(self) -> int:
        with self._lock:
            return self._note_id

    def _note(self, t: float, pitch: int, vel: int, who: str) -> None:
        drum = PITCH_DRUM.get(pitch)
        if drum is None:
            return
        with self._lock:
            self._note_id += 1
            self._notes.append((self._note_id, t, drum, vel, who))

    # -- steering (any thread) --------------------------------------------------------------------
    def control(self, msg: Any) -> None:
        """Queue a validated control message (schemas.JamMessage); names are checked here so
        a bad one is answered at once."""
        kind = msg.type
        if kind == "drummer":
            self.studio.builtin(msg.name)  # 404 if unknown
        elif kind == "target":
            if msg.name is not None:
                known = {n.lower() for n in self.studio.builtins}
                known |= {n.lower() for n in self._state.get("bank", [])}
                if msg.name.lower() not in known:
                    raise ApiError(404, f"no target {msg.name!r}; built-ins: "
                                        f"{', '.join(self.studio.builtins)}")
            elif msg.z is not None:
                self.studio.check_z(msg.z)
        if kind == "start":
            self.start()
            return
        if kind == "stop":
            self.stop(timeout=0.0)
            return
        if not self.running:
            self.start()
        self._q.put(msg)

    # -- the jam thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._session()
        except Exception as e:  # the page shows why the jam ended
            log.exception("jam session failed")
            self.error = f"{type(e).__name__}: {e}"
            with self._lock:
                self.seq += 1
                self._state = {**self._state, "seq": self.seq, "running": False,
                               "error": self.error}

    def _session(self) -> None:
        from flatgroove.live.clock import InternalClock, MidiClock, VirtualTime
        from flatgroove.live.controls import ControlMap, load_bank
        from flatgroove.live.engine import Engine, InlineWorker
        from flatgroove.live.ports import MemoryInput
        from flatgroove.live.simulate import VirtualRunner

        cmap = ControlMap.load(self.controls_path)
        if self.mode is not None:
            cmap.mode = self.mode
        if self.a is not None:
            cmap.a = self.a
        tempo = float(self.bpm or self.drummer.tempo)
        vt = VirtualTime(0.0)
        clock: InternalClock | MidiClock
        if self.clock is not None:  # the engine waits, silent, for the clock's Start
            clock = MidiClock(tempo, timeout_beats=cmap.clock_timeout)
        else:  # bar 1 starts after the first plan is due, as in the simulation
            clock = InternalClock(tempo, start=(cmap.decode_lead + 1.0) * 60.0 / tempo)
        port = MemoryInput()
        out = Tee(vt.now, self.outputs)
        bank, problems = load_bank(cmap.bank, cmap.drum_map)
        wall0 = time.monotonic()
        ports = self.inputs + ([self.clock] if self.clock is not None else [])
        inputs = [port] + [ShiftedInput(p, wall0, self.speed) for p in ports]
        for i in inputs:  # only the clock port's MIDI clock drives the jam (as `jam --clock`)
            i.clock_source = self.clock is not None and i is inputs[-1]
        # Start aiming somewhere other than where the drummer is: there is a path to hear.
        first = next((t.name for t in bank if t.name.lower() != self.drummer_name.lower()), None)
        engine = Engine(self.studio.model, out, inputs, cmap, clock,
                        InlineWorker(self.studio.model), bank, end_bar=None, target=first)
        for p in problems:
            engine.say(f"bank: {p}", 0.0, bar=0)
        if self.clock is not None:
            engine.say(f"waiting for MIDI clock from {self.clock_port}: press play (Start) in "
                       "the DAW or drum machine", 0.0, bar=0)
            engine.say(f"simulated drummer plays {self.drummer_name} to the MIDI clock", 0.0,
                       bar=0)
        else:
            engine.say(f"simulated drummer plays {self.drummer_name} at {tempo:.0f} BPM", 0.0,
                       bar=0)
        runner = VirtualRunner(engine, vt, port)
        self._fed_bar = 0
        self._view_key: tuple | None = None
        self._view: dict[str, Any] = {}
        self._zcache: dict[str, np.ndarray] = {}
        drum_ch = cmap.drum_channel if cmap.drum_channel is not None else 9
        next_pub = 0.0
        try:
            while not self._stop.is_set():
                now = vt.now()
                self._apply_controls(engine, now)
                self._feed_drummer(runner, engine, port, drum_ch)
                runner.run(until=(time.monotonic() - wall0) * self.speed)
                for t, m in out.sent:
                    if m.type == "note_on" and m.velocity > 0:
                        self._note(t, m.note, m.velocity, "m")
                out.sent.clear()
                wall = time.monotonic()
                if wall >= next_pub:
                    self._publish(engine, vt.now())
                    # A steady rate: the next update is due one period after this one was.
                    next_pub = max(next_pub + 1.0 / self.publish_hz, wall)
                if engine.stopped:
                    break
                if self._idle():
                    engine.say("no page connected; jam stopped", vt.now())
                    break
                self._stop.wait(0.005)
        finally:
            engine.stop(vt.now(), "jam ended")
            engine.close()
            self._publish(engine, vt.now(), running=False)

    def _idle(self) -> bool:
        # decided under the lock, and marked stopping there: a page connecting meanwhile
        # either finds the jam running on (since reset) or stopping (and starts a new one)
        with self._lock:
            since = self._idle_since
            idle = (self.idle_stop_s is not None and since is not None
                    and time.monotonic() - since > self.idle_stop_s)
            if idle:
                self._stop.set()
            return idle

    def _feed_drummer(self, runner, engine, port, channel: int) -> None:
        """Queue the looped drummer one 2-bar phrase ahead; a new drummer groove starts at the
        next phrase."""
        while self._fed_bar <= engine.current_bar + 2:
            g, base = self.drummer, 4.0 * self._fed_bar
            for t, drum, vel in g.notes():
                beat = max(0.0, base + t / 4.0)
                pitch = OUTPUT_PITCHES[drum]
                on = mido.Message("note_on", channel=channel, note=pitch, velocity=vel)
                runner.at_beat(beat, partial(self._drummer_hit, port, on))
                runner.at_beat(beat + 0.1, mido.Message("note_off", channel=channel, note=pitch))
            self._fed_bar += 2

    def _drummer_hit(self, port, msg: mido.Message, now: float) -> None:
        port.feed(now, msg)
        self._note(now, msg.note, msg.velocity, "d")

    def _apply_controls(self, engine, now: float) -> None:
        from flatgroove.live.controls import Target, load_target

        while True:
            try:
                msg = self._q.get_nowait()
            except queue.Empty:
                return
            kind = msg.type
            if kind in ("a", "mode", "bpm", "temperature"):
                engine.apply(kind, msg.value, now)
            elif kind in ("capture", "sample", "hold"):
                engine.apply(kind, True, now)
            elif kind == "drummer":
                self.drummer_name = msg.name
                self.drummer = self.studio.builtin(msg.name)
                engine.say(f"simulated drummer -> {msg.name} from bar {self._fed_bar + 1}", now)
            elif kind == "target":
                if msg.name is not None:
                    want = msg.name.lower()
                    t = next((b for b in engine.bank if b.name.lower() == want), None)
                    if t is None:
                        try:
                            t = load_target(msg.name, engine.controls.drum_map)
                        except Exception as e:  # noqa: BLE001 - say why, the jam goes on
                            engine.say(f"target: {e}", now)
                            continue
                        engine.bank.append(t)
                else:
                    if msg.point is not None:
                        z = self.studio.from_point(msg.point)
                        name = f"map ({msg.point[0]:.2f}, {msg.point[1]:.2f})"
                    else:
                        z = self.studio.check_z(msg.z)
                        name = "z"
                    t = Target(name, z=z)
                    put_in_map_slot(engine.bank, t)
                engine.apply("target", engine.bank.index(t), now)

    def _target_z(self, target) -> np.ndarray | None:
        if target.z is not None:
            return np.asarray(target.z, np.float32)
        if target.groove is None:
            return None
        key = target.key
        if key not in self._zcache:
            self._zcache[key] = self.studio.model.encode([target.groove])[0]
            while len(self._zcache) > 64:  # bounded: targets come and go in a long jam
                self._zcache.pop(next(iter(self._zcache)))
        return self._zcache[key]

    def _publish(self, engine, now: float, running: bool = True) -> None:
        snap = engine.snapshot(now)
        bar = int(snap["bar"])
        plan = snap["plan"]
        target = engine.target
        last_z = engine.last_z
        key = (bar, target.name, id(snap["machine"]), None if last_z is None else float(last_z[0]))
        if key != self._view_key:
            # Grooves and map positions change at most once a bar (or on a new target).
            self._view_key = key
            end = max(2, bar - bar % 2)  # the last full 2-bar phrase of the drummer
            drummer: Groove = engine.recorder.window(end, snap["bpm"])
            drummer.name = f"drummer, bars {end - 1}-{end}"
            machine: Groove | None = snap["machine"]
            pts: dict[str, Any] = {"drummer": None, "machine": None, "target": None}
            if drummer.n_hits:
                pts["drummer"] = self.studio.to_2d(self.studio.model.encode([drummer])[0])[0]
            tz = self._target_z(target)
            if tz is not None:
                pts["target"] = self.studio.to_2d(tz)[0]
            if last_z is not None:
                pts["machine"] = self.studio.to_2d(last_z)[0]
            self._view = {
                "drummer": groove_json(drummer),
                "machine": groove_json(machine) if machine is not None else None,
                "points": pts,
                "view_seq": self._view.get("view_seq", 0) + 1,
            }
        ready = snap["ready"]
        state = {
            "type": "state",
            "t": round(now, 4),
            "running": running and not engine.stopped,
            "bar": bar,
            "beat": None if np.isnan(snap["beat"]) else round(float(snap["beat"]), 3),
            "bpm": round(float(snap["bpm"]), 2),
            # 'internal' or 'external' (a MIDI clock port); while the external clock has not
            # started, stopped or is lost, `halt` says so (and the machine is silent).
            "clock": snap["clock"],
            "clock_port": self.clock_port,
            "halt": snap["halt"],
            "mode": snap["mode"],
            "pending_mode": snap["pending_mode"],
            "a": round(float(snap["a"]), 4),
            "temperature": round(float(engine.temperature), 3),
            "target": snap["target"],
            "hold": bool(snap["hold"]),
            "role": plan.role if plan is not None else "",
            "half": plan.half if plan is not None else 0,
            "plays": bool(plan.plays) if plan is not None else False,
            "ready_beats": None if ready is None else round(float(ready[2]), 2),
            "log": list(snap["log"]),
            "bank": [t.name for t in engine.bank],
            "drummer_name": self.drummer_name,
            "clients": self.clients,
            "session": self.sessions,
            "error": self.error,
            **self._view,
        }
        with self._lock:
            self.seq += 1
            state["seq"] = self.seq
            self._state = state


def parse_control(data: Any) -> Any:
    """A control message from JSON, validated (pydantic ValidationError if not)."""
    return _ADAPTER.validate_python(data)


_ADAPTER: TypeAdapter[Any] = TypeAdapter(S.JamMessage)
