"""Hostile jam scripts, settings and signals (issue 10, DESIGN §8): one validated schema for
controls, scripts and the command line, with ranges and a message naming the key; bounded
session length; SIGTERM and SIGHUP end a jam as Ctrl-C does, with every note ended."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flatgroove.live.controls import MAX_SESSION_BARS, ControlError, ControlMap, Script
from test_live_engine import B, DoubleModel, controls

FUZZ = settings(max_examples=80, deadline=1000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("text, words", [
    ("bars = 8.5", "bars"),
    ('bars = "many"', "bars"),
    ("bars = -5", "bars"),
    ("bars = 0", "bars"),
    (f"bars = {MAX_SESSION_BARS + 1}", "bars"),
    ("bpm = nan", "bpm"),
    ("bpm = -120", "bpm"),
    ("bpm = 1e9", "bpm"),
    ('bpm = "fast"', "bpm"),
    ('drum_map = "../../x"', "drum_map"),
    ("seed = -1", "seed"),
    ('seed = "x"', "seed"),
    ("a = 5", "a "),
    ("a = nan", "a "),
    ("decode_latency = nan", "decode_latency"),
    ("decode_latency = 1e12", "decode_latency"),
    ("decode_latency = -5", "decode_latency"),
    ("morph_bars = 0", "morph_bars"),
    ("morph_bars = -4", "morph_bars"),
    ("temperature = nan", "temperature"),
    ("temperature = -3", "temperature"),
    ("mode = 3", "mode"),
    ("target = true", "target"),
    ("[[change]]\nbar = 9223372036854775807\na = 0.5", "bar"),
    ("[[change]]\nbar = 1000000\na = 0.5", "bar"),
    ("[[change]]\nbar = 2\na = nan", "a "),
    ("[[change]]\nbar = 2\nbpm = inf", "bpm"),
    ("[[change]]\nbar = 2\nbeat = nan\na = 0.5", "beat"),
    ("[[change]]\nbar = 2\ntemperature = -1", "temperature"),
    ("[[change]]\nbar = 2\nmorph_bars = 0", "morph_bars"),
    ("[[change]]\nbar = 2\ncc = 1\nvalue = 300", "value"),
])
def test_bad_script_is_one_line_naming_the_key(text, words):
    with pytest.raises(ControlError) as e:
        Script.from_text(text, "S.toml")
    msg = str(e.value)
    assert msg.startswith("S.toml: ") and words in msg and "\n" not in msg, msg


def test_good_script_settings_are_kept():
    s = Script.from_text('bars = 12\nbpm = 100\na = 0.25\nseed = 3\ndrum_map = "td11"\n'
                         "decode_latency = 0.01\n[[change]]\nbar = 4\nbeat = 2.5\nbpm = 90\n")
    assert s.settings == {"bars": 12, "bpm": 100.0, "a": 0.25, "seed": 3, "drum_map": "td11",
                          "decode_latency": 0.01}
    assert s.changes[0].values == {"bpm": 90.0} and s.changes[0].beat == 2.5


@pytest.mark.parametrize("kw, words", [
    ({"bars": -3}, "bars"), ({"bars": 0}, "bars"), ({"bars": MAX_SESSION_BARS + 1}, "bars"),
    ({"a": float("nan")}, "a "), ({"seed": -1}, "seed"), ({"decode_latency": 1e12}, "decode"),
    ({"bpm": float("inf")}, "bpm"), ({"mode": "solo"}, "mode"),
])
def test_simulate_arguments_use_the_same_schema(kw, words):
    from flatgroove.live.simulate import simulate

    with pytest.raises(ControlError, match=words):
        simulate(DoubleModel(), B, **kw)


def test_session_is_bounded_by_its_last_change():
    """The session lasts to just past its last change; one past the bound is refused (above),
    not played out over a million bars."""
    from flatgroove.live.simulate import simulate

    res = simulate(DoubleModel(), B, {"change": [{"bar": 20, "a": 0.9}]}, controls=controls())
    assert res.n_bars == 23 and not res.hanging_notes()


@pytest.mark.parametrize("argv, words", [
    (["--bars", "-3"], "--bars"), (["--bars", "0"], "--bars"), (["--a", "nan"], "--a"),
    (["--seed", "-1"], "--seed"), (["--decode-latency", "nan"], "--decode-latency"),
    (["--decode-latency", "1e12"], "--decode-latency"), (["--bpm", "nan"], "--bpm"),
])
def test_jam_flags_are_checked_before_anything_runs(argv, words, capsys):
    from flatgroove.cli import main

    assert main(["jam", "--simulate", "rock", "--model", "/nonexistent.pt", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flatgroove: error: ") and words in err and err.count("\n") == 1


def test_controls_file_values_are_checked(tmp_path):
    f = tmp_path / "c.toml"
    for bad, words in (("[session]\na = nan\n", "a must be"), ("[session]\nseed = -1\n", "seed"),
                       ("[session]\nmorph_bars = 1.5\n", "morph_bars"),
                       ("[session]\ntemperature = inf\n", "temperature"),
                       ("[targets]\nnext_note = 128\n", "next_note")):
        f.write_text(bad)
        with pytest.raises(ControlError, match=words):
            ControlMap.load(f)


@pytest.mark.parametrize("text, message", [
    ("[session]\nmode = \"solo\"\n",
     "session.mode must be one of 'answer', 'accompany', 'morph', got 'solo'"),
    ("[session]\nfoo = 1\n", "unknown key 'session.foo' (known: a, clock_timeout, "),
    ("[sessio]\nmode = 1\n", "unknown key 'sessio' (known: blend, channels, "),
    ("session = 3\n", "[session] must be a table"),
    ("[blend]\ncc = [300]\n", "blend.cc must be a list of numbers 0..127, got [300]"),
    ("[blend]\ninvert = 1\n", "blend.invert must be true or false, got 1"),
    ("[channels]\ncontrol = 17\n", "channels.control must be a channel 1..16, or 0 for any"),
    ("[targets]\nbank = \"rock\"\n", "targets.bank must be a list of built-in names"),
    ("[modes]\ncc = -2\n", "modes.cc must be an integer in 0..127 or -1 (off), got -2"),
    ("[session]\nnote_length = 0\n", "session.note_length must be a number in 0.01..4 (beats)"),
])
def test_controls_file_is_one_schema_with_messages_naming_the_key(tmp_path, text, message):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ControlError) as e:
        ControlMap.load(f)
    assert str(e.value).startswith(f"{f}: {message}") and "\n" not in str(e.value)


@FUZZ
@given(st.dictionaries(st.sampled_from(["session", "channels", "blend", "targets", "modes",
                                        "transport"]),
                       st.dictionaries(st.sampled_from(["a", "mode", "seed", "cc", "control",
                                                        "bank", "invert", "hold_note", "notes",
                                                        "out_channel", "x"]),
                                       st.booleans() | st.integers() | st.floats()
                                       | st.text(max_size=6) | st.lists(st.integers(), max_size=3),
                                       max_size=3),
                       max_size=3))
def test_fuzzed_controls_tables_are_valid_or_one_controlerror(over):
    from flatgroove.live.controls import _merge, default_controls_text, tomllib

    try:
        c = ControlMap.from_dict(_merge(tomllib.loads(default_controls_text()), over), "fuzz")
    except ControlError as e:
        assert str(e).startswith("fuzz: ") and "\n" not in str(e)
        return
    assert 0 <= c.a <= 1 and c.mode in ("answer", "accompany", "morph")
    assert all(0 <= n <= 127 for n in c.blend_ccs + c.target_notes)


@FUZZ
@given(st.dictionaries(
    st.sampled_from(["bars", "bpm", "mode", "a", "target", "seed", "temperature", "morph_bars",
                     "decode_latency", "drum_map"]),
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.lists(st.integers(), max_size=3), max_size=4))
def test_fuzzed_settings_are_valid_or_one_controlerror(d):
    d = {k: v for k, v in d.items() if v is not None}
    try:
        s = Script.from_dict(d, "fuzz")
    except ControlError as e:
        assert str(e).startswith("fuzz: ") and "\n" not in str(e)
        return
    st_ = s.settings
    assert 1 <= st_.get("bars", 1) <= MAX_SESSION_BARS
    assert 20 <= st_.get("bpm", 120) <= 400 and 0 <= st_.get("a", 0) <= 1
    assert 0 <= st_.get("decode_latency", 0) <= 60


@FUZZ
@given(st.lists(st.dictionaries(
    st.sampled_from(["bar", "beat", "a", "bpm", "cc", "value", "note", "mode", "target",
                     "temperature", "morph_bars", "channel"]),
    st.booleans() | st.integers() | st.floats() | st.text(max_size=8), max_size=4), max_size=4))
def test_fuzzed_changes_are_valid_or_one_controlerror(changes):
    try:
        s = Script.from_dict({"change": changes}, "fuzz")
    except ControlError as e:
        assert str(e).startswith("fuzz: ") and "\n" not in str(e)
        return
    assert all(1 <= c.bar <= MAX_SESSION_BARS for c in s.changes)


# -- signals -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_signal_ends_the_jam_like_ctrl_c(sig):
    from flatgroove.live.clock import InternalClock, SystemTime
    from flatgroove.live.controls import Target
    from flatgroove.live.engine import Engine, InlineWorker
    from flatgroove.live.ports import MemoryInput, MemoryOutput
    from flatgroove.live.session import Terminated, run_realtime, stop_on_signals

    class Signalling(SystemTime):
        """Real time; the signal arrives (from this process) while a long note sounds."""

        sent = False

        def wait(self, until, wake=None):
            if eng.scheduler.sounding and not self.sent:
                self.sent = True
                os.kill(os.getpid(), getattr(signal, sig))
            super().wait(min(until, self.now() + 0.002), wake)

    ts = Signalling()
    out = MemoryOutput(ts.now)
    model = DoubleModel()
    eng = Engine(model, out, [MemoryInput()], controls(a=1.0, note_length=2.0),
                 InternalClock(240.0, start=ts.now() + 0.3), InlineWorker(model),
                 bank=[Target("B", groove=B)], end_bar=64)
    before = signal.getsignal(getattr(signal, sig))
    assert threading.current_thread() is threading.main_thread()
    with pytest.raises(Terminated), stop_on_signals():
        run_realtime(eng, ts, threading.Event())
    assert signal.getsignal(getattr(signal, sig)) == before  # restored
    assert eng.stop_reason == f"terminated ({sig})" and not eng.scheduler.sounding
    on = {m.note for _, m in out.sent if m.type == "note_on"}
    off = {m.note for _, m in out.sent if m.type == "note_off"}
    assert on and on <= off
    assert (out.sent[-1][1].type, out.sent[-1][1].control) == ("control_change", 123)
