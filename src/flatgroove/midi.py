"""MIDI file <-> Groove: read drum notes, quantise to 16ths with offsets, window into 2-bar
grooves; write grooves back with their micro-timing and velocities (DESIGN §3).

Parsing uses symusic (C++), reading times in quarter notes so that tempo changes and any
ticks-per-beat fold away; positions are then tempo-independent.
"""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flatgroove.drums import N_DRUMS, OUTPUT_PITCHES, pitch_map
from flatgroove.errors import MidiError
from flatgroove.files import atomic_path
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
    end_step: float = 0.0  # the file's last marker (write_midi's "end" on the last bar line)

    @property
    def n_bars(self) -> int:
        if len(self.steps) == 0:
            return 0
        # A note pushed over the last bar line by a hair belongs to the bar it quantises into.
        return int(np.floor(np.round(self.steps.max()) / STEPS_PER_BAR)) + 1

    @property
    def bars_to_end(self) -> int:
        """Bars up to the file's end where a marker says where it ends: a groove whose last bar
        is silent reads back whole (the dataset's windows keep to n_bars, the notes' bars)."""
        return max(self.n_bars, int(np.floor(self.end_step / STEPS_PER_BAR + 1e-6)))

    def tempo_at_step(self, step: float) -> float:
        bpm = self.tempo
        for s, q in self.tempo_at:
            if s <= step + 1e-9:
                bpm = q
        return bpm


# Bounds on what a MIDI file may ask of the reader (DESIGN §8): the Groove MIDI Dataset's
# longest file is 639 bars and its largest 155 kB; its tempos lie in 50-290 BPM.
MAX_FILE_BYTES = 8 << 20  # bytes read at most; a bigger file is refused unread
MAX_BARS = 4096  # drum notes beyond this bar: the file is refused before anything is allocated
MIN_BPM, MAX_BPM = 20.0, 400.0  # the tempos a Groove may have


def check_header(data: bytes, name: str) -> None:
    """The header chunk, checked before symusic sees the bytes: 'MThd', format 0-2, and a
    positive ticks-per-quarter-note division (0 would divide every time by zero)."""
    if len(data) < 14 or not data.startswith(b"MThd"):
        raise MidiError(f"{name}: not a readable MIDI file (it does not start with 'MThd')")
    hlen = int.from_bytes(data[4:8], "big")
    fmt = int.from_bytes(data[8:10], "big")
    division = int.from_bytes(data[12:14], "big")
    if hlen < 6:
        raise MidiError(f"{name}: not a readable MIDI file (header chunk of {hlen} bytes, needs 6)")
    if fmt > 2:
        raise MidiError(f"{name}: not a readable MIDI file (unknown format {fmt}; 0, 1 or 2)")
    if division & 0x8000:
        raise MidiError(f"{name}: SMPTE time division (frames per second); flatgroove reads "
                        "files timed in ticks per quarter note")
    if division == 0:
        raise MidiError(f"{name}: not a readable MIDI file (0 ticks per quarter note)")


def _note_count(score) -> int:
    return sum(len(t.notes) for t in score.tracks)


def _mido_file(data: bytes):
    """The file parsed by mido, or None where mido cannot parse it (symusic then says what is
    wrong with it)."""
    import io

    import mido

    try:
        return mido.MidiFile(file=io.BytesIO(data), clip=True)
    except Exception:  # noqa: BLE001 - mido raises many kinds
        return None


def _note_on_count(mf) -> int:
    """Note-ons (velocity > 0) of a mido file: the check that symusic kept every note (≈ 4 ms
    of parsing for a groove-sized file)."""
    return sum(1 for tr in mf.tracks for m in tr if m.type == "note_on" and m.velocity > 0)


def close_hanging_notes(data: bytes) -> bytes:
    """The file with a note-off for every note-on that has none (drum machines and pads often
    send note-ons alone on channel 10: a drum hit has no length). symusic drops a note it
    cannot close, so such a file read as "no notes". A note-on whose key is still open closes
    the earlier note there; a note open at the track's end closes at the end (or a tick after
    its start). Unchanged bytes when nothing is open or mido cannot parse the file."""
    mf = _mido_file(data)
    return data if mf is None else _closed(mf) or data


def _closed(mf) -> bytes | None:
    """`close_hanging_notes` on a parsed file (changed in place): its bytes, or None when no
    note was open."""
    import io

    import mido

    added = 0
    for track in mf.tracks:
        t, out, open_at = 0, [], {}
        end = None
        for msg in track:
            t += msg.time
            if msg.type == "end_of_track":
                end = t
                continue
            key = (getattr(msg, "channel", -1), getattr(msg, "note", -1))
            if msg.type == "note_on" and msg.velocity > 0:
                if key in open_at:
                    out.append((t, mido.Message("note_off", channel=key[0], note=key[1])))
                    added += 1
                open_at[key] = t
            elif msg.type in ("note_on", "note_off"):
                open_at.pop(key, None)
            out.append((t, msg))
        last = t if end is None else end
        for (ch, note), start in open_at.items():
            out.append((max(last, start + 1), mido.Message("note_off", channel=ch, note=note)))
            added += 1
        out.sort(key=lambda x: x[0])  # stable: same-time messages keep their order
        out.append((max([last] + [a for a, _ in out]), mido.MetaMessage("end_of_track")))
        track.clear()
        prev = 0
        for a, m in out:
            track.append(m.copy(time=a - prev))
            prev = a
    if not added:
        return None
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def _load_score(path: str | os.PathLike):
    import symusic

    p = Path(path)
    if not p.exists():
        raise MidiError(f"{p}: no such file")
    if p.is_dir():
        raise MidiError(f"{p}: is a folder, not a MIDI file")
    if not p.is_file():
        raise MidiError(f"{p}: not a regular file")
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise MidiError(f"{p}: cannot read ({e.strerror or e})") from None
    if len(data) > MAX_FILE_BYTES:
        raise MidiError(f"{p}: larger than {MAX_FILE_BYTES >> 20} MB; not a drum MIDI file "
                        "flatgroove reads")
    check_header(data, str(p))
    try:
        score = symusic.Score.from_midi(data, ttype="quarter")
    except Exception as e:  # noqa: BLE001 - symusic raises plain RuntimeError/ValueError
        raise MidiError(f"{p}: not a readable MIDI file ({_one_line(e)})") from None
    mf = _mido_file(data)
    if mf is not None and _note_count(score) < _note_on_count(mf):  # note-ons without offs
        closed = _closed(mf)
        if closed is not None:
            score = symusic.Score.from_midi(closed, ttype="quarter")
    for tp in score.tempos:
        qpm = float(tp.qpm)
        if not (math.isfinite(qpm) and MIN_BPM <= qpm <= MAX_BPM):
            what = "an infinite tempo (0 microseconds per quarter note)" if qpm == math.inf \
                else f"tempo {qpm:.4g} BPM"
            raise MidiError(f"{p}: {what} at bar {_bar_of(float(tp.time))}; flatgroove reads "
                            f"{MIN_BPM:g}-{MAX_BPM:g} BPM")
    return score


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]


def _bar_of(quarter: float) -> str:
    """1-based bar of a time in quarter notes, for messages (4/4)."""
    return f"{int(quarter // 4) + 1}" if math.isfinite(quarter) and quarter < 1e15 else "?"


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
    # Channel 10 first; a track's name only where no track is on it ("Steel Drums" beside a
    # kit on channel 10 is a melody, not toms)
    drum_tracks = [t for t in tracks if t.is_drum] or [t for t in tracks if "drum" in t.name.lower()]
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
    if not np.isfinite(steps_a).all():
        raise MidiError(f"{path}: not a readable MIDI file (note times are not finite)")
    last = float(steps_a.max()) / STEPS_PER_BAR
    if last >= MAX_BARS:
        # Refused before any window is allocated: a few bytes can put a note a million bars on.
        raise MidiError(f"{path}: a drum note at bar {_bar_of(last * 4)}; flatgroove reads "
                        f"files of at most {MAX_BARS} bars")
    order = np.argsort(steps_a, kind="stable")
    tempos = [(float(tp.time) * 4.0, float(tp.qpm)) for tp in score.tempos]
    if tempos and min(t for t, _ in tempos) >= 1.0:
        tempos.insert(0, (0.0, 120.0))  # MIDI's tempo before the first tempo event
    tempo = tempos[0][1] if tempos else 120.0
    marks = [float(m.time) * 4.0 for m in score.markers]
    return DrumPart(
        path=path,
        steps=steps_a[order],
        drums=np.concatenate(drums)[order],
        velocities=np.concatenate(vels)[order],
        tempo=tempo,
        tempo_at=tempos,
        ignored=ignored,
        end_step=max(marks, default=0.0),
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
    part: DrumPart, bars: int = 2, hop_bars: int = 1, drop_empty: bool = True, to_end: bool = False
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
    n_bars = min(part.bars_to_end, MAX_BARS) if to_end else part.n_bars  # to_end: a file's own reading
    n_all = (max(n_bars - bars + 1, 0) + hop_bars - 1) // hop_bars  # windows in the part
    if not drop_empty and n_all > MAX_BARS:
        raise MidiError(f"{part.path}: {n_bars} bars; flatgroove reads files of at most "
                        f"{MAX_BARS} bars")
    # Each note lands in every window that covers its step: the window starting k bars
    # before the note's bar, for k < bars, when that start is on the hop grid.
    bar = grid // STEPS_PER_BAR
    ws, sts, idx = [], [], []
    for k in range(bars):
        sb = bar - k
        ok = (sb >= 0) & (sb % hop_bars == 0) & (sb // hop_bars < n_all)
        ws.append(sb[ok] // hop_bars)
        sts.append(grid[ok] - sb[ok] * STEPS_PER_BAR)
        idx.append(np.nonzero(ok)[0])
    w, st, i = np.concatenate(ws), np.concatenate(sts), np.concatenate(idx)
    if drop_empty:
        # Only windows with at least one hit are allocated: memory follows the notes, not
        # the length of the file.
        keep_w = np.unique(w)
        w = np.searchsorted(keep_w, w)
    else:
        keep_w = np.arange(n_all)
    starts = keep_w * hop_bars
    feats = np.zeros((len(starts), N_STEPS, 3 * N_DRUMS), np.float32)
    _fill(feats, w, st, part.drums[i], part.velocities[i], off[i], i)
    return feats, starts.astype(np.int64), _tempos_at(part, starts * STEPS_PER_BAR)


def _fill(feats: np.ndarray, w: np.ndarray, st: np.ndarray, dr: np.ndarray, vel: np.ndarray,
          off: np.ndarray, i: np.ndarray) -> None:
    """Write notes (window, step, drum, velocity, offset, note index) into `feats`. Two hits
    of one class in one step: the louder wins (ties: the later note). Sort by cell, then
    velocity, then note order, and keep the last entry of every cell."""
    if not len(w):
        return
    cell = (w * N_STEPS + st) * N_DRUMS + dr
    order = np.lexsort((i, vel, cell))
    cell, w, st, dr, vel, off = (a[order] for a in (cell, w, st, dr, vel, off))
    last = np.ones(len(cell), bool)
    last[:-1] = cell[1:] != cell[:-1]
    w, st, dr, vel, off = w[last], st[last], dr[last], vel[last], off[last]
    feats[w, st, dr] = 1.0
    feats[w, st, N_DRUMS + dr] = vel
    feats[w, st, 2 * N_DRUMS + dr] = off


def window_at(part: DrumPart, bar: int, bars: int = 2) -> tuple[np.ndarray, float]:
    """The features (32, 27) and tempo of the window starting at `bar`: work follows the
    notes of those bars only."""
    grid, off = _quantise(part.steps)
    lo = bar * STEPS_PER_BAR
    i = np.nonzero((grid >= lo) & (grid < lo + bars * STEPS_PER_BAR))[0]
    feats = np.zeros((1, N_STEPS, 3 * N_DRUMS), np.float32)
    _fill(feats, np.zeros(len(i), np.int64), grid[i] - lo, part.drums[i], part.velocities[i],
          off[i], i)
    return feats[0], float(_tempos_at(part, np.array([lo], np.float64))[0])


def windows(
    part: DrumPart, bars: int = 2, hop_bars: int = 1, drop_empty: bool = True, to_end: bool = False
) -> list[tuple[int, Groove]]:
    """2-bar grooves starting every `hop_bars` bars: [(start bar, Groove)]; to_end: up to the
    file's end marker, not only its last note's bar."""
    feats, starts, tempos = window_arrays(part, bars, hop_bars, drop_empty, to_end)
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
    gs = [g for _, g in windows(part, hop_bars=hop_bars, drop_empty=drop_empty, to_end=True)]
    if not gs:
        raise MidiError(f"{path}: shorter than 2 bars of drums, no groove to read")
    return gs


def read_groove(path: str | os.PathLike, bar: int = 0, drum_map: str = "gm") -> Groove:
    """The 2 bars starting at `bar` (default: the first two bars)."""
    return groove_at(read_drums(path, drum_map=drum_map), bar)


def groove_at(part: DrumPart, bar: int = 0) -> Groove:
    """The 2 bars of `part` starting at `bar` (0-based); MidiError if out of range or silent."""
    path = part.path
    if not 0 <= bar <= part.bars_to_end - 2:
        last = part.bars_to_end - 2
        where = f"bars count from 0: 0 to {last}" if last >= 0 else "it is shorter than 2 bars"
        raise MidiError(f"{path}: has {part.bars_to_end} bars of drums; cannot take 2 bars from "
                        f"bar {bar} ({where})")
    f, tempo = window_at(part, bar)
    g = _groove(f, tempo, f"{Path(path).stem}@{bar}")
    if g.n_hits == 0:
        raise MidiError(f"{path}: the 2 bars from bar {bar} (counting from 0) are silent")
    return g


def _tick(cell: int, offset: float, tick_per_step: float) -> int:
    """The tick of a hit in step `cell` with `offset`, rounded so that reading the file back
    quantises it into the same step (an offset near +0.5 must not round into the next one).
    Hits cannot go before the start of the file."""
    tick = round((cell + offset) * tick_per_step)
    first = math.ceil((cell - 0.5) * tick_per_step)  # first tick that quantises into `cell`
    last = math.ceil((cell + 0.5) * tick_per_step) - 1  # last one
    return max(0, min(max(tick, first), last))


def _tempo_events(
    parts: list[list[Groove | None]], tempo: float | None,
    tempo_map: list[tuple[float, float]] | None,
) -> list[tuple[float, float]]:
    """(beat, BPM) tempo changes: one fixed `tempo`; or the `tempo_map` given in beats; or
    each 2-bar slot at the tempo of its groove (the first part that has one there), a slot
    with none keeping the tempo before it. The same rule as flatgroove.audio.groove_events,
    so a file and its rendering agree."""
    if tempo is not None:
        return [(0.0, float(tempo))]
    if tempo_map:
        events = sorted((max(0.0, float(b)), float(t)) for b, t in tempo_map)
        if events[0][0] > 0:
            events.insert(0, (0.0, events[0][1]))
        return events
    n = max(len(p) for p in parts)
    slots: list[float | None] = []
    for k in range(n):
        g = next((p[k] for p in parts if k < len(p) and p[k] is not None), None)
        slots.append(None if g is None else float(g.tempo))
    first = next(t for t in slots if t is not None)
    out: list[tuple[float, float]] = []
    bpm = first
    for k, t in enumerate(slots):
        bpm = t if t is not None else bpm
        if not out or abs(out[-1][1] - bpm) > 1e-6:
            out.append((k * N_STEPS / 4.0, bpm))
    return out


def midi_score(
    grooves: Groove | list[Groove] | list[list[Groove]],
    tempo: float | None = None,
    tpq: int = 480,
    track_names: list[str] | None = None,
    note_steps: float = 0.5,
    markers: bool | list[str | None] = False,
    tempo_map: list[tuple[float, float]] | None = None,
):
    """The symusic Score that `write_midi` writes (see there)."""
    import symusic

    if isinstance(grooves, Groove):
        grooves = [grooves]
    parts: list[list[Groove]] = (
        [list(p) for p in grooves] if grooves and isinstance(grooves[0], list) else [list(grooves)]  # type: ignore[arg-type]
    )
    present = [g for p in parts for g in p if g is not None]
    if not present:
        raise ValueError("nothing to write: no grooves")
    score = symusic.Score(tpq)
    for beat, bpm in _tempo_events(parts, tempo, tempo_map):
        score.tempos.append(symusic.Tempo(round(beat * tpq), bpm))
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    tick_per_step = tpq / 4.0
    if markers:
        names = markers if isinstance(markers, list) else [g.name if g else None for g in parts[0]]
        for k, name in enumerate(names):
            if name:
                score.markers.append(symusic.TextMeta(round(k * N_STEPS * tick_per_step), str(name)))
    n_slots = max(len(p) for p in parts)  # the file ends on the last bar line, not the last note
    score.markers.append(symusic.TextMeta(round(n_slots * N_STEPS * tick_per_step), "end"))
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
    return score


def write_midi(
    grooves: Groove | list[Groove] | list[list[Groove]],
    path: str | os.PathLike,
    tempo: float | None = None,
    tpq: int = 480,
    track_names: list[str] | None = None,
    note_steps: float = 0.5,
    markers: bool | list[str | None] = False,
    tempo_map: list[tuple[float, float]] | None = None,
) -> Path:
    """Write grooves one after another (2 bars each) to a type-1 MIDI file on channel 10.

    `grooves` may be a list of lists: one drum track per list (e.g. drummer and machine),
    all starting at bar 1; a None slot is 2 bars of rest. Micro-timing and velocities are
    kept. Tempo: `tempo` for the whole file; else `tempo_map`, (beat, BPM) changes; else
    each groove at its own tempo (a tempo change wherever it changes), as the WAV renders
    them. `markers`: True names each groove of the first track with a marker event at its
    first beat (a DAW shows where each starts), or a list gives one text per slot. An "end"
    marker sits on the last bar line, so the file lasts exactly its bars.
    Written atomically.
    """
    score = midi_score(grooves, tempo, tpq, track_names, note_steps, markers, tempo_map)
    out = Path(path)
    with atomic_path(out) as tmp:
        try:
            score.dump_midi(str(tmp))
        except RuntimeError as e:  # symusic's own error for a write that failed
            raise OSError(errno.EIO, f"cannot write MIDI ({_one_line(e)})", str(out)) from None
    return out
