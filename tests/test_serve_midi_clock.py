"""`flatgroove serve --midi-clock NAME`: the page's jam follows a DAW's MIDI clock, the port
opened as `flatgroove jam --clock` opens it ('flatgroove:clock in'), closed when the server
stops; a missing port, or no MIDI system, is one line and exit 2 before the model loads.

The JACK tests start their own JACK server (JACK's dummy driver: no sound card needed) and
skip with the reason when they cannot, as tests/test_live_ports.py does."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import pytest

import serving
from test_web_browser import _free_port


def test_serve_parses_midi_clock_and_explains_it(capsys):
    from flatgroove.cli import build_parser, main

    args = build_parser().parse_args(["serve", "--midi-clock", "DAW clock", "--bpm", "100"])
    assert args.midi_clock == "DAW clock" and args.bpm == 100
    assert build_parser().parse_args(["serve"]).midi_clock is None
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_ = " ".join(capsys.readouterr().out.split())
    assert "--midi-clock NAME" in help_ and "follow this port's MIDI clock" in help_
    assert "--midi-clock (default" in help_  # --midi-api names it


def test_serve_midi_clock_without_a_midi_system_is_one_line(monkeypatch, capsys, tmp_path):
    """No JACK server by that name (and none auto-started): one line naming the option."""
    from flatgroove.cli import main

    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"flatgroove-none-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    rc = main(["serve", "--midi-clock", "DAW", "--midi-api", "jack", "--port", str(_free_port()),
               "--model", str(tmp_path / "never-loaded.pt"), "--no-data"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("flatgroove: error: --midi-clock: MIDI API jack is not available")
    assert err.count("\n") == 1, err


# -- on real JACK ports ---------------------------------------------------------------------------


@pytest.mark.jack
def test_serve_missing_clock_port_is_one_line_and_exit_2(jack, capsys, tmp_path):
    import mido

    from flatgroove.cli import main
    from flatgroove.live.ports import list_ports

    b = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    daw = b.open_output("clock", virtual=True, client_name="fg-srv-list")
    try:
        # The ports are opened before the model loads: a model that does not exist is not
        # reached, and the error is about the port.
        rc = main(["serve", "--midi-clock", "nope", "--midi-api", "jack",
                   "--port", str(_free_port()), "--model", str(tmp_path / "never-loaded.pt"),
                   "--no-data"])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert err.startswith("flatgroove: error: --midi-clock: no MIDI input port 'nope'")
        assert "fg-srv-list:clock" in err and "flatgroove ports" in err, err
        assert err.count("\n") == 1 and "--virtual" not in err, err
        # Nothing is left open: the failed port's client is gone.
        ins, outs = list_ports("jack")
        assert not any(n.startswith("flatgroove") for n in ins + outs), ins + outs
        # The same for a --midi-in next to a good clock: the clock that was opened is closed.
        rc = main(["serve", "--midi-clock", "fg-srv-list:clock", "--midi-in", "nope",
                   "--midi-api", "jack", "--port", str(_free_port()),
                   "--model", str(tmp_path / "never-loaded.pt"), "--no-data"])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("flatgroove: error: --midi-in: no MIDI input port"), err
        ins, outs = list_ports("jack")
        assert not any(n.startswith("flatgroove") for n in ins + outs), ins + outs
    finally:
        daw.close()


@pytest.mark.jack
def test_serve_follows_a_midi_clock_over_jack(jack, tmp_path):
    """`flatgroove serve --midi-clock PORT` as a user runs it: the port 'flatgroove:clock in'
    is connected to the DAW's clock; the page's jam (over its WebSocket) waits for the clock,
    naming the port, then follows the DAW's Start and ticks; SIGTERM closes the port."""
    import mido
    from websockets.sync.client import connect

    from flatgroove.live.ports import list_ports
    from test_web_api import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "tiny.pt", 4)
    b = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    daw = b.open_output("clock", virtual=True, client_name="fg-srv-daw")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    stop_ticks = threading.Event()
    proc = log = None

    def served() -> str:
        return (tmp_path / "serve.log").read_text()

    try:
        proc, log, _ = serving.start(
            [sys.executable, "-m", "flatgroove.cli", "serve", "--port", str(port), "--model",
             str(ckpt), "--no-data", "--midi-clock", "fg-srv-daw:clock", "--midi-api", "jack"],
            tmp_path / "serve.log", f"{url}/api/jam")
        ins, outs = list_ports("jack")
        assert "flatgroove:clock in" in outs, (ins, outs)  # ours, receiving the DAW's clock

        with connect(f"ws://127.0.0.1:{port}/ws/jam", open_timeout=20) as ws:
            def until(cond, timeout: float, what: str) -> dict:
                end = time.monotonic() + timeout
                st: dict = {}
                while time.monotonic() < end:
                    try:
                        msg = json.loads(ws.recv(timeout=max(0.1, end - time.monotonic())))
                    except TimeoutError:
                        break
                    if msg.get("type") == "state":
                        st = msg
                        if cond(st):
                            return st
                raise AssertionError(f"{what}; last state: {st}\nserver log:\n{served()}")

            st = until(lambda s: s.get("running") and s.get("clock") == "external", 30,
                       "the jam did not start on the external clock")
            assert st["clock_port"] == "fg-srv-daw:clock", st
            st = until(lambda s: s.get("halt", "").startswith("waiting for MIDI clock"), 20,
                       "the jam does not say it waits for the clock")
            assert st["beat"] is None and "fg-srv-daw:clock" in " ".join(st.get("log", []))

            def ticks() -> None:  # the DAW presses play: Start, then 24 ticks a beat at 240 BPM
                period = 60.0 / 240 / 24
                daw.send(mido.Message("start"))
                t0, k = time.monotonic(), 0
                while not stop_ticks.is_set():
                    while (d := t0 + k * period - time.monotonic()) > 0:
                        time.sleep(d)
                    daw.send(mido.Message("clock"))
                    k += 1

            threading.Thread(target=ticks, daemon=True).start()
            st = until(lambda s: s.get("halt") == "" and (s.get("bar") or 0) >= 1, 30,
                       "the jam did not follow the clock")
            until(lambda s: abs((s.get("bpm") or 0) - 240) < 12, 20,
                  "the jam's tempo is not the clock's")
        stop_ticks.set()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, served()  # not killed by the signal: closed its ports
        ins, outs = list_ports("jack")
        assert not any(n.startswith("flatgroove") for n in ins + outs), ins + outs  # closed
    finally:
        stop_ticks.set()
        if proc is not None:
            serving.stop(proc, log)
        daw.close()
