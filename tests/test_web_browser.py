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
import sys
import urllib.request
from pathlib import Path

import mido
import numpy as np
import pytest

import serving

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
    url = f"http://127.0.0.1:{port}"
    proc, log, mapdata = serving.start(
        [sys.executable, "-m", "flatgroove.cli", "serve", "--port", str(port), "--model", str(ckpt),
         "--data", str(data), "--bpm", "200"], tmp / "serve.log", f"{url}/api/map")
    yield {"url": url, "map": mapdata, "tmp": tmp}
    serving.stop(proc, log)


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


# -- the pad, the map's hover and reach, labels and colours, recording and the keyboard ---------
def _lab(hex_colour: str) -> np.ndarray:
    """sRGB '#rrggbb' -> CIELAB (D65)."""
    c = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    x = m @ c / np.array([0.95047, 1.0, 1.08883])
    f = np.where(x > 0.008856, np.cbrt(x), 7.787 * x + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _decode_hits(server, z, tempo):
    return _api(server, "/api/decode", {"z": z, "tempo": tempo})["groove"]["hits"]


def _drag(page, canvas: str, frm: tuple[float, float], to: tuple[float, float]) -> None:
    box = page.locator(canvas).bounding_box()
    page.mouse.move(box["x"] + frm[0], box["y"] + frm[1])
    page.mouse.down()
    for k in range(1, 6):
        page.mouse.move(box["x"] + frm[0] + (to[0] - frm[0]) * k / 5,
                        box["y"] + frm[1] + (to[1] - frm[1]) * k / 5)
    page.mouse.up()


def test_pad_drag_plays_the_blend_under_the_puck(page, server):
    page.locator("#tab-pad").click()
    _wait(page, "() => !document.getElementById('view-pad').hidden && window.flatgroove.pad.cur "
                "&& window.flatgroove.pad.blend")
    pad = "window.flatgroove.pad"
    corners = page.evaluate(f"() => {pad}.corners.map((c) => c.label)")
    assert corners == ["rock", "funk", "jazz_ride", "bossa_nova"]
    blend = page.evaluate(f"() => {pad}.blend")
    assert len(blend["rows"]) == 5 and all(len(r) == 5 for r in blend["rows"])
    zs = {b["name"]: b["z"] for b in _api(server, "/api/grooves")}
    tempo = page.evaluate(f"() => {pad}.tempo()")
    # Play, then drag the puck past the top-left corner: it stops at corner 1 (rock) and the
    # loop that is playing is the groove decoded there.
    page.locator("#pad-play").click()
    _wait(page, "() => window.flatgroove.player.playing")
    w = page.locator("#pad").bounding_box()["width"]
    _drag(page, "#pad", (w / 2, w / 2), (-20, -20))
    _wait(page, f"() => {pad}.u === 0 && {pad}.v === 0 && {pad}.curAt[0] === 0 && {pad}.curAt[1] === 0")
    at_rock = page.evaluate(f"() => {pad}.cur")
    assert at_rock["hits"] == _decode_hits(server, zs["rock"], tempo)
    assert page.evaluate(f"() => window.flatgroove.player.job.groove(0) === {pad}.cur")
    # Along the top edge to corner 2 (funk): what the pad plays is /api/blend's top-right cell.
    _drag(page, "#pad", (5, 5), (w + 20, 5))
    _wait(page, f"() => {pad}.curAt[0] === 1 && {pad}.curAt[1] === 0")
    at_funk = page.evaluate(f"() => {pad}.cur")
    assert at_funk["hits"] == blend["rows"][0][4]["hits"] == _decode_hits(server, zs["funk"], tempo)
    assert page.evaluate(f"() => window.flatgroove.player.job.groove(0) === {pad}.cur")
    assert page.locator("#pad").get_attribute("data-puck") == "1,0"
    # Keys: arrows move the puck (shift: finely), Space stops.
    n = page.evaluate(f"() => {pad}.decodes")
    page.locator("#pad-uv").click()  # focus off the buttons
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Shift+ArrowDown")
    _wait(page, f"() => {pad}.u === 0.95 && {pad}.v === 0.06 && {pad}.curAt[1] === 0.06 "
                f"&& {pad}.decodes > {n}")
    page.keyboard.press("Space")
    _wait(page, "() => !window.flatgroove.player.playing")
    # A map click fills the lit corner (1), then the next one lights up.
    pts = {b["name"]: b["point"] for b in server["map"]["builtins"]}
    xy = page.evaluate(f"() => window.flatgroove.map.toPx({json.dumps(pts['disco'])})")
    page.locator("#map").click(position={"x": xy[0], "y": xy[1]})
    _wait(page, f"() => {pad}.corners[0].label === 'disco' && {pad}.active === 1")
    assert page.locator("#view-pad .corner.active").get_attribute("data-corner") == "1"
    _wait(page, f"() => {pad}.blend.rows[0][0].hits.flat().join() === "
                f"{json.dumps([x for row in _decode_hits(server, zs['disco'], tempo) for x in row])}.join()")
    _screenshot(page, server, "pad")
    assert page.problems == []  # type: ignore[attr-defined]


def test_map_names_windows_keeps_clicks_in_reach_and_labels_apart(page, server):
    m = server["map"]
    assert m["reach"] > 0 and m["windows"] is not None
    # Hover a dataset dot away from the built-ins: the tip names its file, style and bars.
    i, x, y, clear, near_ids = page.evaluate("""() => {
        const map = window.flatgroove.map, f = map.frame();
        const bs = map.data.builtins.map((b) => map.toPx(b.point, f));
        const px = map.data.points.map((p) => map.toPx(p, f));
        let best = -1, bd = 0;
        px.forEach(([x, y], i) => {
            const d = Math.min(...bs.map(([bx, by]) => Math.hypot(bx - x, by - y)));
            if (d > bd) { bd = d; best = i; }
        });
        const [x, y] = px[best];
        const near = px.map(([qx, qy], j) => [Math.hypot(qx - x, qy - y), j]).filter((e) => e[0] < 6).map((e) => e[1]);
        return [best, x, y, bd, near]; }""")
    assert i >= 0 and clear > 16
    page.locator("#map").hover(position={"x": x, "y": y})
    w = m["windows"]
    tip = page.locator("#map-tip").inner_text()

    def name(j):
        bar = w["bar"][j] + 1
        return f"{w['files'][w['file'][j]]} · {w['styles'][w['style'][j]]} · bars {bar}-{bar + 1}"

    assert tip in {name(j) for j in near_ids}, (tip, [name(j) for j in near_ids])
    assert w["files"][w["file"][i]].endswith(".mid") and " · bars " in tip
    # A click in empty space beyond the data's reach is pulled back to its edge, and said so.
    far = page.evaluate("""() => {
        const map = window.flatgroove.map, f = map.frame();
        let best = null;
        for (let x = 4; x < f.w; x += 8) for (let y = 4; y < f.h; y += 8) {
            const d = map.dataDistance(map.fromPx(x, y, f)).distance;
            if (!best || d > best[2]) best = [x, y, d];
        }
        return best; }""")
    assert far[2] > m["reach"] * 1.2, far
    page.locator("#map").hover(position={"x": far[0], "y": far[1]})
    assert "from the data — too far" in page.locator("#map-tip").inner_text()
    page.locator("#map").click(position={"x": far[0], "y": far[1]})
    _wait(page, "() => window.flatgroove.map.lastClick && window.flatgroove.map.lastClick.far")
    click = page.evaluate("() => window.flatgroove.map.lastClick")
    near = page.evaluate(f"() => window.flatgroove.map.dataDistance({json.dumps(click['point'])}).distance")
    assert near == pytest.approx(m["reach"], rel=1e-6) and click["distance"] > m["reach"]
    _wait(page, "() => document.getElementById('toast').textContent.includes('from the nearest groove')")
    _wait(page, f"() => window.flatgroove.explorer.b.label.startsWith('map (') && "
                f"Math.hypot(...window.flatgroove.explorer.b.point.map((v, k) => v - {json.dumps(click['point'])}[k])) < 1e-3")
    # A click near the data is taken as it is.
    page.locator("#map").click(position={"x": x + 3, "y": y})
    _wait(page, "() => window.flatgroove.map.lastClick && !window.flatgroove.map.lastClick.far")
    # Built-in labels: none overlaps another label or a built-in's dot, all on the canvas.
    labels = page.evaluate("() => window.flatgroove.map.labels")
    size = page.evaluate("() => [document.getElementById('map').clientWidth, document.getElementById('map').clientHeight]")
    assert len(labels) == 11

    def hit(a, b):
        return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]

    for j, la in enumerate(labels):
        x0, y0, lw, lh = la["rect"]
        assert 0 <= x0 and x0 + lw <= size[0] and 0 <= y0 and y0 + lh <= size[1], la
        for lb in labels[j + 1:]:
            assert not hit(la["rect"], lb["rect"]), (la, lb)
        for lb in labels:
            dx, dy = lb["dot"]
            assert not hit(la["rect"], [dx - 5, dy - 5, 10, 10]), (la["name"], lb["name"])
    # Style marks: 18 styles get 18 different colour-and-shape pairs, and two styles with the
    # same shape differ clearly in colour (CIELAB distance).
    marks = page.evaluate("""async () => { const m = await import('/static/map.js');
        return [...Array(18).keys()].map((i) => m.styleMark(i)); }""")
    assert len({(k["color"], k["shape"]) for k in marks}) == 18
    for a in range(18):
        for b in range(a + 1, 18):
            if marks[a]["shape"] == marks[b]["shape"]:
                assert np.linalg.norm(_lab(marks[a]["color"]) - _lab(marks[b]["color"])) > 30
    # The legend isolates a style on hover.
    page.locator("#legend .legend-item").nth(1).hover()
    _wait(page, "() => window.flatgroove.map.focusStyle === 1")
    page.locator("#legend .legend-item").nth(1).click()
    page.mouse.move(5, 5)
    assert page.evaluate("() => window.flatgroove.map.focusStyle") == 1
    page.locator("#legend .legend-item").nth(1).click()
    _wait(page, "() => window.flatgroove.map.focusStyle === null")
    assert page.problems == []  # type: ignore[attr-defined]


def test_jam_keyboard_temperature_and_recording_to_midi(page, server):
    from flatgroove.presets import builtin

    page.locator("#tab-jam").click()
    _wait(page, "() => window.flatgroove.jam.state && window.flatgroove.jam.state.bar >= 1", 20000)
    jam = "window.flatgroove.jam"
    page.locator("#jam-bar").click()  # focus on the page, not a control
    # 1 / 2 / 3 choose the mode; arrows move α by 0.05 (shift: 0.01).
    page.keyboard.press("2")
    _wait(page, f"() => [{jam}.state.mode, {jam}.state.pending_mode].includes('accompany')")
    page.locator("#jam-alpha").fill("0.5")
    _wait(page, f"() => {jam}.state.a === 0.5")
    page.locator("#jam-bar").click()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowLeft")
    _wait(page, f"() => {jam}.state.a === 0.59")
    # The sampling temperature reaches the engine; a sampled target says which it used.
    page.locator("#jam-temperature").fill("0.4")
    _wait(page, f"() => {jam}.state.temperature === 0.4")
    page.locator("#jam-sample").click()
    _wait(page, f"() => {jam}.state.log.some((l) => l.includes('temperature 0.40'))")
    # R records; after two full bars R again saves a MIDI file of what was played.
    page.keyboard.press("r")
    _wait(page, f"() => {jam}.rec && {jam}.rec.start !== null")
    _wait(page, f"() => {jam}.state.beat - {jam}.rec.start > 9 && "
                f"{jam}.rec.notes.some((n) => n[3] === 'm')", 30000)
    drummer_name = page.evaluate(f"() => {jam}.state.drummer_name")
    with page.expect_download() as dl:
        page.keyboard.press("r")
    assert dl.value.suggested_filename.startswith("flatgroove-jam-")
    rec = page.evaluate(f"() => {jam}.lastRecording")
    mf = mido.MidiFile(file=io.BytesIO(Path(dl.value.path()).read_bytes()))
    assert mf.type == 1 and mf.ticks_per_beat == 480
    tempos = [m.tempo for m in mf.tracks[0] if m.type == "set_tempo"]
    assert tempos and round(mido.tempo2bpm(tempos[0])) == 200
    names = [next(m.name for m in t if m.type == "track_name") for t in mf.tracks[1:]]
    assert names == ["drummer", "machine"]

    def ons(track):
        now, out = 0, []
        for m in track:
            now += m.time
            if m.type == "note_on" and m.velocity > 0:
                assert m.channel == 9
                out.append((now, m.note, m.velocity))
        return out

    d_ons, m_ons = ons(mf.tracks[1]), ons(mf.tracks[2])
    assert len(d_ons) == rec["drummer"] > 10 and len(m_ons) == rec["machine"] > 0
    assert rec["bars"] >= 2
    # The drummer's notes sit where the looped built-in groove puts them (2-bar loop from
    # beat 0), so the recording is on the session's bar grid.
    g = builtin(drummer_name)
    pitches = [36, 38, 42, 46, 45, 47, 50, 49, 51]
    want = [((t / 4.0) % 8.0, pitches[d], v) for t, d, v in g.notes()]
    start = (rec["startBar"] - 1) * 4
    for tick, pitch, vel in d_ons:
        beat = (start + tick / 480) % 8.0
        assert any(p == pitch and v == vel and min(abs(beat - b), 8 - abs(beat - b)) < 0.01
                   for b, p, v in want), (tick, pitch, vel)
    # Space listens.
    page.locator("#jam-bar").click()
    page.keyboard.press("Space")
    _wait(page, f"() => {jam}.listening")
    page.keyboard.press("Space")
    _wait(page, f"() => !{jam}.listening")
    page.locator("#tab-explore").click()
    assert page.problems == []  # type: ignore[attr-defined]
