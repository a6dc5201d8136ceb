"""The terminal view of a live jam: bar, mode, a, target, tempo, and the grids being played.

It runs on its own thread and only reads a snapshot of the engine a few times a second, so
drawing never touches the scheduling thread. On a terminal it redraws in place; when the
output is a file or a pipe it prints the log lines instead.
"""

from __future__ import annotations

import math
import sys
import threading
from collections import deque
from typing import Any, TextIO

from flatgroove.live.engine import Engine


def render(snap: dict[str, Any], width: int = 100) -> str:
    """The screen for one engine snapshot (plain text, no colours)."""
    bar = snap["bar"]
    beat = snap["beat"]
    if math.isnan(beat):
        pos = "--"
    elif beat < 0:
        pos = f"count-in {int(-beat) + 1}"
    else:
        pos = f"bar {int(beat // 4) + 1:>3}  beat {int(beat % 4) + 1}"
    clock = f"{snap['bpm']:6.1f} BPM ({snap['clock']} clock)"
    state = "HOLD" if snap["hold"] else ("stopped: " + snap["stopped"] if snap["stopped"]
                                        else (snap["halt"] or "playing"))
    mode = snap["mode"] + (f" -> {snap['pending_mode']}" if snap["pending_mode"] else "")
    plan = snap["plan"]
    role = plan.role if plan is not None else ""
    ready = snap["ready"]
    ready_s = (f"last pattern ready {ready[2]:.1f} beats ({ready[1] * 1000:.0f} ms) before its bar"
               if ready else "")
    lines = [
        f"flatgroove jam   {pos}   {clock}   {state}",
        f"mode {mode:<22} a = {snap['a']:.2f}   target {snap['target']:<16} {role}",
        ready_s,
        "",
    ]
    d = snap["drummer"]
    lines += d.grid(title=f"drummer, bars {max(bar, 1)}-{max(bar, 1) + 1}").splitlines()
    lines.append("")
    m = snap["machine"]
    if m is not None:
        which = f", now playing its bar {plan.half + 1}" if plan is not None else ""
        lines += m.grid(title=f"machine, decoded pattern{which}").splitlines()
    else:
        lines.append("machine: silent" + (f" ({role})" if role else ""))
    lines.append("")
    lines += [f"  {x}" for x in snap["log"]]
    return "\n".join(x[:width] for x in lines)


class TerminalView:
    """Redraws the screen `rate` times a second from engine snapshots (on a TTY), or echoes
    log lines (elsewhere). `message(text)` may be called from any thread."""

    def __init__(self, engine: Engine, now: Any, stream: TextIO | None = None,
                 rate: float = 4.0) -> None:
        self.engine = engine
        self.now = now
        self.stream = stream or sys.stdout
        self.rate = rate
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lines: deque[str] = deque(maxlen=200)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flatgroove-view", daemon=True)

    def message(self, text: Any) -> None:
        """A line to print (a string, or a BarLog: its status line without its events, which
        reach the view as messages when they happen: printed once, not again at the bar's end)."""
        self._lines.append(text)

    def start(self) -> TerminalView:
        self._thread.start()
        return self

    def _flush_lines(self) -> None:
        while self._lines:
            x = self._lines.popleft()
            print(x.line(events=False) if hasattr(x, "line") else x, file=self.stream, flush=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0 / self.rate):
            if self.tty:
                self._lines.clear()  # the screen shows the log itself
                try:
                    screen = render(self.engine.snapshot(self.now()))
                except Exception as e:  # noqa: BLE001 - a drawing bug must not end the jam
                    screen = f"(view error: {e})"
                self.stream.write("\x1b[H\x1b[2J" + screen + "\n")
                self.stream.flush()
            else:
                self._flush_lines()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if not self.tty:
            self._flush_lines()


__all__ = ["TerminalView", "render"]
