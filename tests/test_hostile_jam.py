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


@pytest.mark.parametrize("text, message", [
    ("bpm = nan", "bpm must be a number in 20..400 (BPM), got nan"),
    ("decode_latency = -5", "decode_latency must be a number in 0..60 (seconds), got -5"),
    (f"bars = {MAX_SESSION_BARS + 1}",
     f"bars must be an integer in 1..{MAX_SESSION_BARS} (bars), got {MAX_SESSION_BARS + 1}"),
    ('drum_map = "../../x"', "drum_map must be 'gm' or 'td11', got '../../x'"),
    ("tempo = 3\nfoo = 1", "unknown setting(s) ['foo', 'tempo']; known: ['a', 'bars', "),
    ("change = 3", "'change' must be a list of [[change]] tables"),
    ("change = [3]", "change 1: must be a table"),
    ("[[change]]\ncc = 1\nvalue = 2", "change 1: needs bar = N (an integer >= 1, "),
    ("[[change]]\nbar = 1000000\na = 0.5",
     f"change 1: bar must be an integer in 1..{MAX_SESSION_BARS} (bars), got 1000000"),
    ("[[change]]\nbar = true\na = 0.5", "change 1: bar must be an integer in 1..4096"),
    ("[[change]]\nbar = 2\nbeat = 5\na = 0.5",
     "change 1: beat must be a number from 1 to below 5 (the beat in the bar), got 5"),
    ("[[change]]\nbar = 1", "change 1: needs exactly one control of ['a', 'bpm', 'capture', "),
    ("[[change]]\nbar = 2\ntempo = 90",  # a misspelt control is named
     ("change 1: needs exactly one control of ['a', 'bpm', 'capture', 'cc', 'hold', 'mode', "
      "'morph_bars', 'note', 'program', 'sample', 'target', 'temperature'], got none; "
      "unknown key(s) ['tempo']")),
    ('[[change]]\nbar = 1\nmode = "answer"\ntarget = "rock"',
     "change 1: needs exactly one control of ['a', "),
    ("[[change]]\nbar = 1\ncc = 1", "change 1: cc needs a value (an integer in 0..127)"),
    ("[[change]]\nbar = 2\ncc = 1\nvalue = 300",
     "change 1: value must be an integer in 0..127, got 300"),
    ("[[change]]\nbar = 1\ncc = 1\nvalue = 2\nvelocity = 3\nfoo = 1",
     ("change 1: ['foo', 'velocity'] do not go with 'cc' (a cc change takes bar, beat, cc, "
      "value, channel)")),
    ("[[change]]\nbar = 1\nnote = 36\nvelocity = 0",
     "change 1: velocity must be an integer in 1..127, got 0"),
    ("[[change]]\nbar = 1\nprogram = 3\nchannel = 17",
     "change 1: channel must be a channel 1..16, got 17"),
    ('[[change]]\nbar = 1\nmode = "solo"',
     "change 1: mode must be one of 'answer', 'accompany', 'morph', got 'solo'"),
    ("[[change]]\nbar = 1\ntarget = true", "change 1: target must be a bank slot 0..127, or "),
    ("[[change]]\nbar = 1\nbpm = 1e9", "change 1: bpm must be a number in 20..400 (BPM)"),
    ("[[change]]\nbar = 1\ncapture = 1",
     "change 1: capture must be true (it happens at that bar), got 1"),
    ("[[change]]\nbar = 1\nhold = false", "change 1: hold must be true"),
    ("[[change]]\nbar = 1\na = 0.5\n[[change]]\nbar = 2\nmorph_bars = 1.5",
     "change 2: morph_bars must be an integer in 1..1024 (bars), got 1.5"),
    ("[[change]\n", "not valid TOML"),
])
def test_script_is_one_schema_with_messages_naming_the_key(text, message):
    """The whole script is one model (ScriptFile: the settings and a table per kind of
    [[change]]); a bad one is one line naming the change, the key and what it must be."""
    with pytest.raises(ControlError) as e:
        Script.from_text(text, "S.toml")
    assert str(e.value).startswith(f"S.toml: {message}") and "\n" not in str(e.value), str(e.value)


def test_every_kind_of_change_is_read():
    s = Script.from_text("""
[[change]]
bar = 4
cc = 1
value = 64
channel = 2
[[change]]
bar = 3
beat = 2.5
note = 36
[[change]]
bar = 3
program = 5
[[change]]
bar = 2
mode = "morph"
[[change]]
bar = 2
target = 3
[[change]]
bar = 2
target = "funk"
[[change]]
bar = 1
a = 1
[[change]]
bar = 1
bpm = 90
[[change]]
bar = 5
capture = true
[[change]]
bar = 5
sample = true
[[change]]
bar = 5
temperature = 0.5
[[change]]
bar = 5
morph_bars = 4
[[change]]
bar = 6
hold = true
""", "S.toml")
    got = [(c.bar, c.beat, c.kind, c.values) for c in s.changes]
    assert got == [
        (1, None, "a", {"a": 1.0}), (1, None, "bpm", {"bpm": 90.0}),
        (2, None, "mode", {"mode": "morph"}), (2, None, "target", {"target": 3}),
        (2, None, "target", {"target": "funk"}),
        (3, None, "program", {"program": 5}), (3, 2.5, "note", {"note": 36, "velocity": 100}),
        (4, None, "cc", {"cc": 1, "value": 64, "channel": 2}),
        (5, None, "capture", {"capture": True}), (5, None, "sample", {"sample": True}),
        (5, None, "temperature", {"temperature": 0.5}), (5, None, "morph_bars", {"morph_bars": 4}),
        (6, None, "hold", {"hold": True}),
    ]
    assert s.last_bar == 6 and s.settings == {}


def test_command_line_flags_share_the_scripts_types():
    from flatgroove.live.controls import BARS, DECODE_LATENCY, check

    assert check(12, BARS, "--bars", "jam") == 12
    with pytest.raises(ControlError, match=r"^jam: --bars must be an integer in 1\.\.4096 "
                                           r"\(bars\), got -3$"):
        check(-3, BARS, "--bars", "jam")
    with pytest.raises(ControlError, match=r"--decode-latency must be a number in 0\.\.60 "
                                           r"\(seconds\), got nan"):
        check(float("nan"), DECODE_LATENCY, "--decode-latency", "jam")


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
    st.sampled_from(["bar", "beat", "a", "bpm", "cc", "value", "note", "velocity", "program",
                     "mode", "target", "temperature", "morph_bars", "channel", "capture",
                     "sample", "hold"]),
    st.booleans() | st.integers() | st.floats() | st.text(max_size=8), max_size=4), max_size=4))
def test_fuzzed_changes_are_valid_or_one_controlerror(changes):
    try:
        s = Script.from_dict({"change": changes}, "fuzz")
    except ControlError as e:
        assert str(e).startswith("fuzz: ") and "\n" not in str(e)
        return
    assert all(1 <= c.bar <= MAX_SESSION_BARS for c in s.changes)
    for c in s.changes:
        assert c.beat is None or 1 <= c.beat < 5
        assert all(0 <= v <= 127 for k, v in c.values.items()
                   if k in ("cc", "value", "note", "velocity", "program"))
        assert 1 <= c.values.get("channel", 1) <= 16
        if c.kind in ("capture", "sample", "hold"):
            assert c.values[c.kind] is True


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
