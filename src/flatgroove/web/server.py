"""The FastAPI app: JSON endpoints under /api/, the jam WebSocket at /ws/jam, and the page.

Every user mistake is a 4xx whose JSON body has `detail`, a sentence that says what is
wrong; request bodies are capped before they are read, so no request can hang the server
or fill its memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from flatgroove.web import schemas as S
from flatgroove.web.jam import JamSession, parse_control
from flatgroove.web.service import ApiError, Studio

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 2 << 20  # bytes: the largest JSON body (128 grooves) is well under this


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


class BodyLimit:
    """ASGI middleware: refuse a request body over `limit` bytes with 413, before reading it
    when Content-Length says so, and while reading it otherwise (chunked uploads)."""

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
            await self.app(scope, receive, send)
            return
        # No length given: read the body here (bounded), then replay it to the app.
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
    async def _refuse(send: Any, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app(studio: Studio, jam: JamSession | None = None, max_body: int = MAX_BODY,
               warm: bool = False) -> FastAPI:
    """The app for one model. `jam`: the shared jam session (a simulated one by default);
    `warm`: build the latent map on a background thread at once."""
    app = FastAPI(title="flatgroove", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  redoc_url=None)
    app.state.studio = studio
    app.state.jam = jam if jam is not None else JamSession(studio)
    if warm:
        studio.warm()

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> JSONResponse:
        return JSONResponse({"detail": e.message}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = list(e.errors())
        return JSONResponse({"detail": _explain(errors), "errors": _plain(errors)},
                            status_code=422)

    @app.exception_handler(ValidationError)
    async def _invalid2(request: Request, e: ValidationError) -> JSONResponse:
        errors = list(e.errors())
        return JSONResponse({"detail": _explain(errors), "errors": _plain(errors)},
                            status_code=422)

    @app.exception_handler(ValueError)
    async def _value_error(request: Request, e: ValueError) -> JSONResponse:
        # GrooveError, GenerateError, MidiError: the user's input, said in the message.
        return JSONResponse({"detail": str(e)}, status_code=422)

    # -- JSON API --------------------------------------------------------------------------
    @app.get("/api/info")
    def info() -> dict[str, Any]:
        out = studio.info()
        jam_s = app.state.jam
        out["jam"] = {"running": jam_s.running, "drummer": jam_s.drummer_name}
        return out

    @app.get("/api/grooves")
    def grooves() -> list[dict[str, Any]]:
        return studio.builtin_json()

    @app.get("/api/grooves/{name}")
    def groove(name: str) -> dict[str, Any]:
        return studio.encoded(studio.builtin(name))

    @app.get("/api/map")
    def latent_map() -> dict[str, Any]:
        return studio.map_json()

    @app.post("/api/encode")
    def encode(req: S.EncodeRequest) -> dict[str, Any]:
        return studio.encode_request(req)

    @app.post("/api/encode/midi")
    async def encode_midi(file: Annotated[UploadFile, File()],
                          bar: Annotated[int, Form(ge=0, le=9999)] = 0) -> dict[str, Any]:
        data = await file.read(studio.upload_limit + 1)
        return await asyncio.to_thread(studio.encode_midi, data, file.filename or "", bar)

    @app.post("/api/decode")
    def decode(req: S.DecodeRequest) -> dict[str, Any]:
        return studio.decode_request(req)

    @app.post("/api/interpolate")
    def interpolate(req: S.InterpolateRequest) -> dict[str, Any]:
        return studio.interpolate_json(req)

    @app.post("/api/blend")
    def blend(req: S.BlendRequest) -> dict[str, Any]:
        return studio.blend(req)

    @app.post("/api/sample")
    def sample(req: S.SampleRequest) -> dict[str, Any]:
        return studio.sample(req)

    @app.post("/api/midi")
    def midi(req: S.MidiRequest) -> Response:
        data = studio.midi_bytes(req)
        return Response(data, media_type="audio/midi", headers={
            "Content-Disposition": f'attachment; filename="{req.filename}.mid"'})

    @app.get("/api/jam")
    def jam_state() -> dict[str, Any]:
        return app.state.jam.state()

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def unknown(rest: str) -> None:
        raise ApiError(404, f"no API endpoint /api/{rest}")

    # -- the jam ------------------------------------------------------------------------------
    @app.websocket("/ws/jam")
    async def ws_jam(ws: WebSocket) -> None:
        await ws.accept()
        session: JamSession = app.state.jam
        await asyncio.to_thread(session.connect)
        last_seq, last_note = -1, session.last_note_id
        period = 0.5 / max(session.publish_hz, 1.0)
        send_lock = asyncio.Lock()  # the reader's replies and the state stream share the socket

        async def send(obj: dict[str, Any]) -> None:
            async with send_lock:
                await ws.send_json(obj)

        async def receive() -> None:
            while True:
                text = await ws.receive_text()
                try:
                    msg = parse_control(json.loads(text))
                    await asyncio.to_thread(session.control, msg)
                except json.JSONDecodeError as e:
                    await send({"type": "error", "detail": f"not JSON ({e.msg})"})
                except ValidationError as e:
                    await send({"type": "error", "detail": _explain(list(e.errors()))})
                except ApiError as e:
                    await send({"type": "error", "detail": e.message})
                else:
                    await send({"type": "ok", "control": msg.type})

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

    # -- the page ---------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=max_body)
    return app
