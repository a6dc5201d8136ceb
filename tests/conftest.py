"""Shared fixtures: a private cache per test session, the Groove MIDI Dataset when present,
a small MIDI file writer (mido) for tests that need files no flatgroove code wrote, and a
JACK server of the tests' own."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Point FLATGROOVE_CACHE at a fresh folder for the whole session; never touch ~/.cache."""
    old = os.environ.get("FLATGROOVE_CACHE")
    os.environ["FLATGROOVE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("FLATGROOVE_CACHE", None)
    else:
        os.environ["FLATGROOVE_CACHE"] = old


@pytest.fixture(scope="session")
def gmd_root() -> Path:
    """The Groove MIDI Dataset folder ($FLATGROOVE_GMD or ../shared/data/groove); skips if absent."""
    from flatgroove.data import default_root

    root = default_root()
    if not (root / "info.csv").exists():
        pytest.skip(f"Groove MIDI Dataset not found at {root}; set FLATGROOVE_GMD")
    return root


def write_mido(
    path: str | os.PathLike,
    tracks: list[list[tuple[int, int, int, int]]],
    tpq: int = 480,
    midi_type: int = 1,
    tempos: Sequence[tuple[int, float]] = ((0, 120.0),),
    time_signature: tuple[int, int] | None = (4, 4),
    names: list[str] | None = None,
    duration: int = 30,
) -> Path:
    """Write a MIDI file with mido. `tracks`: per track, notes (tick, pitch, velocity, channel).

    Type 1: a conductor track (tempo, time signature) then one track per list. Type 0: every
    note merged into one track. `names` name the note tracks."""
    import mido

    meta = [mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=t) for t, bpm in tempos]
    if time_signature is not None:
        n, d = time_signature
        meta.append(mido.MetaMessage("time_signature", numerator=n, denominator=d, time=0))

    def events(notes):
        ev = []
        for tick, pitch, vel, ch in notes:
            ev.append((tick, 1, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
            ev.append((tick + duration, 0, mido.Message("note_off", channel=ch, note=pitch)))
        return ev

    def track(abs_events, name=None):
        tr = mido.MidiTrack()
        if name:
            tr.append(mido.MetaMessage("track_name", name=name, time=0))
        now = 0
        for tick, _, msg in sorted(abs_events, key=lambda e: (e[0], e[1])):
            tr.append(msg.copy(time=tick - now))
            now = tick
        return tr

    mf = mido.MidiFile(type=midi_type, ticks_per_beat=tpq)
    meta_ev = [(m.time, -1, m.copy(time=0)) for m in meta]
    if midi_type == 0:
        mf.tracks.append(track(meta_ev + [e for notes in tracks for e in events(notes)]))
    else:
        mf.tracks.append(track(meta_ev))
        for i, notes in enumerate(tracks):
            mf.tracks.append(track(events(notes), names[i] if names and i < len(names) else None))
    out = Path(path)
    mf.save(str(out))
    return out


@pytest.fixture
def mido_file():
    """The `write_mido` helper, as a fixture for test modules."""
    return write_mido


@pytest.fixture(scope="session")
def jack():
    """A JACK server of the tests' own (JACK's dummy driver: no sound card needed), its name;
    the test skips with the reason where JACK cannot start."""
    from flatgroove.live.jack import JackServer, JackUnavailable

    # Real-time where the OS permits it (root, rtprio): a loaded CI machine otherwise delays
    # JACK's process cycle by hundreds of milliseconds and notes arrive late or after the end.
    server = JackServer(f"flatgroove-test-{os.getpid()}", realtime=True, sync=True)
    try:
        name = server.start()
    except JackUnavailable:
        server = JackServer(f"flatgroove-test-{os.getpid()}", sync=True)
        try:
            name = server.start()
        except JackUnavailable as e:
            pytest.skip(str(e))
    try:
        yield name
    finally:
        server.stop()
