"""SoundFont rendering: a real General MIDI SoundFont through midirenderer (the `soundfont`
extra), the `--soundfont` option on the commands that write WAV, and clear errors."""

from __future__ import annotations

import sys
import wave

import numpy as np
import pytest

from flatgroove import audio
from flatgroove.audio import (
    SOUNDFONT_RATE,
    TAIL_SECONDS,
    AudioError,
    default_soundfont,
    render_to_wav,
    resolve_soundfont,
)
from flatgroove.cli import main
from flatgroove.drums import DRUMS
from flatgroove.groove import Groove
from flatgroove.midi import write_midi
from flatgroove.presets import builtin


def _real_soundfont():
    try:
        import midirenderer  # noqa: F401
    except ImportError:
        pytest.skip("midirenderer is not installed: pip install -e '.[soundfont]'")
    sf = default_soundfont()
    if sf is None:
        pytest.skip("no General MIDI SoundFont: pip install -e '.[soundfont]' (pretty_midi "
                    "carries TimGM6mb.sf2) or apt-get install timgm6mb-soundfont")
    return sf


def _read(path):
    with wave.open(str(path)) as w:
        sr, ch = w.getframerate(), w.getnchannels()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, ch) / 32768.0
    return x.mean(axis=1), sr, ch


def _one(drum: str, step: int, tempo: float = 120.0) -> Groove:
    g = Groove.empty(tempo)
    d = DRUMS.index(drum)
    g.hits[step, d], g.velocities[step, d] = 1, 0.9
    return g


def _centroid(x: np.ndarray, sr: int) -> float:
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    return float((p * f).sum() / p.sum())


def test_a_real_soundfont_plays_its_drum_kit_on_time(tmp_path):
    sf = _real_soundfont()
    step_s = 60.0 / 120.0 / 4.0
    kick, _, _ = _read(render_to_wav(_one("kick", 8), tmp_path / "k.wav", soundfont=sf))
    hat, sr, _ = _read(render_to_wav(_one("closed_hh", 8), tmp_path / "h.wav", soundfont=sf))
    assert sr == SOUNDFONT_RATE
    # Length: 2 bars at 120 BPM plus the tail, as on the built-in kit.
    assert len(kick) / sr == pytest.approx(4.0 + TAIL_SECONDS, abs=0.005)
    for x in (kick, hat):
        onset = int(np.argmax(np.abs(x) > 0.05 * np.abs(x).max())) / sr
        assert onset == pytest.approx(8 * step_s, abs=0.004)  # silent before step 8
    # The drum kit (bank 128 on channel 10), not a melodic instrument: a hi-hat is bright,
    # a kick is dark.
    at = int(8 * step_s * sr)
    assert _centroid(hat[at : at + 4800], sr) > 4000
    assert _centroid(kick[at : at + 4800], sr) < 1000


def test_soundfont_wav_follows_the_midi_tempo_map(tmp_path):
    sf = _real_soundfont()
    a, b = builtin("rock"), builtin("funk")
    a.tempo, b.tempo = 120.0, 60.0  # 4 s + 8 s
    mid = write_midi([a, b], tmp_path / "ab.mid")
    for src in ([a, b], str(mid)):
        x, sr, ch = _read(render_to_wav(src, tmp_path / "ab.wav", soundfont=sf))
        assert ch == 2
        assert len(x) / sr == pytest.approx(12.0 + TAIL_SECONDS, abs=0.005)


def test_soundfont_errors_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(AudioError, match="no such SoundFont"):
        resolve_soundfont(tmp_path / "none.sf2")
    assert resolve_soundfont(None) is None
    monkeypatch.setattr(audio, "default_soundfont", lambda: None)
    with pytest.raises(AudioError, match=r"no General MIDI SoundFont found.*flatgroove\[soundfont\]"):
        resolve_soundfont("gm")
    sf = tmp_path / "kit.sf2"
    sf.write_bytes(b"RIFF")
    monkeypatch.setitem(sys.modules, "midirenderer", None)  # import fails
    with pytest.raises(AudioError, match=r"needs midirenderer: pip install 'flatgroove\[soundfont\]'"):
        render_to_wav(builtin("rock"), tmp_path / "x.wav", soundfont=sf)


def test_a_bad_soundfont_file_is_one_clear_error(tmp_path):
    pytest.importorskip("midirenderer", reason="midirenderer is not installed")
    sf = tmp_path / "bad.sf2"
    sf.write_bytes(b"RIFF\x04\x00\x00\x00sfbk" + bytes(64))
    with pytest.raises(AudioError, match="cannot render with this SoundFont"):
        render_to_wav(builtin("rock"), tmp_path / "x.wav", soundfont=sf)


def test_default_soundfont_honours_the_environment(tmp_path, monkeypatch):
    sf = tmp_path / "mine.sf2"
    sf.write_bytes(b"RIFF")
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(sf))
    assert default_soundfont() == sf and resolve_soundfont("gm") == sf


def test_a_wrong_soundfont_in_the_environment_is_said(tmp_path, monkeypatch):
    # it was passed over for the pretty_midi kit: the user heard another kit without a word
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(tmp_path / "typo.sf2"))
    with pytest.raises(AudioError, match="typo.sf2'?, which is not a file"):
        resolve_soundfont("gm")


def test_cli_soundfont_option(tmp_path, capsys):
    # Checked before any model work: a missing file, or a SoundFont with no WAV to render.
    assert main(["sample", "--n", "1", "--wav", str(tmp_path / "s.wav"),
                 "--soundfont", str(tmp_path / "none.sf2")]) == 2
    assert "no such SoundFont" in capsys.readouterr().err
    assert main(["sample", "--n", "1", "-o", str(tmp_path / "s.mid"), "--soundfont", "gm"]) != 0
    assert not (tmp_path / "s.mid").exists()
    assert main(["jam", "--simulate", "rock", "--soundfont", str(tmp_path / "none.sf2"),
                 "--wav", str(tmp_path / "j.wav"), "--bars", "2"]) == 2
    sf = _real_soundfont()
    wav = tmp_path / "i.wav"
    assert main(["interpolate", "rock", "funk", "--steps", "2", "-q", "--wav", str(wav),
                 "--soundfont", str(sf)]) == 0
    x, sr, _ = _read(wav)
    assert sr == SOUNDFONT_RATE and np.abs(x).max() > 0.1


def test_auto_uses_the_soundfont_only_when_installed(tmp_path, monkeypatch):
    sf = tmp_path / "mine.sf2"
    sf.write_bytes(b"RIFF")
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(sf))
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "midirenderer", None)  # not installed: the built-in kit
        assert resolve_soundfont("auto") is None
    pytest.importorskip("midirenderer", reason="midirenderer is not installed")
    assert resolve_soundfont("auto") == sf
    monkeypatch.setattr(audio, "default_soundfont", lambda: None)
    assert resolve_soundfont("auto") is None  # no SoundFont: the built-in kit, no error
