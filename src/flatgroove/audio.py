"""Render grooves and MIDI files to audio (DESIGN §7).

A small drum kit is synthesised in numpy, so audio always works with no sample files or
native synthesiser; a General MIDI SoundFont renders through `midirenderer` (the optional
`soundfont` extra, which also brings a SoundFont) when the user asks for one.
The kit is deterministic (fixed seed) and built once per sample rate.
"""

from __future__ import annotations

import bisect
import os
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

from flatgroove.drums import DRUMS, GM_MAP, N_DRUMS
from flatgroove.errors import AudioError
from flatgroove.files import atomic_path
from flatgroove.groove import N_STEPS, Groove

SAMPLE_RATE = 44100
TAIL_SECONDS = 1.5  # silence after the last bar so cymbals and toms ring out
HEADROOM_DB = 1.0  # peak level of written WAV files below full scale
_SEED = 20240611
_FADE_S = 0.005  # fade used where a sound is cut (choke, end of buffer), to avoid clicks
_HH_CLOSED, _HH_OPEN = DRUMS.index("closed_hh"), DRUMS.index("open_hh")


# -- the synthesised kit ------------------------------------------------------------------
def _t(sr: int, seconds: float) -> np.ndarray:
    return np.arange(int(sr * seconds)) / sr


def _band_noise(rng: np.random.Generator, n: int, sr: int, lo: float, hi: float) -> np.ndarray:
    """White noise band-limited to [lo, hi] Hz in the frequency domain (no scipy needed),
    with soft (raised-cosine, half-octave) edges so it does not ring."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    gain = np.ones_like(f)
    if lo > 0:
        x = np.clip(np.log2(np.maximum(f, 1e-9) / lo) * 2 + 1, 0, 1)  # rises over half an octave
        gain *= 0.5 - 0.5 * np.cos(np.pi * x)
    if hi < sr / 2:
        x = np.clip(np.log2(hi / np.maximum(f, 1e-9)) * 2 + 1, 0, 1)
        gain *= 0.5 - 0.5 * np.cos(np.pi * x)
    out = np.fft.irfft(spec * gain, n)
    return out / (np.abs(out).max() + 1e-12)


def _highpass(x: np.ndarray, sr: int, lo: float) -> np.ndarray:
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    g = np.clip(np.log2(np.maximum(f, 1e-9) / lo) * 2 + 1, 0, 1)
    return np.fft.irfft(np.fft.rfft(x) * (0.5 - 0.5 * np.cos(np.pi * g)), len(x))


def _sweep(t: np.ndarray, sr: int, f_end: float, f_start: float, tau: float) -> np.ndarray:
    """Sine whose pitch falls exponentially from f_start to f_end (a drum head's pitch drop)."""
    f = f_end + (f_start - f_end) * np.exp(-t / tau)
    return np.sin(2 * np.pi * np.cumsum(f) / sr)


def _metal(t: np.ndarray, freqs: tuple[float, ...]) -> np.ndarray:
    """Sum of square waves at inharmonic frequencies: the TR-808 cymbal recipe."""
    return sum(np.sign(np.sin(2 * np.pi * f * t + i)) for i, f in enumerate(freqs)) / len(freqs)


def _finish(x: np.ndarray, sr: int, level: float) -> np.ndarray:
    x = x * (level / (np.abs(x).max() + 1e-12))
    n = min(len(x), int(_FADE_S * sr))
    x[-n:] *= np.linspace(1.0, 0.0, n)  # every sample ends at zero
    return x.astype(np.float32)


_METAL_FREQS = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)


@lru_cache(maxsize=4)
def kit(sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, ...]:
    """One float32 sample per drum class (DRUMS order), peak = its mix level. Cached."""
    sr = int(sample_rate)
    rng = np.random.default_rng(_SEED)
    out: list[np.ndarray] = []

    # kick: a sine swept from ~150 Hz down to 48 Hz, plus a short filtered click for the beater.
    t = _t(sr, 0.5)
    body = _sweep(t, sr, 48.0, 150.0, 0.035) * np.exp(-t / 0.16)
    click = _band_noise(rng, len(t), sr, 1500, 7000) * np.exp(-t / 0.003) * 0.35
    out.append(_finish(np.tanh(1.6 * (body + click)), sr, 1.0))

    # snare: two damped head modes plus band-passed noise for the wires (which ring longer).
    t = _t(sr, 0.4)
    tone = (np.sin(2 * np.pi * 185 * t) + 0.6 * np.sin(2 * np.pi * 330 * t)) * np.exp(-t / 0.045)
    wires = _band_noise(rng, len(t), sr, 1500, 9000) * np.exp(-t / 0.11)
    out.append(_finish(0.55 * tone + wires, sr, 0.8))

    # hi-hats: metallic square partials and high noise, high-passed; closed is choked short.
    for seconds, tau, level in ((0.12, 0.022, 0.32), (0.8, 0.28, 0.3)):
        t = _t(sr, seconds)
        x = 0.6 * _metal(t, tuple(f * 1.5 for f in _METAL_FREQS))
        x = x + 0.5 * _band_noise(rng, len(t), sr, 6000, 16000)
        x = _highpass(x, sr, 6500) * np.exp(-t / tau) * (1 - np.exp(-t / 0.0007))
        out.append(_finish(x, sr, level))

    # toms: pitched heads with a small pitch drop and a little stick noise.
    for f0, tau in ((95.0, 0.32), (135.0, 0.26), (185.0, 0.22)):
        t = _t(sr, 0.8)
        head = _sweep(t, sr, f0, f0 * 1.35, 0.04) * np.exp(-t / tau)
        stick = _band_noise(rng, len(t), sr, 800, 6000) * np.exp(-t / 0.008) * 0.3
        out.append(_finish(head + stick, sr, 0.7))

    # crash: a long wash of high noise and metal with a quick swell.
    t = _t(sr, 2.2)
    x = 0.35 * _metal(t, tuple(f * 2.1 for f in _METAL_FREQS))
    x = x + _band_noise(rng, len(t), sr, 3000, 16000)
    x = _highpass(x, sr, 2500) * np.exp(-t / 0.7) * (1 - np.exp(-t / 0.002))
    out.append(_finish(x, sr, 0.42))

    # ride: bell-like inharmonic partials (a stick on metal) over a quiet high wash.
    t = _t(sr, 1.6)
    bell = sum(
        a * np.sin(2 * np.pi * f * t) * np.exp(-t / d)
        for f, a, d in ((523, 1.0, 0.5), (1396, 0.6, 0.35), (2231, 0.45, 0.3), (3317, 0.3, 0.2))
    )
    wash = _band_noise(rng, len(t), sr, 5000, 15000) * np.exp(-t / 0.45)
    ping = _band_noise(rng, len(t), sr, 2000, 10000) * np.exp(-t / 0.004)
    out.append(_finish(0.35 * bell + 0.6 * wash + 0.5 * ping, sr, 0.33))

    assert len(out) == N_DRUMS
    for x in out:
        x.flags.writeable = False  # shared by every render
    return tuple(out)


def velocity_gain(velocity: float) -> float:
    """MIDI velocity -> amplitude. A power curve, so ghost notes (~36) are clearly quieter."""
    return float(np.clip(velocity / 127.0, 0.0, 1.0) ** 1.6)


# -- mixing -------------------------------------------------------------------------------
def _mix(events: list[tuple[float, int, int]], n_samples: int, sr: int) -> np.ndarray:
    """Mix (time in seconds, drum class, MIDI velocity) events into a mono buffer.

    An open hi-hat is choked by the next hi-hat stroke, as on a real pair of hats.
    """
    samples = kit(sr)
    out = np.zeros(n_samples, np.float32)
    ev = sorted((max(0, round(t * sr)), d, v) for t, d, v in events)
    hh_starts = [s for s, d, _ in ev if d in (_HH_CLOSED, _HH_OPEN)]
    fade = int(_FADE_S * sr)
    for start, drum, vel in ev:
        if start >= n_samples:
            continue
        x = samples[drum]
        length = min(len(x), n_samples - start)
        if drum == _HH_OPEN:
            i = bisect.bisect_right(hh_starts, start)
            if i < len(hh_starts):
                length = min(length, hh_starts[i] - start + fade)
        seg = x[:length] * velocity_gain(vel)
        if length < len(x):  # cut short: fade, don't click
            k = min(fade, length)
            seg[-k:] *= np.linspace(1.0, 0.0, k, dtype=np.float32)
        out[start : start + length] += seg
    return out


def _as_list(grooves: Groove | list[Groove | None]) -> list[Groove | None]:
    if isinstance(grooves, Groove):
        return [grooves]
    return list(grooves)


def groove_events(
    grooves: Groove | list[Groove | None], tempo: float | None = None
) -> tuple[list[tuple[float, int, int]], float]:
    """Grooves one after another, 2 bars each, as (seconds, drum, velocity) events, and the
    total length in seconds. A None entry is 2 bars of silence (a lane that rests) at the
    tempo of the groove before it (or, at the start, the first groove after it)."""
    gs = _as_list(grooves)
    first = next((g.tempo for g in gs if g is not None), 120.0)
    events: list[tuple[float, int, int]] = []
    t0 = 0.0
    bpm = float(tempo) if tempo is not None else first
    for g in gs:
        if g is not None and tempo is None:
            bpm = g.tempo
        sec_per_step = 60.0 / bpm / 4.0
        if g is not None:
            events.extend((t0 + t * sec_per_step, d, v) for t, d, v in g.notes())
        t0 += N_STEPS * sec_per_step
    return events, t0


def render_grooves(
    grooves: Groove | list[Groove | None],
    sample_rate: int = SAMPLE_RATE,
    tempo: float | None = None,
    tail: float = TAIL_SECONDS,
) -> np.ndarray:
    """Play grooves one after another (2 bars each) on the built-in kit: float32 mono.

    Each groove keeps its own tempo unless `tempo` is given. The length is the bars plus
    `tail` seconds; micro-timing and velocities are played as written.
    """
    events, seconds = groove_events(grooves, tempo)
    n = round(seconds * sample_rate) + round(tail * sample_rate)
    return _end_fade(_mix(events, n, sample_rate), sample_rate)


def _end_fade(x: np.ndarray, sr: int) -> np.ndarray:
    k = min(len(x), int(_FADE_S * sr))
    if k:
        x[-k:] *= np.linspace(1.0, 0.0, k, dtype=np.float32)
    return x


def _midi_notes(path: str | os.PathLike) -> tuple[list[tuple[float, int, int, float]], float]:
    """(seconds, pitch, velocity, duration) of the drum notes of any MIDI file, and its end.

    Drum tracks (channel 10 or named as drums) are used, all mixed; a file with no drum
    track is read as drums throughout, since the caller asked to hear it as drums.
    """
    import symusic

    p = Path(path)
    if not p.is_file():
        raise AudioError(f"{p}: no such MIDI file")
    try:
        score = symusic.Score(str(p), ttype="second")
    except Exception as e:  # noqa: BLE001 - symusic raises plain RuntimeError/ValueError
        raise AudioError(f"{p}: not a readable MIDI file ({e})") from None
    tracks = [t for t in score.tracks if len(t.notes)]
    drums = [t for t in tracks if t.is_drum] or [t for t in tracks if "drum" in t.name.lower()] or tracks
    notes = []
    for tr in drums:
        a = tr.notes.numpy()
        for t, pitch, vel, dur in zip(a["time"], a["pitch"], a["velocity"], a["duration"]):
            if vel > 0:
                notes.append((float(t), int(pitch), int(vel), float(dur)))
    end = max([float(score.end())] + [t for t, *_ in notes]) if notes else 0.0
    return notes, end


def render_midi(
    path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, tail: float = TAIL_SECONDS
) -> np.ndarray:
    """Render the drum notes of any MIDI file on the built-in kit (General MIDI drum map;
    unmapped pitches are skipped). Tempo changes are honoured: times are read in seconds."""
    notes, end = _midi_notes(path)
    events = [(t, GM_MAP[p], v) for t, p, v, _ in notes if p in GM_MAP]
    n = round((end + tail) * sample_rate)
    return _end_fade(_mix(events, n, sample_rate), sample_rate)


# -- files --------------------------------------------------------------------------------
def write_wav(
    path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    headroom_db: float = HEADROOM_DB,
    normalise: bool = True,
) -> Path:
    """Write 16-bit PCM (mono, or (n, channels)), peak-normalised to -headroom_db dBFS.

    Written to a temporary file and moved into place, so a reader never sees half a file.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise AudioError(f"audio must be (n,) or (n, channels), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise AudioError("audio contains NaN or infinity")
    peak = float(np.abs(x).max()) if x.size else 0.0
    target = 10 ** (-headroom_db / 20)
    if peak > 0 and (normalise or peak > target):
        x = x * (target / peak)
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    out = Path(path)
    # (wave opens no file of its own: a failed open leaves no half-made Wave_write behind)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh, wave.open(fh, "wb") as w:
        w.setnchannels(1 if x.ndim == 1 else x.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return out


# -- SoundFonts ---------------------------------------------------------------------------
SOUNDFONT_RATE = 48000  # midirenderer renders at 48 kHz, stereo
SOUNDFONT_ENV = "FLATGROOVE_SOUNDFONT"
# General MIDI SoundFonts where Debian's packages put them (timgm6mb-soundfont,
# fluid-soundfont-gm, musescore-general-soundfont), smallest first.
SYSTEM_SOUNDFONTS = (
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf2",
)
_INSTALL_HINT = "pip install 'flatgroove[soundfont]' (one wheel, no compiler)"


def default_soundfont() -> Path | None:
    """A General MIDI SoundFont on this machine, or None: $FLATGROOVE_SOUNDFONT, then the
    TimGM6mb.sf2 inside the `pretty_midi` wheel (installed by the `soundfont` extra), then
    Debian's SoundFont packages."""
    env = os.environ.get(SOUNDFONT_ENV)
    if env:  # set and wrong: said, not a different kit heard without a word
        if not Path(env).is_file():
            raise AudioError(f"${SOUNDFONT_ENV} is {env!r}, which is not a file; point it at a "
                             ".sf2 SoundFont or unset it")
        return Path(env)
    try:
        from importlib.util import find_spec

        spec = find_spec("pretty_midi")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for d in spec.submodule_search_locations:
            p = Path(d) / "TimGM6mb.sf2"
            if p.is_file():
                return p
    return next((Path(p) for p in SYSTEM_SOUNDFONTS if Path(p).is_file()), None)


def resolve_soundfont(spec: str | os.PathLike | None) -> Path | None:
    """None (built-in kit), 'gm' (the General MIDI SoundFont found by `default_soundfont`),
    'auto' (that SoundFont when it and midirenderer are installed, else None: the built-in
    kit), or a path to a .sf2 file. Raises AudioError saying what to do when there is none."""
    if spec is None:
        return None
    if str(spec).lower() == "auto":
        try:
            import midirenderer  # noqa: F401
        except ImportError:
            return None
        return default_soundfont()
    if str(spec).lower() in ("gm", "default"):
        found = default_soundfont()
        if found is None:
            raise AudioError(
                f"--soundfont {spec}: no General MIDI SoundFont found; {_INSTALL_HINT}, or "
                f"apt-get install timgm6mb-soundfont, or give a path to a .sf2 file")
        return found
    p = Path(spec).expanduser()
    if not p.is_file():
        raise AudioError(f"{p}: no such SoundFont file (or --soundfont gm for a General MIDI kit)")
    return p


def _midirenderer():
    try:
        import midirenderer
    except ImportError:
        raise AudioError(
            f"rendering with a SoundFont needs midirenderer: {_INSTALL_HINT} "
            "(or leave out --soundfont to use the built-in kit)") from None
    return midirenderer


def render_soundfont(score, soundfont: str | os.PathLike, tail: float = TAIL_SECONDS
                     ) -> np.ndarray:
    """A symusic Score (or a MIDI file's bytes) through a SoundFont: float32 (n, 2) at
    SOUNDFONT_RATE. Channel 10 plays the SoundFont's drum kit (bank 128); the score's tempo
    map is honoured; `tail` seconds follow the last event so cymbals ring out.

    midirenderer (rustysynth, a Rust SoundFont synthesiser in one dependency-free wheel)
    renders; symusic's own synthesiser would need no extra package but its 0.6.0 wheels
    cannot return the audio (the nanobind binding of Synthesizer.render lacks the Eigen
    type caster: TypeError 'Unable to convert function return value')."""
    import symusic

    mr = _midirenderer()
    sf = Path(soundfont)
    if not sf.is_file():
        raise AudioError(f"{sf}: no such SoundFont file")
    if isinstance(score, (bytes, bytearray)):
        try:
            score = symusic.Score.from_midi(bytes(score))
        except Exception as e:  # noqa: BLE001 - symusic raises plain RuntimeError/ValueError
            raise AudioError(f"not a readable MIDI file ({e})") from None
    score = score.copy()
    if tail > 0:  # a marker past the end: the renderer stops at the last event
        bpm = float(score.tempos[-1].qpm) if len(score.tempos) else 120.0
        end = int(score.end()) + round(tail * bpm / 60.0 * score.ticks_per_quarter)
        score.markers.append(symusic.TextMeta(end, "end"))
    try:
        data = mr.render_wave_from(sf.read_bytes(), score.dumps_midi())
    except Exception as e:  # noqa: BLE001 - a bad file surfaces as ValueError or RuntimeError
        raise AudioError(f"{sf}: cannot render with this SoundFont ({e})") from None
    import io

    with wave.open(io.BytesIO(data)) as r:
        if r.getsampwidth() != 2:
            raise AudioError(f"midirenderer returned {8 * r.getsampwidth()}-bit audio; expected 16")
        ch = r.getnchannels()
        pcm = np.frombuffer(r.readframes(r.getnframes()), "<i2").reshape(-1, ch)
    return (pcm.astype(np.float32) / 32768.0).copy()


def render_to_wav(
    source: Groove | list[Groove | None] | str | os.PathLike,
    path: str | os.PathLike,
    soundfont: str | os.PathLike | None = None,
    sample_rate: int = SAMPLE_RATE,
    tempo: float | None = None,
    tail: float = TAIL_SECONDS,
) -> Path:
    """Render grooves or a MIDI file to a WAV file, on the built-in kit (mono, `sample_rate`)
    or a SoundFont (`soundfont`: a path or 'gm'; stereo, 48 kHz). Grooves keep their own
    tempos unless `tempo` is given, with the tempo map that `flatgroove.midi.write_midi`
    writes; a MIDI file plays with its own tempo map."""
    is_file = isinstance(source, (str, os.PathLike))
    sf = resolve_soundfont(soundfont)
    if sf is None:
        audio = (
            render_midi(source, sample_rate, tail)  # type: ignore[arg-type]
            if is_file
            else render_grooves(source, sample_rate, tempo, tail)  # type: ignore[arg-type]
        )
        return write_wav(path, audio, sample_rate)
    if is_file:
        p = Path(source)  # type: ignore[arg-type]
        if not p.is_file():
            raise AudioError(f"{p}: no such MIDI file")
        data: object = p.read_bytes()
    else:
        from flatgroove.midi import midi_score

        data = midi_score(source, tempo=tempo)  # type: ignore[arg-type]
    return write_wav(path, render_soundfont(data, sf, tail), SOUNDFONT_RATE)


__all__ = [
    "SAMPLE_RATE",
    "TAIL_SECONDS",
    "AudioError",
    "default_soundfont",
    "groove_events",
    "kit",
    "render_grooves",
    "render_midi",
    "render_soundfont",
    "render_to_wav",
    "resolve_soundfont",
    "velocity_gain",
    "write_wav",
]
