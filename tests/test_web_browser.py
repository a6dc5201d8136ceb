"""The page in a real browser: Playwright driving Debian's Chromium against `flatgroove serve`
started in a subprocess on a free localhost port.

Skips when Chromium or Playwright is missing (`make system-deps` installs Chromium; never
`playwright install`, the machine is offline). Set FLATGROOVE_SCREENSHOTS=DIR to keep copies
of the explorer and jam screenshots."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mido
import numpy as np
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("FLATGROOVE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic"]

if not Path(CHROMIUM).exists():
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or make system-deps)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _checkpoint(path: Path) -> Path:
    import torch

    from flatgroove.model.checkpoint import save_checkpoint
    from flatgroove.model.config import ModelConfig
    from flatgroove.model.vae import GrooveVAE

    torch.manual_seed(1)
    cfg = ModelConfig(latent_dim=8, enc_hidden=16, dec_hidden=24, prior_hidden=16, step_embed=4)
    model = GrooveVAE(cfg)
    # Untrained, but vivid: larger weights make the decodes depend visibly on z, and a
    # negative hit bias makes them sparse like grooves (1-28 hits at the built-ins' codes).
    with torch.no_grad():
        for p in [*model.encoder.parameters(), *model.decoder.parameters()]:
            p.mul_(6.0)
        model.decoder.head.bias[:9] -= 2.0
    return save_checkpoint(path, {"model_config": cfg.to_dict(), "state_dict": model.state_dict()})


def _dataset(root: Path) -> Path:
    """A small MIDI folder in three styles (folder name = style)."""
    from flatgroove.midi import write_midi
    from flatgroove.presets import builtin

    styles = {"rock": ["rock", "half_time", "rock_fill", "breakbeat"], "funk": ["funk", "disco"],
              "jazz": ["jazz_ride", "shuffle"], "latin": ["bossa_nova", "reggae_one_drop"]}
    for style, names in styles.items():
        for n in names:
            g = builtin(n)
            write_midi([g, g, g], root / style / f"{n}.mid")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    ckpt = _checkpoint(tmp / "tiny.pt")
    data = _dataset(tmp / "data")
    port = _free_port()
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "flatgroove.cli", "serve", "--port", str(port), "--model", str(ckpt),
         "--data", str(data), "--bpm", "200"],
        stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/map", timeout=5) as r:
                mapdata = json.load(r)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.fail(f"flatgroove serve did not start:\n{(tmp / 'serve.log').read_text()}")
            time.sleep(0.3)
    yield {"url": url, "map": mapdata, "tmp": tmp}
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1400, "height": 950}, accept_downloads=True)
    pg = ctx.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}")
          if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    pg.goto(server["url"] + "/")
    pg.wait_for_selector("body[data-ready='1']", timeout=30000)
    pg.problems = problems  # type: ignore[attr-defined]
    yield pg
    ctx.close()


def _screenshot(pg, server, name: str) -> Path:
    path = server["tmp"] / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("FLATGROOVE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    assert path.stat().st_size > 10_000
    return path


def _api(server, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server["url"] + path, data=data,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def _wait(pg, js: str, timeout: float = 15000):
    pg.wait_for_function(js, timeout=timeout)


def test_page_loads_clean_and_map_shows_points(page, server):
    assert page.title() == "flatgroove"
    n = len(server["map"]["points"])
    assert n == server["map"]["n_total"] > 12  # every window of the 12 files (under 3000)
    cv = page.locator("#map")
    assert cv.get_attribute("data-points") == str(n)
    assert cv.get_attribute("data-builtins") == "11"
    # The canvas is drawn on: count coloured pixels.
    lit = page.evaluate("""() => {
        const c = document.getElementById('map');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n; }""")
    assert lit > 2000
    legend = page.locator("#legend").inner_text()
    for style in ("rock", "funk", "jazz", "latin", "built-in groove"):
        assert style in legend
    assert f"{n} of {n} dataset windows" in page.locator("#map-note").inner_text()
    assert page.locator("#model-info").inner_text().startswith("tiny")
    assert page.problems == []  # type: ignore[attr-defined]


def test_pick_groove_on_map_then_alpha_changes_grid(page, server):
    # Click B's dot on the map: a built-in far from A along the map.
    pts = {b["name"]: b["point"] for b in server["map"]["builtins"]}
    target = "jazz_ride"
    xy = page.evaluate(f"() => window.flatgroove.map.toPx({json.dumps(pts[target])})")
    page.locator("#map").click(position={"x": xy[0], "y": xy[1]})
    page.wait_for_function("() => document.getElementById('b-name').textContent === 'jazz ride'")
    assert page.locator("#b-select").input_value() == "jazz_ride"

    grid = page.locator("#grid-cur")
    page.locator("#alpha").fill("0")
    _wait(page, "() => window.flatgroove.explorer.alpha === 0 && "
                "document.getElementById('cur-title').textContent.includes('0.00')")
    page.wait_for_timeout(300)
    sig0, img0 = grid.get_attribute("data-signature"), grid.screenshot()
    page.locator("#alpha").fill("1")
    _wait(page, f"() => document.getElementById('grid-cur').dataset.signature !== {json.dumps(sig0)}")
    sig1, img1 = grid.get_attribute("data-signature"), grid.screenshot()
    assert sig1 != sig0 and img1 != img0
    # What is drawn is the model's decode of B's code.
    cur = page.evaluate("() => window.flatgroove.explorer.cur")
    z = next(b["z"] for b in _api(server, "/api/grooves") if b["name"] == target)
    want = _api(server, "/api/decode", {"z": z, "tempo": cur["tempo"]})["groove"]
    assert cur["hits"] == want["hits"]
    # The path strip has its 9 cells; clicking one sets α.
    assert page.locator("#path-strip .cell").count() == 9
    page.locator("#path-strip .cell").nth(4).click()
    _wait(page, "() => window.flatgroove.explorer.alpha === 0.5")
    _screenshot(page, server, "explorer")
    assert page.problems == []  # type: ignore[attr-defined]


def test_playback_runs_an_audiocontext(page):
    assert page.evaluate("() => window.flatgroove.player.state") == "none"
    page.locator("#play").click()
    _wait(page, "() => window.flatgroove.player.state === 'running' && window.flatgroove.player.playing")
    # The playhead moves with the audio clock.
    t0 = page.evaluate("() => window.flatgroove.player.ctx.currentTime")
    page.wait_for_timeout(400)
    assert page.evaluate("() => window.flatgroove.player.ctx.currentTime") > t0 + 0.2
    _wait(page, "() => window.flatgroove.player.kit.played > 0", 10000)  # hits are scheduled
    page.locator("#stop").click()
    _wait(page, "() => !window.flatgroove.player.playing")
    page.locator("#play-path").click()
    _wait(page, "() => document.querySelectorAll('#path-strip .cell.playing').length === 1")
    page.locator("#stop").click()
    assert page.problems == []  # type: ignore[attr-defined]


def test_midi_downloads_are_valid_files(page):
    with page.expect_download() as dl:
        page.locator("#dl-groove").click()
    data = Path(dl.value.path()).read_bytes()
    assert data[:4] == b"MThd"
    assert dl.value.suggested_filename.endswith(".mid")
    mf = mido.MidiFile(file=io.BytesIO(data))
    ons = [m for t in mf.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    cur = page.evaluate("() => window.flatgroove.explorer.cur")
    assert len(ons) == int(np.sum(cur["hits"]))
    with page.expect_download() as dl:
        page.locator("#dl-path").click()
    data = Path(dl.value.path()).read_bytes()
    assert data[:4] == b"MThd"
    mf = mido.MidiFile(file=io.BytesIO(data))
    path = page.evaluate("() => window.flatgroove.explorer.path.grooves")
    ons = [m for t in mf.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert len(ons) == int(np.sum([g["hits"] for g in path]))
    assert page.problems == []  # type: ignore[attr-defined]


def test_upload_midi_sets_the_source(page, server):
    from flatgroove.midi import write_midi
    from flatgroove.presets import builtin

    f = write_midi([builtin("disco"), builtin("funk")], server["tmp"] / "my take.mid")
    page.locator("#a-file").set_input_files(str(f))
    _wait(page, "() => document.getElementById('a-name').textContent === 'my take'")
    bad = server["tmp"] / "notes.mid"
    bad.write_bytes(b"not a midi file at all")
    page.locator("#a-file").set_input_files(str(bad))
    _wait(page, "() => !document.getElementById('toast').hidden && "
                "document.getElementById('toast').textContent.includes('not a MIDI file')")
    # The failed upload is reported on the page; the browser logs the 422 response itself.
    probs = [p for p in page.problems if "422" not in p]  # type: ignore[attr-defined]
    assert probs == []


def test_jam_view_streams_and_steers(page, server):
    page.locator("#tab-jam").click()
    _wait(page, "() => document.getElementById('jam-conn').classList.contains('live')")
    _wait(page, "() => window.flatgroove.jam.state && window.flatgroove.jam.state.bar >= 1", 20000)
    assert page.locator("#grid-drummer").get_attribute("data-signature") != "empty"
    st = page.evaluate("() => window.flatgroove.jam.state")
    assert st["bpm"] == 200 and st["points"]["drummer"] is not None
    # α from the slider reaches the engine and comes back in its state.
    page.locator("#jam-alpha").fill("0.9")
    _wait(page, "() => window.flatgroove.jam.state.a === 0.9")
    # A target from the chips, then from the map.
    page.locator("#jam-targets .chip", has_text="bossa nova").click()
    _wait(page, "() => window.flatgroove.jam.state.target === 'bossa_nova'")
    page.locator("#map").click(position={"x": 60, "y": 60})
    _wait(page, "() => window.flatgroove.jam.state.target.startsWith('map (')")
    page.locator("#jam-modes button[data-mode='morph']").click()
    _wait(page, "() => [window.flatgroove.jam.state.mode, window.flatgroove.jam.state.pending_mode]"
                ".includes('morph')")
    # Listening plays the streamed notes through the page's synth.
    page.locator("#jam-listen").click()
    _wait(page, "() => window.flatgroove.player.state === 'running' && window.flatgroove.jam.offset !== null")
    _wait(page, "() => window.flatgroove.jam.state.machine !== null", 20000)
    heard = page.evaluate("() => window.flatgroove.player.kit.played")
    _wait(page, f"() => window.flatgroove.player.kit.played > {heard}", 10000)
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.flatgroove.jam.received") > 10
    _screenshot(page, server, "jam")
    page.locator("#tab-explore").click()
    _wait(page, "() => !document.getElementById('view-explore').hidden")
    assert page.problems == []  # type: ignore[attr-defined]
