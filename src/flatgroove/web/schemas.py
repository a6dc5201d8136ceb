"""Request bodies of the web API, validated with pydantic so that a bad value is a 422 with a
message that names the field, never a 500 deep inside the model."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flatgroove.groove import N_DRUMS, N_STEPS, Groove

MAX_LATENT = 1024  # longest z accepted (models are far smaller; bounds the request)
Z_LIMIT = 100.0  # |z_i| beyond this is not a latent point any model was trained near
POINT_LIMIT = 100.0  # map coordinates likewise (the map spans a few units)
MAX_STEPS = 65  # interpolation points
MAX_GRID = 8  # blend grid side
MAX_SAMPLES = 32
MAX_MIDI_GROOVES = 128  # 256 bars

Row = Annotated[list[float], Field(min_length=N_DRUMS, max_length=N_DRUMS)]
Matrix = Annotated[list[Row], Field(min_length=N_STEPS, max_length=N_STEPS)]
Name = Annotated[str, Field(max_length=200)]
Point = tuple[float, float]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GrooveIn(Strict):
    """A groove as JSON: 32 rows (steps) of 9 numbers (drums) per array."""

    name: Name = ""
    tempo: float = Field(120.0, ge=20.0, le=400.0)
    hits: Matrix
    velocities: Matrix
    offsets: Matrix

    @model_validator(mode="after")
    def _valid(self) -> GrooveIn:
        self.to_groove()  # GrooveError (a ValueError) becomes a validation error
        return self

    def to_groove(self) -> Groove:
        return Groove(self.hits, self.velocities, self.offsets, self.tempo, self.name)


def _finite(v: list[float] | tuple[float, ...] | None, what: str) -> None:
    """Finite, and within the bounds of the latent space: a map point or z beyond them is no
    groove, and 1e308 would overflow into inf and NaN downstream."""
    if v is None:
        return
    if not all(math.isfinite(x) for x in v):
        raise ValueError(f"{what} must be finite numbers")
    limit = POINT_LIMIT if what == "point" else Z_LIMIT
    if max(abs(x) for x in v) > limit:
        raise ValueError(f"{what} values must lie within ±{limit:g}")


class GrooveRef(Strict):
    """One groove or latent point, given exactly one way: a built-in name, a groove, a latent
    vector z, or a point on the 2-D map (mapped back into the latent space)."""

    name: Name | None = None
    groove: GrooveIn | None = None
    z: Annotated[list[float], Field(min_length=1, max_length=MAX_LATENT)] | None = None
    point: Point | None = None
    tempo: float | None = Field(None, ge=20.0, le=400.0)

    @model_validator(mode="after")
    def _one(self) -> GrooveRef:
        given = [k for k in ("name", "groove", "z", "point") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of name, groove, z, point" + (f" (got {', '.join(given)})" if given else "")
            )
        _finite(self.z, "z")
        _finite(self.point, "point")
        return self


class EncodeRequest(Strict):
    name: Name | None = None
    groove: GrooveIn | None = None

    @model_validator(mode="after")
    def _one(self) -> EncodeRequest:
        if (self.name is None) == (self.groove is None):
            raise ValueError("give exactly one of name (a built-in groove) or groove")
        return self


class DecodeRequest(Strict):
    z: Annotated[list[float], Field(min_length=1, max_length=MAX_LATENT)] | None = None
    point: Point | None = None
    tempo: float = Field(120.0, ge=20.0, le=400.0)
    # None: the model's own decoding rule (the one evaluation, the jam and the CLI use)
    threshold: float | None = Field(None, ge=0.05, le=0.95)
    name: Name = ""

    @model_validator(mode="after")
    def _one(self) -> DecodeRequest:
        if (self.z is None) == (self.point is None):
            raise ValueError("give exactly one of z (a latent vector) or point (a map position)")
        _finite(self.z, "z")
        _finite(self.point, "point")
        return self


class InterpolateRequest(Strict):
    a: GrooveRef
    b: GrooveRef
    steps: int = Field(9, ge=2, le=MAX_STEPS)
    method: Literal["line", "slerp"] = "line"


class BlendRequest(Strict):
    corners: Annotated[list[GrooveRef], Field(min_length=4, max_length=4)]
    grid: int = Field(3, ge=2, le=MAX_GRID)
    tempo: float | None = Field(None, ge=20.0, le=400.0)


class SampleRequest(Strict):
    n: int = Field(4, ge=1, le=MAX_SAMPLES)
    temperature: float = Field(1.0, gt=0.0, le=3.0)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    tempo: float = Field(120.0, ge=20.0, le=400.0)


class MidiRequest(Strict):
    """MIDI export: explicit grooves (played one after another), or a path to compute."""

    grooves: Annotated[list[GrooveIn], Field(min_length=1, max_length=MAX_MIDI_GROOVES)] | None = None
    path: InterpolateRequest | None = None
    tempo: float | None = Field(None, ge=20.0, le=400.0)
    filename: Annotated[str, Field(max_length=4096)] = "flatgroove"  # cut to 80 below

    @model_validator(mode="after")
    def _one(self) -> MidiRequest:
        if (self.grooves is None) == (self.path is None):
            raise ValueError("give exactly one of grooves or path")
        return self

    @field_validator("filename")
    @classmethod
    def _safe(cls, v: str) -> str:
        # Only a plain ASCII name goes into the Content-Disposition header (latin-1), cut to
        # 80 characters: the page makes names from uploads' names, which can be long or not ASCII.
        keep = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in v)
        return (keep.removesuffix(".mid").strip("._")[:80].strip("._") or "flatgroove")


# -- jam control messages (WebSocket) ------------------------------------------------------------
class AlphaMsg(Strict):
    type: Literal["a"]
    value: float = Field(ge=0.0, le=1.0)


class TargetMsg(Strict):
    type: Literal["target"]
    name: Name | None = None
    point: Point | None = None
    z: Annotated[list[float], Field(min_length=1, max_length=MAX_LATENT)] | None = None

    @model_validator(mode="after")
    def _one(self) -> TargetMsg:
        given = [k for k in ("name", "point", "z") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a target needs exactly one of name, point, z")
        _finite(self.point, "point")
        _finite(self.z, "z")
        return self


class ModeMsg(Strict):
    type: Literal["mode"]
    value: Literal["answer", "accompany", "morph"]


class TemperatureMsg(Strict):
    """How far from the prior's centre `sample` reaches (0: the centre, 1: as trained)."""

    type: Literal["temperature"]
    value: float = Field(ge=0.0, le=3.0)


class BpmMsg(Strict):
    type: Literal["bpm"]
    value: float = Field(ge=40.0, le=240.0)


class DrummerMsg(Strict):
    type: Literal["drummer"]
    name: Name


class ActionMsg(Strict):
    type: Literal["capture", "sample", "hold", "start", "stop"]


JamMessage = Annotated[
    AlphaMsg | TargetMsg | ModeMsg | BpmMsg | TemperatureMsg | DrummerMsg | ActionMsg,
    Field(discriminator="type"),
]
