"""The web server's JSON API, upload handling, size limits, the jam WebSocket and `serve`.

Models here are untrained (random weights, small sizes): the API's plumbing does not care
what the model has learnt, and they load in milliseconds."""

from __future__ import annotations

import io
import json
import time
import warnings
from pathlib import Path

import mido
import numpy as np
import pytest

from flatgroove.groove import Groove
from flatgroove.presets import BUILTIN_NAMES, builtin

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note about httpx versions
    from fastapi.testclient import TestClient


# TestClient sends Host: testserver (its WebSockets always do); a served app answers only
# to its own names (tests/test_hostile_web.py checks that).
TEST_HOSTS = ["testserver"]


def make_checkpoint(path: Path, latent_dim: int, seed: int = 0) -> Path:
    import torch

    from flatgroove.model.checkpoint import save_checkpoint
    from flatgroove.model.config import ModelConfig
    from flatgroove.model.vae import GrooveVAE

    torch.manual_seed(seed)
    cfg = ModelConfig(latent_dim=latent_dim, enc_hidden=16, dec_hidden=24, prior_hidden=16,
                      step_embed=4)
    model = GrooveVAE(cfg)
    return save_checkpoint(path, {"model_config": cfg.to_dict(), "state_dict": model.state_dict()})


@pytest.fixture(scope="module")
def ckpt8(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("m8") / "tiny8.pt", 8)


@pytest.fixture(scope="module")
def model8(ckpt8):
    from flatgroove.model.checkpoint import load_model

    return load_model(ckpt8)


@pytest.fixture(scope="module")
def studio(model8, ckpt8):
    from flatgroove.web.service import Studio

    return Studio(model8, str(ckpt8), dataset=None)


@pytest.fixture(scope="module")
def client(studio):
    from flatgroove.web.jam import JamSession
    from flatgroove.web.server import create_app

    jam = JamSession(studio, bpm=240.0, idle_stop_s=None)
    app = create_app(studio, jam=jam, hosts=TEST_HOSTS)
    with TestClient(app) as c:
        yield c
    jam.stop()


def gjson(g: Groove) -> dict:
    from flatgroove.web.service import groove_json

    return groove_json(g)


def midi_bytes(grooves: list[Groove], tmp_path: Path) -> bytes:
    from flatgroove.midi import write_midi

    return write_midi(grooves, tmp_path / "g.mid").read_bytes()


def detail(r) -> str:
    body = r.json()
    assert isinstance(body["detail"], str) and body["detail"], body
    return body["detail"]


# -- info, built-ins, page --------------------------------------------------------------------------
def test_info(client):
    r = client.get("/api/info")
    assert r.status_code == 200
    j = r.json()
    assert j["model"]["latent_dim"] == 8 and j["model"]["variant"] == "flat"
    assert j["builtins"] == list(BUILTIN_NAMES)
    assert len(j["drums"]) == 9 and j["steps"] == 32
    assert j["limits"]["upload_bytes"] == 1 << 20


def test_builtin_grooves(client):
    r = client.get("/api/grooves")
    assert r.status_code == 200
    gs = r.json()
    assert [g["name"] for g in gs] == list(BUILTIN_NAMES)
    g0 = gs[0]
    assert len(g0["z"]) == 8 and len(g0["point"]) == 2
    assert np.array(g0["groove"]["hits"]).shape == (32, 9)
    want = builtin(g0["name"])
    assert np.array_equal(g0["groove"]["hits"], want.hits)
    np.testing.assert_allclose(g0["groove"]["velocities"], want.velocities, atol=5e-4)
    np.testing.assert_allclose(g0["groove"]["offsets"], want.offsets, atol=5e-4)

    r = client.get("/api/grooves/funk")
    assert r.status_code == 200 and r.json()["groove"]["name"] == "funk"
    assert set(r.json()) == {"groove", "z", "point", "reconstruction"}
    r = client.get("/api/grooves/polka")
    assert r.status_code == 404 and "polka" in detail(r) and "funk" in detail(r)


def test_page_and_static(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "/static/app.js" in r.text
    for f in ("app.js", "api.js", "grid.js", "map.js", "synth.js", "explorer.js", "jam.js",
              "style.css"):
        r = client.get(f"/static/{f}")
        assert r.status_code == 200 and len(r.content) > 200, f
    assert client.get("/favicon.ico").status_code == 200
    assert client.get("/static/nope.js").status_code == 404


def test_unknown_api_path_is_json_404(client):
    r = client.get("/api/nothing/here")
    assert r.status_code == 404 and "/api/nothing/here" in detail(r)
    assert client.post("/api/nothing", json={}).status_code == 404


def test_a_known_api_path_asked_with_the_wrong_method_is_405_with_allow(client):
    r = client.post("/api/map", json={})
    assert r.status_code == 405 and r.headers["allow"] == "GET" and "GET" in detail(r), r.text
    r = client.get("/api/encode")
    assert r.status_code == 405 and r.headers["allow"] == "POST", r.text
    r = client.delete("/api/grooves/funk")  # a path parameter's route too
    assert r.status_code == 405 and r.headers["allow"] == "GET", r.text


# -- the map ------------------------------------------------------------------------------------------------
def test_map_without_dataset_shows_builtins(client):
    r = client.get("/api/map")
    assert r.status_code == 200
    m = r.json()
    assert m["dataset"] is False and m["points"] == [] and m["n_total"] == 0
    assert "built-in grooves only" in m["note"]
    assert m["method"] == "pca" and len(m["builtins"]) == len(BUILTIN_NAMES)
    x0, y0, x1, y1 = m["bounds"]
    for b in m["builtins"]:
        assert x0 <= b["point"][0] <= x1 and y0 <= b["point"][1] <= y1


def test_map_missing_dataset_says_so(model8, tmp_path):
    from flatgroove.web.service import Studio

    s = Studio(model8, dataset=tmp_path / "no-such-folder")
    m = s.map_json()
    assert m["dataset"] is False and "no dataset" in m["note"] and "no such folder" in m["note"]


def test_map_of_2d_model_is_the_latent_space(tmp_path):
    from flatgroove.model.checkpoint import load_model
    from flatgroove.web.service import Studio

    model = load_model(make_checkpoint(tmp_path / "d2.pt", 2))
    s = Studio(model, dataset=None)
    m = s.map_json()
    assert m["method"] == "latent"
    for b in m["builtins"]:
        np.testing.assert_allclose(b["point"], s.builtin_z[b["name"]], atol=1e-3)
    # A map position is the latent point itself.
    np.testing.assert_allclose(s.from_point((0.3, -0.2)), [0.3, -0.2], atol=1e-6)


@pytest.fixture
def folder_dataset(tmp_path) -> Path:
    """Two styles of MIDI files (the folder name is the style), 4 bars each."""
    from flatgroove.midi import write_midi

    root = tmp_path / "ds"
    for style, names in {"funk": ["funk", "disco"], "rock": ["rock", "half_time", "rock_fill"]}.items():
        for n in names:
            write_midi([builtin(n), builtin(n)], root / style / f"{n}.mid")
    return root


def test_map_of_a_dataset_is_cached_on_disk(model8, folder_dataset):
    from flatgroove.data.cache import cache_dir
    from flatgroove.web.projection import build_map
    from flatgroove.web.service import Studio

    s = Studio(model8, dataset=folder_dataset)
    m = s.map_json()
    assert m["dataset"] is True and m["n_total"] == 15  # 5 files x 3 windows
    assert len(m["points"]) == 15 and len(m["styles"]) == 15
    assert sorted(m["style_names"]) == ["funk", "rock"]
    assert m["style_names"][0] == "rock"  # the most common style first (first colour)
    assert m["method"] == "pca" and len(m["explained"]) == 2
    files = list(cache_dir().glob("web-map-*.npz"))
    assert files, "the projection is cached in the flatgroove cache folder"

    def no_encoding(x):
        raise AssertionError("a cached map must not encode the dataset again")

    again = build_map(model8, no_encoding, np.stack(list(s.builtin_z.values())), folder_dataset)
    np.testing.assert_allclose(again.points, np.array(m["points"]), atol=1e-3)
    # Straight lines stay straight: the projection is linear, and maps back onto its plane.
    p = np.array([0.25, -0.5])
    np.testing.assert_allclose(again.projection.to_2d(again.projection.to_latent(p))[0], p, atol=1e-4)


@pytest.mark.gmd
def test_map_of_the_groove_midi_dataset(model8, gmd_root):
    from flatgroove.web.service import Studio

    m = Studio(model8, dataset=gmd_root).map_json()
    assert m["dataset"] is True and m["n_total"] > 15000
    assert 1000 <= len(m["points"]) <= 5000
    assert "rock" in m["style_names"] and "jazz" in m["style_names"]
    assert max(m["styles"]) == len(m["style_names"]) - 1


# -- encode -----------------------------------------------------------------------------------------
def test_encode_builtin_and_groove(client, studio):
    r = client.post("/api/encode", json={"name": "funk"})
    assert r.status_code == 200
    j = r.json()
    np.testing.assert_allclose(j["z"], studio.builtin_z["funk"], atol=1e-4)
    g = builtin("shuffle")
    r = client.post("/api/encode", json={"groove": gjson(g)})
    assert r.status_code == 200
    np.testing.assert_allclose(r.json()["z"], studio.builtin_z["shuffle"], atol=1e-3)
    assert np.array(r.json()["reconstruction"]["hits"]).shape == (32, 9)


def test_midi_export_of_map_points_while_the_map_is_built(model8, ckpt8, monkeypatch):
    # `serve` builds the map on a thread at start; a path between map points asked for then
    # must wait for the map, not hold the model's turn that the build needs (a deadlock)
    import threading

    from flatgroove.web import projection
    from flatgroove.web.server import create_app
    from flatgroove.web.service import Studio

    real = projection.build_map

    def slow_build(raw_model, encode, *a, **k):
        time.sleep(0.5)  # the request arrives meanwhile
        encode(np.zeros((4, 32, 27), np.float32))  # a dataset's windows, in model turns
        return real(raw_model, encode, *a, **k)

    monkeypatch.setattr(projection, "build_map", slow_build)
    studio = Studio(model8, str(ckpt8), dataset=None)
    done: list[int] = []
    c = TestClient(create_app(studio, hosts=TEST_HOSTS))  # no lifespan: a hang cannot block exit
    studio.warm()
    time.sleep(0.1)
    body = {"path": {"a": {"point": [0.0, 0.0]}, "b": {"name": "funk"}, "steps": 3}}
    t = threading.Thread(target=lambda: done.append(c.post("/api/midi", json=body).status_code),
                         daemon=True)
    t.start()
    t.join(20.0)
    assert done == [200], "the request waits on the map build, which waits on the request's turn"


@pytest.mark.parametrize(
    "body, words",
    [
        ({}, "exactly one"),
        ({"name": "funk", "groove": None, "extra": 1}, "extra"),
        ({"name": "polka"}, "polka"),
        ({"groove": {"hits": [[0] * 9] * 31, "velocities": [[0] * 9] * 32,
                     "offsets": [[0] * 9] * 32}}, "hits: List should have at least 32"),
        ({"groove": {"hits": [[0] * 8] * 32, "velocities": [[0] * 9] * 32,
                     "offsets": [[0] * 9] * 32}}, "at least 9"),
        ({"groove": {"hits": [[0.5] * 9] * 32, "velocities": [[0] * 9] * 32,
                     "offsets": [[0] * 9] * 32}}, "hits must be 0 or 1"),
        ({"groove": {"hits": [[1] * 9] * 32, "velocities": [[2] * 9] * 32,
                     "offsets": [[0] * 9] * 32}}, "velocities must lie in [0.0, 1.0]"),
        ({"groove": {"hits": [[1] * 9] * 32, "velocities": [[1] * 9] * 32,
                     "offsets": [[0.9] * 9] * 32}}, "offsets must lie in"),
        ({"groove": {"hits": [["x"] * 9] * 32, "velocities": [[1] * 9] * 32,
                     "offsets": [[0] * 9] * 32}}, "valid number"),
        ({"groove": {"tempo": 999, "hits": [[1] * 9] * 32, "velocities": [[1] * 9] * 32,
                     "offsets": [[0] * 9] * 32}}, "tempo"),
    ],
)
def test_encode_bad_input(client, body, words):
    r = client.post("/api/encode", json=body)
    assert r.status_code in (404, 422), r.text
    assert words in detail(r)


def test_encode_nan_is_refused(client):
    g = gjson(builtin("rock"))
    g["velocities"][0][0] = float("nan")
    r = client.post("/api/encode", content=json.dumps({"groove": g}),
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and "NaN" in detail(r)


def test_encode_malformed_json_and_wrong_type(client):
    r = client.post("/api/encode", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and detail(r)
    r = client.post("/api/encode", content=b"name=funk",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422 and detail(r)
    r = client.post("/api/encode", json=[1, 2, 3])
    assert r.status_code == 422 and detail(r)


# -- uploads ---------------------------------------------------------------------------------------------
def test_upload_midi(client, studio, tmp_path):
    data = midi_bytes([builtin("funk"), builtin("rock")], tmp_path)
    r = client.post("/api/encode/midi", files={"file": ("my groove.mid", data, "audio/midi")})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["bars"] == 4 and j["groove"]["name"] == "my groove"
    np.testing.assert_allclose(j["z"], studio.builtin_z["funk"], atol=2e-3)
    r = client.post("/api/encode/midi", files={"file": ("g.mid", data, "audio/midi")},
                    data={"bar": "2"})
    assert r.status_code == 200
    np.testing.assert_allclose(r.json()["z"], studio.builtin_z["rock"], atol=2e-3)
    assert r.json()["groove"]["name"] == "g bars 3-4"


def test_upload_bad_files(client, tmp_path, mido_file):
    data = midi_bytes([builtin("funk")], tmp_path)
    cases = [
        ({"file": ("x.mid", b"", "audio/midi")}, {}, 422, "not a MIDI file"),
        ({"file": ("x.mid", b"hello world, not midi", "audio/midi")}, {}, 422, "not a MIDI file"),
        ({"file": ("x.mid", b"MThd" + b"\x00" * 40, "audio/midi")}, {}, 422, "x.mid"),
        ({"file": ("x.mid", data, "audio/midi")}, {"bar": "5"}, 422, "cannot take 2 bars"),
        ({"file": ("x.mid", data, "audio/midi")}, {"bar": "-1"}, 422, "bar"),
        ({"file": ("x.mid", data, "audio/midi")}, {"bar": "one"}, 422, "bar"),
        ({}, {}, 422, "file"),
    ]
    for files, form, status, words in cases:
        r = client.post("/api/encode/midi", files=files or None, data=form)
        assert r.status_code == status, (words, r.text)
        assert words in detail(r), (words, detail(r))
    # A file in 3/4 is refused with the reason.
    waltz = mido_file(tmp_path / "waltz.mid", [[(0, 36, 100, 9), (480, 38, 90, 9)]],
                      time_signature=(3, 4))
    r = client.post("/api/encode/midi", files={"file": ("waltz.mid", waltz.read_bytes())})
    assert r.status_code == 422 and "3/4" in detail(r)
    # No drums: a piano part.
    piano = mido_file(tmp_path / "piano.mid", [[(i * 240, 60, 100, 0) for i in range(40)],
                                                 [(0, 64, 100, 1)]])
    r = client.post("/api/encode/midi", files={"file": ("piano.mid", piano.read_bytes())})
    assert r.status_code == 422 and "no drum notes" in detail(r)
    # Internal temp paths never leak into messages.
    assert "/tmp" not in detail(r)


def test_upload_size_limit(client):
    big = b"MThd" + b"\x00" * (1 << 20)
    r = client.post("/api/encode/midi", files={"file": ("big.mid", big, "audio/midi")})
    assert r.status_code == 413 and "limit" in detail(r)


def test_body_limit_with_and_without_length(client):
    r = client.post("/api/decode", content=b"x" * (3 << 20), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in detail(r)

    def chunks():
        for _ in range(40):
            yield b"x" * (64 << 10)

    r = client.post("/api/decode", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in detail(r)
    # A small chunked body still works (replayed to the app).
    body = json.dumps({"z": [0.0] * 8}).encode()
    r = client.post("/api/decode", content=iter([body[:5], body[5:]]),
                    headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


# -- decode, interpolate, blend, sample ---------------------------------------------------------------
def test_decode(client, studio):
    z = studio.builtin_z["disco"].tolist()
    r = client.post("/api/decode", json={"z": z, "tempo": 100, "name": "mine"})
    assert r.status_code == 200
    g = r.json()["groove"]
    assert g["tempo"] == 100 and g["name"] == "mine"
    want = studio.raw_model.decode(np.array([z], np.float32), tempo=100)[0]
    assert np.array_equal(np.array(g["hits"]), want.hits)
    r = client.post("/api/decode", json={"point": [0.5, -0.25]})
    assert r.status_code == 200
    np.testing.assert_allclose(r.json()["point"], [0.5, -0.25], atol=1e-3)
    assert r.json()["groove"]["name"].startswith("map (0.50")
    # A lower threshold never has fewer hits.
    lo = client.post("/api/decode", json={"z": z, "threshold": 0.1}).json()["groove"]
    hi = client.post("/api/decode", json={"z": z, "threshold": 0.9}).json()["groove"]
    assert np.sum(lo["hits"]) >= np.sum(hi["hits"])


@pytest.mark.parametrize(
    "body, words",
    [
        ({"z": [0.0] * 3}, "8 numbers"),
        ({"z": [0.0] * 2000}, "at most 1024"),
        ({"z": [1e6] * 8}, "within"),
        ({}, "exactly one"),
        ({"z": [0.0] * 8, "point": [0, 0]}, "exactly one"),
        ({"point": [0.0]}, "point"),
        ({"z": [0.0] * 8, "tempo": 5}, "tempo"),
        ({"z": [0.0] * 8, "threshold": 1.5}, "threshold"),
        ({"z": "zero"}, "z"),
    ],
)
def test_decode_bad_input(client, body, words):
    r = client.post("/api/decode", json=body)
    assert r.status_code == 422, r.text
    assert words in detail(r)


def test_interpolate(client, studio):
    r = client.post("/api/interpolate", json={"a": {"name": "rock"}, "b": {"name": "funk"}, "steps": 5})
    assert r.status_code == 200
    j = r.json()
    assert len(j["grooves"]) == 5 and len(j["z"]) == 5 and len(j["points"]) == 5
    np.testing.assert_allclose(j["z"][0], studio.builtin_z["rock"], atol=1e-4)
    np.testing.assert_allclose(j["z"][-1], studio.builtin_z["funk"], atol=1e-4)
    # The map path is straight: the midpoint's point is the mean of the ends'.
    p = np.array(j["points"])
    np.testing.assert_allclose(p[2], (p[0] + p[4]) / 2, atol=1e-3)
    # Tempo glides from A's to B's.
    assert j["grooves"][0]["tempo"] == builtin("rock").tempo
    assert j["grooves"][-1]["tempo"] == builtin("funk").tempo
    # Any kind of reference, and slerp.
    body = {"a": {"groove": gjson(builtin("disco"))}, "b": {"z": [0.1] * 8, "tempo": 90},
            "steps": 3, "method": "slerp"}
    r = client.post("/api/interpolate", json=body)
    assert r.status_code == 200 and r.json()["method"] == "slerp"
    r = client.post("/api/interpolate", json={"a": {"point": [0, 0]}, "b": {"point": [1, 1]}})
    assert r.status_code == 200 and len(r.json()["grooves"]) == 9


@pytest.mark.parametrize(
    "body, words",
    [
        ({"a": {"name": "rock"}}, "b: Field required"),
        ({"a": {"name": "rock"}, "b": {"name": "funk"}, "steps": 1}, "steps"),
        ({"a": {"name": "rock"}, "b": {"name": "funk"}, "steps": 1000}, "steps"),
        ({"a": {"name": "rock"}, "b": {"name": "funk"}, "method": "geodesic"}, "method"),
        ({"a": {"name": "rock", "z": [0] * 8}, "b": {"name": "funk"}}, "exactly one"),
        ({"a": {"name": "rock"}, "b": {"z": [0] * 7}}, "8 numbers"),
        ({"a": {"name": "nope"}, "b": {"name": "funk"}}, "nope"),
    ],
)
def test_interpolate_bad_input(client, body, words):
    r = client.post("/api/interpolate", json=body)
    assert r.status_code in (404, 422), r.text
    assert words in detail(r)


def test_blend(client):
    corners = [{"name": n} for n in ("rock", "funk", "jazz_ride", "bossa_nova")]
    r = client.post("/api/blend", json={"corners": corners, "grid": 3})
    assert r.status_code == 200
    j = r.json()
    assert len(j["rows"]) == 3 and all(len(row) == 3 for row in j["rows"])
    assert j["corners"] == ["rock", "funk", "jazz_ride", "bossa_nova"]
    assert np.array(j["points"]).shape == (3, 3, 2)
    r = client.post("/api/blend", json={"corners": corners[:3]})
    assert r.status_code == 422 and "at least 4" in detail(r)
    r = client.post("/api/blend", json={"corners": corners, "grid": 20})
    assert r.status_code == 422 and "grid" in detail(r)


def test_sample(client):
    r = client.post("/api/sample", json={"n": 3, "seed": 7, "tempo": 96})
    assert r.status_code == 200
    j = r.json()
    assert len(j["grooves"]) == 3 and np.array(j["z"]).shape == (3, 8)
    assert all(g["tempo"] == 96 for g in j["grooves"])
    assert client.post("/api/sample", json={"n": 3, "seed": 7, "tempo": 96}).json()["z"] == j["z"]
    for body, words in [({"n": 0}, "n"), ({"n": 100}, "n"), ({"temperature": 0}, "temperature"),
                        ({"seed": -1}, "seed")]:
        r = client.post("/api/sample", json=body)
        assert r.status_code == 422 and words in detail(r)


# -- MIDI export -------------------------------------------------------------------------------------------
def test_midi_export_grooves(client):
    gs = [gjson(builtin("funk")), gjson(builtin("rock"))]
    r = client.post("/api/midi", json={"grooves": gs, "filename": "my/../groove"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "audio/midi"
    assert r.headers["content-disposition"] == 'attachment; filename="my_.._groove.mid"'
    for name, sent in (("x" * 200, "x" * 80), ("ドラム_rock.mid", "rock"), ("___", "flatgroove")):
        r = client.post("/api/midi", json={"grooves": gs, "filename": name})
        assert r.status_code == 200, r.text
        assert r.headers["content-disposition"] == f'attachment; filename="{sent}.mid"'
    assert r.content[:4] == b"MThd"
    mf = mido.MidiFile(file=io.BytesIO(r.content))
    ons = [m for t in mf.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert len(ons) == builtin("funk").n_hits + builtin("rock").n_hits
    assert all(m.channel == 9 for m in ons)


def test_midi_export_path(client):
    r = client.post("/api/midi", json={"path": {"a": {"name": "rock"}, "b": {"name": "funk"},
                                                "steps": 4}, "tempo": 100})
    assert r.status_code == 200 and r.content[:4] == b"MThd"
    mf = mido.MidiFile(file=io.BytesIO(r.content))
    tempo = next(m.tempo for t in mf.tracks for m in t if m.type == "set_tempo")
    assert round(mido.tempo2bpm(tempo)) == 100
    assert mf.length <= 4 * 2 * 4 * 60 / 100 + 0.5  # 4 grooves of 2 bars at most


@pytest.mark.parametrize(
    "body, words",
    [
        ({}, "exactly one"),
        ({"grooves": []}, "at least 1"),
        ({"grooves": [{"hits": [[0] * 9] * 32}]}, "velocities: Field required"),
        ({"grooves": [gjson(builtin("rock"))], "tempo": 1000}, "tempo"),
        ({"path": {"a": {"name": "rock"}}}, "path.b"),
    ],
)
def test_midi_export_bad_input(client, body, words):
    r = client.post("/api/midi", json=body)
    assert r.status_code == 422, r.text
    assert words in detail(r)


# -- the jam WebSocket ----------------------------------------------------------------------------------
def _states(ws, until, n_max=400):
    """Messages until `until(msg)` is true (or fail after n_max messages)."""
    for _ in range(n_max):
        m = ws.receive_json()
        if until(m):
            return m
    raise AssertionError("condition not met in the jam's messages")


def test_jam_websocket_streams_state_and_takes_controls(client):
    t0 = time.monotonic()
    with client.websocket_connect("/ws/jam") as ws:
        st = _states(ws, lambda m: m["type"] == "state" and m.get("bar", -1) >= 1)
        for k in ("bar", "beat", "bpm", "mode", "a", "target", "drummer", "machine", "points",
                  "log", "bank", "notes", "t"):
            assert k in st, k
        assert st["bpm"] == 240 and st["running"]
        assert np.array(st["drummer"]["hits"]).shape == (32, 9)
        assert st["target"] != "rock"  # the drummer's groove is not the first target
        ws.send_json({"type": "a", "value": 0.8})
        assert _states(ws, lambda m: m["type"] == "ok")["control"] == "a"
        _states(ws, lambda m: m["type"] == "state" and m["a"] == 0.8)
        ws.send_json({"type": "mode", "value": "morph"})
        _states(ws, lambda m: m["type"] == "state" and "morph" in (m["mode"], m["pending_mode"]))
        ws.send_json({"type": "target", "name": "jazz_ride"})
        _states(ws, lambda m: m["type"] == "state" and m["target"] == "jazz_ride")
        ws.send_json({"type": "target", "point": [0.5, 0.5]})
        st = _states(ws, lambda m: m["type"] == "state" and m["target"].startswith("map ("))
        ws.send_json({"type": "target", "point": [-0.5, 0.25]})
        st = _states(ws, lambda m: m["type"] == "state" and m["target"] == "map (-0.50, 0.25)")
        assert sum(b.startswith("map (") for b in st["bank"]) == 1  # one slot for map targets
        _states(ws, lambda m: m["type"] == "state" and m["points"]["target"] is not None
                and np.allclose(m["points"]["target"], [-0.5, 0.25], atol=1e-3))
        ws.send_json({"type": "drummer", "name": "funk"})
        _states(ws, lambda m: m["type"] == "state" and m["drummer_name"] == "funk")
        ws.send_json({"type": "bpm", "value": 200})
        _states(ws, lambda m: m["type"] == "state" and m["bpm"] == 200)
        ws.send_json({"type": "capture"})
        _states(ws, lambda m: m["type"] == "state" and any(b.startswith("capture") for b in m["bank"]))
        # Notes heard: the drummer's ('d') and the machine's ('m'), on the virtual clock.
        notes: list = []
        _states(ws, lambda m: m["type"] == "state" and notes.extend(m["notes"]) is None
                and {n[3] for n in notes} == {"d", "m"})
        assert all(0 <= n[1] < 9 and 1 <= n[2] <= 127 for n in notes)
        ws.send_json({"type": "hold"})
        _states(ws, lambda m: m["type"] == "state" and m["hold"])
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize(
    "msg, words",
    [
        ("not json", "not JSON"),
        ({"type": "a", "value": 2}, "less than or equal to 1"),
        ({"type": "a"}, "value"),
        ({"type": "mode", "value": "solo"}, "answer"),
        ({"type": "target"}, "exactly one"),
        ({"type": "target", "name": "polka"}, "no target 'polka'"),
        ({"type": "target", "z": [0.0] * 3}, "8 numbers"),
        ({"type": "drummer", "name": "polka"}, "polka"),
        ({"type": "bpm", "value": 1000}, "bpm"),
        ({"type": "dance"}, "type"),
        ([1, 2], "dictionary"),
    ],
)
def test_jam_bad_messages(client, msg, words):
    with client.websocket_connect("/ws/jam") as ws:
        if isinstance(msg, str):
            ws.send_text(msg)
        else:
            ws.send_json(msg)
        m = _states(ws, lambda m: m["type"] == "error")
        assert words in m["detail"]
        # The connection stays usable.
        ws.send_json({"type": "a", "value": 0.3})
        assert _states(ws, lambda m: m["type"] in ("ok", "error"))["type"] == "ok"


def test_midi_controller_and_page_steer_one_session(studio):
    """A controller's CC (stamped with the monotonic clock, as real ports do) and the page's
    messages change the same engine."""
    from flatgroove.live.ports import MemoryInput
    from flatgroove.web.jam import JamSession
    from flatgroove.web.server import create_app

    knob = MemoryInput()
    jam = JamSession(studio, bpm=240.0, inputs=[knob], idle_stop_s=None)
    with TestClient(create_app(studio, jam=jam, hosts=TEST_HOSTS)) as c, c.websocket_connect("/ws/jam") as ws:
        _states(ws, lambda m: m["type"] == "state" and m.get("bar", -1) >= 0)
        ws.send_json({"type": "a", "value": 0.2})
        _states(ws, lambda m: m["type"] == "state" and m["a"] == 0.2)
        knob.feed(time.monotonic(), mido.Message("control_change", channel=0, control=1, value=127))
        _states(ws, lambda m: m["type"] == "state" and m["a"] == 1.0)
        ws.send_json({"type": "a", "value": 0.4})
        _states(ws, lambda m: m["type"] == "state" and m["a"] == 0.4)
    jam.stop()
    assert not jam.running


def test_jam_stops_when_idle_and_restarts(studio):
    from flatgroove.web.jam import JamSession
    from flatgroove.web.server import create_app

    jam = JamSession(studio, bpm=240.0, idle_stop_s=0.2)
    with TestClient(create_app(studio, jam=jam, hosts=TEST_HOSTS)) as c:
        with c.websocket_connect("/ws/jam") as ws:
            _states(ws, lambda m: m["type"] == "state" and m.get("running"))
        deadline = time.monotonic() + 5
        while jam.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not jam.running
        assert "no page connected" in " ".join(jam.state()["log"])
        assert c.get("/api/jam").json()["running"] is False
        with c.websocket_connect("/ws/jam") as ws:
            st = _states(ws, lambda m: m["type"] == "state" and m.get("running") and m["session"] == 2)
            assert st["bar"] >= -1
    jam.stop()


def test_map_targets_share_one_slot_and_spare_other_targets():
    from flatgroove.live.controls import Target
    from flatgroove.web.jam import put_in_map_slot

    z = np.zeros(8, np.float32)
    bank = [Target("zouk", groove=builtin("rock")), Target("rock", groove=builtin("rock"))]
    for name in ("map (0.10, 0.20)", "z", "map (0.50, 0.50)"):
        put_in_map_slot(bank, Target(name, z=z))
    assert [b.name for b in bank] == ["zouk", "rock", "map (0.50, 0.50)"]


def test_a_page_connecting_as_the_jam_stops_for_idleness_gets_a_jam(studio, monkeypatch):
    import threading

    from flatgroove.web.jam import JamSession

    real, deciding = JamSession._idle, threading.Event()

    def slow_idle(self):
        idle = real(self)
        if idle:
            deciding.set()
            time.sleep(0.5)  # the window between deciding to stop and stopping, widened
        return idle

    monkeypatch.setattr(JamSession, "_idle", slow_idle)
    jam = JamSession(studio, bpm=240.0, idle_stop_s=0.2)
    try:
        jam.connect()
        jam.disconnect()  # no page from now on
        assert deciding.wait(10.0)
        jam.connect()  # a page arrives just then
        time.sleep(1.0)
        assert jam.running and jam.sessions == 2
    finally:
        monkeypatch.setattr(JamSession, "_idle", real)
        jam.stop()


# -- `flatgroove serve` -------------------------------------------------------------------------------------
def test_serve_is_a_subcommand():
    from flatgroove.cli import build_parser

    args = build_parser().parse_args(["serve", "--port", "9", "--model", "x.pt", "--no-data"])
    assert args.port == 9 and args.host == "127.0.0.1" and args.model == "x.pt" and args.no_data


def test_serve_user_errors(tmp_path, capsys):
    import socket

    from flatgroove.cli import main

    assert main(["serve", "--model", str(tmp_path / "missing.pt"), "--port", "0"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--port", str(port), "--model", "x"]) == 2
        assert "cannot listen" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
    assert main(["serve", "--port", "0", "--bpm", "1000"]) == 2
    assert "--bpm" in capsys.readouterr().err
    assert main(["serve", "--port", "0", "--controls", str(tmp_path / "none.toml")]) == 2
    assert "no such controls file" in capsys.readouterr().err


def test_serve_bad_drummer(ckpt8, capsys):
    from flatgroove.cli import main

    assert main(["serve", "--port", "0", "--model", str(ckpt8), "--no-data", "--drummer", "polka"]) == 2
    assert "polka" in capsys.readouterr().err
