"""Hostile traffic against the web server (issue 10, DESIGN §8): Host and Origin checks, every
malformed request a 4xx with a readable `detail`, every bad WebSocket frame an error message on
a socket that stays open, no NaN/inf in any response, and a live loopback server that closes
slow clients and survives a burst of hostile requests."""

from __future__ import annotations

import json
import socket
import threading
import time
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_web_api import make_checkpoint

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from starlette.websockets import WebSocketDisconnect

CORPUS = Path(__file__).parent / "hostile_midi"
LOCAL = "http://127.0.0.1:8000"
FUZZ = settings(max_examples=40, deadline=3000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def strict(text: str):
    """JSON as a browser's JSON.parse reads it: NaN and Infinity are errors."""
    def refuse(c):
        raise AssertionError(f"bare {c} in a response")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from flatgroove.model.checkpoint import load_model
    from flatgroove.web.service import Studio

    ck = make_checkpoint(tmp_path_factory.mktemp("hw") / "tiny8.pt", 8)
    return Studio(load_model(ck), str(ck), dataset=None)


@pytest.fixture(scope="module")
def app(studio):
    from flatgroove.web.jam import JamSession
    from flatgroove.web.server import create_app

    jam = JamSession(studio, bpm=240.0, idle_stop_s=None)
    # "testserver": the Host of TestClient's WebSockets; HTTP goes to 127.0.0.1 below.
    yield create_app(studio, jam=jam, hosts=["127.0.0.1", "localhost", "::1", "testserver"])
    jam.stop()


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as c:
        yield c


def check_4xx(r, status: int | None = None) -> str:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    if status is not None:
        assert r.status_code == status, r.text[:300]
    detail = strict(r.text)["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail
    return detail


# -- Host and Origin --------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example",
                                  "", "localhost.:8000"])
def test_foreign_host_is_refused(client, host):
    r = client.get("/api/info", headers={"host": host})
    assert "not this server's name" in check_4xx(r, 403)


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST"])
def test_own_host_is_served(client, host):
    assert client.get("/api/info", headers={"host": host}).status_code == 200


def test_cross_origin_form_post_is_refused(client):
    """A page elsewhere posting a form upload to the local server (no CORS preflight)."""
    data = (CORPUS / "one_bar.mid").read_bytes()
    r = client.post("/api/encode/midi", files={"file": ("x.mid", data, "audio/midi")},
                    headers={"origin": "http://evil.example"})
    assert "evil.example" in check_4xx(r, 403)
    r = client.post("/api/sample", json={"n": 1}, headers={"origin": "null"})
    check_4xx(r, 403)


def test_own_origin_is_served(client):
    r = client.post("/api/sample", json={"n": 1}, headers={"origin": LOCAL})
    assert r.status_code == 200


def test_allowed_origin_option(studio):
    from flatgroove.web.jam import JamSession
    from flatgroove.web.server import create_app

    app = create_app(studio, jam=JamSession(studio), origins=["http://studio.example:3000"])
    with TestClient(app, base_url=LOCAL) as c:
        ok = c.post("/api/sample", json={"n": 1}, headers={"origin": "http://studio.example:3000"})
        assert ok.status_code == 200
        no = c.post("/api/sample", json={"n": 1}, headers={"origin": "http://studio.example:4000"})
        check_4xx(no, 403)


def test_websocket_from_a_foreign_origin_is_refused(client):
    with pytest.raises(WebSocketDisconnect) as e, \
            client.websocket_connect("/ws/jam", headers={"origin": "http://evil.example"}):
        pass
    assert e.value.code == 1008


# -- malformed requests: 4xx, never 5xx ---------------------------------------------------------------
JSON = {"content-type": "application/json"}
HOSTILE = [
    ("POST", "/api/decode", {"content": "[" * 100_000 + "]" * 100_000, "headers": JSON}),
    ("POST", "/api/decode", {"content": '{"a":' * 50_000 + "1" + "}" * 50_000, "headers": JSON}),
    ("POST", "/api/decode", {"content": '{"z": [' + "9" * 5000 + "]}", "headers": JSON}),
    ("POST", "/api/decode", {"content": '{"point": [1e308, -1e308]}', "headers": JSON}),
    ("POST", "/api/decode", {"content": '{"point": [NaN, Infinity]}', "headers": JSON}),
    ("POST", "/api/decode", {"content": '{"z": [1e30, 0, 0, 0, 0, 0, 0, 0]}', "headers": JSON}),
    ("POST", "/api/decode", {"content": b'\xff\xfe{"z":1}', "headers": JSON}),
    ("POST", "/api/decode", {"content": '{"z": [1,2,3,4,5,6,7,8], "tempo": 1e999}', "headers": JSON}),
    ("POST", "/api/decode", {"content": "{}", "headers": {**JSON, "content-length": "-5"}}),
    ("POST", "/api/decode", {"content": "{}", "headers": {**JSON, "content-length": "9" * 30}}),
    ("POST", "/api/interpolate", {"json": {"a": {"name": "x" * 5000}, "b": {"name": "rock"}}}),
    ("POST", "/api/interpolate", {"json": {"a": {"name": "../../etc/passwd"}, "b": {"name": "rock"}}}),
    ("POST", "/api/interpolate", {"json": {"a": {"point": [1e300, 0]}, "b": {"name": "rock"}}}),
    ("POST", "/api/blend", {"json": {"corners": [{"z": [1e200] * 8}] * 4}}),
    ("POST", "/api/sample", {"json": {"n": 10**400}}),
    ("POST", "/api/sample", {"json": {"temperature": -1}}),
    ("POST", "/api/midi", {"json": {"grooves": [{"hits": [[2] * 9] * 32,
                                                  "velocities": [[0.5] * 9] * 32,
                                                  "offsets": [[0] * 9] * 32}]}}),
    ("POST", "/api/encode/midi", {"files": {"nofile": ("x.mid", b"MThd", "audio/midi")}}),
    ("POST", "/api/encode/midi", {"content": b"garbage",
                                  "headers": {"content-type": "multipart/form-data"}}),
    ("GET", "/api/grooves/%00", {}),
    ("GET", "/api/grooves/" + "a" * 10_000, {}),
    ("GET", "/static/%2e%2e/%2e%2e/etc/passwd", {}),
    ("DELETE", "/api/decode", {}),
] + [
    ("POST", "/api/encode/midi", {"files": {"file": (name, (CORPUS / name).read_bytes(), "audio/midi")}})
    for name in sorted(p.name for p in CORPUS.glob("*.mid"))
]


@pytest.mark.parametrize("method, path, kw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_request_is_a_4xx_with_detail(client, method, path, kw):
    check_4xx(client.request(method, path, **kw))


def test_upload_names_the_file_and_the_reason(client):
    data = (CORPUS / "million_bars.mid").read_bytes()
    r = client.post("/api/encode/midi", files={"file": ("far.mid", data, "audio/midi")})
    assert check_4xx(r, 422) == "far.mid: a drum note at bar 1000002; flatgroove reads files " \
                                "of at most 4096 bars"


def test_upload_of_far_file_reads_only_the_asked_bars(client, tmp_path):
    """A file with a note at bar 4000 costs what its first bars cost, and gives them."""
    from hostile_midi.make_corpus import hit, hits, midi_file, track

    ev = hits(32, 420) + hit(480 * 4 * 4000)
    r = client.post("/api/encode/midi",
                    files={"file": ("f.mid", midi_file([track(ev)]), "audio/midi")})
    assert r.status_code == 200, r.text
    assert strict(r.text)["bars"] > 4000


def test_no_nan_leaves_the_server():
    from flatgroove.web.server import StrictJSONResponse, dumps, finite_json

    obj = {"a": [1.0, float("nan"), {"b": float("inf")}], "c": -float("inf"), "d": "NaN"}
    assert finite_json(obj) == {"a": [1.0, None, {"b": None}], "c": None, "d": "NaN"}
    assert strict(dumps(obj)) == finite_json(obj)
    assert strict(StrictJSONResponse(obj).body.decode()) == finite_json(obj)


@FUZZ
@given(body=st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(
        st.sampled_from(["z", "point", "name", "tempo", "steps", "a", "b", "n", "grid",
                         "corners", "threshold", "method", "seed", "groove", "hits"]),
        inner, max_size=5),
    max_leaves=30),
    path=st.sampled_from(["/api/decode", "/api/interpolate", "/api/blend", "/api/sample",
                          "/api/encode", "/api/midi"]))
def test_fuzzed_json_bodies_never_5xx(client, body, path):
    r = client.post(path, json=body)
    assert r.status_code < 500, (path, body, r.text[:300])
    out = strict(r.text) if r.headers["content-type"].startswith("application/json") else None
    if r.status_code >= 400:
        assert isinstance(out["detail"], str) and out["detail"]


# -- WebSocket frames ----------------------------------------------------------------------------------
def until(ws, pred, n_max: int = 400):
    for _ in range(n_max):
        text = ws.receive_text()
        m = strict(text)  # every frame is strict JSON: no bare NaN
        if pred(m):
            return m
    raise AssertionError("no such message")


BAD_FRAMES = [
    ({"type": "target", "point": [1e308, -1e308]}, "within"),
    ({"type": "target", "z": [1e30] * 8}, "within"),
    ({"type": "target", "z": [float("nan")] * 8}, "finite"),  # bare NaN, as Python writes it
    ({"type": "a", "value": float("inf")}, "less than or equal"),
    ("[" * 30_000 + "]" * 30_000, "not JSON"),
    ('{"type": "a", "value": ' + "9" * 5000 + "}", "not JSON"),
    ("x" * 70_000, "too large"),
    (b"\x00\x01binary", "binary"),
    ({"type": "bpm", "value": -120}, "greater than"),
    ({"type": "drummer", "name": "../../x"}, "x"),
]


@pytest.mark.parametrize("frame, words", BAD_FRAMES, ids=range(len(BAD_FRAMES)))
def test_bad_frame_is_answered_and_the_socket_stays_open(client, frame, words):
    with client.websocket_connect("/ws/jam") as ws:
        if isinstance(frame, bytes):
            ws.send_bytes(frame)
        elif isinstance(frame, str):
            ws.send_text(frame)
        else:
            ws.send_text(json.dumps(frame))  # allow_nan: as a hostile client sends it
        m = until(ws, lambda m: m["type"] == "error")
        assert words in m["detail"]
        ws.send_json({"type": "a", "value": 0.3})
        assert until(ws, lambda m: m["type"] in ("ok", "error"))["type"] == "ok"
        # The state stream goes on, and stays valid JSON.
        until(ws, lambda m: m["type"] == "state" and m["a"] == 0.3)


def test_message_flood_is_dropped_with_one_error(client, monkeypatch):
    # A low limit, so that a loaded machine's slow answers cannot keep the arrival rate under
    # it (the server reads the limit when a socket opens).
    from flatgroove.web import server

    monkeypatch.setattr(server, "MAX_FRAMES_PER_S", 5)
    with client.websocket_connect("/ws/jam") as ws:
        for _ in range(30 * server.MAX_FRAMES_PER_S):
            ws.send_text('{"type": "a", "value": 0.5}')
        m = until(ws, lambda m: m["type"] == "error")
        assert "too many messages" in m["detail"]


# -- a live server on loopback -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(app):
    import uvicorn

    from flatgroove.web.server import uvicorn_options

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical",
                                           **uvicorn_options()))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield port
    server.should_exit = True
    t.join(10)


def _raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_live_slow_client_is_closed(live):
    """Unfinished headers: the server closes the connection (it used to hold it for good)."""
    from flatgroove.web.server import HEADER_TIMEOUT_S

    with socket.create_connection(("127.0.0.1", live), timeout=HEADER_TIMEOUT_S + 20) as s:
        s.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert s.recv(1024) == b""  # closed by the server, not by our timeout


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1") else 0


def _detail(answer: bytes) -> str:
    return strict(answer.split(b"\r\n\r\n", 1)[1].decode())["detail"]


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_live_over_size_body_is_answered_413_without_a_reset(live, framing):
    """The client sends all of a too-large body before it reads, and asks the server to close:
    the server answers 413 early, shuts its side and discards the rest, so the client's send
    completes and it reads the answer (closing at once would reset the connection)."""
    from flatgroove.web.server import MAX_BODY

    n = 4 * MAX_BODY
    if framing == "length":
        head, body = f"Content-Length: {n}\r\n".encode(), b"x" * n
    else:
        part = b"x" * 65536
        head = b"Transfer-Encoding: chunked\r\n"
        body = b"10000\r\n" + part + b"\r\n"
        body = body * (n // len(part)) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", live), timeout=20) as s:
        s.sendall(b"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                  b"Content-Type: application/json\r\n" + head + b"\r\n" + body)
        out = b""
        while chunk := s.recv(65536):  # no ConnectionResetError
            out += chunk
    assert _status(out) == 413 and "too large" in _detail(out)


def test_live_trickling_body_is_answered_408_and_closed(live):
    from flatgroove.web.server import BODY_GRACE_S

    with socket.create_connection(("127.0.0.1", live), timeout=BODY_GRACE_S + 20) as s:
        s.sendall(b"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
                  b"Content-Type: application/json\r\n\r\n{")
        stop = threading.Event()

        def trickle():
            while not stop.wait(0.2):
                try:
                    s.send(b" ")
                except OSError:
                    return

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        out = b""
        try:
            while chunk := s.recv(65536):  # closed by the server, not by our timeout
                out += chunk
        finally:
            stop.set()
            t.join(5)
    assert _status(out) == 408 and "too slowly" in _detail(out)


@pytest.mark.parametrize("body", ['{"z": [NaN, 0, 0, 0, 0, 0, 0, 0]}',
                                  '{"z": [0, 0, 0, 0, 0, 0, 0, 0], "tempo": NaN}',
                                  '{"z": [0, 0, 0, 0, 0, 0, 0, 0], "threshold": Infinity}',
                                  '{"point": [-Infinity, 0]}'])
def test_nan_and_infinity_literals_are_refused(client, body):
    detail = check_4xx(client.post("/api/decode", content=body, headers=JSON), 422)
    assert "not a JSON number" in detail and ("NaN" in detail or "Infinity" in detail)


def test_nan_inside_a_string_is_fine(client):
    r = client.post("/api/decode", content='{"z": [0, 0, 0, 0, 0, 0, 0, 0], "name": "NaN"}',
                    headers=JSON)
    assert r.status_code == 200 and strict(r.text)["groove"]["name"] == "NaN"


def test_live_hostile_burst_no_5xx_and_socket_stays_open(live):
    import httpx
    from websockets.sync.client import connect

    url = f"http://127.0.0.1:{live}"
    raw = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 40_000 + b"\r\n\r\n",
        b"POST /api/decode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\n{\"z\":",
        b"GET /api/info HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    ]
    for data in raw:
        head = _raw(live, data)
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1") else 0
        assert status == 0 or 400 <= status < 500, head[:200]
    with httpx.Client(base_url=url, timeout=30) as c, \
            connect(url.replace("http", "ws") + "/ws/jam", origin=url) as ws:
        for method, path, kw in HOSTILE:
            if "content-length" in kw.get("headers", {}):
                continue  # httpx will not send a wrong length; the raw requests above do
            r = c.request(method, path, **kw)
            assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:200])
            strict(r.text)
        for frame, _ in BAD_FRAMES:
            ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))
        errors = 0
        deadline = time.monotonic() + 30
        while errors < len(BAD_FRAMES) and time.monotonic() < deadline:
            m = strict(ws.recv(timeout=10))
            errors += m["type"] == "error"
        assert errors == len(BAD_FRAMES)
        ws.send(json.dumps({"type": "a", "value": 0.6}))
        while (m := strict(ws.recv(timeout=10)))["type"] != "ok":
            pass
        assert c.post("/api/decode", json={"z": [0.1] * 8}).status_code == 200


# -- sharing: admission and turns (the flood bench measures the times) ---------------------------------
def test_client_over_its_limit_is_answered_429_before_its_body_is_read(monkeypatch):
    import asyncio

    from flatgroove.web import server
    from flatgroove.web.service import CLIENT

    monkeypatch.setattr(server, "REFUSE_DELAY_S", 0.0)
    seen, release = [], asyncio.Event()

    async def app(scope, receive, send):
        seen.append(CLIENT.get())
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def call(adm, addr, port, path="/api/decode"):
        sent, read = [], []

        async def receive():
            read.append(1)
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(m):
            sent.append(m)
        await adm({"type": "http", "client": (addr, port), "path": path, "headers": []}, receive, send)
        return sent, read

    async def main():
        adm = server.Admission(app, limit=2)
        busy = [asyncio.create_task(call(adm, "10.0.0.1", p)) for p in (1, 2)]
        other = asyncio.create_task(call(adm, "10.0.0.2", 3))  # another client is let in
        await asyncio.sleep(0.05)
        sent, read = await call(adm, "10.0.0.1", 4)  # a third from the first: refused
        page = asyncio.create_task(call(adm, "10.0.0.1", 5, "/static/app.js"))  # the page's files: always
        await asyncio.sleep(0.05)
        assert len(seen) == 4
        release.set()
        await asyncio.gather(*busy, other, page)
        assert adm.in_flight == {}
        return sent, read

    sent, read = asyncio.run(main())
    assert sent[0]["status"] == 429 and (b"retry-after", b"1") in sent[0]["headers"]
    assert "too many requests at once" in strict(sent[1]["body"].decode())["detail"]
    assert not read  # the body was not read
    counted = sorted(c for c in seen if c is not None)  # the page's file is not counted
    assert counted == [("10.0.0.1", "10.0.0.1 port 1"), ("10.0.0.1", "10.0.0.1 port 2"),
                       ("10.0.0.2", "10.0.0.2 port 3")] and len(seen) == 4


def _turn_order(lock, jobs):
    """Hold the turn, queue `jobs` [(name, client, cost, use)], release: the order served."""
    import contextvars

    from flatgroove.web.service import CLIENT

    order = []
    for name, client, _, use in jobs:
        if use:
            lock._use[client[0]] = (use, time.monotonic())

    def job(name, client, cost):
        CLIENT.set(client)
        with lock.hold(cost):
            order.append(name)

    with lock.hold(1):
        ts = []
        for name, client, cost, _ in jobs:
            t = threading.Thread(target=contextvars.Context().run, args=(job, name, client, cost))
            t.start()
            ts.append(t)
            while lock.waiting() < len(ts):
                time.sleep(0.005)
    for t in ts:
        t.join(10)
    return order


def test_turns_go_to_the_quiet_client_and_the_cheap_job_first():
    from flatgroove.web.service import FairLock

    flood, user = ("10.0.0.9", "10.0.0.9 port 1"), ("10.0.0.1", "10.0.0.1 port 2")
    order = _turn_order(FairLock(), [
        ("flood blend", flood, 64, 5.0), ("flood decode", flood, 1, 0.0),
        ("user blend", user, 64, 0.0), ("user decode", user, 1, 0.0), ("jam", None, 4, 0.0)])
    assert order == ["jam", "user decode", "user blend", "flood decode", "flood blend"]


def test_a_big_job_gives_way_between_chunks():
    from flatgroove.web.service import CLIENT, FairLock

    lock, order = FairLock(), []
    lock._use["flood"] = (5.0, time.monotonic())
    arrived = threading.Event()

    def user():
        CLIENT.set(("user", "user port 2"))
        arrived.set()
        with lock.hold(1):
            order.append("user")

    CLIENT.set(("flood", "flood port 1"))
    try:
        with lock.hold(64):
            order.append("chunk 1")
            t = threading.Thread(target=user)
            t.start()
            arrived.wait()
            while not lock.waiting():
                time.sleep(0.005)
            with lock.hold(8):  # the next chunk: the user goes first
                order.append("chunk 2")
        t.join(10)
    finally:
        CLIENT.set(None)
    assert order == ["chunk 1", "user", "chunk 2"]


def test_a_full_queue_answers_503_with_retry_after(client, monkeypatch):
    from flatgroove.web.service import FairLock

    monkeypatch.setattr(FairLock, "MAX_WAITING", 0)
    r = client.post("/api/decode", json={"z": [0.1] * 8})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "busy" in strict(r.text)["detail"]


def test_answers_rendered_in_turns_are_the_same_json():
    from flatgroove.web.server import dumps, dumps_in_turns

    calls = []
    obj = {"rows": [[{"hits": [[0, 1]] * 32, "v": 0.5}] * 9] * 9, "z": list(range(40)),
           "name": "x", "n": [float("inf")] * 10}
    assert dumps_in_turns(obj, lambda: calls.append(1)) == dumps(obj)
    assert len(calls) >= 9


def test_serve_on_all_addresses_answers_to_the_allowed_name_only(tmp_path, monkeypatch, capsys):
    """`serve --host 0.0.0.0 --allow-host NAME`: the Host check lets NAME (and the loopback
    names) in, and refuses others; the server says it can be reached by anyone."""
    import uvicorn

    from flatgroove.cli import main

    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append((app, kw)))
    ck = make_checkpoint(tmp_path / "tiny8.pt", 8)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0", "--model", str(ck), "--no-data",
                 "--allow-host", "studio.local"]) == 0
    assert "anyone who can reach this machine" in capsys.readouterr().err
    app, kw = apps[0]
    assert kw["host"] == "0.0.0.0"
    with TestClient(app, base_url="http://studio.local:8000") as c:
        for host in ("studio.local:8000", "STUDIO.LOCAL", "127.0.0.1:8000", "localhost"):
            assert c.get("/api/info", headers={"host": host}).status_code == 200, host
        for host in ("evil.example", "studio.local.evil.example", "0.0.0.0:8000", "other.local"):
            assert "not this server's name" in check_4xx(
                c.get("/api/info", headers={"host": host}), 403), host
        ok = c.post("/api/sample", json={"n": 1}, headers={"host": "studio.local:8000",
                                                           "origin": "http://studio.local:8000"})
        assert ok.status_code == 200
