"""The jam on an external MIDI clock, in a real browser (headless Chromium via Playwright):
until the DAW presses play, the page says the jam is waiting for MIDI clock, from which port,
and that the machine is silent; once Start and ticks arrive the notice turns into "following
the MIDI clock" at the clock's tempo and the bars count.

The server is tests/jam_clock_server.py: `flatgroove serve`'s app with a jam whose clock port
stays silent until the test creates a trigger file."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

import serving
from test_web_browser import ARGS, CHROMIUM, _checkpoint, _free_port, _screenshot, _wait, sync_api

pytestmark = pytest.mark.browser

HERE = Path(__file__).parent
BPM = 150


@pytest.fixture(scope="module")
def clock_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jam-clock")
    ckpt = _checkpoint(tmp / "tiny.pt")
    trigger = tmp / "press-play"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc, log, _ = serving.start([sys.executable, str(HERE / "jam_clock_server.py"), str(port),
                                  str(ckpt), str(trigger), str(BPM)], tmp / "serve.log",
                                 f"{url}/api/jam", what="jam clock server")
    yield {"url": url, "tmp": tmp, "trigger": trigger}
    serving.stop(proc, log)


def test_page_says_it_waits_for_midi_clock_then_follows_it(clock_server):
    jam = "window.flatgroove.jam"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(clock_server["url"] + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=30000)
            page.locator("#tab-jam").click()
            _wait(page, f"() => {jam}.state && {jam}.state.clock === 'external'", 20000)
            # No clock yet: the notice says so, names the port; no bar counts, tempo box off.
            notice = page.locator("#jam-clock")
            notice.wait_for(state="visible", timeout=10000)
            text = notice.inner_text()
            assert "waiting for MIDI clock" in text, text
            assert "fake-daw:clock" in text and "press play" in text and "silent" in text, text
            assert "waiting" in (notice.get_attribute("class") or "")
            time.sleep(1.0)  # still waiting a second later: nothing plays without the clock
            st = page.evaluate(f"() => {jam}.state")
            assert st["halt"].startswith("waiting for MIDI clock") and st["beat"] is None, st
            assert page.locator("#jam-bar").inner_text() == "–"
            assert page.locator("#jam-bpm-in").is_disabled()
            assert any("waiting for MIDI clock from fake-daw:clock" in ln for ln in st["log"])
            _screenshot(page, clock_server, "jam-waiting-for-clock")
            # The DAW presses play: Start, then ticks at 150 BPM.
            clock_server["trigger"].write_text("play")
            _wait(page, f"() => {jam}.state.halt === '' && {jam}.state.bar >= 1", 20000)
            _wait(page, "() => !document.getElementById('jam-clock').classList.contains('waiting')")
            text = notice.inner_text()
            assert "following the MIDI clock from fake-daw:clock" in text, text
            _wait(page, f"() => Math.abs({jam}.state.bpm - {BPM}) < 3", 20000)
            assert page.locator("#jam-bar").inner_text() != "–"
            _screenshot(page, clock_server, "jam-following-clock")
            assert not problems, problems
        finally:
            browser.close()
