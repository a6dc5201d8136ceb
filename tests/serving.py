"""A server process for the tests that talk to one over HTTP (the page in Chromium, the jam on a
MIDI clock): started with its output in a log, waited for until it answers, stopped politely."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def start(argv: list[str], log_path: Path, probe_url: str, what: str = "flatgroove serve",
          timeout: float = 90.0):
    """Start `argv` and wait until GET `probe_url` answers. Returns (process, log file, the
    probe's JSON body or None); fails the test with the log when the process dies or the
    server does not answer within `timeout` s."""
    log = open(log_path, "w")  # noqa: SIM115 - closed by stop()
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(probe_url, timeout=5) as r:
                body = r.read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc, log)
                pytest.fail(f"{what} did not start:\n{log_path.read_text()}")
            time.sleep(0.3)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    return proc, log, data


def stop(proc: subprocess.Popen, log) -> None:
    """SIGTERM, then SIGKILL after 10 s; close the log."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    log.close()
