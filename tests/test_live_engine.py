"""The live engine in simulation: modes, controls, timing, clocks and faults, all on a
virtual clock with in-memory ports and a small deterministic stand-in model."""

from __future__ import annotations

import math
import threading

import mido
import numpy as np
import pytest

from flatgroove.drums import DRUMS, N_DRUMS, OUTPUT_PITCHES
from flatgroove.groove import N_STEPS, STEPS_PER_BAR, Groove
from flatgroove.live.clock import PPQN, InternalClock, MidiClock, VirtualTime
from flatgroove.live.controls import ControlError, ControlMap, Script, Target
from flatgroove.live.engine import Engine, InlineWorker
from flatgroove.live.ports import MemoryInput, MemoryOutput
from flatgroove.live.scheduler import Scheduler
from flatgroove.live.simulate import VirtualRunner, simulate

KICK, SNARE, HH, OH, RIDE = (DRUMS.index(n) for n in ("kick", "snare", "closed_hh", "open_hh", "ride"))


def groove(cells: dict[int, list[int]], tempo: float = 120.0, name: str = "", vel: float = 100 / 127,
           offsets: dict[tuple[int, int], float] | None = None) -> Groove:
    """{drum: [steps]} -> Groove."""
    h = np.zeros((N_STEPS, N_DRUMS), np.float32)
    for d, steps in cells.items():
        h[steps, d] = 1
    o = np.zeros_like(h)
    for (s, d), x in (offsets or {}).items():
        o[s, d] = x
    return Groove(h, h * vel, o, tempo, name)


# A: rock with a different first half in bar 2 (so the two bars differ, but their last two
# beats agree: the engine fills an unplayed tail from the bar before).
A = groove({KICK: [0, 8, 16, 22, 24], SNARE: [4, 12, 20, 28], HH: list(range(0, 32, 2))},
           name="A", offsets={(4, SNARE): 0.2, (12, SNARE): -0.15, (28, SNARE): -0.15})
B = groove({KICK: [0, 4, 8, 12, 16, 20, 24, 28], OH: [2, 6, 10, 14, 18, 22, 26, 30],
            SNARE: [4, 12, 20, 28]}, name="B")
C = groove({RIDE: list(range(0, 32, 4)), KICK: [0, 16]}, name="C")


class DoubleModel:
    """Deterministic stand-in: encode = fixed random projection of the features;
    decode = the nearest groove among everything encoded so far (exact for those)."""

    latent_dim = 6

    def __init__(self, fail_on_call: int | None = None) -> None:
        rng = np.random.default_rng(1)
        self.P = rng.standard_normal((N_STEPS * 27, self.latent_dim)).astype(np.float32)
        self.seen: list[tuple[np.ndarray, Groove]] = []
        self.calls = 0
        self.fail_on_call = fail_on_call
        self.encode([A, B, C])

    def encode(self, grooves: list[Groove]) -> np.ndarray:
        z = np.stack([g.to_features().reshape(-1) @ self.P for g in grooves]).astype(np.float32)
        for zi, g in zip(z, grooves):
            if g.n_hits:
                self.seen.append((zi, g))
        return z

    def decode(self, z: np.ndarray, tempo: float = 120.0) -> list[Groove]:
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise RuntimeError("model exploded")
        out = []
        for zi in np.atleast_2d(z):
            d = [float(((zi - zs) ** 2).sum()) for zs, _ in self.seen]
            g = self.seen[int(np.argmin(d))][1]
            out.append(Groove(g.hits, g.velocities, g.offsets, tempo, g.name))
        return out


def controls(**kw) -> ControlMap:
    c = ControlMap.load()
    c.bank = []
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def half(g: Groove, i: int) -> np.ndarray:
    return g.hits[i * STEPS_PER_BAR : (i + 1) * STEPS_PER_BAR]


def machine_bar(res, bar: int) -> np.ndarray:
    g = res.machine[bar // 2]
    return np.zeros((STEPS_PER_BAR, N_DRUMS)) if g is None else half(g, bar % 2)


def check_no_hanging(res) -> None:
    """Every note-on is followed by its note-off, nothing sounds at the end, CC 123 sent."""
    sounding: dict[int, float] = {}
    for t, kind, pitch, _ in res.note_events():
        if kind == "on":
            assert pitch not in sounding, f"note {pitch} retriggered at {t} without a note-off"
            sounding[pitch] = t
        else:
            sounding.pop(pitch, None)
    assert not sounding, f"notes left hanging: {sounding}"
    last = res.sent[-1].message
    assert last.type == "control_change" and last.control == 123


# -- modes --------------------------------------------------------------------------------------
def test_accompany_follows_the_drummer_at_a0_and_the_target_at_a1():
    res = simulate(DoubleModel(), A, bars=8, controls=controls(mode="accompany", a=0.0), bank=[B])
    for b in range(2, 8):  # from bar 3 the engine has heard two bars
        assert np.array_equal(machine_bar(res, b), half(A, b % 2)), b
        assert res.bars[b].role == "plays along" and res.bars[b].source == "new pattern"
    res = simulate(DoubleModel(), A, bars=6, controls=controls(mode="accompany", a=1.0), bank=[B])
    for b in range(6):
        assert np.array_equal(machine_bar(res, b), half(B, 0)), b
    check_no_hanging(res)


def test_answer_mode_alternates_call_and_answer():
    res = simulate(DoubleModel(), A, bars=8, controls=controls(mode="answer", a=0.0), bank=[B])
    roles = [b.role for b in res.bars]
    assert roles == ["call 1/2", "call 2/2", "answer 1/2", "answer 2/2"] * 2
    assert res.machine[0] is None and res.machine[2] is None  # silent while the drummer calls
    assert res.machine[1] == Groove(A.hits, A.velocities, A.offsets, res.tempo)  # answers A
    assert [b.source for b in res.bars[2:4]] == ["new pattern", "pattern, 2nd bar"]
    check_no_hanging(res)


def test_morph_glides_from_the_drummer_to_the_target_over_n_bars():
    res = simulate(DoubleModel(), A, bars=8, bank=[B],
                   controls=controls(mode="morph", morph_bars=4), script={})
    ts = [b.a for b in res.bars]
    assert ts[:4] == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0]) and ts[4:] == [1.0] * 4
    assert [b.role.split()[1] for b in res.bars[:4]] == ["1/4", "2/4", "3/4", "4/4"]
    for b in range(3, 8):  # arrived: B, bar by bar in its own order
        assert np.array_equal(machine_bar(res, b), half(B, (b - 0) % 2)), b
    # A new target restarts the glide from where the machine is.
    res = simulate(DoubleModel(), A, bars=10, bank=[B, C], controls=controls(mode="morph", morph_bars=2),
                   script={"change": [{"bar": 6, "target": "C"}]})
    assert [b.a for b in res.bars[5:7]] == [0.0, 1.0]
    assert res.bars[5].target == "C" and "morph 1/2" in res.bars[5].role
    assert np.array_equal(machine_bar(res, 5), half(B, 1))  # bar 6 still B ...
    assert np.array_equal(machine_bar(res, 6), half(C, 1))  # ... then C


def test_a_from_cc_switches_bar_synchronously():
    c = controls(mode="accompany", a=0.0)
    script = {"change": [{"bar": 5, "cc": 1, "value": 127},
                         {"bar": 7, "beat": 2.5, "cc": 4, "value": 0}]}  # pedal, mid-bar
    res = simulate(DoubleModel(), A, script, bars=10, controls=c, bank=[B])
    a = [b.a for b in res.bars]
    assert a[:4] == [0.0] * 4 and a[4:7] == [1.0] * 3 and a[7:] == [0.0] * 3
    for b in range(4, 7):
        assert np.array_equal(machine_bar(res, b), half(B, 0))
    for b in range(7, 10):
        assert np.array_equal(machine_bar(res, b), half(A, b % 2))
    # Every machine bar is one whole pattern: nothing switches in the middle of a bar.
    bar_s = res.seconds_per_bar
    for s in res.sent:
        if s.message.type == "note_on":
            bar = math.floor((s.time - res.start) / bar_s + 1 / 32)
            assert res.bars[bar].a in (0.0, 1.0)


def test_mode_change_mid_bar_waits_for_the_next_bar():
    script = {"change": [{"bar": 3, "beat": 2.0, "mode": "answer"}]}
    res = simulate(DoubleModel(), A, script, bars=8, controls=controls(mode="accompany", a=0.0))
    assert [b.mode for b in res.bars] == ["accompany"] * 3 + ["answer"] * 5
    assert [b.role for b in res.bars[3:7]] == ["call 1/2", "call 2/2", "answer 1/2", "answer 2/2"]
    assert any("mode -> answer from bar 4" in e for e in res.bars[2].events)


def test_capture_makes_the_drummers_bars_the_target():
    # The drummer plays A for 4 bars, then C; at bar 5 a pad captures bars 3-4 (A).
    drummer = [A, A, C, C, C]
    script = {"change": [{"bar": 5, "beat": 1.5, "note": 42}]}
    res = simulate(DoubleModel(), drummer, script, bars=10, bank=[B],
                   controls=controls(mode="accompany", a=1.0))
    assert res.bars[6].target == "capture 1"
    assert any("captured bars 3-4" in e for e in res.bars[4].events)
    for b in range(6, 10):
        assert np.array_equal(machine_bar(res, b), half(A, 0)), b  # A, while the drummer plays C
    assert np.array_equal(machine_bar(res, 3), half(B, 0))


def test_sampled_targets_are_reproducible_with_a_seed():
    script = {"change": [{"bar": 2, "note": 43}]}
    r1 = simulate(DoubleModel(), A, script, bars=4, controls=controls(a=1.0), seed=3)
    r2 = simulate(DoubleModel(), A, script, bars=4, controls=controls(a=1.0), seed=3)
    assert r1.bars[1].target == "sample 1"
    assert [s.message for s in r1.sent] == [s.message for s in r2.sent]


def test_hold_silences_the_machine_and_ends_its_notes():
    script = {"change": [{"bar": 3, "beat": 1.1, "note": 47}, {"bar": 6, "note": 47}]}
    res = simulate(DoubleModel(), A, script, bars=8, controls=controls(a=0.0))
    assert [b.plays for b in res.bars] == [True] * 3 + [False] * 2 + [True] * 3
    cc123 = [s for s in res.sent if s.message.type == "control_change"]
    assert len(cc123) == 2  # the hold and the end
    check_no_hanging(res)


def test_hold_late_in_a_bar_silences_the_bar_already_planned():
    # beat 4.5 is after bar 4 was planned (decode_lead 2 beats): it must fall silent all the same
    script = {"change": [{"bar": 3, "beat": 4.5, "note": 47}, {"bar": 6, "note": 47}]}
    res = simulate(DoubleModel(), A, script, bars=8, controls=controls(a=0.0))
    assert [b.plays for b in res.bars] == [True] * 3 + [False] * 2 + [True] * 3
    assert res.bars[3].role == "hold"
    check_no_hanging(res)


def test_a_mode_change_taken_back_before_the_bar_line_is_cancelled():
    script = {"change": [{"bar": 3, "beat": 2.0, "mode": "answer"},
                         {"bar": 3, "beat": 2.5, "mode": "accompany"}]}
    res = simulate(DoubleModel(), A, script, bars=6, controls=controls(mode="accompany", a=0.0))
    assert [b.mode for b in res.bars] == ["accompany"] * 6
    assert any("mode stays accompany" in e for e in res.bars[2].events)


def test_targets_with_one_name_keep_their_own_encodings():
    # "rock.mid" from two folders: both are called "rock"; each must decode as itself
    from flatgroove.live.worker import DecodeRequest, Source, run_request

    model, cache = DoubleModel(), {}
    one, two = Target("rock", groove=B), Target("rock", groove=C)
    for i, (t, want) in enumerate([(one, B), (two, C), (one, B)]):
        req = DecodeRequest(i, i, [Source(1.0, groove=t.groove, key=t.key)], 120.0, 0.0)
        g, _ = run_request(model, req, cache)
        assert np.array_equal(g.hits, want.hits), (i, g.name)
    assert len(cache) == 2


def test_sampled_targets_past_eight_replace_the_oldest():
    from flatgroove.live.engine import OWN_TARGETS

    vt, model = VirtualTime(0.0), DoubleModel()
    eng = Engine(model, MemoryOutput(vt.now), [MemoryInput()], controls(a=1.0),
                 InternalClock(120.0, start=1.5), InlineWorker(model),
                 bank=[Target("B", groove=B), Target("C", groove=C)], end_bar=6)
    for _ in range(OWN_TARGETS + 3):
        eng.apply("sample", None, 0.0)
    names = [t.name for t in eng.bank]
    assert names[:2] == ["B", "C"] and len(names) == 2 + OWN_TARGETS  # a long jam's bank stays small
    assert sorted(names[2:], key=lambda n: int(n.split()[1])) == [
        f"sample {k}" for k in range(4, OWN_TARGETS + 4)]  # the oldest three gave way
    assert eng.target.name == f"sample {OWN_TARGETS + 3}"


# -- timing and determinism ----------------------------------------------------------------------------
def test_simulation_is_deterministic():
    script = {"change": [{"bar": 3, "cc": 1, "value": 90}, {"bar": 5, "mode": "morph"},
                         {"bar": 6, "note": 43}, {"bar": 8, "mode": "answer"}]}
    runs = [simulate(DoubleModel(), A, script, bars=12, controls=controls(), bank=[B, C], seed=7)
            for _ in range(2)]
    key = [[(s.time, s.message.bytes()) for s in r.sent] for r in runs]
    assert key[0] == key[1] and len(key[0]) > 100
    assert [b.line() for b in runs[0].bars] == [b.line() for b in runs[1].bars]


def test_notes_are_sent_exactly_when_scheduled_with_micro_timing():
    res = simulate(DoubleModel(), A, bars=6, controls=controls(a=0.0, note_length=0.125))
    spb = 60.0 / res.tempo
    ons = [s for s in res.sent if s.message.type == "note_on"]
    assert all(s.time == pytest.approx(s.scheduled, abs=1e-12) for s in res.sent)
    # Bar 3 plays A's first bar: its late snare (step 4, +0.2) and its early one.
    snare = OUTPUT_PITCHES[SNARE]
    bar = 2
    want = sorted(res.start + (4 * bar + (s + o) / 4) * spb for s, o in ((4, 0.2), (12, -0.15)))
    got = sorted(s.time for s in ons if s.message.note == snare
                 and res.start + 4 * bar * spb - 0.1 < s.time < res.start + 4 * (bar + 1) * spb - 0.1)
    assert got == pytest.approx(want, abs=1e-9)
    # Note-offs follow 1/8 beat later.
    offs = {round(s.scheduled, 9) for s in res.sent if s.message.type == "note_off"}
    assert all(round(s.time + 0.125 * spb, 9) in offs for s in ons)
    check_no_hanging(res)


def test_tempo_change_mid_bar_moves_queued_notes():
    script = {"bpm": 120, "change": [{"bar": 4, "beat": 3.0, "bpm": 150}]}
    res = simulate(DoubleModel(), A, script, bars=8, controls=controls(a=0.0))
    lines = sorted({round(s.scheduled, 9) for s in res.sent
                    if s.message.type == "note_on" and s.message.note == OUTPUT_PITCHES[HH]
                    and abs(s.beat % 4) < 1e-9})
    gaps = np.diff(lines)
    assert gaps[0] == pytest.approx(2.0)  # 120 BPM
    assert gaps[-1] == pytest.approx(1.6)  # 150 BPM, bar lines after the change
    assert any("tempo 120.0 -> 150.0" in e for e in res.bars[3].events)
    check_no_hanging(res)


def test_late_decode_repeats_the_previous_bar_and_keeps_time():
    c = controls(a=0.0, decode_lead=1.0)
    # Bars 4 and 5 take 0.6 s to decode: 1.2 beats, more than the 1 beat of lead.
    res = simulate(DoubleModel(), A, bars=7, controls=c,
                   decode_latency=lambda bar: 0.6 if bar in (3, 4) else 0.01)
    assert [b.source for b in res.bars[2:6]] == ["new pattern", "repeat (late)", "repeat (late)",
                                                 "new pattern"]
    assert "pattern for bar 4 not ready at the bar line; repeating bar 3" in res.bars[3].events
    assert np.array_equal(machine_bar(res, 3), machine_bar(res, 2))
    assert np.array_equal(machine_bar(res, 4), machine_bar(res, 2))
    assert all(s.time == pytest.approx(s.scheduled) for s in res.sent)
    check_no_hanging(res)


def test_failed_decode_is_reported_and_the_previous_bar_repeats():
    res = simulate(DoubleModel(fail_on_call=4), A, bars=6, controls=controls(a=0.0))
    assert res.bars[3].source == "repeat (failed)"
    assert any("model exploded" in e for e in res.bars[3].events)
    assert np.array_equal(machine_bar(res, 3), machine_bar(res, 2))
    assert res.bars[4].source == "new pattern"


def test_scheduler_retrigger_and_late_drop():
    out = MemoryOutput(lambda: 0.0)
    s = Scheduler(out)
    clock = InternalClock(120.0)
    s.note(0.0, 36, 100, 1.0)
    s.note(0.5, 36, 90, 1.0)  # retriggers before the first note-off
    s.note(0.6, 38, 90, 0.1)
    s.dispatch(0.0, clock)
    s.dispatch(0.25, clock)
    s.dispatch(0.5, clock)  # the 38 at 0.3 s is 0.2 s late: dropped, and its note-off too
    s.dispatch(10.0, clock)
    kinds = [(m.type, m.note) for _, m in out.sent]
    assert kinds == [("note_on", 36), ("note_off", 36), ("note_on", 36), ("note_off", 36)]
    assert s.dropped_late == 1 and not s.sounding


# -- external MIDI clock -------------------------------------------------------------------------------
def ticks(t0: float, n: int, bpm: float) -> list[float]:
    return [t0 + i * 60.0 / (bpm * PPQN) for i in range(n)]


def clock_engine(**kw):
    vt = VirtualTime(0.0)
    port = MemoryInput()
    out = MemoryOutput(vt.now)
    model = DoubleModel()
    eng = Engine(model, out, [port], controls(a=0.0, **kw), MidiClock(120.0), InlineWorker(model),
                 keep_history=True)
    return eng, VirtualRunner(eng, vt, port), out


def drum_notes(runner: VirtualRunner, g: Groove, bars: int) -> None:
    for k in range(0, bars, 2):
        for t, d, v in g.notes():
            runner.at_beat(4 * k + t / 4, mido.Message("note_on", channel=9, note=OUTPUT_PITCHES[d],
                                                       velocity=v))


def test_follows_an_external_clock_through_a_tempo_change():
    eng, runner, _ = clock_engine()
    # Start at 1 s, 120 BPM for 9.5 beats, then 150 BPM, 8 bars in all.
    t_start = 1.0
    first = ticks(t_start + 0.01, int(9.5 * PPQN), 120)
    t_change = first[-1] + 60 / (120 * PPQN)
    second = ticks(t_change, 32 * PPQN - len(first) + 1, 150)
    tick_times = np.array(first + second)
    runner.at_time(t_start, mido.Message("start"))
    for t in tick_times:
        runner.at_time(t, mido.Message("clock"))
    drum_notes(runner, A, 8)
    runner.run(until=tick_times[-1] - 0.01)
    assert eng.clock.bpm == pytest.approx(150.0, rel=0.005)
    assert any("tempo 120.0 -> 150.0" in e.text for e in eng.log)

    def true_time(beat: float) -> float:  # the tick stream's own time for a beat position
        return float(np.interp(beat * PPQN, np.arange(len(tick_times)), tick_times))

    ons = [s for s in eng.scheduler.sent if s.message.type == "note_on"]
    assert len(ons) > 60
    err = np.array([s.time - true_time(s.beat) for s in ons])
    settled = np.array([s.beat > 9.5 + 1 or s.beat < 9.5 for s in ons])
    assert np.abs(err[settled]).max() < 1e-3  # exact to within a millisecond
    assert np.abs(err).max() < 60 / (120 * PPQN)  # never more than a tick, even at the change
    # The engine heard the drummer in the right bars: bar 6 (0-based 5) is A's second bar.
    assert np.array_equal(eng.recorder.bar(5)[0], half(A, 1))
    assert eng.stop_reason == ""


def test_only_the_clock_port_drives_an_external_clock():
    # the drum module on another input runs its own clock (and sends Stop): --clock's port rules
    vt, port, kit = VirtualTime(0.0), MemoryInput(), MemoryInput()
    kit.clock_source = False
    out, model = MemoryOutput(vt.now), DoubleModel()
    eng = Engine(model, out, [port, kit], controls(a=0.0), MidiClock(120.0), InlineWorker(model),
                 keep_history=True)
    runner = VirtualRunner(eng, vt, port)
    tt = ticks(0.5, 8 * 4 * PPQN, 120)
    runner.at_time(0.49, mido.Message("start"))
    for t in tt:
        runner.at_time(t, mido.Message("clock"))
    for t in ticks(1.0, 4 * PPQN, 140):  # a beat of bar 1 onwards, between the real ticks
        runner.at_time(t + 0.001, lambda now: kit.feed(now, mido.Message("clock")))
    runner.at_time(3.0, lambda now: kit.feed(now, mido.Message("stop")))
    runner.run(until=tt[-1] - 0.01)
    assert eng.clock.bpm == pytest.approx(120.0, rel=0.005)
    assert not any("Stop" in e.text for e in eng.log)
    assert eng.current_bar == 7 and eng.stop_reason == ""


def test_external_clock_that_stops_is_detected_and_notes_are_ended():
    eng, runner, out = clock_engine()
    tt = ticks(0.5, 13 * PPQN + 7, 120)  # dies mid-bar
    runner.at_time(0.49, mido.Message("start"))
    for t in tt:
        runner.at_time(t, mido.Message("clock"))
    # It comes back 3 s later (continuing, no Start).
    back = ticks(tt[-1] + 3.0, 8 * PPQN, 120)
    for t in back:
        runner.at_time(t, mido.Message("clock"))
    drum_notes(runner, A, 6)
    runner.run(until=back[-1])
    texts = [e.text for e in eng.log]
    lost = next(e for e in eng.log if "external clock lost" in e.text)
    assert lost.time == pytest.approx(tt[-1] + 1.0, abs=0.06)  # > 2 beats of silence at 120 BPM
    assert any("clock ticks again" in t for t in texts)
    sent = [(t, m) for t, m in out.sent]
    during = [m for t, m in sent if tt[-1] + 1.06 < t < back[0]]
    assert during == []  # silent while the clock is gone
    sounding: set[int] = set()
    for t, m in sent:
        if m.type == "note_on":
            sounding.add(m.note)
        elif m.type == "note_off":
            sounding.discard(m.note)
        if lost.time < t < back[0]:
            assert not sounding
    assert any(m.type == "note_on" for t, m in sent if t > back[0])  # plays again


def test_stop_and_continue_messages():
    eng, runner, out = clock_engine()
    tt = ticks(0.5, 6 * PPQN, 120)
    runner.at_time(0.49, mido.Message("start"))
    for t in tt:
        runner.at_time(t, mido.Message("clock"))
    runner.at_time(tt[-1] + 0.001, mido.Message("stop"))
    again = ticks(tt[-1] + 2.0, 12 * PPQN, 120)
    runner.at_time(again[0] - 0.001, mido.Message("continue"))
    for t in again:
        runner.at_time(t, mido.Message("clock"))
    runner.run(until=again[-1])
    texts = [e.text for e in eng.log]
    assert any("MIDI clock Stop; holding" in t for t in texts)
    assert any(t.startswith("clock running") for t in texts[1:])
    stop_t = tt[-1] + 0.001
    assert not [m for t, m in out.sent if stop_t + 1e-6 < t < again[0] - 0.01]
    assert eng.current_bar >= 4


def test_midi_clock_tempo_estimate_tolerates_jitter():
    c = MidiClock(100.0)
    rng = np.random.default_rng(0)
    c.on_message(0.0, "start")
    for t in ticks(0.01, 96, 133.0):
        c.on_message(t + rng.uniform(-0.001, 0.001), "clock")
    assert c.bpm == pytest.approx(133.0, rel=0.02)
    assert c.beat_at(c.last_tick + 10.0) == pytest.approx((c.ticks + 1) / PPQN)  # capped


def test_midi_clock_stop_after_a_stall_keeps_it_stopped():
    c = MidiClock(120.0, timeout_beats=2.0)
    c.on_message(0.0, "start")
    for t in ticks(0.01, 48, 120.0):
        c.on_message(t, "clock")
    assert c.check(c.last_tick + 5.0) is not None and c.stalled  # ticks stop without a Stop
    assert c.on_message(c.last_tick + 6.0, "stop") == "clock stop"
    c.on_message(c.last_tick + 7.0, "clock")  # a stopped device's tempo ticks
    assert not c.running and not c.stalled
    c.on_message(c.last_tick + 8.0, "continue")
    assert c.running


# -- faults ---------------------------------------------------------------------------------------------------
def test_cc_flood_is_coalesced_and_timing_holds():
    # 20,000 CC messages within bar 3, 50 per millisecond, ending at a = 1.
    flood = [(4.0 + i * 0.00002, mido.Message("control_change", channel=0, control=1,
                                              value=int(127 * (i % 97) / 96)))
             for i in range(20000)]
    flood.append((4.0 + 20000 * 0.00002, mido.Message("control_change", channel=0, control=1,
                                                      value=127)))
    res = simulate(DoubleModel(), A, bars=8, controls=controls(a=0.0), bank=[B], inputs=flood)
    assert any("flood" in e for e in res.bars[2].events)
    assert [b.a for b in res.bars[4:]] == [1.0] * 4
    assert all(s.time == pytest.approx(s.scheduled) for s in res.sent)
    assert np.array_equal(machine_bar(res, 5), half(B, 0))
    check_no_hanging(res)


def test_malformed_and_unexpected_messages_are_ignored():
    junk = [[0x90], [0x90, 200, 10], [0xF7], [], [0xB0, 1], [0x13, 0x14], [0xFF, 0xFF, 0xFF]]
    odd = [mido.Message("pitchwheel", channel=3, pitch=100),
           mido.Message("sysex", data=[1, 2, 3]),
           mido.Message("aftertouch", channel=9, value=3),
           mido.Message("note_on", channel=9, note=99, velocity=90)]  # unmapped drum pitch
    inputs = [(3.1 + 0.01 * i, x) for i, x in enumerate(junk + odd)]
    clean = simulate(DoubleModel(), A, bars=6, controls=controls(a=0.0))
    res = simulate(DoubleModel(), A, bars=6, controls=controls(a=0.0), inputs=inputs)
    assert [s.message for s in res.sent] == [s.message for s in clean.sent]
    ev = " ".join(e for b in res.bars for e in b.events)
    assert "malformed" in ev and "pitchwheel x1" in ev and "sysex x1" in ev
    assert "unmapped drum note 99" in ev


def test_output_that_fails_stops_cleanly():
    vt = VirtualTime(0.0)
    port = MemoryInput()
    out = MemoryOutput(vt.now, fail_after=30)
    model = DoubleModel()
    eng = Engine(model, out, [port], controls(a=0.0), InternalClock(120.0, start=1.5),
                 InlineWorker(model), end_bar=20)
    VirtualRunner(eng, vt, port).run()
    assert eng.stopped and "sending to the output port failed" in eng.stop_reason


# -- controls files and scripts --------------------------------------------------------------------------------
def test_default_controls_file_loads_and_overrides_merge(tmp_path):
    c = ControlMap.load()
    assert c.mode == "accompany" and c.blend_ccs == [1, 4] and c.control_channel == 0
    f = tmp_path / "c.toml"
    f.write_text('[session]\nmode = "answer"\n[blend]\ncc = [11]\n[channels]\ncontrol = 0\n')
    c = ControlMap.load(f)
    assert (c.mode, c.blend_ccs, c.control_channel, c.drum_channel) == ("answer", [11], None, 9)
    assert c.actions(mido.Message("control_change", channel=5, control=11, value=127)) == [("a", 1.0)]
    for bad, msg in (('[session]\nmode = "solo"\n', "session.mode"),
                     ('[sessio]\nmode = 1\n', "unknown key 'sessio'"),
                     ('[blend]\ncc = [300]\n', "cc must be a list"),
                     ("[session\n", "not valid TOML"),
                     ("[session]\ndecode_lead = 6.0\n", r"decode_lead must be a number in 0\.5\.\.4")):
        f.write_text(bad)
        with pytest.raises(ControlError, match=msg):
            ControlMap.load(f)


def test_script_parsing():
    s = Script.from_text('bars = 8\n[[change]]\nbar = 3\ncc = 1\nvalue = 64\n'
                         '[[change]]\nbar = 2\nmode = "answer"\n')
    assert [c.kind for c in s.changes] == ["mode", "cc"] and s.settings["bars"] == 8
    for bad, msg in (("[[change]]\ncc = 1\nvalue = 2\n", "needs bar"),
                     ("[[change]]\nbar = 1\ncc = 1\n", "cc needs a value"),
                     ('[[change]]\nbar = 1\nmode = "x"\n', "mode must be"),
                     ('[[change]]\nbar = 1\nmode = "answer"\ntarget = "rock"\n', "exactly one"),
                     ("tempo = 3\n", "unknown setting")):
        with pytest.raises(ControlError, match=msg):
            Script.from_text(bad)


def test_targets_from_midi_files(tmp_path):
    from flatgroove.live.controls import load_target
    from flatgroove.midi import write_midi

    p = write_midi([C], tmp_path / "c.mid")
    t = load_target(str(p))
    assert isinstance(t, Target) and t.groove == C


def test_cli_simulate_writes_a_session(tmp_path, capsys):
    pytest.importorskip("flatgroove.presets")
    from flatgroove.cli import main
    from flatgroove.midi import read_grooves, write_midi

    drummer = write_midi([A, A, A], tmp_path / "drummer.mid")
    script = tmp_path / "s.toml"
    script.write_text('[[change]]\nbar = 3\nmode = "answer"\n[[change]]\nbar = 5\ncc = 1\nvalue = 127\n')
    out = tmp_path / "session.mid"
    rc = main(["jam", "--simulate", str(drummer), "--script", str(script), "--out", str(out),
               "--model", "flat"])
    text = capsys.readouterr().out
    assert rc == 0 and out.exists()
    assert "bar   3  answer" in text and "call 1/2" in text
    tracks = read_grooves(out, hop_bars=2, drop_empty=False)  # both tracks merged as drums
    assert len(tracks) >= 3
    assert main(["jam", "--model", "flat"]) == 2  # no --out: a one-line error


def test_terminal_view_renders_an_engine_snapshot():
    from flatgroove.live.view import render

    vt = VirtualTime(0.0)
    port = MemoryInput()
    model = DoubleModel()
    eng = Engine(model, MemoryOutput(vt.now), [port], controls(a=0.3), InternalClock(120.0, start=1.5),
                 InlineWorker(model), bank=[Target("B", groove=B)], end_bar=6)
    runner = VirtualRunner(eng, vt, port)
    drum_notes(runner, A, 6)
    runner.run(until=1.5 + 4 * 2.0 + 0.6)  # bar 5, beat 2
    screen = render(eng.snapshot(vt.now()))
    assert "bar   5  beat 2" in screen and "120.0 BPM (internal clock)" in screen
    assert "a = 0.30" in screen and "target B" in screen and "plays along" in screen
    assert "drummer, bars 4-5" in screen and "machine, decoded pattern, now playing its bar 1" in screen
    assert screen.count("BD ") == 2  # two grids


def test_ctrl_c_ends_every_sounding_note():
    from flatgroove.live.clock import SystemTime
    from flatgroove.live.session import run_realtime

    class Interrupting(SystemTime):
        """Real time, but Ctrl-C arrives while a long note sounds."""

        def wait(self, until, wake=None):
            if eng.scheduler.sounding:
                raise KeyboardInterrupt
            super().wait(min(until, self.now() + 0.002), wake)

    ts = Interrupting()
    port = MemoryInput()
    out = MemoryOutput(ts.now)
    model = DoubleModel()
    eng = Engine(model, out, [port], controls(a=1.0, note_length=2.0),
                 InternalClock(240.0, start=ts.now() + 0.3), InlineWorker(model),
                 bank=[Target("B", groove=B)])
    with pytest.raises(KeyboardInterrupt):
        run_realtime(eng, ts, threading.Event())
    assert eng.stop_reason == "interrupted (Ctrl-C)" and not eng.scheduler.sounding
    on = {m.note for _, m in out.sent if m.type == "note_on"}
    off = {m.note for _, m in out.sent if m.type == "note_off"}
    assert on and on <= off
    assert (out.sent[-1][1].type, out.sent[-1][1].control) == ("control_change", 123)


def test_pads_and_program_change_select_targets():
    script = {"change": [{"bar": 2, "note": 37}, {"bar": 3, "note": 40}, {"bar": 4, "note": 41},
                         {"bar": 5, "program": 0}, {"bar": 6, "note": 38, "channel": 10}]}
    res = simulate(DoubleModel(), A, script, bars=6, bank=[B, C], controls=controls(a=1.0))
    # pad 37 -> slot 1 (C); next -> B (wraps); previous -> C; program 0 -> B; a note on the
    # drum channel is a snare, not a pad.
    assert [b.target for b in res.bars] == ["B", "C", "B", "C", "B", "B"]
    assert np.array_equal(machine_bar(res, 1), half(C, 0))


def test_an_output_closed_right_after_its_last_message_lets_it_leave_first():
    """rtmidi hands a message to the MIDI system's next cycle; a jam's last message is its
    all-notes-off, so closing the port must not race it (TimedOutput.close waits FLUSH_S)."""
    import time

    import mido

    from flatgroove.live.ports import TimedOutput

    events: list[tuple[str, float]] = []

    class FakeRt:
        def send_message(self, b):
            events.append(("send", time.monotonic()))

        def close_port(self):
            events.append(("close", time.monotonic()))

        def delete(self):
            pass

    out = TimedOutput.__new__(TimedOutput)
    out._port, out._rt, out.name, out._last_send = None, FakeRt(), "fake", float("-inf")
    out.send(mido.Message("control_change", channel=9, control=123, value=0))
    out.close()
    assert [e for e, _ in events] == ["send", "close"]
    assert events[1][1] - events[0][1] >= TimedOutput.FLUSH_S - 1e-3
