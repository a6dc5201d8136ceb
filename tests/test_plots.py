"""Plots write real, non-empty PNGs of a sensible size, atomically."""

from __future__ import annotations

import numpy as np
import pytest

from flatgroove.groove import Groove
from flatgroove.plots import interpolation_rolls, piano_roll, session_roll
from flatgroove.presets import builtin

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_png(path, min_w=400, min_h=150):
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_MAGIC
    img = imread(path)
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h
    assert img[..., :3].std() > 0.05  # something was drawn, not a blank canvas
    assert not list(path.parent.glob("*.tmp"))
    return img


def test_piano_roll(tmp_path):
    gs = [builtin("funk"), builtin("shuffle"), Groove.empty()]
    p = piano_roll(gs, tmp_path / "out" / "roll.png", title="three", labels=["a", "b", "c"])
    assert p == tmp_path / "out" / "roll.png"
    img = check_png(p, min_w=900)
    assert img.shape[1] > img.shape[0]  # wide: time runs left to right
    check_png(piano_roll(builtin("rock"), tmp_path / "one.png"))


def test_piano_roll_errors(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        piano_roll([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="labels"):
        piano_roll([builtin("rock")], tmp_path / "x.png", labels=["a", "b"])


def _path(a: Groove, b: Groove, n: int = 17) -> list[Groove]:
    rng = np.random.default_rng(0)
    out = []
    for t in np.linspace(0, 1, n):
        pick = rng.random(a.hits.shape) < t
        hits, vel = np.where(pick, b.hits, a.hits), np.where(pick, b.velocities, a.velocities)
        out.append(Groove(hits, vel, np.where(pick, b.offsets, a.offsets), a.tempo))
    return out


def test_interpolation_rolls(tmp_path):
    a, b = builtin("rock"), builtin("funk")
    rows = {"vae": [a] * 9 + [b] * 8, "flat": _path(a, b)}
    p = interpolation_rolls(rows, tmp_path / "interp.png", title="rock to funk")
    check_png(p, min_w=1000, min_h=300)
    # Rows may have different lengths; one groove is fine.
    check_png(interpolation_rolls({"one": [a], "three": _path(a, b, 3)}, tmp_path / "small.png"))
    with pytest.raises(ValueError):
        interpolation_rolls({}, tmp_path / "none.png")
    with pytest.raises(ValueError):
        interpolation_rolls({"empty": []}, tmp_path / "none.png")


def test_session_roll(tmp_path):
    d = [builtin("rock"), None, builtin("half_time"), None]
    m = [None, builtin("funk"), None, builtin("disco")]
    p = session_roll(d, m, tmp_path / "session.png", annotations={2: "answer", 5: "α=0.5"},
                     title="jam")
    check_png(p, min_w=700, min_h=300)
    # Annotations as a list by bar, lanes of different lengths, no title.
    p2 = session_roll(d, m[:2], tmp_path / "s2.png", annotations=[None, "start", None, "go"])
    check_png(p2)
    check_png(session_roll([], [], tmp_path / "empty.png"), min_w=500)


def test_blend_grid_is_drawn_as_a_grid(tmp_path):
    from flatgroove.plots import blend_grid

    names = ["rock", "funk", "disco", "hiphop"]
    shapes = {}
    for n in (2, 3, 4):
        rows = [[builtin(names[(i + j) % 4]) for j in range(n)] for i in range(n)]
        img = check_png(blend_grid(rows, tmp_path / f"b{n}.png", title="blend", corners=names))
        shapes[n] = img.shape[:2]
    # Rows stack downwards and columns rightwards: both sides grow with the grid, unlike a
    # strip (one row) whose height stays fixed; the grid stays roughly square-ish.
    assert shapes[2][0] < shapes[3][0] < shapes[4][0]
    assert shapes[2][1] < shapes[3][1] < shapes[4][1]
    h, w = shapes[4]
    assert 0.3 < h / w < 1.5
    with pytest.raises(ValueError):
        blend_grid([], tmp_path / "none.png")
