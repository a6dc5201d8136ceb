"""MIDI <-> Groove: round trips, quantisation, windowing, what is ignored, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from flatgroove.drums import DRUMS, N_DRUMS, OUTPUT_PITCHES
from flatgroove.groove import N_STEPS, STEPS_PER_BAR, Groove
from flatgroove.midi import (
    MidiError,
    read_drums,
    read_groove,
    read_grooves,
    window_arrays,
    windows,
    write_midi,
)

KICK, SNARE, CHH, OHH = (DRUMS.index(d) for d in ("kick", "snare", "closed_hh", "open_hh"))
BAR = 4  # quarters per bar


def random_grooves(n: int, tempo: float, seed: int, max_offset: float = 0.5) -> list[Groove]:
    """`n` random grooves; velocities are MIDI values /127, offsets in [-0.5, max_offset)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        hits = (rng.random((N_STEPS, N_DRUMS)) < 0.25).astype(np.float32)
        hits[0, KICK] = hits[STEPS_PER_BAR, KICK] = hits[N_STEPS - 1, CHH] = 1  # both bars used
        vel = rng.integers(1, 128, (N_STEPS, N_DRUMS)) / 127.0
        off = rng.uniform(-0.5, max_offset, (N_STEPS, N_DRUMS))
        if k == 0:
            off[0] = np.abs(off[0]) % max_offset  # nothing can sound before the file starts
        out.append(Groove(hits, vel, off, tempo, name=f"g{k}"))
    return out


def assert_same(got: np.ndarray, want: Groove, tick_per_step: float) -> None:
    """Features `got` hold `want`'s hits exactly, velocities within 1/127, offsets within a tick."""
    np.testing.assert_array_equal(got[:, :N_DRUMS], want.hits)
    np.testing.assert_allclose(got[:, N_DRUMS : 2 * N_DRUMS], want.velocities, atol=1 / 127)
    np.testing.assert_allclose(got[:, 2 * N_DRUMS :], want.offsets, atol=1 / tick_per_step + 1e-6)


def notes_of(grooves: list[Groove], tpq: int, channel: int = 9) -> list[tuple[int, int, int, int]]:
    """The grooves one after another as (tick, pitch, velocity, channel), for mido files."""
    tps = tpq / 4
    out = []
    for k, g in enumerate(grooves):
        for t, drum, vel in g.notes():
            out.append((round((k * N_STEPS + t) * tps), OUTPUT_PITCHES[drum], vel, channel))
    return out


def bars_of_notes(bars: list[int], tpq: int = 480, pitch: int = 36) -> list[tuple]:
    """A quarter-note pulse in each of the given bars (zero-based)."""
    return [((b * BAR + q) * tpq, pitch, 100, 9) for b in bars for q in range(BAR)]


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("tpq", [96, 480, 960])
@pytest.mark.parametrize("tempo", [72.0, 120.0, 173.5])
def test_write_read_round_trip_type1(tmp_path, tpq, tempo):
    grooves = random_grooves(3, tempo, seed=tpq + int(tempo))
    path = write_midi(grooves, tmp_path / "out.mid", tpq=tpq)
    part = read_drums(path)
    assert part.tempo == pytest.approx(tempo, abs=0.01)
    assert part.n_bars == 6
    assert len(part.steps) == sum(g.n_hits for g in grooves)  # every hit, none merged
    assert part.ignored == {}
    feats, starts, tempos = window_arrays(part, hop_bars=2, drop_empty=False)
    assert starts.tolist() == [0, 2, 4]
    np.testing.assert_allclose(tempos, tempo, atol=0.01)
    for f, g in zip(feats, grooves):
        assert_same(f, g, tpq / 4)
    # The Groove path gives the same grooves.
    back = read_grooves(path, hop_bars=2)
    assert [g.n_hits for g in back] == [g.n_hits for g in grooves]
    assert back[1].name == "out@2"
    assert back[2] == Groove.from_features(feats[2], float(tempos[2]))


@pytest.mark.parametrize("tpq", [96, 480, 960])
@pytest.mark.parametrize("midi_type", [0, 1])
def test_mido_files_type0_and_type1(tmp_path, mido_file, tpq, midi_type):
    grooves = random_grooves(2, 95.0, seed=tpq + midi_type, max_offset=0.45)
    path = mido_file(
        tmp_path / "m.mid", [notes_of(grooves, tpq)], tpq=tpq, midi_type=midi_type,
        tempos=[(0, 95.0)],
    )
    part = read_drums(path)
    assert part.tempo == pytest.approx(95.0, abs=0.01)
    feats, starts, _ = window_arrays(part, hop_bars=2, drop_empty=False)
    assert starts.tolist() == [0, 2]
    for f, g in zip(feats, grooves):
        assert_same(f, g, tpq / 4)


@pytest.mark.parametrize("tpq", [96, 480])
def test_offsets_at_the_edges_stay_in_their_step(tmp_path, tpq):
    hits = np.zeros((N_STEPS, N_DRUMS), np.float32)
    off = np.zeros_like(hits)
    edges = [-0.5, -0.49, 0.45, 0.49, 0.4999, 0.5]
    for i, o in enumerate(edges):
        hits[2 + 4 * i, SNARE], off[2 + 4 * i, SNARE] = 1, o
    hits[0, KICK] = hits[31, KICK] = 1
    g = Groove(hits, hits * 0.8, off)
    (got,) = read_grooves(write_midi(g, tmp_path / "e.mid", tpq=tpq))
    np.testing.assert_array_equal(got.hits, g.hits)
    np.testing.assert_allclose(got.offsets, g.offsets, atol=4 / tpq + 1e-6)
    assert got.offsets.max() < 0.5 and got.offsets.min() >= -0.5


def test_early_first_hit_is_clamped_to_the_start(tmp_path):
    hits = np.zeros((N_STEPS, N_DRUMS), np.float32)
    hits[0, KICK] = hits[20, KICK] = 1
    off = hits * -0.3
    (got,) = read_grooves(write_midi(Groove(hits, hits, off), tmp_path / "x.mid"))
    assert got.hits[0, KICK] == 1 and got.offsets[0, KICK] == 0.0
    assert got.offsets[20, KICK] == pytest.approx(-0.3, abs=1 / 120)


def test_write_several_tracks_and_gaps(tmp_path):
    a, b = random_grooves(2, 110.0, seed=7)
    path = write_midi([[a, None, a], [b]], tmp_path / "sub" / "two.mid", track_names=["me", "it"])
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    part = read_drums(path)
    assert len(part.steps) == 2 * a.n_hits + b.n_hits
    feats, starts, _ = window_arrays(part, hop_bars=2)
    assert starts.tolist() == [0, 4]  # bars 3-4 are the gap: empty, dropped
    # Both tracks in bars 1-2: where both hit one cell, the louder one is kept.
    both = np.maximum(a.hits, b.hits)
    np.testing.assert_array_equal(feats[0, :, :N_DRUMS], both)
    loud = np.where(a.velocities >= b.velocities, a.velocities, b.velocities)
    np.testing.assert_allclose(feats[0, :, N_DRUMS : 2 * N_DRUMS], loud, atol=1 / 127)
    assert_same(feats[1], a, 120)


def test_write_nothing_is_an_error(tmp_path):
    for nothing in ([], [[]], [None], [[None], []]):
        with pytest.raises(ValueError, match="nothing to write"):
            write_midi(nothing, tmp_path / "x.mid")
    # A leading gap: the tempo comes from the first groove there is.
    g = random_grooves(1, 88.0, seed=3)[0]
    part = read_drums(write_midi([None, g], tmp_path / "late.mid"))
    assert part.tempo == pytest.approx(88.0, abs=0.01) and part.steps.min() >= N_STEPS


def test_tempo_change_mid_file(tmp_path, mido_file):
    # 6 bars of 8th notes at 480 ticks per quarter; 120 BPM, then 80 from bar 3, 150 from bar 5.
    notes = [(t * 240, 42, 90, 9) for t in range(6 * 8)]
    tempos = [(0, 120.0), (2 * BAR * 480, 80.0), (4 * BAR * 480, 150.0)]
    path = mido_file(tmp_path / "t.mid", [notes], tempos=tempos)
    part = read_drums(path)
    np.testing.assert_array_equal(part.steps, np.arange(0, 96, 2))  # positions in quarters
    assert part.tempo == 120.0
    assert part.tempo_at == [(0.0, 120.0), (32.0, 80.0), (64.0, 150.0)]
    assert part.tempo_at_step(31.9) == 120.0 and part.tempo_at_step(32) == 80.0
    feats, starts, tempos = window_arrays(part)
    assert starts.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(tempos, [120, 120, 80, 80, 150], atol=0.01)
    # Every window: hats on every 8th, exactly on the grid.
    for f in feats:
        assert f[:, CHH].tolist() == [1.0, 0.0] * 16
        assert not f[:, 2 * N_DRUMS :].any()
    assert read_groove(path, bar=3).tempo == pytest.approx(80.0)


# -- windowing -----------------------------------------------------------------------------


def test_window_counts_and_hops(tmp_path, mido_file):
    path = mido_file(tmp_path / "six.mid", [bars_of_notes(range(6))])
    part = read_drums(path)
    assert part.n_bars == 6
    for hop, want in [(1, [0, 1, 2, 3, 4]), (2, [0, 2, 4]), (3, [0, 3]), (5, [0])]:
        assert window_arrays(part, hop_bars=hop)[1].tolist() == want
    assert len(read_grooves(path)) == 5 and len(read_grooves(path, hop_bars=2)) == 3
    # Overlapping windows agree on the bar they share.
    feats = window_arrays(part)[0]
    np.testing.assert_array_equal(feats[1, :STEPS_PER_BAR], feats[0, STEPS_PER_BAR:])


def test_empty_windows_are_dropped(tmp_path, mido_file):
    path = mido_file(tmp_path / "gap.mid", [bars_of_notes([0, 1, 4, 5])])
    part = read_drums(path)
    assert window_arrays(part)[1].tolist() == [0, 1, 3, 4]  # bars 3-4 are silent
    assert window_arrays(part, drop_empty=False)[1].tolist() == [0, 1, 2, 3, 4]
    assert [s for s, _ in windows(part)] == [0, 1, 3, 4]
    with pytest.raises(MidiError, match=r"gap.mid: the 2 bars from bar 2 \(counting from 0\) are silent"):
        read_groove(path, bar=2)
    with pytest.raises(MidiError, match=r"gap.mid: has 6 bars of drums; cannot take 2 bars from bar 5 \(bars count from 0: 0 to 4\)"):
        read_groove(path, bar=5)
    assert read_groove(path, bar=4).n_hits == 8


def test_window_arguments_are_checked(tmp_path, mido_file):
    part = read_drums(mido_file(tmp_path / "a.mid", [bars_of_notes([0, 1])]))
    with pytest.raises(ValueError, match="a Groove is 2 bars"):
        window_arrays(part, bars=4)
    with pytest.raises(ValueError, match="hop_bars must be >= 1"):
        window_arrays(part, hop_bars=0)


def test_one_bar_file_has_no_window(tmp_path, mido_file):
    path = mido_file(tmp_path / "short.mid", [bars_of_notes([0])])
    assert window_arrays(read_drums(path))[0].shape == (0, N_STEPS, 3 * N_DRUMS)
    with pytest.raises(MidiError, match=r"short.mid: shorter than 2 bars of drums"):
        read_grooves(path)


def test_a_note_a_hair_before_a_bar_line_belongs_to_the_next_bar(tmp_path, mido_file):
    # Bar 1 and a note 10 ticks before bar 3: it quantises onto the first step of bar 3.
    path = mido_file(tmp_path / "hair.mid", [bars_of_notes([0]) + [(2 * 1920 - 10, 38, 80, 9)]])
    part = read_drums(path)
    assert part.n_bars == 3
    feats, starts, _ = window_arrays(part)
    assert starts.tolist() == [0, 1]
    assert feats[1, STEPS_PER_BAR, SNARE] == 1
    assert feats[1, STEPS_PER_BAR, 2 * N_DRUMS + SNARE] == pytest.approx(-10 / 120, abs=1e-6)


def test_duplicate_hits_in_one_step_keep_the_louder(tmp_path, mido_file):
    notes = [
        (0, 36, 50, 9), (10, 35, 100, 9),  # kick: softer first (36), louder 10 ticks late (35)
        (240, 38, 90, 9), (250, 38, 40, 9),  # snare: louder first
        (480, 42, 70, 9), (490, 42, 70, 9), (470, 42, 30, 9),  # hats: a tie, the later wins
        (720, 42, 60, 9), (720, 46, 61, 9),  # closed and open hat: two classes, both kept
        (1920 + 480 * 3, 36, 64, 9),  # bar 2
    ]
    part = read_drums(mido_file(tmp_path / "dup.mid", [notes]))
    assert len(part.steps) == len(notes)
    f = window_arrays(part)[0][0]
    vel, off = f[:, N_DRUMS : 2 * N_DRUMS], f[:, 2 * N_DRUMS :]
    assert f[:, :N_DRUMS].sum() == 6
    assert vel[0, KICK] == pytest.approx(100 / 127) and off[0, KICK] == pytest.approx(10 / 120, abs=1e-6)
    assert vel[2, SNARE] == pytest.approx(90 / 127) and off[2, SNARE] == 0
    assert vel[4, CHH] == pytest.approx(70 / 127) and off[4, CHH] == pytest.approx(10 / 120, abs=1e-6)
    assert vel[6, CHH] == pytest.approx(60 / 127) and vel[6, OHH] == pytest.approx(61 / 127)


# -- what is read, what is ignored ----------------------------------------------------------


def test_other_tracks_are_ignored_and_reported(tmp_path, mido_file):
    drums = bars_of_notes([0, 1])
    piano = [(i * 480, 60 + i, 80, 0) for i in range(5)]
    path = mido_file(tmp_path / "band.mid", [drums, piano], names=["Kit", "Piano"])
    part = read_drums(path)
    assert part.ignored == {"non-drum track 'Piano'": 5}
    assert len(part.steps) == 8 and set(part.drums.tolist()) == {KICK}


def test_other_channels_in_a_type0_file_are_ignored(tmp_path, mido_file):
    notes = bars_of_notes([0, 1])
    notes += [(i * 480, 60, 80, 0) for i in range(3)] + [(i * 480, 64, 80, 2) for i in range(2)]
    notes += [(240, 100, 80, 9), (720, 100, 80, 9)]  # drum channel, pitch outside the map
    part = read_drums(mido_file(tmp_path / "t0.mid", [notes], midi_type=0))
    assert part.ignored == {"non-drum track '(unnamed)'": 5, "unmapped pitch 100": 2}
    assert len(part.steps) == 8
    assert window_arrays(part)[0][0, :, :N_DRUMS].sum() == 8


def test_a_track_named_drums_off_channel_10_is_read(tmp_path, mido_file):
    notes = [(t, p, v, 0) for t, p, v, _ in bars_of_notes([0, 1])]
    piano = [(0, 60, 80, 1)]
    part = read_drums(mido_file(tmp_path / "n.mid", [notes, piano], names=["My Drums", "Keys"]))
    assert len(part.steps) == 8 and part.ignored == {"non-drum track 'Keys'": 1}


def test_a_track_named_drums_beside_a_kit_on_channel_10_is_ignored(tmp_path, mido_file):
    kit = bars_of_notes([0, 1])
    steel = [(i * 480, 60 + i % 5, 80, 0) for i in range(16)]  # a melody on "Steel Drums"
    part = read_drums(mido_file(tmp_path / "s.mid", [kit, steel], names=["Kit", "Steel Drums"]))
    assert len(part.steps) == 8 and set(part.drums.tolist()) == {KICK}
    assert part.ignored == {"non-drum track 'Steel Drums'": 16}


def test_bars_before_the_first_tempo_event_are_at_120(tmp_path, mido_file):
    notes = [(t * 240, 42, 90, 9) for t in range(4 * 8)]
    path = mido_file(tmp_path / "late.mid", [notes], tempos=[(2 * BAR * 480, 60.0)])
    _, starts, tempos = window_arrays(read_drums(path))
    assert starts.tolist() == [0, 1, 2] and tempos.tolist() == [120.0, 120.0, 60.0]


def test_a_groove_with_a_silent_last_bar_reads_back_whole(tmp_path):
    g = random_grooves(2, 100.0, seed=4)
    g[1].hits[STEPS_PER_BAR:] = 0  # the second groove's second bar is silent
    first = Groove(g[0].hits.copy(), g[0].velocities, g[0].offsets, 100.0)
    first.hits[STEPS_PER_BAR:] = 0
    path = write_midi([first], tmp_path / "one.mid")
    assert read_groove(path).n_hits == first.n_hits  # was: "shorter than 2 bars"
    path = write_midi(g, tmp_path / "two.mid")
    back = read_grooves(path, hop_bars=2)
    assert len(back) == 2 and [b.n_hits for b in back] == [g[0].n_hits, g[1].n_hits]
    assert read_drums(path).n_bars == 3  # the dataset's windows still end at the last note


@pytest.mark.parametrize("midi_type", [0, 1])
def test_single_non_drum_track_is_read_as_drums(tmp_path, mido_file, midi_type):
    notes = [(t, p, v, 0) for t, p, v, _ in bars_of_notes([0, 1], pitch=38)]
    part = read_drums(mido_file(tmp_path / "one.mid", [notes], midi_type=midi_type))
    assert len(part.steps) == 8 and set(part.drums.tolist()) == {SNARE}
    assert "note: single non-drum track read as drums" in part.ignored


def test_drum_map_choice(tmp_path, mido_file):
    notes = [(0, 45, 100, 9), (1920, 48, 100, 9), (1920 + 480, 58, 100, 9)]
    path = mido_file(tmp_path / "toms.mid", [notes])
    gm = read_drums(path, drum_map="gm").drums.tolist()
    td = read_drums(path, drum_map="td11").drums.tolist()
    assert [DRUMS[c] for c in gm] == ["low_tom", "mid_tom", "crash"]
    assert [DRUMS[c] for c in td] == ["mid_tom", "high_tom", "low_tom"]


# -- bad input -----------------------------------------------------------------------------


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.mid"
    path.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(MidiError, match=r"noise.mid: not a readable MIDI file") as e:
        read_drums(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_truncated_file(tmp_path, keep):
    good = write_midi(random_grooves(2, 120.0, seed=1), tmp_path / "good.mid")
    data = good.read_bytes()
    cut = tmp_path / "cut.mid"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(MidiError, match=r"cut.mid: not a readable MIDI file"):
        read_drums(cut)


def test_empty_and_header_only_files(tmp_path, mido_file):
    (tmp_path / "zero.mid").write_bytes(b"")
    with pytest.raises(MidiError, match="zero.mid: not a readable MIDI file"):
        read_drums(tmp_path / "zero.mid")
    with pytest.raises(MidiError, match="silent.mid: contains no notes"):
        read_drums(mido_file(tmp_path / "silent.mid", []))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(MidiError, match=r"nope.mid: no such file"):
        read_drums(tmp_path / "nope.mid")
    with pytest.raises(MidiError, match=r"is a folder, not a MIDI file"):
        read_drums(tmp_path)


def test_no_drum_notes(tmp_path, mido_file):
    piano = [(i * 480, 60, 80, 0) for i in range(8)]
    strings = [(i * 960, 48, 70, 1) for i in range(4)]
    path = mido_file(tmp_path / "piano.mid", [piano, strings], names=["Piano", "Strings"])
    with pytest.raises(MidiError, match=r"piano.mid: no drum notes .*2 other tracks with 12 notes"):
        read_drums(path)


def test_only_unmapped_pitches(tmp_path, mido_file):
    path = mido_file(tmp_path / "odd.mid", [[(0, 100, 90, 9), (480, 101, 90, 9)]])
    with pytest.raises(MidiError, match=r"odd.mid: no drum notes on mapped pitches \(gm map\)"):
        read_drums(path)


def test_three_four_is_refused(tmp_path, mido_file):
    path = mido_file(tmp_path / "waltz.mid", [bars_of_notes([0, 1])], time_signature=(3, 4))
    with pytest.raises(
        MidiError, match=r"waltz.mid: time signature 3/4 at quarter 0; flatgroove reads 4/4 only"
    ):
        read_drums(path)
    assert len(read_drums(path, require_4_4=False).steps) == 8
    with pytest.raises(MidiError, match="time signature 3/4"):
        read_grooves(path)


def test_no_time_signature_counts_as_four_four(tmp_path, mido_file):
    path = mido_file(tmp_path / "plain.mid", [bars_of_notes([0, 1])], time_signature=None)
    assert len(read_grooves(path)) == 1


def _note_ons_only(path, notes, tail=0):
    """A type-0 file of note-ons alone (tick, pitch) on channel 10, as drum machines send."""
    import mido

    mf = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mf.tracks.append(tr)
    last = 0
    for tick, pitch in sorted(notes):
        tr.append(mido.Message("note_on", channel=9, note=pitch, velocity=100, time=tick - last))
        last = tick
    tr.append(mido.MetaMessage("end_of_track", time=tail))
    mf.save(path)
    return path


def test_note_ons_without_note_offs_are_read(tmp_path):
    """Drum machines and pads often send note-ons alone; symusic drops a note it cannot close,
    so such a file read as "contains no notes" (and a file of a few offs lost the rest)."""
    notes = [(bar * 1920 + e * 240, 42) for bar in range(2) for e in range(8)]
    notes += [(bar * 1920 + b * 960, 36) for bar in range(2) for b in (0, 1)]
    notes += [(bar * 1920 + 480 + b * 960, 38) for bar in range(2) for b in (0, 1)]
    g = read_groove(_note_ons_only(tmp_path / "ons.mid", notes))
    assert g.hits.sum() == len(notes)
    assert g.hits[::2, DRUMS.index("closed_hh")].all() and not g.hits[1::2].any()
    assert list(np.nonzero(g.hits[:, DRUMS.index("kick")])[0]) == [0, 8, 16, 24]
    # the last note of the file (the track ends on it) is kept too
    g = read_groove(_note_ons_only(tmp_path / "end.mid", [(0, 36), (3840 - 120, 38)]))
    assert g.hits[31, DRUMS.index("snare")] == 1 and g.hits.sum() == 2


def test_closing_hanging_notes_leaves_closed_files_alone(tmp_path, mido_file):
    from flatgroove.midi import close_hanging_notes

    closed = mido_file(tmp_path / "closed.mid", [[(0, 36, 100, 9), (480, 38, 90, 9)]]).read_bytes()
    assert close_hanging_notes(closed) == closed
    assert close_hanging_notes(b"MThd not midi") == b"MThd not midi"
