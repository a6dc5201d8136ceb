"""The browser front end: a FastAPI server (JSON API, jam WebSocket) and a static page.

Imported lazily so that `flatgroove` subcommands other than `serve` do not load FastAPI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JamSession", "Studio", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from flatgroove.web.server import create_app

        return create_app
    if name == "Studio":
        from flatgroove.web.service import Studio

        return Studio
    if name == "JamSession":
        from flatgroove.web.jam import JamSession

        return JamSession
    raise AttributeError(name)
