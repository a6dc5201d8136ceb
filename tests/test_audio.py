"""The built-in kit and WAV writing: lengths, levels, timing, files, MIDI and SoundFont paths."""

from __future__ import annotations

import time
import wave

import numpy as np
import pytest

from flatgroove import audio
from flatgroove.audio import (
    TAIL_SECONDS,
    AudioError,
    kit,
    render_grooves,
    render_midi,
    render_to_wav,
    write_wav,
)
from flatgroove.drums import DRUMS, N_DRUMS
from flatgroove.groove import N_STEPS, Groove
from flatgroove.midi import write_midi
from flatgroove.presets import all_builtins, builtin

SR = 22050  # half rate keeps the tests quick; the code path is the same


def one_hit(drum: str, step: int = 0, velocity: float = 0.8, offset: float = 0.0,
            tempo: float = 120.0) -> Groove:
    g = Groove.empty(tempo)
    d = DRUMS.index(drum)
    g.hits[step, d], g.velocities[step, d], g.offsets[step, d] = 1, velocity, offset
    return Groove(g.hits, g.velocities, g.offsets, tempo)


def n_samples(grooves, sr=SR, tail=TAIL_SECONDS) -> int:
    seconds = sum(N_STEPS * 15.0 / g.tempo for g in grooves)
    return round(seconds * sr) + round(tail * sr)


def test_kit_is_deterministic_cached_and_bounded():
    k = kit(SR)
    assert kit(SR) is k and len(k) == N_DRUMS
    for x in k:
        assert x.dtype == np.float32 and 0.1 < np.abs(x).max() <= 1.0
        assert not x.flags.writeable
        assert abs(x[-1]) < 1e-3  # each sample fades out, no click at its end
    audio.kit.cache_clear()
    assert all(np.array_equal(a, b) for a, b in zip(k, kit(SR)))


def test_length_is_two_bars_per_groove_plus_tail():
    gs = [builtin("rock"), builtin("funk"), builtin("bossa_nova")]  # 110, 100, 140 BPM
    x = render_grooves(gs, sample_rate=SR)
    assert x.dtype == np.float32 and x.ndim == 1
    assert len(x) == n_samples(gs)
    assert len(render_grooves(gs, sample_rate=SR, tempo=120, tail=0)) == round(3 * 4.0 * SR)
    rock = builtin("rock")
    assert len(render_grooves(rock, sample_rate=44100)) == n_samples([rock], 44100)


def test_non_silent_and_deterministic():
    x = render_grooves(builtin("funk"), sample_rate=SR)
    assert np.abs(x).max() > 0.3 and np.sqrt(np.mean(x**2)) > 0.01
    assert np.all(np.isfinite(x))
    assert np.array_equal(x, render_grooves(builtin("funk"), sample_rate=SR))


def test_silent_groove_gives_silence_and_none_rests():
    assert not render_grooves(Groove.empty(), sample_rate=SR).any()
    g = builtin("rock")
    x = render_grooves([None, g], sample_rate=SR)  # a rest takes the tempo of its neighbour
    assert len(x) == n_samples([g, g])
    first = int(n_samples([g], tail=0))
    assert not x[: first - int(0.05 * SR)].any() and np.abs(x[first:]).max() > 0.1


def test_louder_velocity_gives_louder_peak():
    for drum in ("kick", "snare", "closed_hh", "ride"):
        soft = np.abs(render_grooves(one_hit(drum, velocity=0.3), sample_rate=SR)).max()
        loud = np.abs(render_grooves(one_hit(drum, velocity=0.95), sample_rate=SR)).max()
        assert loud > 2 * soft > 0, drum


def test_micro_timing_moves_the_onset():
    spb = 15.0 / 120.0  # seconds per step at 120 BPM
    for offset in (-0.3, 0.0, 0.25):
        x = render_grooves(one_hit("snare", step=8, offset=offset), sample_rate=SR)
        onset = np.argmax(np.abs(x) > 1e-6)
        assert abs(onset - (8 + offset) * spb * SR) <= 1


def test_open_hat_is_choked_by_the_closed_hat():
    open_only = one_hit("open_hh")
    both = Groove(open_only.hits.copy(), open_only.velocities.copy(), open_only.offsets, 120)
    both.hits[2, DRUMS.index("closed_hh")] = 1
    both.velocities[2, DRUMS.index("closed_hh")] = 0.5
    both = Groove(both.hits, both.velocities, both.offsets, 120)
    late = slice(int(0.45 * SR), int(0.6 * SR))  # after the closed hat has died away
    assert np.abs(render_grooves(open_only, sample_rate=SR)[late]).max() > 0.01
    assert np.abs(render_grooves(both, sample_rate=SR)[late]).max() < 1e-6


def test_sixteen_grooves_render_fast():
    gs = (list(all_builtins().values()) * 2)[:16]
    kit(44100)
    t = time.perf_counter()
    x = render_grooves(gs)
    assert time.perf_counter() - t < 1.0
    assert len(x) == n_samples(gs, 44100)


def test_write_wav_is_readable_normalised_and_atomic(tmp_path):
    x = render_grooves([builtin("disco"), builtin("shuffle")], sample_rate=SR)
    p = write_wav(tmp_path / "sub" / "out.wav", x, SR)
    assert p.exists() and not list(p.parent.glob("*.tmp"))
    with wave.open(str(p)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SR)
        assert w.getnframes() == len(x)
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert np.abs(pcm).max() == pytest.approx(32767 * 10 ** (-1 / 20), abs=2)


def test_write_wav_silence_and_bad_input(tmp_path):
    p = write_wav(tmp_path / "silent.wav", np.zeros(1000, np.float32), SR)
    with wave.open(str(p)) as w:
        assert w.getnframes() == 1000 and not any(w.readframes(1000))
    with pytest.raises(AudioError, match="NaN"):
        write_wav(tmp_path / "nan.wav", np.array([0.0, np.nan]), SR)
    with pytest.raises(AudioError, match="shape"):
        write_wav(tmp_path / "3d.wav", np.zeros((2, 2, 2)), SR)


def test_midi_round_trip_is_non_silent(tmp_path):
    gs = [builtin("rock_fill"), builtin("jazz_ride")]
    mid = write_midi(gs, tmp_path / "two.mid")
    x = render_midi(mid, sample_rate=SR)
    assert np.abs(x).max() > 0.3
    # The file's tempo (the first groove's) sets the timing: 2 grooves of 2 bars at 110 BPM.
    seconds = 2 * N_STEPS * 15.0 / 110.0
    assert seconds * SR < len(x) <= (seconds + 0.1 + TAIL_SECONDS) * SR
    # Same notes, same kit: close to rendering the grooves themselves at the file's tempo.
    y = render_grooves(gs, sample_rate=SR, tempo=110)
    m = min(len(x), len(y))
    assert np.corrcoef(x[:m], y[:m])[0, 1] > 0.95


def test_render_midi_errors(tmp_path):
    with pytest.raises(AudioError, match="no such"):
        render_midi(tmp_path / "missing.mid")
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not midi at all")
    with pytest.raises(AudioError, match="not a readable MIDI"):
        render_midi(bad)


def test_render_to_wav_from_grooves_and_midi(tmp_path):
    p = render_to_wav([builtin("reggae_one_drop")], tmp_path / "a.wav", sample_rate=SR)
    with wave.open(str(p)) as w:
        assert w.getnframes() == n_samples([builtin("reggae_one_drop")])
    mid = write_midi(builtin("hiphop"), tmp_path / "h.mid")
    p2 = render_to_wav(str(mid), tmp_path / "b.wav", sample_rate=SR)
    with wave.open(str(p2)) as w:
        assert w.getframerate() == SR and w.getnframes() > 4 * SR


# SoundFont rendering (midirenderer and a real General MIDI SoundFont): tests/test_soundfont.py
