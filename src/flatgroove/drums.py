"""The 9 drum classes and the pitch maps that fold MIDI notes onto them (DESIGN §3).

The maps come from Magenta's note-seq / GrooVAE. The Groove MIDI Dataset was
recorded on a Roland TD-11, whose tom pitches differ from General MIDI.
"""

from __future__ import annotations

DRUMS: tuple[str, ...] = (
    "kick",
    "snare",
    "closed_hh",
    "open_hh",
    "low_tom",
    "mid_tom",
    "high_tom",
    "crash",
    "ride",
)
N_DRUMS = len(DRUMS)

# Short labels for text grids and piano rolls.
SHORT_NAMES: tuple[str, ...] = ("BD", "SD", "HH", "OH", "LT", "MT", "HT", "CR", "RD")

# One pitch per class when we write MIDI.
OUTPUT_PITCHES: tuple[int, ...] = (36, 38, 42, 46, 45, 47, 50, 49, 51)


def _expand(groups: list[list[int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for cls, pitches in enumerate(groups):
        for p in pitches:
            if p in out:
                raise ValueError(f"pitch {p} mapped twice")
            out[p] = cls
    return out


def _r(a: int, b: int) -> list[int]:
    return list(range(a, b + 1))


GM_MAP: dict[int, int] = _expand(
    [
        [35, 36],
        [27, 28, *_r(31, 34), *_r(37, 40), 56, 65, 66, 75, 85],
        [22, 42, 44, 54, *_r(68, 71), 73, 78, 80],
        [26, 46, 67, 72, 74, 79, 81],
        [29, 41, 43, 45, 61, 64, 84],
        [47, 48, 60, 63, 77, 86, 87],
        [30, 50, 62, 76, 83],
        [49, 52, 55, 57, 58],
        [51, 53, 59, 82],
    ]
)

# Roland TD-11 (the kit of the Groove MIDI Dataset): 45 is the mid tom, 48 the high tom,
# 58 the floor (low) tom. Everything else as General MIDI.
TD11_MAP: dict[int, int] = dict(GM_MAP)
TD11_MAP.update({45: DRUMS.index("mid_tom"), 48: DRUMS.index("high_tom"), 58: DRUMS.index("low_tom")})

PITCH_MAPS: dict[str, dict[int, int]] = {"gm": GM_MAP, "td11": TD11_MAP}


def pitch_map(name: str) -> dict[int, int]:
    """The pitch -> class map called `name` ("gm" or "td11")."""
    try:
        return PITCH_MAPS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown drum map {name!r}; choose one of {sorted(PITCH_MAPS)}") from None
