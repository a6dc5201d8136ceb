"""A small corpus of crafted hostile MIDI files, each with the one-line error the reader must
give (DESIGN §8), and the mutations the fuzz tests and benchmarks/bench_fuzz.py apply.

    python tests/hostile_midi/make_corpus.py    # rewrites the .mid files and expected.tsv

The files are written by code, not taken from any dataset. `expected.tsv` holds
`name<TAB>message`, where `{path}` in the message stands for the file's path.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent


# -- building MIDI bytes ---------------------------------------------------------------------------
def vlq(n: int) -> bytes:
    """A MIDI variable-length quantity (any n >= 0; more than 4 bytes is invalid MIDI)."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def track(events: list[tuple[int, bytes]], end: bool = True) -> bytes:
    """Events (delta ticks, bytes) as a track chunk's payload."""
    body = b"".join(vlq(d) + e for d, e in events)
    return body + (b"\x00\xff\x2f\x00" if end else b"")


def chunk(payload: bytes, kind: bytes = b"MTrk", length: int | None = None) -> bytes:
    return kind + struct.pack(">I", len(payload) if length is None else length) + payload


def midi_file(tracks: list[bytes], tpq: int = 480, fmt: int = 1, n_tracks: int | None = None) -> bytes:
    """A file from track payloads; `tpq` is written as the 16-bit division field as given."""
    head = struct.pack(">IHHH", 6, fmt, len(tracks) if n_tracks is None else n_tracks, tpq & 0xFFFF)
    return b"MThd" + head + b"".join(chunk(t) for t in tracks)


def hit(delta: int, pitch: int = 36, vel: int = 100, length: int = 60) -> list[tuple[int, bytes]]:
    """A note on channel 10 `delta` ticks after the last event, and its note-off."""
    return [(delta, bytes([0x99, pitch, vel])), (length, bytes([0x89, pitch, 0]))]


def hits(n: int, gap: int, **kw) -> list[tuple[int, bytes]]:
    """`n` notes (see `hit`), `gap` ticks between one note-off and the next note."""
    return [e for i in range(n) for e in hit(0 if i == 0 else gap, **kw)]


def tempo_event(us_per_quarter: int) -> tuple[int, bytes]:
    return (0, b"\xff\x51\x03" + us_per_quarter.to_bytes(3, "big"))


def beat(bars: int, tpq: int = 480, seed: int = 0) -> list[tuple[int, bytes]]:
    """A rock-ish drum part: kick, snare, hats in 8ths, with a little random velocity."""
    rnd = random.Random(seed)
    ev: list[tuple[int, bytes]] = []
    step = tpq // 2  # 8th notes
    last = 0
    for b in range(bars):
        for k in range(8):
            t = (b * 8 + k) * step
            pitches = [42] + ([36] if k in (0, 3, 4) else []) + ([38] if k in (2, 6) else [])
            for i, p in enumerate(pitches):
                ev.append((t - last if i == 0 else 0, bytes([0x99, p, rnd.randint(40, 120)])))
                last = t
            ev.append((30, bytes([0x89, 42, 0])))
            last += 30
    return ev


def synthetic_sources(k: int, seed: int = 0) -> list[bytes]:
    """`k` plain drum files (4-16 bars, assorted tpq), for fuzzing without a dataset."""
    rnd = random.Random(seed)
    out = []
    for i in range(k):
        tpq = rnd.choice([96, 220, 384, 480, 960])
        ev = [tempo_event(rnd.randint(300_000, 900_000))] + beat(rnd.randint(4, 16), tpq, seed + i)
        out.append(midi_file([track(ev)], tpq=tpq, fmt=0))
    return out


# -- mutations -----------------------------------------------------------------------------------
def _track_starts(data: bytes) -> list[int]:
    """Offsets of the first event byte of each MTrk chunk."""
    out, i = [], data.find(b"MTrk")
    while i >= 0:
        out.append(i + 8)
        i = data.find(b"MTrk", i + 4)
    return out


def mutate(data: bytes, rnd: random.Random) -> tuple[bytes, str]:
    """One random mutation of a MIDI file: (bytes, what was done)."""
    how = rnd.choice(["flip", "flip", "truncate", "junk", "chunk_length", "huge_delta",
                      "division_0", "division_1", "tempo", "running_status", "empty",
                      "not_midi", "header", "many_flips"])
    b = bytearray(data)
    starts = _track_starts(data) or [14]
    if how in ("flip", "many_flips"):
        for _ in range(rnd.randint(1, 8) if how == "flip" else rnd.randint(20, 200)):
            i = rnd.randrange(len(b))
            b[i] = rnd.randrange(256)
    elif how == "truncate":
        del b[rnd.randrange(len(b)):]
    elif how == "junk":
        i = rnd.randrange(len(b) + 1)
        b[i:i] = rnd.randbytes(rnd.randint(1, 64))
    elif how == "chunk_length":
        i = rnd.choice(starts) - 4
        b[i:i + 4] = struct.pack(">I", rnd.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF,
                                                   rnd.randrange(1 << 32),
                                                   max(0, len(b) - i + rnd.randint(-8, 8))]))
    elif how == "huge_delta":
        i = rnd.choice(starts)
        b[i:i] = bytes.fromhex("8FFFFF7F") + bytes.fromhex("FF0100")  # a far-off empty text
        if rnd.random() < 0.5:
            b[12:14] = b"\x00\x01"
    elif how == "division_0":
        b[12:14] = b"\x00\x00"
    elif how == "division_1":
        b[12:14] = b"\x00\x01"
    elif how == "tempo":
        i = rnd.choice(starts)
        us = rnd.choice([0, 1, 100, 59_999, 0xFFFFFF, rnd.randrange(1 << 24)])
        b[i:i] = b"\x00\xff\x51\x03" + us.to_bytes(3, "big")
    elif how == "running_status":
        # Drop status bytes so that the data bytes that follow ride on running status.
        pos = [i for i in range(14, len(b)) if b[i] in (0x99, 0x89)]
        for i in sorted(rnd.sample(pos, min(len(pos), rnd.randint(1, 16))), reverse=True):
            del b[i]
    elif how == "empty":
        b = bytearray(rnd.choice([b"", b"MThd", b"MThd\x00\x00\x00\x06"]))
    elif how == "not_midi":
        b = bytearray(rnd.choice([rnd.randbytes(rnd.randint(1, 400)), b"hello, not midi\n" * 8,
                                  b"RIFF" + rnd.randbytes(100)]))
    elif how == "header":
        b[8:12] = struct.pack(">HH", rnd.choice([0, 1, 2, 3, 0xFFFF]), rnd.randrange(1 << 16))
    return bytes(b), how


# -- the crafted corpus ----------------------------------------------------------------------------
def corpus() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, the expected error with {path} for the file's path)."""
    eight = hits(8, 420)
    eight48 = hits(8, 42, length=6)
    return {
        "empty.mid": (b"", "{path}: not a readable MIDI file (it does not start with 'MThd')"),
        "text.mid": (b"this is not a MIDI file\n" * 4,
                     "{path}: not a readable MIDI file (it does not start with 'MThd')"),
        "tpq_zero.mid": (midi_file([track(eight)], tpq=0),
                         "{path}: not a readable MIDI file (0 ticks per quarter note)"),
        "smpte.mid": (midi_file([track(eight)], tpq=0xE728),
                      ("{path}: SMPTE time division (frames per second); flatgroove reads files "
                      "timed in ticks per quarter note")),
        "format_9.mid": (midi_file([track(eight)], fmt=9),
                         "{path}: not a readable MIDI file (unknown format 9; 0, 1 or 2)"),
        "short_header.mid": (b"MThd\x00\x00\x00\x02\x00\x01" + b"\x00" * 4,
                             "{path}: not a readable MIDI file (header chunk of 2 bytes, needs 6)"),
        # 8 kicks, then one more a million bars on: 101 bytes that once took minutes and GBs.
        "million_bars.mid": (midi_file([track(eight48 + hit(48 * 4 * 1_000_000, length=6))], tpq=48),
                             ("{path}: a drum note at bar 1000002; flatgroove reads files of at "
                             "most 4096 bars")),
        # Division 1 and a delta of 0x0FFFFFFF ticks before the first event.
        "huge_delta.mid": (midi_file([bytes.fromhex("8FFFFF7FFF0100") + track(eight)], tpq=1),
                           ("{path}: a drum note at bar 8389449; flatgroove reads files of at "
                           "most 4096 bars")),
        "tempo_zero.mid": (midi_file([track([tempo_event(0)] + eight)]),
                           ("{path}: an infinite tempo (0 microseconds per quarter note) at bar 1; "
                           "flatgroove reads 20-400 BPM")),
        "tempo_2000.mid": (midi_file([track([tempo_event(30_000)] + eight)]),
                           "{path}: tempo 2000 BPM at bar 1; flatgroove reads 20-400 BPM"),
        "tempo_3_bpm.mid": (midi_file([track([tempo_event(0xFFFFFF)] + eight)]),
                            "{path}: tempo 3.576 BPM at bar 1; flatgroove reads 20-400 BPM"),
        "bad_velocity.mid": (midi_file([track([(0, b"\x99\x24\xe4")])]),
                             "{path}: not a readable MIDI file (Get velocity=228)"),
        "no_notes.mid": (midi_file([track([tempo_event(500_000)])]), "{path}: contains no notes"),
        "one_bar.mid": (midi_file([track(hit(0) + hit(420))]),
                        "{path}: has 1 bars of drums; cannot take 2 bars from bar 0 (it is shorter than 2 bars)"),
    }


def write(folder: Path = HERE) -> list[Path]:
    out, lines = [], []
    for name, (data, msg) in corpus().items():
        p = folder / name
        p.write_bytes(data)
        out.append(p)
        lines.append(f"{name}\t{msg}")
    (folder / "expected.tsv").write_text("\n".join(lines) + "\n")
    return out


def expected(folder: Path = HERE) -> dict[str, str]:
    rows = (line.split("\t", 1) for line in (folder / "expected.tsv").read_text().splitlines())
    return {name: msg for name, msg in rows}


if __name__ == "__main__":
    for p in write():
        print(p.name, p.stat().st_size, "bytes")
