"""Generation with a trained model: encode, reconstruct, sample, interpolate along the
straight line (the flat model's natural path) or slerp, and 2-D blends of four corners.

The API lives in `flatgroove.generate.api`; the `flatgroove encode | reconstruct | sample |
interpolate | blend` commands in `flatgroove.generate.cli`."""

from __future__ import annotations

from flatgroove.generate.api import (
    GenerateError,
    blend,
    encode,
    interpolate,
    line,
    reconstruct,
    resolve_groove,
    resolve_model,
    sample,
    slerp,
    write_outputs,
)

__all__ = [
    "GenerateError",
    "blend",
    "encode",
    "interpolate",
    "line",
    "reconstruct",
    "resolve_groove",
    "resolve_model",
    "sample",
    "slerp",
    "write_outputs",
]
