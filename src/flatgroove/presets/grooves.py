"""Built-in 2-bar 4/4 grooves written in code, by name.

They are targets for the jam (pads), corners for blends, and test data that needs no
dataset. Each drum line is a string on the 16th grid, one character per step:

    X accent   x normal   o soft   g ghost   . rest     ('|' and spaces are ignored)

A line of 16 steps is played in both bars; a line of 32 spells both bars out. Swung and
triplet feels live on the 16th grid as offsets (DESIGN §3): `feel` maps a step's position
in the beat (0-3) to an offset in steps. An 8th-note triplet's last partial falls 2/3 of
a beat in, i.e. at step 2.67, which quantises to step 3 with offset -1/3: so shuffles
and jazz "skip" notes are written on the 4th 16th of the beat with feel {3: -1/3}.
"""

from __future__ import annotations

import numpy as np

from flatgroove.drums import DRUMS, N_DRUMS
from flatgroove.groove import N_STEPS, STEPS_PER_BAR, Groove

# MIDI velocities 120, 96, 70, 36: accents, normal strokes, soft strokes, ghost notes.
LEVELS: dict[str, float] = {"X": 120 / 127, "x": 96 / 127, "o": 70 / 127, "g": 36 / 127}
TRIPLET = -1.0 / 3.0  # offset of a triplet's last partial written on the beat's 4th 16th

_ALIASES = {"hh": "closed_hh", "oh": "open_hh", "bd": "kick", "sd": "snare"}


def _line(pattern: str) -> str:
    s = pattern.replace("|", "").replace(" ", "")
    if len(s) == STEPS_PER_BAR:
        s = s * 2
    if len(s) != N_STEPS:
        raise ValueError(
            f"a pattern has {STEPS_PER_BAR} or {N_STEPS} steps, got {len(s)}: {pattern!r}"
        )
    bad = set(s) - set(LEVELS) - {"."}
    if bad:
        raise ValueError(f"unknown pattern characters {sorted(bad)} in {pattern!r}")
    return s


def pattern(
    name: str,
    tempo: float,
    feel: dict[int, float] | None = None,
    late: dict[str, float] | None = None,
    **lines: str,
) -> Groove:
    """A Groove from text lines keyed by drum name (kick, snare, hh, oh, low_tom, ... ride).

    `feel`: offset by position in the beat (0-3), for swing and triplets; `late`: extra
    offset per drum, e.g. a laid-back snare.
    """
    hits = np.zeros((N_STEPS, N_DRUMS), np.float32)
    vel = np.zeros_like(hits)
    off = np.zeros_like(hits)
    feel = feel or {}
    late = {_ALIASES.get(k, k): v for k, v in (late or {}).items()}
    for key, text in lines.items():
        drum = _ALIASES.get(key, key)
        if drum not in DRUMS:
            raise ValueError(f"unknown drum {key!r}; use one of {list(DRUMS)} or {list(_ALIASES)}")
        d = DRUMS.index(drum)
        for step, ch in enumerate(_line(text)):
            if ch == ".":
                continue
            hits[step, d] = 1.0
            vel[step, d] = LEVELS[ch]
            off[step, d] = feel.get(step % 4, 0.0) + late.get(drum, 0.0)
    return Groove(hits, vel, np.clip(off, -0.5, 0.49), tempo, name)


def _rock() -> Groove:
    # The backbeat everyone knows: 8th hats accented on the beat, snare on 2 and 4,
    # kick on 1 and 3 with a push on the "and" of 3; crash to open the phrase.
    return pattern(
        "rock",
        110,
        hh="..x.X.x.X.x.X.x.|X.x.X.x.X.x.X.x.",
        kick="X.......X.x.....|X.......X.x..x..",
        snare="....X.......X...",
        crash="X...............|................",
    )


def _funk() -> Groove:
    # "Funky Drummer"-style: 16th hats (accent on the 8ths), syncopated kick, backbeat
    # with ghost notes around it, an open hat lifting the end of the phrase, a little swing.
    return pattern(
        "funk",
        100,
        feel={1: 0.06, 3: 0.06},
        hh="XgxgXgxgXgxgXgxg|XgxgXgxgXgxgXg.g",
        oh="................|..............x.",
        kick="X.x.......x..x..|X.x.......x..x..",
        snare="....X..g.g..X..g|....X..g.g.gX...",
    )


def _disco() -> Groove:
    # Four on the floor, open hat on every off-beat "and", closed 16ths in between.
    return pattern(
        "disco",
        120,
        kick="X...X...X...X...",
        snare="....X.......X...",
        hh="xg.gxg.gxg.gxg.g",
        oh="..x...x...x...x.",
    )


def _hiphop() -> Groove:
    # Boom bap: swung 16ths (MPC-style, ~60% swing), a lazy snare behind the beat,
    # kick pushing the "and" of 2 and 3.
    return pattern(
        "hiphop",
        90,
        feel={1: 0.17, 3: 0.17},
        late={"snare": 0.06},
        hh="x.o.x.o.x.o.x.og",
        kick="X.....x...X.....|X.....x..x.x....",
        snare="....X.......X...|....X.......X..g",
    )


def _shuffle() -> Groove:
    # Blues shuffle: every beat split long-short on a triplet feel (the short note is the
    # triplet's last partial), backbeat snare, kick on 1 and 3 with a triplet pickup.
    return pattern(
        "shuffle",
        116,
        feel={3: TRIPLET},
        hh="X..oX..oX..oX..o",
        kick="X.......X..o....|X.......X..o...o",
        snare="....X......gX...|....X......gX...",
    )


def _bossa_nova() -> Groove:
    # Surdo-like kick (1, "a" of 2, 3, "a" of 4 as dotted-8th + 16th), even 8ths on the hat,
    # cross-stick (a snare-class rim click) playing the 2-bar bossa clave.
    return pattern(
        "bossa_nova",
        140,
        kick="X.....o.X.....o.",
        hh="x.o.x.o.x.o.x.o.",
        snare="o.....o.....o...|....o.....o.....",
    )


def _reggae_one_drop() -> Groove:
    # One drop: beat 1 is left empty; kick and cross-stick land together on beat 3.
    # Hats on a triplet swing.
    return pattern(
        "reggae_one_drop",
        76,
        feel={3: TRIPLET},
        hh="o..go..gx..go..g",
        kick="........X.......",
        snare="........X.......|........X......g",
    )


def _jazz_ride() -> Groove:
    # Spang-a-lang: ride on the beats with swung skip notes before 1 and 3, accents on 2
    # and 4 with the hi-hat foot; feathered kick; sparse snare comping on the triplet.
    return pattern(
        "jazz_ride",
        150,
        feel={3: TRIPLET},
        ride="o...X..oo...X..o",
        hh="....o.......o...",
        kick="g...g...g...g...",
        snare="...........o....|.......g.......o",
    )


def _half_time() -> Groove:
    # Half-time feel: the backbeat moves to beat 3 so the bar feels twice as long; ghost
    # notes keep the 16ths moving under straight 8th hats.
    return pattern(
        "half_time",
        140,
        hh="X.x.x.x.X.x.x.x.",
        kick="X.....x.........|X.....x...x..x..",
        snare="........X.....g.|...g....X..g..g.",
    )


def _breakbeat() -> Groove:
    # The Amen break (bars 1 and 3): 8ths on the ride, kick on 1 and its "and", snare 2,
    # "e" of 3 and 4 with ghosts on the "a"s that give the break its roll.
    return pattern(
        "breakbeat",
        136,
        ride="x.x.x.x.x.x.x.x.",
        kick="X.x.......xx....|X.x.......x.....",
        snare="....X..g.g..X..g|....X..g.g....x.",
    )


def _rock_fill() -> Groove:
    # A bar of rock then a fill down the toms, as a drummer ends a phrase: exercises toms.
    return pattern(
        "rock_fill",
        110,
        hh="X.x.X.x.X.x.X.x.|X.x.X.x.........",
        kick="X.......X.x.....|X.......X.......",
        snare="....X.......X...|....X...xoxo....",
        high_tom="................|............Xx..",
        mid_tom="................|..............X.",
        low_tom="................|...............X",
    )


_FACTORIES = {
    "rock": _rock,
    "funk": _funk,
    "disco": _disco,
    "hiphop": _hiphop,
    "shuffle": _shuffle,
    "bossa_nova": _bossa_nova,
    "reggae_one_drop": _reggae_one_drop,
    "jazz_ride": _jazz_ride,
    "half_time": _half_time,
    "breakbeat": _breakbeat,
    "rock_fill": _rock_fill,
}

BUILTIN_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def builtin(name: str) -> Groove:
    """The built-in groove called `name` (case-insensitive; '-' and ' ' count as '_')."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return _FACTORIES[key]()  # a fresh copy each time: callers may edit arrays in place
    except KeyError:
        raise ValueError(
            f"unknown built-in groove {name!r}; choose one of: {', '.join(BUILTIN_NAMES)}"
        ) from None


def all_builtins() -> dict[str, Groove]:
    """Every built-in groove, by name, in BUILTIN_NAMES order."""
    return {n: _FACTORIES[n]() for n in BUILTIN_NAMES}
