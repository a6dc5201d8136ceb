"""MIDI file <-> Groove: read drum notes, quantise to 16ths with offsets, window into 2-bar
grooves; write grooves back with their micro-timing and velocities (DESIGN §3).

Parsing uses symusic (C++), reading times in quarter notes so that tempo changes and any
ticks-per-beat fold away; positions are then tempo-independent.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flatgroove.drums import N_DRUMS, OUTPUT_PITCHES, pitch_map
from flatgroove.errors import MidiError
from flatgroove.groove import N_STEPS, STEPS_PER_BAR, Groove

DRUM_CHANNEL = 9  # MIDI channel 10, zero-based


@dataclass
class DrumPart:
    """The drum notes of one file, on a 16th-note grid."""

    path: str
    steps: np.ndarray  # (n,) float, note onsets in 16th steps from the start
    drums: np.ndarray  # (n,) int, drum class
    velocities: np.ndarray  # (n,) float in [0, 1]
    tempo: float  # BPM of the first tempo event (120 when none)
    tempo_at: list[tuple[float, float]] = field(default_factory=list)  # (step, bpm) changes
    ignored: dict[str, int] = field(default_factory=dict)  # what was dropped, and how much

    @property
    def n_bars(self) -> int:
        if len(self.steps) == 0:
            return 0
        # A note pushed over the last bar line by a hair belongs to the bar it quantises into.
        return int(np.floor(np.round(self.steps.max()) / STEPS_PER_BAR)) + 1

    def tempo_at_step(self, step: float) -> float:
        bpm = self.tempo
        for s, q in self.tempo_at:
            if s <= step + 1e-9:
                bpm = q
        return bpm


def _load_score(path: str | os.PathLike):
    import symusic

    p = Path(path)
    if not p.exists():
        raise MidiError(f"{p}: no such file")
    if p.is_dir():
        raise MidiError(f"{p}: is a folder, not a MIDI file")
    try:
        return symusic.Score(str(p), ttype="quarter")
    except Exception as e:  # noqa: BLE001 - symusic raises plain RuntimeError/ValueError
        raise MidiError(f"{p}: not a readable MIDI file ({e})") from None


def check_four_four(score, path: str) -> None:
    for ts in score.time_signatures:
        if (ts.numerator, ts.denominator) != (4, 4):
            raise MidiError(
                f"{path}: time signature {ts.numerator}/{ts.denominator} at quarter {ts.time:g}; "
                "flatgroove reads 4/4 only"
            )


_LUTS: dict[str, np.ndarray] = {}


def _lut(drum_map: str) -> np.ndarray:
    """pitch (0..127) -> drum class, -1 where the map has no class."""
    lut = _LUTS.get(drum_map)
    if lut is None:
        lut = np.full(128, -1, np.int64)
        for p, c in pitch_map(drum_map).items():
            lut[p] = c
        _LUTS[drum_map] = lut
    return lut


def read_drums(path: str | os.PathLike, drum_map: str = "gm", require_4_4: bool = True) -> DrumPart:
    """All drum notes of a MIDI file (type 0 or 1), in 16th steps.

    Drum notes come from channel 10 or tracks named as drums. If a file has no such track
    but only one track (a common export from drum software), that track is used.
    Pitches outside the map are dropped and counted in `ignored`.
    """
    path = str(path)
    score = _load_score(path)
    if require_4_4:
        check_four_four(score, path)
    tracks = [t for t in score.tracks if len(t.notes)]
    if not tracks:
        raise MidiError(f"{path}: contains no notes")
    drum_tracks = [t for t in tracks if t.is_drum or "drum" in t.name.lower()]
    ignored: dict[str, int] = {}
    if not drum_tracks:
        if len(tracks) == 1 and len(score.tracks) == 1:
            drum_tracks = tracks
            ignored["note: single non-drum track read as drums"] = 0
        else:
            n = sum(len(t.notes) for t in tracks)
            raise MidiError(
                f"{path}: no drum notes (no track on channel 10 or named as drums; "
                f"{len(tracks)} other tracks with {n} notes)"
            )
    for t in tracks:
        if t not in drum_tracks:
            what = f"non-drum track {t.name or '(unnamed)'!r}"
            ignored[what] = ignored.get(what, 0) + len(t.notes)
    lut = _lut(drum_map)
    steps, drums, vels = [], [], []
    for t in drum_tracks:
        a = t.notes.numpy()
        cls = lut[np.clip(a["pitch"].astype(np.int64), 0, 127)]
        keep = cls >= 0
        if not keep.all():
            for p, c in zip(*np.unique(a["pitch"][~keep], return_counts=True)):
                what = f"unmapped pitch {int(p)}"
                ignored[what] = ignored.get(what, 0) + int(c)
        zero = a["velocity"] == 0
        keep &= ~zero
        steps.append(a["time"][keep].astype(np.float64) * 4.0)
        drums.append(cls[keep])
        vels.append(a["velocity"][keep].astype(np.float32) / 127.0)
    steps_a = np.concatenate(steps)
    if len(steps_a) == 0:
        raise MidiError(f"{path}: no drum notes on mapped pitches ({drum_map} map)")
    order = np.argsort(steps_a, kind="stable")
    tempos = [(float(tp.time) * 4.0, float(tp.qpm)) for tp in score.tempos]
    tempo = tempos[0][1] if tempos else 120.0
    return DrumPart(
        path=path,
        steps=steps_a[order],
        drums=np.concatenate(drums)[order],
        velocities=np.concatenate(vels)[order],
        tempo=tempo,
        tempo_at=tempos,
        ignored=ignored,
    )


def _tempos_at(part: DrumPart, steps: np.ndarray) -> np.ndarray:
    """The tempo in force at each step (as `DrumPart.tempo_at_step`), clipped to 20-400 BPM."""
    bpm = np.full(len(steps), part.tempo, np.float64)
    if part.tempo_at and len(steps):
        at = np.array([s for s, _ in part.tempo_at], np.float64)
        q = np.array([b for _, b in part.tempo_at], np.float64)
        o = np.argsort(at, kind="stable")
        at, q = at[o], q[o]
        # The last change at or before each step.
        j = np.searchsorted(at, np.asarray(steps, np.float64) + 1e-9, side="right") - 1
        bpm = np.where(j >= 0, q[np.maximum(j, 0)], bpm)
    return np.clip(bpm.astype(np.float32), 20.0, 400.0)


def _quantise(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grid = np.floor(steps + 0.5)  # round half up, so the offset lies in [-0.5, 0.5)
    return grid.astype(np.int64), (steps - grid).astype(np.float32)


def window_arrays(
    part: DrumPart, bars: int = 2, hop_bars: int = 1, drop_empty: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised windowing: (features (n, 32, 27) float32, start bars (n,), tempos (n,)).

    Windows start every `hop_bars` bars and lie within the part (the last one ends at the
    last bar with notes). Two hits of one class in one step: the louder wins.
    """
    if bars * STEPS_PER_BAR != N_STEPS:
        raise ValueError(f"a Groove is {N_STEPS // STEPS_PER_BAR} bars; got bars={bars}")
    if hop_bars < 1:
        raise ValueError("hop_bars must be >= 1")
    grid, off = _quantise(part.steps)
    starts = np.arange(0, max(part.n_bars - bars + 1, 0), hop_bars)
    n = len(starts)
    feats = np.zeros((n, N_STEPS, 3 * N_DRUMS), np.float32)
    if n and len(grid):
        # Each note lands in every window that covers its step: the window starting k bars
        # before the note's bar, for k < bars, when that start is on the hop grid.
        bar = grid // STEPS_PER_BAR
        ws, sts, idx = [], [], []
        for k in range(bars):
            sb = bar - k
            ok = (sb >= 0) & (sb % hop_bars == 0) & (sb // hop_bars < n)
            ws.append(sb[ok] // hop_bars)
            sts.append(grid[ok] - sb[ok] * STEPS_PER_BAR)
            idx.append(np.nonzero(ok)[0])
        w, st, i = np.concatenate(ws), np.concatenate(sts), np.concatenate(idx)
        dr = part.drums[i]
        # Two hits of one class in one step: the louder wins (ties: the later note). Sort by
        # cell, then velocity, then note order, and keep the last entry of every cell.
        cell = (w * N_STEPS + st) * N_DRUMS + dr
        order = np.lexsort((i, part.velocities[i], cell))
        cell, w, st, dr, i = cell[order], w[order], st[order], dr[order], i[order]
        last = np.ones(len(cell), bool)
        last[:-1] = cell[1:] != cell[:-1]
        w, st, dr, i = w[last], st[last], dr[last], i[last]
        feats[w, st, dr] = 1.0
        feats[w, st, N_DRUMS + dr] = part.velocities[i]
        feats[w, st, 2 * N_DRUMS + dr] = off[i]
    else:
        w = np.zeros(0, np.int64)
    tempos = _tempos_at(part, starts * STEPS_PER_BAR)
    if drop_empty and n:
        keep = np.bincount(w, minlength=n) > 0  # windows with at least one hit
        if not keep.all():
            feats, starts, tempos = feats[keep], starts[keep], tempos[keep]
    return feats, starts, tempos


def windows(
    part: DrumPart, bars: int = 2, hop_bars: int = 1, drop_empty: bool = True
) -> list[tuple[int, Groove]]:
    """2-bar grooves starting every `hop_bars` bars: [(start bar, Groove)]."""
    feats, starts, tempos = window_arrays(part, bars, hop_bars, drop_empty)
    stem = Path(part.path).stem
    return [
        (int(s), _groove(f, t, f"{stem}@{int(s)}")) for f, s, t in zip(feats, starts, tempos)
    ]


def _groove(f: np.ndarray, tempo: float, name: str) -> Groove:
    return Groove(f[:, :N_DRUMS], f[:, N_DRUMS : 2 * N_DRUMS], f[:, 2 * N_DRUMS :], tempo, name)


def read_grooves(
    path: str | os.PathLike, hop_bars: int = 1, drum_map: str = "gm", drop_empty: bool = True
) -> list[Groove]:
    """All 2-bar windows of a MIDI file as Grooves."""
    part = read_drums(path, drum_map=drum_map)
    gs = [g for _, g in windows(part, hop_bars=hop_bars, drop_empty=drop_empty)]
    if not gs:
        raise MidiError(f"{path}: shorter than 2 bars of drums, no groove to read")
    return gs


def read_groove(path: str | os.PathLike, bar: int = 0, drum_map: str = "gm") -> Groove:
    """The 2 bars starting at `bar` (default: the first two bars)."""
    part = read_drums(path, drum_map=drum_map)
    for start, g in windows(part, hop_bars=1, drop_empty=False):
        if start == bar:
            if g.n_hits == 0:
                raise MidiError(f"{path}: bars {bar + 1}-{bar + 2} are silent")
            return g
    raise MidiError(f"{path}: has {part.n_bars} bars of drums; cannot take 2 bars from bar {bar + 1}")


def _tick(cell: int, offset: float, tick_per_step: float) -> int:
    """The tick of a hit in step `cell` with `offset`, rounded so that reading the file back
    quantises it into the same step (an offset near +0.5 must not round into the next one).
    Hits cannot go before the start of the file."""
    tick = round((cell + offset) * tick_per_step)
    first = math.ceil((cell - 0.5) * tick_per_step)  # first tick that quantises into `cell`
    last = math.ceil((cell + 0.5) * tick_per_step) - 1  # last one
    return max(0, min(max(tick, first), last))


def write_midi(
    grooves: Groove | list[Groove] | list[list[Groove]],
    path: str | os.PathLike,
    tempo: float | None = None,
    tpq: int = 480,
    track_names: list[str] | None = None,
    note_steps: float = 0.5,
) -> Path:
    """Write grooves one after another (2 bars each) to a type-1 MIDI file on channel 10.

    `grooves` may be a list of lists: one drum track per list (e.g. drummer and machine),
    all starting at bar 1. Micro-timing and velocities are kept. Written atomically.
    """
    import symusic

    if isinstance(grooves, Groove):
        grooves = [grooves]
    parts: list[list[Groove]] = (
        [list(p) for p in grooves] if grooves and isinstance(grooves[0], list) else [list(grooves)]  # type: ignore[arg-type]
    )
    present = [g for p in parts for g in p if g is not None]
    if not present:
        raise ValueError("nothing to write: no grooves")
    bpm = float(tempo if tempo is not None else present[0].tempo)
    score = symusic.Score(tpq)
    score.tempos.append(symusic.Tempo(0, bpm))
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    tick_per_step = tpq / 4.0
    dur = max(1, round(note_steps * tick_per_step))
    for i, part in enumerate(parts):
        name = track_names[i] if track_names and i < len(track_names) else "Drums"
        track = symusic.Track(name, 0, True)
        for k, g in enumerate(part):
            if g is None:
                continue
            base = k * N_STEPS
            for step, drum in zip(*np.nonzero(g.hits)):
                cell = base + int(step)
                tick = _tick(cell, float(g.offsets[step, drum]), tick_per_step)
                vel = int(np.clip(round(float(g.velocities[step, drum]) * 127), 1, 127))
                track.notes.append(symusic.Note(tick, dur, OUTPUT_PITCHES[drum], vel))
        track.notes.sort()
        score.tracks.append(track)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    score.dump_midi(str(tmp))
    os.replace(tmp, out)
    return out
