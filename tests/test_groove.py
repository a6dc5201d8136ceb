"""Groove: validation, features, queries and the text grid."""

from __future__ import annotations

import numpy as np
import pytest

from flatgroove.drums import DRUMS, SHORT_NAMES
from flatgroove.groove import (
    N_DRUMS,
    N_FEATURES,
    N_STEPS,
    Groove,
    GrooveError,
    stack_features,
)

KICK, SNARE, HH = DRUMS.index("kick"), DRUMS.index("snare"), DRUMS.index("closed_hh")


def zeros(shape=(N_STEPS, N_DRUMS)):
    return np.zeros(shape, np.float32)


def backbeat(tempo: float = 120.0) -> Groove:
    """Kick on 1 and 3 (full velocity), snare on 2 and 4 (half), 8th hats (soft, late)."""
    h, v, o = zeros(), zeros(), zeros()
    for s in (0, 8, 16, 24):
        h[s, KICK], v[s, KICK] = 1, 1.0
    for s in (4, 12, 20, 28):
        h[s, SNARE], v[s, SNARE], o[s, SNARE] = 1, 0.5, -0.1
    for s in range(0, N_STEPS, 2):
        h[s, HH], v[s, HH], o[s, HH] = 1, 0.1, 0.2
    return Groove(h, v, o, tempo, name="backbeat")


def test_valid_groove_is_float32_and_counts_hits():
    g = backbeat()
    assert g.hits.dtype == g.velocities.dtype == g.offsets.dtype == np.float32
    assert g.n_hits == 4 + 4 + 16
    assert g.tempo == 120.0
    assert g.seconds_per_step == pytest.approx(0.125)
    assert g.duration == pytest.approx(4.0)  # two bars of 4/4 at 120 BPM
    assert Groove.empty(90).n_hits == 0


@pytest.mark.parametrize("which", ["hits", "velocities", "offsets"])
@pytest.mark.parametrize("shape", [(16, 9), (32, 8), (32, 9, 1), (288,)])
def test_wrong_shape_names_the_array_and_shapes(which, shape):
    arrays = {"hits": zeros(), "velocities": zeros(), "offsets": zeros()}
    arrays[which] = np.zeros(shape)
    with pytest.raises(GrooveError, match=rf"{which} must have shape \(32, 9\), got \({shape[0]}"):
        Groove(**arrays)


@pytest.mark.parametrize(
    ("which", "value", "bounds"),
    [
        ("hits", 2.0, r"\[0.0, 1.0\]"),
        ("hits", -1.0, r"\[0.0, 1.0\]"),
        ("velocities", 1.5, r"\[0.0, 1.0\]"),
        ("velocities", -0.1, r"\[0.0, 1.0\]"),
        ("offsets", 0.7, r"\[-0.5, 0.5\]"),
        ("offsets", -0.51, r"\[-0.5, 0.5\]"),
    ],
)
def test_out_of_range_says_the_allowed_range(which, value, bounds):
    arrays = {"hits": zeros(), "velocities": zeros(), "offsets": zeros()}
    arrays["hits"][3, 1] = 1  # so velocities and offsets are checked on a real hit
    arrays[which][3, 1] = value
    with pytest.raises(GrooveError, match=rf"{which} must lie in {bounds}"):
        Groove(**arrays)


@pytest.mark.parametrize("which", ["hits", "velocities", "offsets"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_refused(which, bad):
    arrays = {"hits": zeros(), "velocities": zeros(), "offsets": zeros()}
    arrays[which][0, 0] = bad
    with pytest.raises(GrooveError, match=f"{which} contains NaN or infinity"):
        Groove(**arrays)


def test_non_binary_hits_are_refused():
    h = zeros()
    h[5, 2] = 0.5
    with pytest.raises(GrooveError, match="hits must be 0 or 1"):
        Groove(h, zeros(), zeros())


def test_non_numeric_arrays_are_a_groove_error():
    with pytest.raises(GrooveError, match=r"velocities must be a \(32, 9\) array of numbers"):
        Groove(zeros(), [["loud"] * N_DRUMS] * N_STEPS, zeros())
    with pytest.raises(GrooveError, match=r"hits must be a \(32, 9\) array of numbers"):
        Groove([[0] * N_DRUMS] * (N_STEPS - 1) + [[0] * 3], zeros(), zeros())  # ragged


@pytest.mark.parametrize("tempo", [0, 19.9, 400.1, -120, float("nan"), float("inf")])
def test_tempo_out_of_range(tempo):
    with pytest.raises(GrooveError, match="tempo must be between 20 and 400 BPM"):
        Groove(zeros(), zeros(), zeros(), tempo)


@pytest.mark.parametrize("tempo", ["fast", None, [120]])
def test_tempo_not_a_number(tempo):
    with pytest.raises(GrooveError, match="tempo must be a number"):
        Groove(zeros(), zeros(), zeros(), tempo)


def test_tempo_bounds_are_inclusive():
    assert Groove(zeros(), zeros(), zeros(), 20).tempo == 20.0
    assert Groove(zeros(), zeros(), zeros(), "400").tempo == 400.0


def test_silent_cells_are_zeroed():
    h, v, o = zeros(), np.full((N_STEPS, N_DRUMS), 0.7), np.full((N_STEPS, N_DRUMS), 0.3)
    h[0, KICK] = 1
    g = Groove(h, v, o)
    assert g.velocities[0, KICK] == pytest.approx(0.7)
    assert g.offsets[0, KICK] == pytest.approx(0.3)
    silent = h == 0
    assert not g.velocities[silent].any() and not g.offsets[silent].any()
    # ... so two grooves that differ only in silent cells are equal.
    assert g == Groove(h, h * 0.7, h * 0.3)


def test_features_round_trip():
    g = backbeat(97.5)
    x = g.to_features()
    assert x.shape == (N_STEPS, N_FEATURES) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :N_DRUMS], g.hits)
    np.testing.assert_array_equal(x[:, N_DRUMS : 2 * N_DRUMS], g.velocities)
    np.testing.assert_array_equal(x[:, 2 * N_DRUMS :], g.offsets)
    back = Groove.from_features(x, tempo=97.5)
    assert back == g
    np.testing.assert_array_equal(back.to_features(), x)


def test_from_features_thresholds_probabilities_and_clips():
    x = np.zeros((N_STEPS, N_FEATURES), np.float32)
    x[0, KICK], x[1, KICK], x[2, KICK] = 0.9, 0.5, 0.49  # hit probabilities
    x[:3, N_DRUMS + KICK] = 1.3  # velocity out of range: clipped
    x[:3, 2 * N_DRUMS + KICK] = -0.8  # offset out of range: clipped
    g = Groove.from_features(x)
    assert g.hits[:3, KICK].tolist() == [1, 1, 0]
    assert g.velocities[:2, KICK].tolist() == [1.0, 1.0]
    assert g.offsets[:2, KICK].tolist() == [-0.5, -0.5]
    assert g.velocities[2, KICK] == 0 and g.offsets[2, KICK] == 0  # silent: zeroed
    assert Groove.from_features(x, threshold=0.95).n_hits == 0


def test_from_features_wrong_shape():
    with pytest.raises(GrooveError, match=r"features must have shape \(32, 27\), got \(32, 9\)"):
        Groove.from_features(np.zeros((N_STEPS, N_DRUMS)))


def test_stack_features():
    assert stack_features([]).shape == (0, N_STEPS, N_FEATURES)
    g = backbeat()
    s = stack_features([g, Groove.empty()])
    assert s.shape == (2, N_STEPS, N_FEATURES)
    np.testing.assert_array_equal(s[0], g.to_features())
    assert not s[1].any()


def test_notes_are_sorted_with_midi_velocities():
    notes = backbeat().notes()
    assert len(notes) == 24
    assert notes == sorted(notes)
    assert notes[0] == (0.0, KICK, 127)
    assert (pytest.approx(0.2), HH, 13) == notes[1]  # 0.1 * 127 = 12.7 -> 13, 0.2 late
    assert (pytest.approx(3.9), SNARE, 64) in notes  # 0.5 * 127 = 63.5 -> 64, 0.1 early


def test_equality_looks_at_tempo_not_name():
    a, b = backbeat(120), backbeat(120)
    b.name = "other"
    assert a == b
    assert a != backbeat(121)
    assert a != Groove.empty()
    assert a.__eq__("not a groove") is NotImplemented


def test_bar_slices():
    hits, vel, off = backbeat().bar(1)
    assert hits.shape == vel.shape == off.shape == (16, N_DRUMS)
    assert hits[:, KICK].nonzero()[0].tolist() == [0, 8]


def test_grid_rows_and_digits():
    text = backbeat().grid()
    lines = text.splitlines()
    assert len(lines) == 2 + N_DRUMS
    assert lines[0] == "backbeat  (120 BPM, 24 hits)"
    assert lines[1] == "    |1   2   3   4   |1   2   3   4   |"
    rows = {line[:3].strip(): line[4:] for line in lines[2:]}
    assert list(rows) == list(SHORT_NAMES)
    # velocity 1.0 -> 9; 0.5 -> ceil(4.5) = 5; 0.1 -> 1; silent: ':' on beats, '.' between.
    assert rows["BD"] == "|9...:...9...:...|9...:...9...:...|"
    assert rows["SD"] == "|:...5...:...5...|:...5...:...5...|"
    assert rows["HH"] == "|1.1.1.1.1.1.1.1.|1.1.1.1.1.1.1.1.|"
    for name in SHORT_NAMES[3:]:
        assert rows[name] == "|:...:...:...:...|:...:...:...:...|"
    # every row is as wide as the ruler
    assert len({len(line) for line in lines[1:]}) == 1


def test_grid_soft_hit_shows_at_least_1_and_title():
    h, v = zeros(), zeros()
    h[31, N_DRUMS - 1] = 1  # ride on the last step, velocity 0
    g = Groove(h, v, zeros(), 88)
    lines = g.grid(title="mine").splitlines()
    assert lines[0] == "mine  (88 BPM, 1 hits)"
    assert lines[-1] == "RD  |:...:...:...:...|:...:...:...:..1|"
    assert str(g) == g.grid()
    assert g.grid().startswith("groove  (88 BPM")
    assert repr(g) == "Groove(name='', tempo=88.0, hits=1)"
