"""The live jam (DESIGN §6): clock, listening, controls, engine, ports, simulation, view.

`simulate(model, drummer, script, bars)` runs a whole session on a virtual clock and returns
a `SessionResult`; `LiveSession` runs one on real MIDI ports. Imports are lazy so that the
`flatgroove` command starts quickly.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "simulate": "flatgroove.live.simulate",
    "SessionResult": "flatgroove.live.simulate",
    "VirtualRunner": "flatgroove.live.simulate",
    "Engine": "flatgroove.live.engine",
    "BarLog": "flatgroove.live.engine",
    "ControlMap": "flatgroove.live.controls",
    "Script": "flatgroove.live.controls",
    "LiveSession": "flatgroove.live.session",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'flatgroove.live' has no attribute {name!r}")


__all__ = [  # resolved lazily by __getattr__
    "BarLog",
    "ControlMap",
    "Engine",
    "LiveSession",
    "Script",
    "SessionResult",
    "VirtualRunner",
    "simulate",
]
