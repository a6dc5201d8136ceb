"""The FastAPI app: JSON endpoints under /api/, the jam WebSocket at /ws/jam, and the page.

Every user mistake is a 4xx whose JSON body has `detail`, a sentence that says what is
wrong; request bodies are capped before they are read, so no request can hang the server
or fill its memory.

Sharing (DESIGN §8): a client is a peer address. One address may have MAX_PER_CLIENT
requests in flight; more are answered 429 with Retry-After before their body is read. The
admitted requests take turns on the model and on their Python work (`service.FairLock`):
the address (and connection) that asked least lately goes first, cheap jobs before big ones,
and big batches give way between chunks, so a client flooding the server mostly waits on
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from flatgroove.web import schemas as S
from flatgroove.web.jam import JamSession, parse_control
from flatgroove.web.service import CLIENT, ApiError, Studio

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 2 << 20  # bytes: the largest JSON body (128 grooves) is well under this
LOOPBACK = ("127.0.0.1", "localhost", "::1")  # the names a local server answers to
MAX_FRAME = 64 << 10  # bytes: the largest jam control message (a z of 1024 numbers) is ~20 kB
MAX_FRAMES_PER_S = 50  # control messages a socket may send per second (a burst of 2 s allowed)
MAX_SOCKETS = 16  # jam pages connected at once
MAX_PER_CLIENT = 6  # HTTP requests in flight from one address (a browser opens 6 per host)
REFUSE_DELAY_S = 0.5  # a client over MAX_PER_CLIENT hears 429 after this (slows a flood)


def finite_json(obj: Any) -> Any:
    """`obj` with every NaN or infinite float replaced by None: no NaN/inf ever leaves the
    server (bare NaN is not JSON, and a page's JSON.parse throws on it)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """Strict JSON: NaN/inf become null (and are logged, for they are a bug upstream)."""
    try:
        return json.dumps(obj, allow_nan=False, separators=(",", ":"))
    except ValueError:
        log.warning("non-finite number in a response; sent as null")
        return json.dumps(finite_json(obj), allow_nan=False, separators=(",", ":"))


def dumps_in_turns(obj: Any, give_way: Any, depth: int = 3) -> str:
    """dumps(obj), the same text, made in parts: `give_way()` (service.FairLock) between
    every 8 items of a long list within `depth` levels, so that rendering a 64-groove answer
    is not one long stretch of Python that everyone waits on."""
    if depth and isinstance(obj, dict):
        return "{" + ",".join(f"{dumps(str(k))}:{dumps_in_turns(v, give_way, depth - 1)}"
                              for k, v in obj.items()) + "}"
    if depth and isinstance(obj, (list, tuple)) and len(obj) > 8:
        parts = []
        for i, x in enumerate(obj):
            if i % 8 == 0:
                give_way()
            parts.append(dumps_in_turns(x, give_way, depth - 1))
        return "[" + ",".join(parts) + "]"
    return dumps(obj)


HEADER_TIMEOUT_S = 3.0  # a connection must finish its request headers within this
MAX_CONNECTIONS = 200  # open connections and tasks at once (uvicorn answers 503 beyond)
BODY_GRACE_S = 3.0  # a request body may take this long to start arriving ...
MIN_BODY_RATE = 16 << 10  # ... and must then come at this many bytes a second (else 408)
LINGER_S = 3.0  # after an answer given before the body was read: discard the rest this long
LINGER_BYTES = 64 << 20  # ... or this much, then close


class _LingeringTransport:
    """The connection's transport as uvicorn sees it: `close()` while the client is still
    sending a request body (an early 413, 429 or 408, or a client that asked for Connection:
    close) first shuts our side (the client reads the answer and an end of file), then reads
    and discards what still comes, for up to LINGER_S or LINGER_BYTES, and closes then.
    Closing at once would reset the connection, and the client would lose the answer."""

    def __init__(self, transport: Any, protocol: Any) -> None:
        self._t, self._p = transport, protocol
        self.lingering = False
        self._left = LINGER_BYTES

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)

    def is_closing(self) -> bool:
        return self.lingering or self._t.is_closing()

    def close(self) -> None:
        import h11

        if self.lingering or self._t.is_closing():
            return
        if self._p.conn.their_state is not h11.SEND_BODY or not self._t.can_write_eof():
            self._t.close()
            return
        self.lingering = True
        self._t.write_eof()
        self._t.resume_reading()
        self._p.loop.call_later(LINGER_S, self._t.close)

    def discard(self, data: bytes) -> None:
        self._left -= len(data)
        if self._left < 0:
            self._t.close()


def _guarded_h11():
    """uvicorn's h11 protocol with deadlines: a client that opens a connection and trickles
    (or never finishes) its request headers is closed after HEADER_TIMEOUT_S (slowloris); a
    request body that comes slower than MIN_BODY_RATE (after BODY_GRACE_S) is answered 408
    and closed; a connection closed while its body still comes lingers (_LingeringTransport)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _body_timer: asyncio.TimerHandle | None = None
        _body_cycle: Any = None
        _body_t0 = 0.0
        _body_bytes = 0

        def _arm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._too_slow)

        def _too_slow(self) -> None:
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # closed, or upgraded to a WebSocket
            if self.cycle is None or self.cycle.response_complete:
                self.transport.close()  # no request under way: headers unfinished, or idle

        def _watch_body(self) -> None:
            """A request's body has begun: check its rate every second until it is in."""
            c = self.cycle
            if c is None or c is self._body_cycle or not c.more_body or c.response_started:
                return
            self._body_cycle, self._body_t0, self._body_bytes = c, self.loop.time(), 0
            self._body_timer = self.loop.call_later(1.0, self._check_body)

        def _check_body(self) -> None:
            c, self._body_timer = self.cycle, None
            if (c is not self._body_cycle or not c.more_body or c.response_started
                    or self.transport.is_closing()):
                return
            late = self.loop.time() - self._body_t0 - BODY_GRACE_S
            if self._body_bytes >= MIN_BODY_RATE * late:
                self._body_timer = self.loop.call_later(1.0, self._check_body)
                return
            body = json.dumps({"detail": f"the request body came too slowly (the least is "
                               f"{MIN_BODY_RATE} bytes a second after {BODY_GRACE_S:g} s)"})
            try:
                out = self.conn.send(h11.Response(status_code=408, reason=b"Request Timeout",
                                                  headers=[(b"content-type", b"application/json"),
                                                           (b"content-length", str(len(body)).encode()),
                                                           (b"connection", b"close")]))
                out += self.conn.send(h11.Data(data=body.encode()))
                out += self.conn.send(h11.EndOfMessage())
            except h11.LocalProtocolError:
                out = b""
            c.response_started = c.response_complete = True  # the app's answer is not sent
            c.message_event.set()  # its wait for the body ends (http.disconnect)
            self.transport.write(out)
            self.transport.close()

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(_LingeringTransport(transport, self))
            self._arm()

        def data_received(self, data: bytes) -> None:
            t = self.transport
            if isinstance(t, _LingeringTransport) and t.lingering:
                t.discard(data)
                return
            self._body_bytes += len(data)
            super().data_received(data)
            self._watch_body()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc) -> None:
            for timer in (self._header_timer, self._body_timer):
                if timer is not None:
                    timer.cancel()
            super().connection_lost(exc)

    return GuardedH11Protocol


def uvicorn_options() -> dict[str, Any]:
    """How `flatgroove serve` runs uvicorn: bounded connections, headers, frames, keep-alive."""
    return {"http": _guarded_h11(), "limit_concurrency": MAX_CONNECTIONS,
            "timeout_keep_alive": 5, "ws_max_size": 1 << 20, "h11_max_incomplete_event_size": 16 << 10}


class StrictJSONResponse(JSONResponse):
    """The app's JSON responses: never NaN or Infinity."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()


def _explain(errors: list[dict[str, Any]]) -> str:
    """pydantic's error list as one readable line: 'steps: Input should be ...; a: ...'."""
    parts = []
    for e in errors[:6]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "form"))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = f" (and {len(errors) - 6} more)" if len(errors) > 6 else ""
    return "; ".join(parts) + more


def _plain(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # pydantic puts the raw exception into `ctx`; keep what JSON can carry.
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in errors]


def _host_name(netloc: str) -> str:
    """'Example.com:8000' -> 'example.com'; '[::1]:8000' -> '::1'."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1:netloc.find("]")] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


class OriginGuard:
    """ASGI middleware: only the page this server serves may drive it (DESIGN §8).

    The Host header must name this server (loopback names, the address it listens on, or a
    name given with --allow-host): a DNS-rebinding page reaches 127.0.0.1 under its own name
    and is refused. A request that carries an Origin (every browser POST from a page, every
    browser WebSocket) must come from the server's own origin, or one given with
    --allow-origin: a page elsewhere cannot post a form or open the jam socket. Clients that
    send no Origin (curl, scripts) are not browsers driven by a page, and pass."""

    def __init__(self, app: Any, hosts: list[str] | None, origins: list[str] | None) -> None:
        self.app = app
        self.any_host = hosts is not None and "*" in hosts
        self.hosts = {_host_name(h) for h in (hosts if hosts is not None else LOOPBACK)}
        self.origins = {o.rstrip("/").lower() for o in origins or []}

    def why_not(self, scope: dict) -> str | None:
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.any_host and _host_name(host) not in self.hosts:
            return (f"Host {host[:100]!r} is not this server's name; a local flatgroove server "
                    "answers to 127.0.0.1 and localhost (start it with --allow-host NAME to add one)")
        origin = headers.get(b"origin")
        if origin is None:
            return None
        o = origin.decode("latin-1").rstrip("/").lower()
        if o in self.origins or "*" in self.origins:
            return None
        scheme = "http" if scope["type"] == "http" else "ws"
        own = {f"{x}://{host.lower()}" for x in (scheme, scheme + "s", "http", "https")}
        if o in own:
            return None
        return (f"Origin {o[:100]!r} may not use this server: only its own page can "
                "(start it with --allow-origin ORIGIN to allow another)")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        why = self.why_not(scope)
        if why is None:
            await self.app(scope, receive, send)
            return
        log.warning("refused %s %s: %s", scope["type"], scope.get("path", ""), why)
        if scope["type"] == "websocket":
            msg = await receive()  # websocket.connect
            if msg["type"] == "websocket.connect":
                # Refused before the handshake: the browser sees HTTP 403.
                await send({"type": "websocket.close", "code": 1008, "reason": why[:120]})
            return
        await BodyLimit._refuse(send, 403, why)


class _NonFinite(Exception):
    pass


def _not_strict_json(data: bytes) -> str | None:
    """Why `data` is not strict JSON, if it has a NaN, Infinity or -Infinity literal (which
    Python's json reads, but JSON does not have); None otherwise (other faults are the app's
    to say). Only a body that has such a word is parsed here."""
    if b"NaN" not in data and b"Infinity" not in data:
        return None

    def refuse(word: str) -> Any:
        raise _NonFinite(word)

    try:
        json.loads(data, parse_constant=refuse)
    except _NonFinite as e:
        return (f"the request body is not valid JSON: {e} is not a JSON number "
                "(send finite numbers only)")
    except (ValueError, RecursionError):
        return None
    return None


class BodyLimit:
    """ASGI middleware: refuse a request body over `limit` bytes with 413, before reading it
    when Content-Length says so, and while reading it otherwise (chunked uploads). The body is
    read here, whole, and handed on: a client gone (or cut off as too slow) midway ends the
    request here, quietly. A JSON body with NaN or Infinity (not JSON, though Python reads
    them) is refused here with 422 and a detail that says so."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        cl = headers.get(b"content-length")
        if cl is not None:
            try:
                n = int(cl)
            except ValueError:
                await self._refuse(send, 400, "Content-Length is not a number")
                return
            if n > self.limit:
                await self._refuse(send, 413, self._too_big(n))
                return
        # Read the body here (bounded), then replay it to the app.
        chunks, total = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            total += len(body)
            if total > self.limit:
                await self._refuse(send, 413, self._too_big(total, at_least=True))
                return
            chunks.append(body)
            if not msg.get("more_body", False):
                break
        data = b"".join(chunks)
        if b"json" in headers.get(b"content-type", b"") and (why := _not_strict_json(data)):
            await self._refuse(send, 422, why)
            return
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_big(self, n: int, at_least: bool = False) -> str:
        return (f"request body too large ({'over ' if at_least else ''}{n} bytes); "
                f"the limit is {self.limit} bytes")

    @staticmethod
    async def _refuse(send: Any, status: int, detail: str,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *(headers or [])]})
        await send({"type": "http.response.body", "body": body})


class Admission:
    """ASGI middleware: a client (a peer address) may have `limit` API requests in flight;
    one more is answered 429 with Retry-After at once, before its body is read, so a flood
    costs the server a short answer instead of work. The request's (address, connection) is
    set in `service.CLIENT` for the turns its work takes (`service.FairLock`)."""

    def __init__(self, app: Any, limit: int = MAX_PER_CLIENT) -> None:
        self.app, self.limit = app, limit
        self.in_flight: dict[str, int] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/api/"):
            # The page's own files are cheap and all needed at once (a browser fetches up to 6
            # in parallel, more across tabs): a refused script would leave the page dead.
            await self.app(scope, receive, send)
            return
        peer = scope.get("client") or ("?", 0)
        addr = str(peer[0])
        n = self.in_flight.get(addr, 0)
        if n >= self.limit:
            # Answered a little later: a flood that ignores Retry-After is slowed, not fed.
            await asyncio.sleep(REFUSE_DELAY_S)
            await BodyLimit._refuse(
                send, 429, f"too many requests at once from {addr[:60]} (the limit is "
                f"{self.limit} in flight); retry after 1 s", [(b"retry-after", b"1")])
            return
        self.in_flight[addr] = n + 1
        CLIENT.set((addr, f"{addr} port {peer[1]}"))  # this request's task context only
        try:
            await self.app(scope, receive, send)
        finally:
            left = self.in_flight[addr] - 1
            if left:
                self.in_flight[addr] = left
            else:
                del self.in_flight[addr]


def create_app(studio: Studio, jam: JamSession | None = None, max_body: int = MAX_BODY,
               warm: bool = False, hosts: list[str] | None = None,
               origins: list[str] | None = None, max_per_client: int = MAX_PER_CLIENT) -> FastAPI:
    """The app for one model. `jam`: the shared jam session (a simulated one by default);
    `warm`: build the latent map on a background thread at once; `hosts`: the names the
    server answers to (default: the loopback names; "*": any); `origins`: other page origins
    allowed to drive it (default: only its own page)."""
    app = FastAPI(title="flatgroove", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  redoc_url=None, default_response_class=StrictJSONResponse)
    app.state.studio = studio
    app.state.jam = jam if jam is not None else JamSession(studio)
    app.state.sockets = 0
    if warm:
        studio.warm()

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> JSONResponse:
        headers = {"Retry-After": str(e.retry_after)} if e.retry_after else {}
        if e.allow:
            headers["Allow"] = ", ".join(e.allow)
        return StrictJSONResponse({"detail": e.message}, status_code=e.status, headers=headers)

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, e: RecursionError) -> JSONResponse:
        return StrictJSONResponse({"detail": "the request is nested too deeply"}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = list(e.errors())
        return StrictJSONResponse({"detail": _explain(errors), "errors": _plain(errors)},
                                  status_code=422)

    @app.exception_handler(ValidationError)
    async def _invalid2(request: Request, e: ValidationError) -> JSONResponse:
        errors = list(e.errors())
        return StrictJSONResponse({"detail": _explain(errors), "errors": _plain(errors)},
                                  status_code=422)

    @app.exception_handler(ValueError)
    async def _value_error(request: Request, e: ValueError) -> JSONResponse:
        # GrooveError, GenerateError, MidiError: the user's input, said in the message.
        return StrictJSONResponse({"detail": str(e)}, status_code=422)

    def work(cost: int, fn: Any, *args: Any, map_first: bool = True) -> Response:
        """A request's work in one turn (service.FairLock), `cost` its expected size in
        grooves: the model calls, the grooves as JSON and the response rendered (so that a
        big answer's Python work does not run beside, and slow, everyone else's). The latent
        map is made first, outside the turn (it takes its own turns while it is built)."""
        if map_first:
            studio.map_data()
        lock = studio.model.lock
        with lock.hold(cost):
            out = fn(*args)
            if isinstance(out, Response):
                return out
            return Response(dumps_in_turns(out, lock.give_way), media_type="application/json")

    # -- JSON API --------------------------------------------------------------------------
    @app.get("/api/info")
    def info() -> Response:
        out = studio.info()
        jam_s = app.state.jam
        out["jam"] = {"running": jam_s.running, "drummer": jam_s.drummer_name}
        return StrictJSONResponse(out)

    @app.get("/api/grooves")
    def grooves() -> Response:
        return work(len(studio.builtins), studio.builtin_json)

    @app.get("/api/grooves/{name}")
    def groove(name: str) -> Response:
        return work(2, lambda: studio.encoded(studio.builtin(name)))

    @app.get("/api/map")
    def latent_map() -> Response:
        return work(len(studio.builtins), studio.map_json)

    @app.post("/api/encode")
    def encode(req: S.EncodeRequest) -> Response:
        return work(2, studio.encode_request, req)

    @app.post("/api/encode/midi")
    async def encode_midi(file: Annotated[UploadFile, File()],
                          bar: Annotated[int, Form(ge=0, le=9999)] = 0) -> Response:
        data = await file.read(studio.upload_limit + 1)
        # Reading a file is Python work: a few grooves' worth, more for a big file.
        return await asyncio.to_thread(work, 4 + len(data) // 16384, studio.encode_midi, data,
                                       file.filename or "", bar)

    @app.post("/api/decode")
    def decode(req: S.DecodeRequest) -> Response:
        return work(1, studio.decode_request, req)

    @app.post("/api/interpolate")
    def interpolate(req: S.InterpolateRequest) -> Response:
        return work(req.steps, studio.interpolate_json, req)

    @app.post("/api/blend")
    def blend(req: S.BlendRequest) -> Response:
        return work(req.grid * req.grid, studio.blend, req)

    @app.post("/api/sample")
    def sample(req: S.SampleRequest) -> Response:
        return work(req.n, studio.sample, req)

    @app.post("/api/midi")
    def midi(req: S.MidiRequest) -> Response:
        def make() -> Response:
            return Response(studio.midi_bytes(req), media_type="audio/midi", headers={
                "Content-Disposition": f'attachment; filename="{req.filename}.mid"'})

        n = len(req.grooves) if req.grooves is not None else req.path.steps if req.path else 1
        # a path may name map points: the map is made before the turn (map_data inside the
        # turn would wait on a map build that waits for a turn)
        return work(n, make, map_first=req.path is not None)

    @app.get("/api/jam")
    def jam_state() -> dict[str, Any]:
        return app.state.jam.state()

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def unknown(rest: str, request: Request) -> None:
        # This route takes every method, so a known path asked with the wrong method lands here
        # too: that is a 405 with the methods it takes, not a 404.
        path = f"/api/{rest}"
        allow = sorted({m for r in app.routes if isinstance(r, APIRoute) and r.path_regex.match(path)
                        and r.endpoint is not unknown for m in (r.methods or ())})
        if allow:
            raise ApiError(405, f"{request.method} is not taken by {path}; use {' or '.join(allow)}",
                           allow=tuple(allow))
        raise ApiError(404, f"no API endpoint {path}")

    # -- the jam ------------------------------------------------------------------------------
    @app.websocket("/ws/jam")
    async def ws_jam(ws: WebSocket) -> None:
        await ws.accept()
        if app.state.sockets >= MAX_SOCKETS:
            await ws.close(1013, f"{MAX_SOCKETS} jam pages are connected already; try later")
            return
        app.state.sockets += 1
        session: JamSession = app.state.jam
        try:
            await asyncio.to_thread(session.connect)
        except BaseException:
            app.state.sockets -= 1
            raise
        last_seq, last_note = -1, session.last_note_id
        period = 0.5 / max(session.publish_hz, 1.0)
        send_lock = asyncio.Lock()  # the reader's replies and the state stream share the socket

        async def send(obj: dict[str, Any]) -> None:
            async with send_lock:
                await ws.send_text(dumps(obj))  # never a bare NaN

        async def answer(text: str) -> dict[str, Any]:
            """The reply to one text frame: ok, or an error that says why."""
            if len(text) > MAX_FRAME:
                return {"type": "error", "detail": f"message too large ({len(text)} characters); "
                                                   f"the limit is {MAX_FRAME}"}
            try:
                data = json.loads(text)
            except RecursionError:
                return {"type": "error", "detail": "not JSON (nested too deeply)"}
            except json.JSONDecodeError as e:
                return {"type": "error", "detail": f"not JSON ({e.msg})"}
            except ValueError as e:  # e.g. an integer of more digits than Python converts
                return {"type": "error", "detail": f"not JSON ({str(e)[:120]})"}
            try:
                msg = parse_control(data)
                await asyncio.to_thread(session.control, msg)
            except ValidationError as e:
                return {"type": "error", "detail": _explain(list(e.errors()))}
            except ApiError as e:
                return {"type": "error", "detail": e.message}
            except (ValueError, RecursionError) as e:
                return {"type": "error", "detail": str(e)[:300] or type(e).__name__}
            except Exception as e:
                # A bug must not drop the page's socket: logged, and said.
                log.exception("jam control failed")
                return {"type": "error", "detail": f"internal error ({type(e).__name__})"}
            return {"type": "ok", "control": msg.type}

        async def receive() -> None:
            tokens, t_last, told = 2.0 * MAX_FRAMES_PER_S, time.monotonic(), 0.0
            while True:
                m = await ws.receive()
                if m["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(m.get("code", 1000))
                now = time.monotonic()
                tokens = min(2.0 * MAX_FRAMES_PER_S, tokens + (now - t_last) * MAX_FRAMES_PER_S)
                t_last = now
                if tokens < 1.0:  # a flood: drop, and say so once a second
                    if now - told > 1.0:
                        told = now
                        await send({"type": "error", "detail": f"too many messages (the limit is "
                                    f"{MAX_FRAMES_PER_S} a second); some were dropped"})
                    continue
                tokens -= 1.0
                text = m.get("text")
                if text is None:
                    await send({"type": "error", "detail": "binary frames are not read; send "
                                "control messages as JSON text"})
                    continue
                await send(await answer(text))

        reader = asyncio.create_task(receive())
        try:
            while not reader.done():
                st = session.state()
                if st.get("seq", 0) != last_seq:
                    last_seq = st.get("seq", 0)
                    notes, last_note = session.notes_since(last_note)
                    await send({**st, "notes": notes})
                await asyncio.wait({reader}, timeout=period)
            reader.result()  # a disconnect ends up here
        except WebSocketDisconnect:
            pass
        except Exception as e:  # noqa: BLE001 - a socket gone mid-send: this client is done
            log.debug("jam websocket closed: %s", e)
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            session.disconnect()
            app.state.sockets -= 1

    # -- the page ---------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_middleware(Admission, limit=max_per_client)  # before any body is read
    app.add_middleware(OriginGuard, hosts=hosts, origins=origins)  # outermost: checked first
    return app
