"""The live engine on real MIDI ports (JACK's dummy driver: no sound card needed).

A session-scoped fixture starts its own JACK server (a unique name, killed at teardown) and
skips these tests with the reason when it cannot. A second process, this file run as a
script, plays the drummer into the engine and listens to what comes back.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.jack

BPM = 150.0  # short bars, yet half a 16th (50 ms) absorbs a loaded JACK dummy server
SPB = 60.0 / BPM


@pytest.fixture(scope="session")
def jack():
    from flatgroove.live.jack import JackServer, JackUnavailable

    server = JackServer(f"flatgroove-test-{os.getpid()}")
    try:
        name = server.start()
    except JackUnavailable as e:
        pytest.skip(str(e))
    try:
        yield name
    finally:
        server.stop()


def _peer(cfg: dict) -> subprocess.Popen:
    from flatgroove.live.jack import JackUnavailable, start_peer

    try:
        return start_peer({"client": "fg-peer", **cfg})
    except JackUnavailable as e:
        pytest.fail(str(e))


def _names(port: str) -> str:
    from flatgroove.live.ports import list_ports

    ins, outs = list_ports("jack")
    return next(n for n in ins + outs if port in n)


def test_ports_are_listed_and_missing_ports_named(jack, capsys):
    import mido

    from flatgroove.cli import main
    from flatgroove.live.ports import PortError, TimedOutput, backend

    b = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    port = b.open_input("somewhere", virtual=True, client_name="fg-list")
    try:
        assert main(["ports", "--api", "jack"]) == 0
        assert "fg-list:somewhere" in capsys.readouterr().out
        with pytest.raises(PortError, match=r"no MIDI output port 'nope'(.|\n)*fg-list:somewhere"):
            TimedOutput(backend("jack"), "nope")
        assert TimedOutput(backend("jack"), "somewhere").name == "fg-list:somewhere"  # unique part
        capsys.readouterr()
        assert main(["jam", "--out", "nope", "--api", "jack", "--model", "flat"]) == 2
        err = capsys.readouterr().err
        assert "no MIDI output port 'nope'" in err and "fg-list:somewhere" in err
    finally:
        port.close()


def test_engine_answers_a_drummer_in_the_right_bar(jack):
    from flatgroove.drums import OUTPUT_PITCHES
    from flatgroove.live.jack import run_with_peer
    from flatgroove.live.session import LiveSession
    from test_live_engine import A, DoubleModel, controls

    call = [(t / 4.0, OUTPUT_PITCHES[d], v) for t, d, v in A.notes()]  # bars 1-2 only
    peer = _peer({"spb": SPB, "notes": call, "flood": 2000, "flood_dt": 0.00025, "flood_beat": 5.0,
                  "listen_s": 4 * 4 * SPB + 0.5})
    try:
        ses = LiveSession(DoubleModel(), _names("fg-peer-in:listen"), [_names("fg-peer-out:drums")],
                          controls=controls(mode="answer", a=0.0), bpm=BPM,
                          end_bar=4, keep_history=True,
                          api="jack")
    except BaseException:
        peer.kill()
        raise
    prio = os.sched_getscheduler(0)
    reason, got = run_with_peer(ses, peer, timeout=20)
    assert reason == "end of session"
    assert os.sched_getscheduler(0) == prio  # the real-time priority ends with the jam
    # The engine heard the call in bars 1-2: on a loaded machine JACK's dummy driver (no
    # real-time) can delay an event past half a 16th, so allow a few cells to differ.
    heard = ses.engine.recorder
    hits = np.concatenate([heard.bar(0)[0], heard.bar(1)[0]])
    wrong = int((hits != A.hits).sum())
    assert wrong <= max(2, A.n_hits // 10), ([e.text for e in ses.engine.log], wrong)
    flood = [e for b in ses.engine.bar_logs.values() for e in b.events if "flood" in e]
    assert flood, "the CC flood was not noticed"
    # ... and answered in bars 3-4: what the engine scheduled is the call played back (the
    # test model echoes what it heard when it decided, 2 beats before bar 3) ...
    sent = [x for x in ses.engine.scheduler.sent
            if x.message.type == "note_on" and x.message.velocity > 0]
    assert sent and all(8.0 - 1e-6 <= x.beat < 16.0 for x in sent)  # bars 3-4
    echo = np.zeros_like(A.hits)
    for x in sent:
        echo[round((x.beat - 8.0) * 4) % 32, OUTPUT_PITCHES.index(x.message.note)] = 1
    assert int((echo != A.hits).sum()) <= max(2, A.n_hits // 10)
    # ... and the other process received exactly those notes, on time.
    ons = sorted((t, m[1]) for t, m in got if m[0] == 0x99 and m[2] > 0)
    want = sorted((x.scheduled, x.message.note) for x in sent)
    assert len(ons) == len(want)
    assert sorted(p for _, p in ons) == sorted(p for _, p in want)
    err = np.array([t for t, _ in ons]) - np.array([t for t, _ in want])
    print(f"answer timing error: median {np.median(err) * 1e3:.2f} ms, max {np.abs(err).max() * 1e3:.2f} ms")
    assert np.median(np.abs(err)) < 0.010 and np.percentile(np.abs(err), 90) < 0.050, err
    # Every note ended; all-notes-off at the end.
    sounding: set[int] = set()
    for _, m in got:
        if m[0] == 0x99 and m[2] > 0:
            sounding.add(m[1])
        elif m[0] in (0x89, 0x99):
            sounding.discard(m[1])
    assert not sounding
    assert got[-1][1] == [0xB9, 123, 0]


def test_output_port_that_disappears_stops_the_jam_cleanly(jack):
    import mido

    from flatgroove.live.session import LiveSession
    from test_live_engine import DoubleModel, controls

    b = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    port = b.open_input("vanishing", virtual=True, client_name="fg-gone")
    ses = LiveSession(DoubleModel(), "fg-gone:vanishing", [], controls=controls(a=0.0), bpm=BPM,
                      start_at=time.monotonic() + 0.2, api="jack")
    ses.monitor.interval = 0.1
    threading.Timer(1.0, port.close).start()
    t = time.monotonic()
    try:
        reason = ses.run()
    finally:
        ses.close()
    assert "output port 'fg-gone:vanishing' disappeared" in reason
    assert time.monotonic() - t < 3.0
    assert not ses.engine.scheduler.sounding


def test_virtual_ports_can_be_created(jack):
    from flatgroove.live.ports import list_ports
    from flatgroove.live.session import LiveSession
    from test_live_engine import DoubleModel, controls

    ses = LiveSession(DoubleModel(), "fg-virtual-out", ["fg-virtual-in"], controls=controls(),
                      virtual=True, end_bar=0, api="jack")
    try:
        ins, outs = list_ports("jack")
        assert any("fg-virtual-out" in n for n in ins)  # others read from our output
        assert any("fg-virtual-in" in n for n in outs)
    finally:
        ses.close()

