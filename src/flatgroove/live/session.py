"""A live session: real ports, the system clock, a decoding thread, the engine's loop.

`LiveSession(...).run()` is what `flatgroove jam` does; tests and the benchmark use it too.
However it ends (the end bar, a stop request, a vanished port, an exception, Ctrl-C), every
sounding note is ended and CC 123 is sent before the ports close.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable

from flatgroove.live.clock import InternalClock, MidiClock, SystemTime
from flatgroove.live.controls import ControlMap, load_bank
from flatgroove.live.engine import BarLog, Engine, Model, ThreadWorker
from flatgroove.live.ports import PortMonitor, TimedInput, TimedOutput, backend


def _priority() -> tuple[int, int, int] | None:
    try:
        tid = threading.get_native_id()
        return os.sched_getscheduler(0), os.sched_getparam(0).sched_priority, os.getpriority(
            os.PRIO_PROCESS, tid)
    except (AttributeError, OSError):
        return None


def _restore_priority(saved: tuple[int, int, int] | None) -> None:
    if saved is None:
        return
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, saved[0], os.sched_param(saved[1]))
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), saved[2])


def raise_priority(rt_priority: int = 20) -> str:
    """Ask the OS to run the calling thread (the scheduling loop) ahead of ordinary work: a
    busy machine otherwise delays its wake-ups by milliseconds. Real-time FIFO scheduling
    where permitted (the loop sleeps between events, so it cannot hog a core), else a
    better nice level, else nothing. Returns what it got, for the log."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt_priority))
        return f"real-time priority (SCHED_FIFO {rt_priority})"
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)
        return "nice -10 (no permission for real-time priority)"
    except (AttributeError, OSError):
        return "normal priority (no permission to raise it)"


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so that a jam ends as with Ctrl-C: every
    sounding note ended, CC 123 sent, the ports closed."""


@contextlib.contextmanager
def stop_on_signals(signals: tuple[str, ...] = ("SIGTERM", "SIGHUP")):
    """While inside: those signals raise Terminated in the main thread (elsewhere: nothing)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"terminated ({signal.Signals(signum).name})")

    old = {}
    for name in signals:
        sig = getattr(signal, name, None)
        if sig is not None:
            old[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def run_realtime(engine: Engine, ts: SystemTime, wake: threading.Event,
                 stop: threading.Event | None = None) -> str:
    """The scheduling loop: step, then sleep until the next thing is due or input arrives.
    Returns why it ended."""
    try:
        while not engine.stopped:
            now = ts.now()
            if stop is not None and stop.is_set():
                engine.stop(now, "stopped")
                break
            t = engine.step(now)
            if engine.stopped:
                break
            ts.wait(min(t, now + 0.1), wake)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM/SIGHUP (see Terminated)
        engine.stop(ts.now(), str(e) or "interrupted (Ctrl-C)")
        raise
    except BaseException as e:
        engine.stop(ts.now(), f"error: {type(e).__name__}: {e}")
        raise
    finally:
        if not engine.stopped:
            engine.stop(ts.now(), "stopped")
    return engine.stop_reason


class LiveSession:
    """Opens everything a jam needs; `run()` plays until stopped; `close()` releases it all.

    out: output port name (created, if `virtual`); ins: input port names (the drummer, pads,
    knobs; all merged); clock_port: follow this port's MIDI clock instead of `bpm`;
    start_at: monotonic time of bar 1's downbeat (internal clock; default: 1 s after set-up);
    end_bar: stop after this many bars (None: play until stopped); realtime: raise the
    priority of the thread that calls run() (see raise_priority)."""

    def __init__(
        self,
        model: Model,
        out: str,
        ins: list[str] | None = None,
        *,
        controls: ControlMap | None = None,
        bpm: float = 120.0,
        clock_port: str | None = None,
        virtual: bool = False,
        api: str = "auto",
        target: str | int | None = None,
        start_at: float | None = None,
        end_bar: int | None = None,
        on_log: Callable[[str], None] | None = None,
        on_bar: Callable[[BarLog], None] | None = None,
        keep_history: bool = False,
        monitor: bool = True,
        realtime: bool = True,
    ) -> None:
        self.realtime = realtime
        self.ts = SystemTime()
        self.wake = threading.Event()
        self.controls = controls or ControlMap.load()
        self.b = backend(api)
        self.inputs: list[TimedInput] = []
        self.output: TimedOutput | None = None
        try:
            names = list(ins or [])
            if clock_port is not None and clock_port not in names:
                names.append(clock_port)
            for i, n in enumerate(names):
                # The first input is the drummer; a separate clock port is the clock; any
                # others are controllers (pads, knobs, pedals).
                role = "drums" if i == 0 and n in (ins or []) else (
                    "clock" if n == clock_port else "controls")
                port = TimedInput(self.b, n, virtual=virtual, wake=self.wake, role=role)
                port.clock_source = n == clock_port
                self.inputs.append(port)
            self.output = TimedOutput(self.b, out, virtual=virtual, role="machine")
        except BaseException:
            self._close_ports()
            raise
        self.worker: ThreadWorker | None = None
        self.monitor: PortMonitor | None = None
        try:  # a failure from here on (a bad --target, the model's warm-up) closes what is open
            self.worker = ThreadWorker(model, wake=self.wake)
            self.worker.warmup()
            bank, problems = load_bank(self.controls.bank, self.controls.drum_map)
            if clock_port is not None:
                clock: InternalClock | MidiClock = MidiClock(bpm, timeout_beats=self.controls.clock_timeout)
            else:  # after the slow set-up, so that the first bar can be planned in time
                start = start_at if start_at is not None else self.ts.now() + 1.0
                clock = InternalClock(bpm, start=start)
            self.engine = Engine(model, self.output, list(self.inputs), self.controls, clock,
                                 self.worker, bank, end_bar=end_bar, on_log=on_log, on_bar=on_bar,
                                 keep_history=keep_history, target=target)
            for p in problems:
                self.engine.say(f"bank: {p}", self.ts.now())
            if monitor and not virtual:
                self.monitor = PortMonitor(self.b, [p.name for p in self.inputs],
                                           [self.output.name], self._port_gone).start()
        except BaseException:
            if self.worker is not None:
                self.worker.close()
            self._close_ports()
            raise

    def _port_gone(self, why: str) -> None:
        self.engine.request_stop(why)
        self.wake.set()

    def run(self, stop: threading.Event | None = None) -> str:
        """Play until the end bar, a stop, an error or Ctrl-C. Returns why it stopped."""
        # Let the scheduling thread take the GIL back quickly from the view and decoder
        # threads (the default 5 ms would show up as timing jitter).
        old = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        saved = _priority()
        if self.realtime:
            self.engine.say(f"scheduling thread: {raise_priority()}", self.ts.now())
        try:
            return run_realtime(self.engine, self.ts, self.wake, stop)
        finally:
            sys.setswitchinterval(old)
            _restore_priority(saved)  # the caller's thread goes on as it was

    def _close_ports(self) -> None:
        for p in self.inputs:
            p.close()
        if self.output is not None:
            self.output.close()

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        if not self.engine.stopped:
            self.engine.stop(self.ts.now(), "closed")
        self.engine.close()
        self._close_ports()


__all__ = ["LiveSession", "Terminated", "raise_priority", "run_realtime", "stop_on_signals"]
