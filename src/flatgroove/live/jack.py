"""A JACK server with the dummy driver: real MIDI ports on a machine without ALSA or a sound
card (containers, CI). The tests and benchmarks start one; so can a user (`jackd -d dummy`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time


class JackUnavailable(RuntimeError):
    """jackd is missing or did not start; the message says which."""


class JackServer:
    """`with JackServer("name") as name:` runs `jackd -n name -d dummy` until the block ends,
    pointing this process's JACK clients at it (JACK_DEFAULT_SERVER) and never auto-starting
    another. Waits until the server answers, at most `timeout` seconds."""

    def __init__(self, name: str, period: int = 128, realtime: bool = False,
                 timeout: float = 10.0, sync: bool = False) -> None:
        self.name, self.period, self.realtime, self.timeout = name, period, realtime, timeout
        # sync: the server waits for every client each cycle (jackd -S). Asynchronous mode
        # (the default) reads a late client's output buffer before it is written, losing its
        # MIDI for that cycle; on a loaded test machine that is a lost note, not a late one.
        self.sync = sync
        self.proc: subprocess.Popen | None = None
        self._env: dict[str, str | None] = {}
        self._log = None

    def start(self) -> str:
        exe = shutil.which("jackd")
        if exe is None:
            raise JackUnavailable("jackd is not installed (`make system-deps` installs jackd2)")
        rt = ["-R"] if self.realtime else ["--no-realtime"]
        # jackd's messages go to a file, never a pipe: a pipe nobody drains fills up on a long
        # run (xrun reports) and then blocks the server itself, stalling every client.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [exe, "-n", self.name, *rt, *(["-S"] if self.sync else []),
             "-d", "dummy", "-r", "48000", "-p", str(self.period)],
            stdout=subprocess.DEVNULL, stderr=self._log, start_new_session=True)
        self._env = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        os.environ["JACK_NO_START_SERVER"] = "1"
        from flatgroove.live.ports import PortError, backend

        deadline = time.monotonic() + self.timeout
        while True:
            try:
                backend("jack").get_output_names()
                return self.name
            except PortError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self._log.seek(0)
                    err = self._log.read().decode(errors="replace")[-500:].strip()
                    self.stop()
                    raise JackUnavailable(f"JACK server did not start: {err or 'timeout'}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        for k, v in self._env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self._env = {}

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _peer_main(cfg: dict) -> None:
    """The other process: opens '<client>-out:drums' and '<client>-in:listen', says 'ready',
    reads the start time (monotonic clock) from stdin, plays `notes` [(beat, pitch, velocity)]
    on channel 10 (plus an optional CC flood), records what it hears with timestamps, and
    prints that as JSON."""
    import json
    import sys
    import threading

    import mido

    from flatgroove.live.session import raise_priority

    # The drummer keeps time as the engine does: on a loaded machine an ordinary process
    # wakes late and its notes land in the wrong 16th, which the tests would blame on the engine.
    # Real-time, but below JACK's own client threads (the server's priority - 5): a CC flood
    # sent from here must not starve the process cycle that carries the engine's answer.
    raise_priority(1)
    b = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    got: list[tuple[float, list[int]]] = []
    lock = threading.Lock()

    def on_msg(m: mido.Message) -> None:  # JACK's process thread: the stamp is the arrival
        t = time.monotonic()
        with lock:
            got.append((t, m.bytes()))

    client = cfg.get("client", "fg-peer")
    listen = b.open_input("listen", virtual=True, client_name=f"{client}-in", callback=on_msg)
    out = b.open_output("drums", virtual=True, client_name=f"{client}-out")
    print("ready", flush=True)
    t0 = float(sys.stdin.readline())
    spb = cfg["spb"]
    events = [(t0 + beat * spb, mido.Message("note_on", channel=9, note=p, velocity=v))
              for beat, p, v in cfg["notes"]]
    events += [(t0 + beat * spb + 0.05, mido.Message("note_off", channel=9, note=p))
               for beat, p, v in cfg["notes"]]
    fb, fn = cfg.get("flood_beat", 0), cfg.get("flood", 0)
    events += [(t0 + fb * spb + i * cfg.get("flood_dt", 0.001),
                mido.Message("control_change", channel=0, control=1, value=0)) for i in range(fn)]
    for t, m in sorted(events, key=lambda e: e[0]):
        while (d := t - time.monotonic()) > 0:
            time.sleep(d)
        out.send(m)
    while time.monotonic() < t0 + cfg["listen_s"]:
        time.sleep(0.05)
    listen.close()
    out.close()
    with lock:
        print(json.dumps(got), flush=True)


def start_peer(cfg: dict) -> subprocess.Popen:
    """A drummer-and-listener in a second process, over real JACK ports (tests, benchmarks):
    returns once its ports exist. Write the start time to its stdin; read its JSON at the end."""
    import json
    import sys

    p = subprocess.Popen([sys.executable, "-m", "flatgroove.live.jack", json.dumps(cfg)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline() if p.stdout else ""
    if line.strip() != "ready":
        p.kill()
        raise JackUnavailable(f"peer process did not start: {line!r}")
    return p


def run_with_peer(session, peer: subprocess.Popen, timeout: float = 60.0) -> tuple[str, list]:
    """Start the peer at the session's bar 1, run the session to its end, close it, and
    return (the reason it stopped, what the peer heard: [(monotonic time, bytes)])."""
    import json

    try:
        assert peer.stdin is not None
        peer.stdin.write(f"{session.engine.clock.time_at(0.0)!r}\n")
        peer.stdin.flush()
        try:
            reason = session.run()
        finally:
            session.close()
        out, _ = peer.communicate(timeout=timeout)
    finally:
        if peer.poll() is None:
            peer.kill()
    return reason, json.loads(out.strip().splitlines()[-1])


if __name__ == "__main__":
    import json
    import sys

    _peer_main(json.loads(sys.argv[1]))
