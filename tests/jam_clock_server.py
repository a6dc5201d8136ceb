"""`flatgroove serve`'s app with its jam on an external MIDI clock, for the browser test of
"waiting for MIDI clock" (tests/test_web_jam_clock.py runs this file as a script).

The clock port is a stand-in for a DAW: silent until the trigger file exists, then MIDI
Start and 24 ticks a beat at BPM, stamped with time.monotonic() like a real input port.

    python tests/jam_clock_server.py PORT CHECKPOINT TRIGGER_FILE BPM
"""

from __future__ import annotations

import os
import sys
import time


class DawClock:
    """An input port (drain / pending / close) that plays a DAW's clock once `trigger` exists."""

    name = "fake-daw:clock"

    def __init__(self, trigger: str, bpm: float) -> None:
        self.trigger, self.period = trigger, 60.0 / bpm / 24
        self.t0: float | None = None
        self.sent = 0  # ticks sent so far

    def _due(self, now: float) -> int:
        return int((now - self.t0) / self.period) + 1 if self.t0 is not None else 0

    def drain(self, max_n: int) -> list[tuple[float, list[int]]]:
        out: list[tuple[float, list[int]]] = []
        now = time.monotonic()
        if self.t0 is None:
            if not os.path.exists(self.trigger):
                return out
            self.t0 = now
            out.append((now, [0xFA]))  # Start
        while self.sent < self._due(now) and len(out) < max_n:
            out.append((self.t0 + self.sent * self.period, [0xF8]))
            self.sent += 1
        return out

    def pending(self) -> bool:
        if self.t0 is None:
            return os.path.exists(self.trigger)
        return self.sent < self._due(time.monotonic())

    def close(self) -> None:
        pass


def main(port: int, checkpoint: str, trigger: str, bpm: float) -> None:
    import uvicorn

    from flatgroove.generate import resolve_model
    from flatgroove.web.jam import JamSession
    from flatgroove.web.server import create_app, uvicorn_options
    from flatgroove.web.service import Studio

    model = resolve_model(checkpoint)
    studio = Studio(model, model_source=checkpoint, dataset=None)
    jam = JamSession(studio, drummer="rock", clock=DawClock(trigger, bpm))
    app = create_app(studio, jam=jam, warm=True)
    print(f"serving on http://127.0.0.1:{port}/", flush=True)
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options())
    finally:
        jam.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]))
