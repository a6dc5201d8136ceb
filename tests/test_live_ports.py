"""The live engine on real MIDI ports (JACK's dummy driver: no sound card needed).

A session-scoped fixture starts its own JACK server (a unique name, killed at teardown) and
skips these tests with the reason when it cannot. A second process, this file run as a
script, plays the drummer into the engine and listens to what comes back.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.jack

BPM = 150.0  # short bars, yet half a 16th (50 ms) absorbs a loaded JACK dummy server
SPB = 60.0 / BPM




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
        out = TimedOutput(backend("jack"), "somewhere")
        assert out.name == "fg-list:somewhere"  # the unique part of a name finds the port
        out.close()
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
                  "listen_s": 4 * 4 * SPB + 2.0})  # late deliveries still count
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
    assert got[-1][1] == [0xB9, 123, 0], got[-6:]  # the stop's all-notes-off arrived, last


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



def test_a_session_that_fails_to_start_closes_its_ports(jack):
    # a bad --target is found after the ports are open: they must be closed again, so the
    # next jam gets the same port names (not "fg-leak-out 2")
    from flatgroove.errors import UserError
    from flatgroove.live.ports import list_ports
    from flatgroove.live.session import LiveSession
    from test_live_engine import DoubleModel, controls

    with pytest.raises(UserError, match="nosuch"):
        LiveSession(DoubleModel(), "fg-leak-out", ["fg-leak-in"], controls=controls(),
                    virtual=True, end_bar=0, api="jack", target="nosuch")
    ins, outs = list_ports("jack")
    assert not any("fg-leak" in n for n in ins + outs), (ins, outs)


@pytest.mark.parametrize("layout", ["one client", "rtmidi fallback"])
def test_own_ports_are_named_by_role_and_listed_apart(jack, capsys, monkeypatch, layout):
    """A jam's ports: all on the client 'flatgroove' (JACK-Client); with that switched off,
    python-rtmidi's client per port, named for its role. `flatgroove ports` says which."""
    import mido

    from flatgroove.cli import main
    from flatgroove.live.ports import list_ports
    from flatgroove.live.session import LiveSession
    from test_live_engine import DoubleModel, controls

    if layout == "one client":
        machine, drums, clock = "flatgroove:machine out", "flatgroove:drums in", "flatgroove:clock in"
    else:
        monkeypatch.setenv("FLATGROOVE_MIDI_ONE_CLIENT", "0")
        machine, drums, clock = ("flatgroove-machine:machine out", "flatgroove-drums:drums in",
                                 "flatgroove-clock:clock in")
    b = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    synth = b.open_input("synth", virtual=True, client_name="fg-synth")
    kit = b.open_output("kit", virtual=True, client_name="fg-kit")
    daw = b.open_output("clock", virtual=True, client_name="fg-daw")
    try:
        ses = LiveSession(DoubleModel(), "fg-synth:synth", ["fg-kit:kit"], clock_port="fg-daw:clock",
                          controls=controls(), end_bar=0, api="jack", monitor=False)
        try:
            ins, outs = list_ports("jack")
            own = {n for n in ins + outs if n.startswith("flatgroove")}
            assert own == {machine, drums, clock}, own
            assert machine in ins  # others read the machine's notes
            capsys.readouterr()
            assert main(["ports", "--api", "jack"]) == 0
            out = capsys.readouterr().out
        finally:
            ses.close()
        ins, outs = list_ports("jack")
        assert not any(n.startswith("flatgroove") for n in [*ins, *outs])
    finally:
        for p in (synth, kit, daw):
            p.close()
    src, dst, mine = (out.split("Sources:")[1].split("Destinations:")[0],
                      out.split("Destinations:")[1].split("flatgroove's own ports")[0],
                      out.split("flatgroove's own ports")[1])
    head = out.splitlines()[0]
    assert head.startswith("MIDI system: JACK")
    if layout == "one client":
        assert "one client 'flatgroove' holds all of flatgroove's ports (JACK-Client)" in head
    else:
        assert "one client per port" in head and "python-rtmidi fallback" in head
        assert "FLATGROOVE_MIDI_ONE_CLIENT=0" in head
    assert "fg-kit:kit" in src and "fg-daw:clock" in src and "fg-synth:synth" in dst
    listed = [ln.strip() for ln in (src + dst).splitlines() if ln.startswith("  ")]
    assert listed and not any(n.startswith("flatgroove") for n in listed)  # ours: apart ...
    lines = {ln.split("  ")[1].strip(): ln for ln in mine.splitlines()[1:] if ln.strip()}
    assert "sends" in lines[machine]  # ... saying which side is which
    assert "receives" in lines[drums] and "receives" in lines[clock]


@pytest.fixture(scope="session")
def alsa():
    """ALSA's sequencer, where the kernel has one (not in containers without /dev/snd)."""
    if not os.path.exists("/dev/snd/seq"):
        pytest.skip("no ALSA sequencer here (/dev/snd/seq is absent: no snd-seq kernel module "
                    "or no /dev/snd in this container)")
    import mido

    try:
        mido.Backend("mido.backends.rtmidi/LINUX_ALSA", load=True).get_output_names()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"ALSA sequencer not usable: {e}")
    return "alsa"


@pytest.fixture(params=["jack", "alsa"])
def midi_system(request):
    request.getfixturevalue(request.param)  # starts JACK / skips without ALSA
    return request.param


def test_one_client_carries_notes_and_clock(midi_system, capsys):
    """On real ports (JACK's dummy driver; ALSA where there is a sequencer): the drums, the
    clock and the machine are three named ports of one client 'flatgroove'; a DAW's notes
    and clock reach the engine's inputs (clock wakes it), the machine's notes reach a synth,
    and `flatgroove ports` lists them under flatgroove's own."""
    import queue

    import mido

    from flatgroove.cli import main
    from flatgroove.live import oneclient
    from flatgroove.live.ports import TimedInput, TimedOutput, backend, list_ports

    api = midi_system
    rb = mido.Backend("mido.backends.rtmidi/" + {"jack": "UNIX_JACK", "alsa": "LINUX_ALSA"}[api])
    heard: queue.Queue = queue.Queue()
    synth = rb.open_input("synth", virtual=True, client_name="fg-synth", callback=heard.put)
    kit = rb.open_output("kit", virtual=True, client_name="fg-kit")
    daw = rb.open_output("clock", virtual=True, client_name="fg-daw")
    wake = threading.Event()
    b = backend(api)
    opened = []
    try:
        drums = TimedInput(b, "fg-kit:kit", role="drums")
        opened.append(drums)
        clock = TimedInput(b, "fg-daw:clock", role="clock", wake=wake)
        opened.append(clock)
        out = TimedOutput(b, "fg-synth:synth", role="machine")
        opened.append(out)
        assert b.why_not is None
        own = {re.sub(r" \d+:\d+$", "", p.own_name) for p in opened}
        assert own == {"flatgroove:drums in", "flatgroove:clock in", "flatgroove:machine out"}
        if api == "alsa":  # one client id for all three: 'flatgroove:drums in 130:0' ...
            assert len({p.own_name.rsplit(" ", 1)[1].split(":")[0] for p in opened}) == 1
        ins, outs = list_ports(api)
        mine = sorted(re.sub(r" \d+:\d+$", "", n) for n in ins + outs if n.startswith("flatgroove"))
        assert mine == sorted(own), mine  # no other flatgroove client (no '-01', no monitor)
        time.sleep(0.2)  # connections settle
        t0 = time.monotonic()
        kit.send(mido.Message("note_on", channel=9, note=38, velocity=90))
        daw.send(mido.Message("start"))
        for _ in range(3):
            daw.send(mido.Message("clock"))
        out.send(mido.Message("note_on", channel=9, note=36, velocity=100))
        assert wake.wait(2.0), "the clock did not wake the engine"
        got: dict[str, list] = {"drums": [], "clock": []}
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and (len(got["drums"]) < 1 or len(got["clock"]) < 4):
            got["drums"] += drums.drain(100)
            got["clock"] += clock.drain(100)
            time.sleep(0.01)
        assert [list(m) for _, m in got["drums"]] == [[0x99, 38, 90]]
        assert [list(m) for _, m in got["clock"]] == [[0xFA], [0xF8], [0xF8], [0xF8]]
        assert all(t0 - 0.01 <= t <= time.monotonic() for t, _ in got["drums"] + got["clock"])
        msg = heard.get(timeout=2.0)
        assert msg.bytes() == [0x99, 36, 100]
        capsys.readouterr()
        assert main(["ports", "--api", api]) == 0
        listing = capsys.readouterr().out
    finally:
        for p in opened:
            p.close()
        for p in (synth, kit, daw):
            p.close()
    assert "one client 'flatgroove' holds all of flatgroove's ports" in listing.splitlines()[0]
    mine_listed = listing.split("flatgroove's own ports")[1]
    for port, side in (("flatgroove:drums in", "receives"), ("flatgroove:clock in", "receives"),
                       ("flatgroove:machine out", "sends")):
        line = next(ln for ln in mine_listed.splitlines() if port in ln)
        assert side in line, line
    others = listing.split("flatgroove's own ports")[0]
    assert not any(ln.strip().startswith("flatgroove") for ln in others.splitlines()[1:])
    # The client closed with its last port.
    assert oneclient.current(b.system) is None
    ins, outs = list_ports(api)
    assert not any(n.startswith("flatgroove") for n in [*ins, *outs])


def test_no_midi_library_noise_when_jack_is_not_running(capfd, monkeypatch):
    from flatgroove.cli import main

    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"flatgroove-absent-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    assert main(["ports", "--api", "jack"]) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert err.strip().splitlines() == [err.strip()] and err.startswith("flatgroove: error: ")
    assert "Cannot connect to server" not in err and "JackShm" not in err


def test_jam_help_explains_external_clock(capsys):
    from flatgroove.cli import main

    with pytest.raises(SystemExit):
        main(["jam", "--help"])
    text = capsys.readouterr().out
    for words in ("Start", "Stop", "Continue", "Song position pointer", "clock_timeout",
                  "waits in silence", "one status line per bar", "machine out"):
        assert words in text, words


def test_live_jam_on_the_internal_clock_prints_a_line_per_bar(jack, capsys, tmp_path):
    import mido

    from flatgroove.cli import main
    from test_web_api import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "tiny.pt", 4)
    b = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    synth = b.open_input("synth", virtual=True, client_name="fg-bars")
    try:
        rc = main(["jam", "--out", "fg-bars:synth", "--api", "jack", "--model", str(ckpt),
                   "--bpm", "240", "--bars", "3", "--no-realtime"])
    finally:
        synth.close()
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "internal clock at 240 BPM" in out
    bars = [ln for ln in out.splitlines() if re.match(r"bar +\d+  ", ln)]  # not 'bar 3: ...' notes
    assert [int(ln.split()[1]) for ln in bars] == [1, 2, 3], out
    assert all("a=" in ln and "target=" in ln for ln in bars)
    assert "jam ended: end of session" in out
    # each event once: as it happens, not again under its bar's status line
    assert out.count("stopped: end of session (") == 1, out


def test_live_jam_on_an_external_clock_says_it_waits_then_follows(jack, tmp_path):
    """`flatgroove jam --clock PORT` in a terminal (piped): says it is waiting for MIDI clock,
    stays silent, follows the DAW's Start and ticks once they come, and ends cleanly on
    SIGTERM. The clock comes over real JACK ports into 'flatgroove:clock in'."""
    import queue
    import signal
    import sys

    import mido

    from test_web_api import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "tiny.pt", 4)
    b = mido.Backend("mido.backends.rtmidi/UNIX_JACK")
    heard: queue.Queue = queue.Queue()
    synth = b.open_input("synth", virtual=True, client_name="fg-ext-synth", callback=heard.put)
    daw = b.open_output("clock", virtual=True, client_name="fg-ext-daw")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flatgroove.cli", "jam", "--out", "fg-ext-synth:synth",
         "--clock", "fg-ext-daw:clock", "--api", "jack", "--model", str(ckpt), "--no-realtime"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    out: list[str] = []

    def until(pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ln = lines.get(timeout=0.2)
            except queue.Empty:
                if proc.poll() is not None:
                    break
                continue
            out.append(ln)
            if re.search(pattern, ln):
                return ln
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(out)}")

    try:
        until(r"waiting for MIDI clock from fg-ext-daw:clock: press play", 60)
        time.sleep(1.5)  # no clock: silence
        assert heard.empty(), "the machine played without a clock"
        period = 60.0 / 240 / 24
        daw.send(mido.Message("start"))
        t0 = time.monotonic()
        for k in range(24 * 4 * 3):  # three bars at 240 BPM
            while (d := t0 + k * period - time.monotonic()) > 0:
                time.sleep(d)
            daw.send(mido.Message("clock"))
        until(r"clock running \(external", 10)
        proc.send_signal(signal.SIGTERM)
        until(r"jam ended: terminated \(SIGTERM\)", 15)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        synth.close()
        daw.close()


def test_one_client_switch(monkeypatch):
    """JACK by default; ALSA only when asked (its path has not met a real sequencer); 0 = never."""
    from flatgroove.live import oneclient

    monkeypatch.delenv("FLATGROOVE_MIDI_ONE_CLIENT", raising=False)
    assert oneclient.disabled("JACK") is None
    assert "FLATGROOVE_MIDI_ONE_CLIENT=1" in oneclient.disabled("ALSA")
    assert "FLATGROOVE_MIDI_ONE_CLIENT=1" in oneclient.probe("ALSA")
    monkeypatch.setenv("FLATGROOVE_MIDI_ONE_CLIENT", "1")
    assert oneclient.disabled("ALSA") is None and oneclient.disabled("JACK") is None
    monkeypatch.setenv("FLATGROOVE_MIDI_ONE_CLIENT", "0")
    assert oneclient.disabled("ALSA") and oneclient.disabled("JACK")
