"""What the page's pad, hover, reach and jam controls need from the server (no browser)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from test_web_api import make_checkpoint


def test_reach_follows_the_data_spacing():
    from flatgroove.web.projection import reach

    grid = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0)), -1).reshape(-1, 2)
    assert reach(grid) == pytest.approx(2.0)  # neighbours 1 apart: twice that
    spread = np.array([[0.0, 0.0], [0.1, 0.0], [100.0, 0.0], [100.1, 0.0]])
    assert reach(spread) == pytest.approx(3.0, rel=1e-3)  # at least 3 % of the diagonal
    assert reach(np.zeros((1, 2))) == 0.0


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from flatgroove.midi import write_midi
    from flatgroove.model.checkpoint import load_model
    from flatgroove.presets import builtin
    from flatgroove.web.service import Studio

    tmp = tmp_path_factory.mktemp("musician")
    for style, names in {"funk": ["funk", "disco"], "jazz": ["jazz_ride"]}.items():
        for n in names:
            g = builtin(n)
            write_midi([g, g], tmp / "data" / style / f"{n}.mid")
    ckpt = make_checkpoint(tmp / "m.pt", 4)
    return Studio(load_model(ckpt), str(ckpt), dataset=tmp / "data")


def test_map_names_every_window_and_gives_the_reach(studio):
    from flatgroove.web.projection import reach

    m = studio.map_json()
    w = m["windows"]
    n = len(m["points"])
    assert n == 9  # 3 files x 3 windows (4 bars, hop 1)
    assert len(w["file"]) == len(w["bar"]) == len(w["style"]) == n
    names = sorted({w["files"][i] for i in w["file"]})
    assert [x.rsplit("/", 1)[-1] for x in names] == ["disco.mid", "funk.mid", "jazz_ride.mid"]
    assert sorted(w["bar"]) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    for i in range(n):  # a window's style is its folder
        assert w["styles"][w["style"][i]] in w["files"][w["file"][i]]
    assert m["reach"] > 0
    assert m["reach"] == pytest.approx(reach(studio.map_data().points), abs=1e-4)
    assert studio.info()["output_pitches"] == [36, 38, 42, 46, 45, 47, 50, 49, 51]
    # A second look comes from the cache with the windows still named.
    studio._map = None
    assert studio.map_json()["windows"] == w


def test_jam_temperature_message_is_validated():
    from flatgroove.web.jam import parse_control

    assert parse_control({"type": "temperature", "value": 0.4}).value == 0.4
    for bad in (-0.1, 3.5, "hot"):
        with pytest.raises(ValidationError):
            parse_control({"type": "temperature", "value": bad})
