"""Drum classes and pitch maps, checked against the table in DESIGN §3 written out here."""

from __future__ import annotations

import pytest

from flatgroove.drums import (
    DRUMS,
    GM_MAP,
    N_DRUMS,
    OUTPUT_PITCHES,
    SHORT_NAMES,
    TD11_MAP,
    pitch_map,
)


def r(a, b):
    return list(range(a, b + 1))


# DESIGN §3, General MIDI (Magenta note-seq / GrooVAE).
DESIGN_GM = {
    "kick": [35, 36],
    "snare": [27, 28, *r(31, 34), *r(37, 40), 56, 65, 66, 75, 85],
    "closed_hh": [22, 42, 44, 54, *r(68, 71), 73, 78, 80],
    "open_hh": [26, 46, 67, 72, 74, 79, 81],
    "low_tom": [29, 41, 43, 45, 61, 64, 84],
    "mid_tom": [47, 48, 60, 63, 77, 86, 87],
    "high_tom": [30, 50, 62, 76, 83],
    "crash": [49, 52, 55, 57, 58],
    "ride": [51, 53, 59, 82],
}
TD11_DIFFERENCES = {45: "mid_tom", 48: "high_tom", 58: "low_tom"}


def test_classes_in_design_order():
    assert DRUMS == (
        "kick", "snare", "closed_hh", "open_hh", "low_tom", "mid_tom", "high_tom", "crash", "ride"
    )
    assert N_DRUMS == 9 == len(SHORT_NAMES)


@pytest.mark.parametrize(("name", "pitches"), DESIGN_GM.items())
def test_gm_every_pitch_lands_in_its_class(name, pitches):
    for p in pitches:
        assert DRUMS[GM_MAP[p]] == name, f"GM pitch {p}"


@pytest.mark.parametrize(("name", "pitches"), DESIGN_GM.items())
def test_td11_every_pitch_lands_in_its_class(name, pitches):
    for p in pitches:
        want = TD11_DIFFERENCES.get(p, name)
        assert DRUMS[TD11_MAP[p]] == want, f"TD-11 pitch {p}"


def test_maps_hold_exactly_the_design_pitches():
    every = {p for ps in DESIGN_GM.values() for p in ps}
    assert set(GM_MAP) == every
    assert set(TD11_MAP) == every
    assert len(every) == sum(len(ps) for ps in DESIGN_GM.values())  # no pitch twice


def test_td11_differs_from_gm_only_on_its_toms():
    diff = {p: DRUMS[TD11_MAP[p]] for p in TD11_MAP if TD11_MAP[p] != GM_MAP[p]}
    assert diff == TD11_DIFFERENCES
    assert DRUMS[GM_MAP[45]] == "low_tom" and DRUMS[GM_MAP[48]] == "mid_tom"
    assert DRUMS[GM_MAP[58]] == "crash"


def test_output_pitches():
    assert OUTPUT_PITCHES == (36, 38, 42, 46, 45, 47, 50, 49, 51)
    # Written files are General MIDI: each output pitch reads back as its own class.
    assert [GM_MAP[p] for p in OUTPUT_PITCHES] == list(range(N_DRUMS))


def test_pitch_map_by_name():
    assert pitch_map("gm") is GM_MAP
    assert pitch_map("TD11") is TD11_MAP
    with pytest.raises(ValueError, match=r"unknown drum map 'roland'; choose one of \['gm', 'td11'\]"):
        pitch_map("roland")
