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
                 timeout: float = 10.0) -> None:
        self.name, self.period, self.realtime, self.timeout = name, period, realtime, timeout
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
            [exe, "-n", self.name, *rt, "-d", "dummy", "-r", "48000", "-p", str(self.period)],
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
