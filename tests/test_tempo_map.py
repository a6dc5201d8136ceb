"""One tempo everywhere: the MIDI file carries the tempo map the WAV plays (and the console
prints), with markers naming each groove; a jam session's MIDI carries its tempo changes."""

from __future__ import annotations

import re
import wave

import pytest
import symusic

from flatgroove.audio import TAIL_SECONDS, render_to_wav
from flatgroove.cli import main
from flatgroove.groove import Groove
from flatgroove.midi import write_midi
from flatgroove.presets import builtin


def _wav_seconds(path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def _markers(path) -> list[tuple[float, str]]:
    s = symusic.Score(str(path), ttype="second")
    return [(float(m.time), m.text) for m in s.markers]


def _tempos(path) -> list[tuple[float, float]]:
    s = symusic.Score(str(path), ttype="quarter")
    return [(float(t.time), float(t.qpm)) for t in s.tempos]


def test_interpolate_midi_wav_and_console_share_one_tempo_map(tmp_path, capsys):
    mid, wav = tmp_path / "p.mid", tmp_path / "p.wav"
    assert main(["interpolate", "rock", "funk", "--steps", "3", "-o", str(mid),
                 "--wav", str(wav)]) == 0
    printed = [float(b) for b in re.findall(r"\((\d+) BPM", capsys.readouterr().out)]
    assert printed == [110, 105, 100]  # rock 110 BPM gliding to funk 100 BPM
    tempos = _tempos(mid)
    assert [b for b, _ in tempos] == [0, 8, 16]  # a change on each groove's first beat
    assert [t for _, t in tempos] == pytest.approx(printed, abs=1e-3)
    marks = _markers(mid)
    names = [t for _, t in marks]
    assert names[:3] == ["rock -> funk 0/2 α=0.00", "rock -> funk 1/2 α=0.50",
                         "rock -> funk 2/2 α=1.00"] and names[3] == "end"
    bars = 8 * 60 / 110 + 8 * 60 / 105 + 8 * 60 / 100  # 2 bars = 8 beats each
    assert [t for t, _ in marks] == pytest.approx([0, 8 * 60 / 110, 8 * 60 / 110 + 8 * 60 / 105,
                                                   bars], abs=1e-3)
    # The WAV lasts the MIDI's bars (to its end marker) plus the decay tail.
    assert _wav_seconds(wav) == pytest.approx(marks[-1][0] + TAIL_SECONDS, abs=0.002)


def test_tempo_option_is_the_tempo_everywhere(tmp_path, capsys):
    mid, wav = tmp_path / "p.mid", tmp_path / "p.wav"
    assert main(["interpolate", "rock", "funk", "--steps", "2", "--tempo", "90",
                 "-o", str(mid), "--wav", str(wav)]) == 0
    assert set(re.findall(r"\((\d+) BPM", capsys.readouterr().out)) == {"90"}
    assert _tempos(mid) == [(0.0, pytest.approx(90.0, abs=1e-3))]
    assert _wav_seconds(wav) == pytest.approx(2 * 8 * 60 / 90 + TAIL_SECONDS, abs=0.002)


def test_rests_keep_the_tempo_before_them_in_file_and_audio(tmp_path):
    a, b = builtin("rock"), builtin("funk")
    a.tempo, b.tempo = 120.0, 80.0
    seq = [a, None, b]
    mid = write_midi(seq, tmp_path / "r.mid")
    assert _tempos(mid) == [(0.0, pytest.approx(120.0)), (16.0, pytest.approx(80.0))]
    end = _markers(mid)[-1]
    assert end[1] == "end" and end[0] == pytest.approx(4 + 4 + 6, abs=1e-3)
    wav = render_to_wav(seq, tmp_path / "r.wav")
    assert _wav_seconds(wav) == pytest.approx(end[0] + TAIL_SECONDS, abs=0.002)
    # Rendering the file gives the same length as rendering the grooves.
    assert _wav_seconds(render_to_wav(str(mid), tmp_path / "f.wav")) == pytest.approx(
        _wav_seconds(wav), abs=0.002)


def test_a_session_midi_carries_its_tempo_changes(tmp_path):
    import flatgroove
    from flatgroove.live.simulate import simulate

    script = tmp_path / "s.toml"
    script.write_text("bpm = 100\n[[change]]\nbar = 3\nbeat = 1\nbpm = 150\n")
    res = simulate(flatgroove.load_model(), [builtin("rock")] * 3, str(script), bars=6)
    mid = res.write_midi(tmp_path / "s.mid")
    tempos = _tempos(mid)
    assert tempos[0] == (0.0, pytest.approx(100.0, abs=1e-3))
    assert tempos[-1][1] == pytest.approx(150.0, abs=1e-3)
    assert tempos[-1][0] == pytest.approx(8.0, abs=0.01)  # bar 3's downbeat
    assert "100.0-150.0 BPM" in res.summary()
    end = _markers(mid)[-1]
    assert end[1] == "end" and end[0] == pytest.approx(2 * 2.4 + 4 * 1.6, abs=1e-3)
    wav = res.write_wav(tmp_path / "s.wav")
    assert _wav_seconds(wav) == pytest.approx(end[0] + TAIL_SECONDS, abs=0.002)


def test_a_bpm_change_without_a_beat_lands_on_its_bar_line(tmp_path):
    # other changes go just before their bar is planned (2 beats early); a tempo there played
    # half of the bar before at the new tempo
    import flatgroove
    from flatgroove.live.simulate import simulate

    script = tmp_path / "s.toml"
    script.write_text("bpm = 120\nbars = 4\n[[change]]\nbar = 3\nbpm = 60\n")
    res = simulate(flatgroove.load_model(), [builtin("rock")] * 2, str(script))
    tempos = _tempos(res.write_midi(tmp_path / "s.mid"))
    assert tempos[-1] == (pytest.approx(8.0, abs=0.01), pytest.approx(60.0, abs=1e-3))
    end = _markers(tmp_path / "s.mid")[-1]
    assert end[0] == pytest.approx(2 * 2.0 + 2 * 4.0, abs=1e-3)  # 2 bars at 120, 2 at 60


def test_one_groove_file_has_one_tempo_and_no_names_unless_asked(tmp_path):
    g = Groove.empty(97.0)
    g.hits[0, 0] = 1
    mid = write_midi(g, tmp_path / "g.mid")
    assert _tempos(mid) == [(0.0, pytest.approx(97.0, abs=1e-3))]
    assert [t for _, t in _markers(mid)] == ["end"]
