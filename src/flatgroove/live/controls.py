"""Control: the TOML mapping of knobs, pedals and pads; the target bank; simulation scripts.

`ControlMap.load(path)` reads a controls file over the shipped defaults
(`default_controls.toml`, every key documented there). `ControlMap.actions(msg)` turns a MIDI
message into engine actions. `Script.load(path)` reads a simulation script: settings and
`[[change]]` tables, each with a `bar` and one control, validated as one `ScriptFile`.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import mido
import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    TypeAdapter,
    ValidationError,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from flatgroove.errors import UserError
from flatgroove.groove import Groove

MODES = ("answer", "accompany", "morph")


class ControlError(UserError, ValueError):
    """A controls file or script is wrong; the message names the file, key and reason."""


def _user_error(msg: str) -> ControlError:
    return ControlError(msg)


def default_controls_text() -> str:
    return resources.files("flatgroove.live").joinpath("default_controls.toml").read_text()


def _read_toml(p: Path, what: str) -> dict:
    if not p.is_file():
        raise _user_error(f"{p}: no such {what}")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise _user_error(f"{p}: not valid TOML ({e})") from None


def _merge(base: dict, over: dict) -> dict:
    """`over` laid over `base`, table by table (ControlsFile says what may be there)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(base.get(k), dict) and isinstance(v, dict) else v
    return out


# -- the schema: one set of validated types for controls files, scripts and the command line --
# Each type carries its range and unit in its description, which the one-line messages quote:
# '<file>: session.a must be a number in 0..1, got nan'.
# Integers are strict (a TOML bool or float is not one); numbers are an int or a float, finite.
MAX_SESSION_BARS = 4096  # a session (simulated or live) is at most this long


def _num(lo: float, hi: float, unit: str = "") -> Any:
    return Annotated[float, Field(ge=lo, le=hi, allow_inf_nan=False,
                                  description=f"a number in {lo:g}..{hi:g}{unit}")]


def _integer(lo: int, hi: int, what: str = "") -> Any:
    return Annotated[int, Strict(), Field(ge=lo, le=hi,
                                          description=what or f"an integer in {lo}..{hi}")]


A = _num(0.0, 1.0)  # the blend: 0 = all drummer, 1 = all target
BPM = _num(20.0, 400.0, " (BPM)")  # beats per minute
TEMPERATURE = _num(0.0, 10.0)  # spread of sampled targets (z ~ N(0, I) * t)
MORPH_BARS = _integer(1, 1024, "an integer in 1..1024 (bars)")  # bars a morph takes
SEED = _integer(0, 2**32 - 1)
BARS = _integer(1, MAX_SESSION_BARS,  # a session's length; a change's bar (1-based)
                f"an integer in 1..{MAX_SESSION_BARS} (bars)")
DECODE_LATENCY = _num(0.0, 60.0, " (seconds)")  # virtual seconds per decode (simulation)
BEAT = Annotated[float, Field(ge=1.0, lt=5.0, allow_inf_nan=False,  # 1-based, in a 4/4 bar
                              description="a number from 1 to below 5 (the beat in the bar)")]
MODE = Annotated[Literal["answer", "accompany", "morph"],
                 Field(description="one of 'answer', 'accompany', 'morph'")]
DRUM_MAP = Annotated[Literal["gm", "td11"], Field(description="'gm' or 'td11'")]
TARGET = Annotated[Annotated[str, Field(min_length=1, max_length=400)] | _integer(0, 127),
                   Field(description="a bank slot 0..127, or a bank name, built-in name or "
                                     "MIDI file (1..400 characters)")]
MIDI_NUMBER = _integer(0, 127)  # a CC, note, value or program number
CHANNEL = _integer(1, 16, "a channel 1..16")


def _true(v: bool) -> bool:
    if v is not True:
        raise ValueError("must be true")
    return v


ONLY_TRUE = Annotated[bool, Strict(), AfterValidator(_true),  # `capture = true`: an action
                      Field(description="true (it happens at that bar)")]


def _description(kind: Any) -> str | None:
    """The description an Annotated type above carries (the outermost one)."""
    for meta in reversed(getattr(kind, "__metadata__", ())):
        if getattr(meta, "description", None):
            return meta.description
    return None


def check(value: Any, kind: Any, key: str, where: str) -> Any:
    """`value` validated as `kind` (one of the types above); ControlError naming `key` and
    what it must be."""
    try:
        return TypeAdapter(kind, config=ConfigDict(strict=True)).validate_python(value)
    except ValidationError as e:
        what = _description(kind)
        if what is None:
            msg = e.errors()[0]["msg"]
            raise _user_error(f"{where}: {key} {msg[0].lower() + msg[1:]}, got {value!r}") from None
        raise _user_error(f"{where}: {key} must be {what}, got {value!r}") from None


# -- the controls file: one model for the whole table --------------------------------------------
NOTE_OR_OFF = _integer(-1, 127, "an integer in 0..127 or -1 (off)")  # a note or CC number
CHANNEL_OR_ANY = _integer(0, 16, "a channel 1..16, or 0 for any")
NUMBERS = Annotated[list[_integer(0, 127)], Field(description="a list of numbers 0..127")]
ON_OFF = Annotated[bool, Field(description="true or false")]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SessionTable(_Table):
    mode: MODE
    a: A
    morph_bars: MORPH_BARS
    temperature: TEMPERATURE
    seed: SEED
    drum_map: DRUM_MAP
    drum_channel: CHANNEL_OR_ANY
    out_channel: _integer(1, 16, "a channel 1..16")
    note_length: _num(0.01, 4.0, " (beats)")
    # at most a bar: planned earlier, the bar before the one planned is not yet played at all
    # and the model would hear it as a break (the recorder fills only a bar's unplayed tail)
    decode_lead: _num(0.5, 4.0, " (beats)")
    clock_timeout: _num(0.5, 16.0, " (beats)")


class ChannelsTable(_Table):
    control: CHANNEL_OR_ANY


class BlendTable(_Table):
    cc: NUMBERS
    invert: ON_OFF


class TargetsTable(_Table):
    bank: Annotated[list[Annotated[str, Field(min_length=1, max_length=400)]],
                    Field(max_length=128, description="a list of built-in names or MIDI paths")]
    notes: NUMBERS
    program_change: ON_OFF
    next_note: NOTE_OR_OFF
    prev_note: NOTE_OR_OFF
    capture_note: NOTE_OR_OFF
    sample_note: NOTE_OR_OFF
    temperature_cc: NOTE_OR_OFF


class ModesTable(_Table):
    answer_note: NOTE_OR_OFF
    accompany_note: NOTE_OR_OFF
    morph_note: NOTE_OR_OFF
    cc: NOTE_OR_OFF


class TransportTable(_Table):
    hold_note: NOTE_OR_OFF


class ControlsFile(_Table):
    """A controls file laid over the defaults (default_controls.toml): every table and key,
    with its type and range; the message of a bad one names the table, the key and what it
    must be."""

    session: SessionTable
    channels: ChannelsTable
    blend: BlendTable
    targets: TargetsTable
    modes: ModesTable
    transport: TransportTable


def _controls_error(e: ValidationError, d: dict, where: str) -> ControlError:
    """The first of pydantic's errors as one line: '<file>: session.a must be a number in
    0..1, got nan'."""
    err = e.errors()[0]
    path = [str(x) for x in err["loc"] if not isinstance(x, int)]
    model: Any = ControlsFile
    for name in path[:-1]:
        model = model.model_fields[name].annotation if name in model.model_fields else None
        if model is None:
            break
    key = ".".join(path)
    if err["type"] == "extra_forbidden":
        known = sorted(model.model_fields) if model is not None else []
        return _user_error(f"{where}: unknown key {key!r} (known: {', '.join(known)})")
    field_ = model.model_fields.get(path[-1]) if model is not None and path else None
    if field_ is not None and isinstance(field_.annotation, type) \
            and issubclass(field_.annotation, BaseModel):
        return _user_error(f"{where}: [{key}] must be a table")
    value: Any = d
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    if field_ is None or not field_.description:
        msg = err["msg"]
        return _user_error(f"{where}: {key} {msg[0].lower() + msg[1:]}, got {value!r}")
    return _user_error(f"{where}: {key} must be {field_.description}, got {value!r}")


@dataclass
class ControlMap:
    """What every control does. Channels are zero-based here (None = any channel)."""

    mode: str = "accompany"
    a: float = 0.5
    morph_bars: int = 8
    temperature: float = 1.0
    seed: int = 0
    drum_map: str = "gm"
    drum_channel: int | None = 9
    out_channel: int = 9
    note_length: float = 0.125
    decode_lead: float = 2.0
    clock_timeout: float = 2.0
    control_channel: int | None = 0
    blend_ccs: list[int] = field(default_factory=lambda: [1, 4])
    blend_invert: bool = False
    bank: list[str] = field(default_factory=lambda: ["rock", "funk", "disco", "hiphop"])
    target_notes: list[int] = field(default_factory=lambda: [36, 37, 38, 39])
    program_change: bool = True
    next_note: int = 40
    prev_note: int = 41
    capture_note: int = 42
    sample_note: int = 43
    temperature_cc: int = 2
    mode_notes: dict[int, str] = field(default_factory=lambda: {44: "answer", 45: "accompany", 46: "morph"})
    mode_cc: int = -1
    hold_note: int = 47
    source: str = "defaults"

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> ControlMap:
        """The defaults, overridden by the TOML file at `path` (if given)."""
        base = tomllib.loads(default_controls_text())
        if path is None:
            return cls.from_dict(base, "default controls")
        p = Path(path)
        return cls.from_dict(_merge(base, _read_toml(p, "controls file")), str(p))

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "controls") -> ControlMap:
        """A whole controls table (the defaults with a file laid over), validated as one
        ControlsFile; ControlError naming the file, the key and what it must be."""
        try:
            f = ControlsFile.model_validate(d)
        except ValidationError as e:
            raise _controls_error(e, d, where) from None
        s, tg, md, tr = f.session, f.targets, f.modes, f.transport
        modes = {n: m for m, n in (("answer", md.answer_note), ("accompany", md.accompany_note),
                                   ("morph", md.morph_note)) if n >= 0}
        return cls(
            mode=s.mode,
            a=s.a,
            morph_bars=s.morph_bars,
            temperature=s.temperature,
            seed=s.seed,
            drum_map=s.drum_map,
            drum_channel=None if s.drum_channel == 0 else s.drum_channel - 1,
            out_channel=s.out_channel - 1,
            note_length=s.note_length,
            decode_lead=s.decode_lead,
            clock_timeout=s.clock_timeout,
            control_channel=None if f.channels.control == 0 else f.channels.control - 1,
            blend_ccs=list(f.blend.cc),
            blend_invert=f.blend.invert,
            bank=list(tg.bank),
            target_notes=list(tg.notes),
            program_change=tg.program_change,
            next_note=tg.next_note,
            prev_note=tg.prev_note,
            capture_note=tg.capture_note,
            sample_note=tg.sample_note,
            temperature_cc=tg.temperature_cc,
            mode_notes=modes,
            mode_cc=md.cc,
            hold_note=tr.hold_note,
            source=where,
        )

    # -- messages -> actions ------------------------------------------------------------------
    def is_control_channel(self, channel: int) -> bool:
        return self.control_channel is None or channel == self.control_channel

    def actions(self, msg: mido.Message) -> list[tuple[str, Any]]:
        """The engine actions a message asks for ([] if it is not a control).

        Actions: ("a", x), ("temperature", x), ("target", slot), ("step", +-1), ("capture",),
        ("sample",), ("mode", name), ("hold",)."""
        if not hasattr(msg, "channel") or not self.is_control_channel(msg.channel):
            return []
        if msg.type == "control_change":
            out: list[tuple[str, Any]] = []
            if msg.control in self.blend_ccs:
                x = msg.value / 127.0
                out.append(("a", 1.0 - x if self.blend_invert else x))
            if msg.control == self.temperature_cc:
                out.append(("temperature", 2.0 * msg.value / 127.0))
            if msg.control == self.mode_cc:
                out.append(("mode", MODES[min(msg.value * 3 // 128, 2)]))
            return out
        if msg.type == "program_change" and self.program_change:
            return [("target", msg.program)]
        if msg.type == "note_on" and msg.velocity > 0:
            n = msg.note
            if n in self.target_notes:
                return [("target", self.target_notes.index(n))]
            if n in self.mode_notes:
                return [("mode", self.mode_notes[n])]
            for note, act in ((self.next_note, ("step", 1)), (self.prev_note, ("step", -1)),
                              (self.capture_note, ("capture",)), (self.sample_note, ("sample",)),
                              (self.hold_note, ("hold",))):
                if n == note:
                    return [act]
        return []

    def claims(self, msg: mido.Message) -> bool:
        """True for notes that are controls (note-offs of control pads included), so that
        they are not also recorded as drums when control and drums share a channel."""
        if msg.type not in ("note_on", "note_off") or not self.is_control_channel(msg.channel):
            return False
        ctl = {*self.target_notes, *self.mode_notes, self.next_note, self.prev_note,
               self.capture_note, self.sample_note, self.hold_note}
        return msg.note in ctl


# -- the target bank -------------------------------------------------------------------------------
_TARGET_SERIALS = itertools.count()


@dataclass
class Target:
    """A target: a groove (encoded by the worker, cached) or a latent point (sampled)."""

    name: str
    groove: Groove | None = None
    z: np.ndarray | None = None
    # Each target its own slot in the worker's encoding cache: two files with one stem
    # ("rock.mid" from two folders, or beside the built-in "rock") must not share a latent.
    serial: int = field(default_factory=lambda: next(_TARGET_SERIALS), repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"target:{self.serial}:{self.name}"


def load_target(spec: str, drum_map: str = "gm") -> Target:
    """A bank entry: a built-in groove name or a MIDI file path (its first 2 bars)."""
    if spec.lower().endswith((".mid", ".midi")) or os.sep in spec or Path(spec).exists():
        from flatgroove.midi import read_groove

        g = read_groove(spec, drum_map=drum_map)
        return Target(Path(spec).stem, groove=g)
    try:
        from flatgroove.presets import builtin
    except ImportError:
        raise _user_error(f"target {spec!r}: built-in grooves are not available") from None
    try:
        g = builtin(spec)
    except ValueError as e:
        raise _user_error(f"target {spec!r}: {e}") from None
    return Target(spec, groove=g)


def load_bank(specs: list[str], drum_map: str = "gm") -> tuple[list[Target], list[str]]:
    """Load what can be loaded; returns (targets, problems) so a jam still starts when one
    file is missing."""
    out, problems = [], []
    for s in specs:
        try:
            out.append(load_target(s, drum_map))
        except Exception as e:  # noqa: BLE001 - report and go on without that slot
            problems.append(str(e))
    return out, problems


# -- simulation scripts: one model for the whole file ---------------------------------------------
class _Script(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ScriptSettings(_Script):
    """The top-level settings of a simulation script (and the same arguments of `simulate`)."""

    bars: BARS | None = None
    bpm: BPM | None = None
    mode: MODE | None = None
    a: A | None = None
    target: TARGET | None = None
    seed: SEED | None = None
    temperature: TEMPERATURE | None = None
    morph_bars: MORPH_BARS | None = None
    decode_latency: DECODE_LATENCY | None = None
    drum_map: DRUM_MAP | None = None


class _ChangeTable(_Script):
    """A [[change]]: at `bar` (1-based; without `beat`, just before the engine plans that
    bar; with `beat`, exactly there), one control with its companions (the subclasses)."""

    bar: BARS
    beat: BEAT | None = None


class CcChange(_ChangeTable):
    cc: MIDI_NUMBER
    value: MIDI_NUMBER
    channel: CHANNEL | None = None


class NoteChange(_ChangeTable):
    note: MIDI_NUMBER
    velocity: _integer(1, 127) = 100
    channel: CHANNEL | None = None


class ProgramChange(_ChangeTable):
    program: MIDI_NUMBER
    channel: CHANNEL | None = None


class ModeChange(_ChangeTable):
    mode: MODE


class TargetChange(_ChangeTable):
    target: TARGET


class AChange(_ChangeTable):
    a: A


class BpmChange(_ChangeTable):
    bpm: BPM


class CaptureChange(_ChangeTable):
    capture: ONLY_TRUE


class SampleChange(_ChangeTable):
    sample: ONLY_TRUE


class TemperatureChange(_ChangeTable):
    temperature: TEMPERATURE


class MorphBarsChange(_ChangeTable):
    morph_bars: MORPH_BARS


class HoldChange(_ChangeTable):
    hold: ONLY_TRUE


# The control key of a [[change]] -> its table.
CHANGES: dict[str, type[_ChangeTable]] = {
    "cc": CcChange, "note": NoteChange, "program": ProgramChange, "mode": ModeChange,
    "target": TargetChange, "a": AChange, "bpm": BpmChange, "capture": CaptureChange,
    "sample": SampleChange, "temperature": TemperatureChange, "morph_bars": MorphBarsChange,
    "hold": HoldChange,
}


def _controls_in(c: Any) -> list[str]:
    return [k for k in CHANGES if k in c] if isinstance(c, dict) else []


def _change_kind(c: Any) -> str | None:
    """Which table a [[change]] is: its one control key (None: not a table, or not one)."""
    kinds = _controls_in(c)
    return kinds[0] if len(kinds) == 1 else None


ChangeTable = Annotated[
    Union[tuple(Annotated[m, Tag(k)] for k, m in CHANGES.items())],  # noqa: UP007
    Discriminator(_change_kind, custom_error_type="change_control",
                  custom_error_message="needs exactly one control"),
]


class ScriptFile(ScriptSettings):
    """A whole simulation script: the settings and the [[change]] tables, each with its
    types, ranges and units; the message of a bad one names the change, the key and what it
    must be."""

    change: list[ChangeTable] = []


def _script_error(e: ValidationError, d: Any, where: str) -> ControlError:
    """pydantic's errors as one line naming the key: '<file>: change 3: value must be an
    integer in 0..127, got 300'. Unknown settings first (all of them), as the file is read."""
    errs = e.errors()
    if not isinstance(d, dict):
        return _user_error(f"{where}: a script must be a table of settings and [[change]] tables")
    unknown = sorted(str(err["loc"][0]) for err in errs
                     if err["type"] == "extra_forbidden" and len(err["loc"]) == 1)
    if unknown:
        return _user_error(f"{where}: unknown setting(s) {unknown}; known: "
                           f"{sorted(ScriptSettings.model_fields)} and [[change]] tables")
    err = errs[0]
    loc = err["loc"]
    if loc[0] != "change":  # a setting
        key = str(loc[0])
        return _user_error(f"{where}: {key} must be {_what(ScriptSettings, key)}, "
                           f"got {d.get(key)!r}")
    if len(loc) == 1:
        return _user_error(f"{where}: 'change' must be a list of [[change]] tables")
    i = int(loc[1])
    c = d["change"][i]
    w = f"{where}: change {i + 1}"
    if len(loc) == 2:  # the table itself
        if not isinstance(c, dict):
            return _user_error(f"{w}: must be a table")
        if "bar" not in c:
            return _user_error(f"{w}: needs bar = N (an integer >= 1, the first bar is 1)")
        found = _controls_in(c)
        # a misspelt control ('tempo' for bpm) is the likely cause of none: name it
        stray = sorted(k for k in c if k not in CHANGES and k not in ("bar", "beat", "channel")
                       and not any(k in m.model_fields for m in CHANGES.values()))
        why = f"; unknown key(s) {stray}" if stray and not found else ""
        return _user_error(f"{w}: needs exactly one control of {sorted(CHANGES)}, "
                           f"got {found or 'none'}{why}")
    kind, key = str(loc[2]), str(loc[3])
    model = CHANGES[kind]
    if err["type"] == "extra_forbidden":
        extra = sorted(str(x["loc"][3]) for x in errs if x["type"] == "extra_forbidden"
                       and x["loc"][:3] == loc[:3])
        return _user_error(f"{w}: {extra} do not go with {kind!r} (a {kind} change takes "
                           f"{', '.join(model.model_fields)})")
    what = _what(model, key)
    if err["type"] == "missing":
        if key == "bar":
            return _user_error(f"{w}: needs bar = N (an integer >= 1, the first bar is 1)")
        return _user_error(f"{w}: {kind} needs a {key} ({what})")
    return _user_error(f"{w}: {key} must be {what}, got {c[key]!r}")


def _what(model: type[BaseModel], key: str) -> str:
    """What `model`'s field `key` must be: its type's description (for an optional one, the
    description of the type inside)."""
    f = model.model_fields[key]
    what = f.description or _description(f.annotation)
    for arg in get_args(f.annotation):  # X | None
        what = what or _description(arg)
    return what or "valid"


def settings(d: dict[str, Any], where: str) -> dict[str, Any]:
    """Script settings (or `simulate` arguments) validated: only the keys given."""
    try:
        return ScriptSettings.model_validate(d).model_dump(exclude_unset=True)
    except ValidationError as e:
        raise _script_error(e, d, where) from None


@dataclass
class Change:
    """One scripted control change. `bar` is 1-based. Without `beat` the change is made just
    before the engine plans that bar, so bar `bar` already follows it; with `beat` (1-based,
    may be fractional) it happens exactly there, e.g. a tempo change in the middle of a bar."""

    bar: int
    kind: str
    values: dict[str, Any]
    beat: float | None = None

    def describe(self) -> str:
        if self.kind == "cc":
            return f"CC {self.values['cc']} = {self.values['value']}"
        if self.kind == "note":
            return f"note {self.values['note']}"
        if self.kind == "program":
            return f"program {self.values['program']}"
        return f"{self.kind} = {self.values[self.kind]}"


@dataclass
class Script:
    changes: list[Change] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    source: str = "script"

    @classmethod
    def load(cls, path: str | os.PathLike) -> Script:
        p = Path(path)
        return cls.from_dict(_read_toml(p, "script file"), str(p))

    @classmethod
    def from_text(cls, text: str, where: str = "script") -> Script:
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise _user_error(f"{where}: not valid TOML ({e})") from None
        return cls.from_dict(d, where)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "script") -> Script:
        """A whole script validated as one ScriptFile; ControlError naming the file, the
        change, the key and what it must be."""
        try:
            f = ScriptFile.model_validate(d)
        except ValidationError as e:
            raise _script_error(e, d, where) from None
        changes = []
        kinds = {m: k for k, m in CHANGES.items()}
        for c in f.change:
            kind = kinds[type(c)]
            values = {k: v for k, v in c.model_dump(exclude={"bar", "beat"}).items()
                      if v is not None}
            changes.append(Change(c.bar, kind, values, c.beat))
        changes.sort(key=lambda c: (c.bar, c.beat if c.beat is not None else -1.0))
        return cls(changes, f.model_dump(exclude_unset=True, exclude={"change"}), where)

    @property
    def last_bar(self) -> int:
        return max((c.bar for c in self.changes), default=0)


__all__ = [
    "MAX_SESSION_BARS",
    "MODES",
    "Change",
    "ControlError",
    "ControlMap",
    "ControlsFile",
    "Script",
    "ScriptFile",
    "ScriptSettings",
    "Target",
    "default_controls_text",
    "load_bank",
    "load_target",
]
