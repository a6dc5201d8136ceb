"""Built-in grooves: valid, distinct, musically what their names say."""

from __future__ import annotations

import numpy as np
import pytest

from flatgroove.drums import DRUMS
from flatgroove.groove import Groove
from flatgroove.presets import BUILTIN_NAMES, all_builtins, builtin, pattern

REQUIRED = {
    "rock",
    "funk",
    "disco",
    "hiphop",
    "shuffle",
    "bossa_nova",
    "reggae_one_drop",
    "jazz_ride",
    "half_time",
    "breakbeat",
}


def col(name: str) -> int:
    return DRUMS.index(name)


def test_names_cover_the_required_styles():
    assert REQUIRED <= set(BUILTIN_NAMES)
    assert len(set(BUILTIN_NAMES)) == len(BUILTIN_NAMES)


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_each_builtin_is_a_valid_named_groove(name):
    g = builtin(name)
    assert isinstance(g, Groove) and g.name == name
    Groove(g.hits, g.velocities, g.offsets, g.tempo)  # re-validates the arrays
    assert 60 <= g.tempo <= 180
    assert g.n_hits >= 15
    # Every groove keeps time on something: hats, ride or four on the floor.
    timekeepers = g.hits[:, [col("closed_hh"), col("open_hh"), col("ride")]].sum()
    assert timekeepers >= 4 or g.hits[:, col("kick")].sum() >= 8
    # Accents and softer strokes both occur: velocities are not flat.
    assert len(np.unique(np.round(g.velocities[g.hits > 0], 3))) >= 2


def test_builtins_are_distinct():
    gs = all_builtins()
    assert list(gs) == list(BUILTIN_NAMES)
    names = list(gs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not np.array_equal(gs[a].hits, gs[b].hits), (a, b)


@pytest.mark.parametrize("name", sorted(REQUIRED - {"jazz_ride"}))
def test_kick_and_snare_play(name):
    g = builtin(name)
    assert g.hits[:, col("kick")].sum() >= 2
    assert g.hits[:, col("snare")].sum() >= 2


def test_backbeats():
    for name in ("rock", "funk", "disco", "hiphop", "shuffle"):
        snare = builtin(name).hits[:, col("snare")]
        for beat in (4, 12, 20, 28):  # beats 2 and 4 of both bars
            assert snare[beat] == 1, (name, beat)


def test_one_drop_has_kick_and_snare_only_on_beat_three():
    g = builtin("reggae_one_drop")
    for bar in (0, 16):
        assert g.hits[bar + 8, col("kick")] == 1 and g.hits[bar + 8, col("snare")] == 1
        assert g.hits[bar, col("kick")] == 0  # the "drop": nothing on beat 1
    assert set(np.nonzero(g.hits[:, col("kick")])[0]) == {8, 24}


def test_disco_is_four_on_the_floor_with_offbeat_open_hats():
    g = builtin("disco")
    assert set(np.nonzero(g.hits[:, col("kick")])[0]) == set(range(0, 32, 4))
    assert set(np.nonzero(g.hits[:, col("open_hh")])[0]) == set(range(2, 32, 4))


def test_half_time_snare_on_beat_three():
    g = builtin("half_time")
    snare = g.hits[:, col("snare")] * (g.velocities[:, col("snare")] > 0.5)
    assert set(np.nonzero(snare)[0]) == {8, 24}


def test_jazz_ride_swings_and_pedals_hats_on_two_and_four():
    g = builtin("jazz_ride")
    ride = g.hits[:, col("ride")]
    assert ride.sum() >= 12
    skips = [s for s in np.nonzero(ride)[0] if s % 4 == 3]
    assert skips and all(np.isclose(g.offsets[s, col("ride")], -1 / 3) for s in skips)
    assert set(np.nonzero(g.hits[:, col("closed_hh")])[0]) == {4, 12, 20, 28}
    assert g.velocities[4, col("ride")] > g.velocities[0, col("ride")]  # accent on 2


def test_shuffle_is_on_a_triplet_feel():
    g = builtin("shuffle")
    hh = np.nonzero(g.hits[:, col("closed_hh")])[0]
    assert set(hh % 4) == {0, 3}
    assert np.allclose(g.offsets[hh[hh % 4 == 3], col("closed_hh")], -1 / 3)


def test_funk_has_ghost_notes_and_hiphop_swings():
    f = builtin("funk")
    v = f.velocities[:, col("snare")][f.hits[:, col("snare")] > 0]
    assert v.min() < 0.35 and v.max() > 0.85
    h = builtin("hiphop")
    assert np.all(h.offsets[1::2, col("closed_hh")][h.hits[1::2, col("closed_hh")] > 0] > 0.1)
    assert np.all(h.offsets[h.hits[:, col("snare")] > 0, col("snare")] > 0)  # laid back


def test_rock_fill_uses_the_toms():
    g = builtin("rock_fill")
    for tom in ("low_tom", "mid_tom", "high_tom"):
        assert g.hits[16:, col(tom)].sum() >= 1


@pytest.mark.parametrize("spelling", ["Bossa-Nova", "BOSSA_NOVA", " bossa nova "])
def test_names_are_forgiving(spelling):
    assert builtin(spelling) == builtin("bossa_nova")


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as e:
        builtin("polka")
    msg = str(e.value)
    assert "polka" in msg and all(n in msg for n in BUILTIN_NAMES)


def test_builtin_returns_a_fresh_copy():
    g = builtin("rock")
    g.hits[:] = 0
    assert builtin("rock").n_hits > 0


def test_pattern_dsl():
    g = pattern(
        "t", 100, feel={3: -0.25}, late={"sd": 0.1}, kick="X...X...X...X...", sd="....x...g..o...."
    )
    k = np.nonzero(g.hits[:, col("kick")])[0]
    assert list(k) == list(range(0, 32, 4))  # a 16-step line plays in both bars
    assert g.velocities[0, col("kick")] == pytest.approx(120 / 127)
    assert g.offsets[4, col("snare")] == pytest.approx(0.1)
    assert g.offsets[11, col("snare")] == pytest.approx(-0.15)
    assert g.velocities[8, col("snare")] == pytest.approx(36 / 127)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kick": "X..."}, "16 or 32 steps"),
        ({"kick": "X..?X...X...X..."}, "unknown pattern characters"),
        ({"cowbell": "X...X...X...X..."}, "unknown drum"),
    ],
)
def test_pattern_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pattern("bad", 100, **kwargs)
