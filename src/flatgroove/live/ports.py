"""MIDI ports: real ones on ALSA or JACK, and in-memory ones for the simulation.

Real ports live on one MIDI client named 'flatgroove' ('flatgroove:drums in', 'flatgroove:clock
in', 'flatgroove:machine out'; see oneclient.py: alsa-midi on ALSA, JACK-Client on JACK). Where
that cannot be had (the library missing, FLATGROOVE_MIDI_ONE_CLIENT=0), python-rtmidi opens
them, one client per port named for its role ('flatgroove-drums:drums in'), and `flatgroove
ports` says so. The engine sees only `drain(n)` / `pending()` on inputs and `send(msg)` on
outputs, so it cannot tell them apart.

Input messages are stamped with the monotonic time the moment they arrive (in rtmidi's
thread), because the engine may look at them a little later.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import mido

from flatgroove.errors import UserError

log = logging.getLogger("flatgroove.live")

APIS = {"alsa": "LINUX_ALSA", "jack": "UNIX_JACK"}
SYSTEMS = {"LINUX_ALSA": "ALSA", "UNIX_JACK": "JACK"}
CLIENT_NAME = "flatgroove"
# flatgroove's own ports, named by what they carry, all on the client 'flatgroove'. On the
# rtmidi fallback (one MIDI client per port) each gets a client named after its role too
# ('flatgroove-drums:drums in'), never the numbered 'flatgroove-01' a second client of one
# name would get.
ROLES = {"drums": "drums in", "clock": "clock in", "controls": "controls in",
         "machine": "machine out"}


def role_client(role: str) -> str:
    return f"{CLIENT_NAME}-{role}"


def is_own(port: str) -> bool:
    """A port this program (or another flatgroove) opened."""
    return port.startswith(CLIENT_NAME)


@contextlib.contextmanager
def quiet_native():
    """Keep what the C MIDI libraries print ('Cannot connect to server socket', 'ALSA lib
    seq_hw.c ...', JACK's shared-memory notes) off the terminal while we probe the MIDI
    system and open ports: flatgroove's own messages say what is wrong. Set
    FLATGROOVE_MIDI_DEBUG=1 to see them."""
    if os.environ.get("FLATGROOVE_MIDI_DEBUG"):
        yield
        return
    try:
        for s in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                s.flush()
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no usable fds 1 and 2 (a daemon): nothing to keep clean
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


class PortError(UserError):
    """A port cannot be found or opened; the message lists what is there."""


# -- in memory ---------------------------------------------------------------------------------
class _QueuedInput:
    """Timestamped messages waiting for the engine's thread, which drains them in bounded
    batches so a flood cannot starve the scheduler."""

    def __init__(self) -> None:
        self._q: deque[tuple[float, Any]] = deque()

    def drain(self, max_n: int) -> list[tuple[float, Any]]:
        out = []
        while self._q and len(out) < max_n:
            out.append(self._q.popleft())
        return out

    def pending(self) -> bool:
        return bool(self._q)


class MemoryInput(_QueuedInput):
    """An input fed by the simulation: `feed(t, msg)` (a mido Message or raw bytes)."""

    name = "memory in"

    def feed(self, t: float, item: Any) -> None:
        self._q.append((t, item))

    def close(self) -> None:
        self._q.clear()


@dataclass
class MemoryOutput:
    """An output that keeps what it was sent, stamped with the time source's time."""

    now: Callable[[], float]
    sent: list[tuple[float, mido.Message]] = field(default_factory=list)
    name: str = "memory out"
    fail_after: int | None = None  # for tests: raise like a vanished port after n messages

    def send(self, msg: mido.Message) -> None:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise OSError("port disappeared")
        self.sent.append((self.now(), msg))

    def close(self) -> None:
        pass


# -- real ports ------------------------------------------------------------------------------------
def _available_apis() -> list[str]:
    import rtmidi

    names = {rtmidi.API_LINUX_ALSA: "alsa", rtmidi.API_UNIX_JACK: "jack"}
    return [names[a] for a in rtmidi.get_compiled_api() if a in names]


class MidiSystem:
    """ALSA or JACK, as `backend()` found it: port listings (through rtmidi, in its name
    formats), and the one shared 'flatgroove' client the ports open on (`one()`), or None
    with the reason (`why_not`) when ports fall back to rtmidi's client per port."""

    def __init__(self, rt: mido.Backend) -> None:
        self.rt = rt
        self.api = rt.api  # 'LINUX_ALSA' / 'UNIX_JACK', as mido names them
        self.system = SYSTEMS.get(rt.api or "", rt.api or "?")
        self.why_not: str | None = None

    def get_input_names(self) -> list[str]:
        return self.rt.get_input_names()

    def get_output_names(self) -> list[str]:
        return self.rt.get_output_names()

    def one(self):
        """The shared client (opened now if need be), or None: then `why_not` says why."""
        from flatgroove.live import oneclient

        if self.why_not is not None:
            return None
        try:
            return oneclient.open_client(self.system)
        except oneclient.OneClientUnavailable as e:
            self.why_not = str(e)
            log.info("MIDI: a client per port (python-rtmidi): %s", e)
            return None

    def layout(self) -> str:
        """How flatgroove's ports are laid out on this system, for `flatgroove ports`."""
        from flatgroove.live import oneclient

        why = self.why_not or oneclient.probe(self.system)
        lib = {"ALSA": "alsa-midi", "JACK": "JACK-Client"}.get(self.system, "?")
        if why is None:
            return f"one client '{CLIENT_NAME}' holds all of flatgroove's ports ({lib})"
        hint = (f"; pip install {lib} for one client '{CLIENT_NAME}'"
                if "not installed" in why or "not usable" in why else "")
        return f"one client per port, named for its role (python-rtmidi fallback: {why}{hint})"


def backend(api: str = "auto") -> MidiSystem:
    """The MIDI system for `api`: 'alsa', 'jack', or 'auto' (ALSA where the kernel has a
    sequencer, else a running JACK server, else a clear error)."""
    return MidiSystem(_rt_backend(api))


def _rt_backend(api: str) -> mido.Backend:
    api = (api or "auto").lower()
    if api == "auto":
        api = os.environ.get("FLATGROOVE_MIDI_API", "auto").lower()
    if api == "auto":
        problems = []
        for cand in ("alsa", "jack"):
            if cand not in _available_apis():
                continue
            try:
                b = mido.Backend(f"mido.backends.rtmidi/{APIS[cand]}", load=True)
                with quiet_native():
                    b.get_output_names()
                return b
            except Exception as e:  # noqa: BLE001 - try the next system
                problems.append(f"{cand}: {str(e).strip() or type(e).__name__}")
        raise PortError(
            "no MIDI system available ("
            + "; ".join(problems)
            + "). Start JACK (e.g. `jackd -d dummy`) or load ALSA's snd-seq module; "
            "or run without hardware: flatgroove jam --simulate ..."
        )
    if api not in APIS:
        raise PortError(f"unknown MIDI API {api!r}; choose auto, alsa or jack")
    b = mido.Backend(f"mido.backends.rtmidi/{APIS[api]}", load=True)
    try:
        with quiet_native():
            b.get_output_names()
    except Exception as e:  # noqa: BLE001
        hint = " (is a JACK server running?)" if api == "jack" else ""
        raise PortError(f"MIDI API {api} is not available: {str(e).strip()}{hint}") from None
    return b


def list_ports(api: str = "auto") -> tuple[list[str], list[str]]:
    """(input port names, output port names): ports this program can read from (others'
    outputs) and ports it can send to (others' inputs)."""
    b = backend(api)
    with quiet_native():
        return b.get_input_names(), b.get_output_names()


def resolve(name: str, names: Iterable[str], kind: str) -> str:
    """An exact port name, or the one port whose name contains `name` (case-insensitive), so
    `--out fluid` finds 'FLUID Synth (1234):midi_00'. Errors list the ports there are."""
    names = list(names)
    if name in names:
        return name
    hits = [n for n in names if name.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    there = "\n  ".join(names) if names else "(none)"
    if hits:
        raise PortError(f"{kind} port {name!r} is ambiguous; it matches:\n  " + "\n  ".join(hits))
    raise PortError(f"no MIDI {kind} port {name!r}. {kind.capitalize()} ports:\n  {there}\n"
                    f"(or use --virtual to create a port called {name!r})")


_REALTIME = frozenset((0xF8, 0xFA, 0xFB, 0xFC))  # clock, start, continue, stop


def close_bounded(fn: Callable[[], object], what: str, timeout: float = 2.0) -> bool:
    """Run a port's close in a helper thread and wait at most `timeout` s. A stalled MIDI
    server (seen with JACK under heavy load) can block jack_client_close for ever; on stage,
    and in a test run, stopping must never hang. Returns False when it was left behind."""
    t = threading.Thread(target=lambda: _quiet(fn),
                         name=f"flatgroove-close-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        log.warning("the MIDI system did not release %s within %.0f s; left it behind", what, timeout)
        return False
    return True


def _quiet(fn: Callable[[], object]) -> None:
    with contextlib.suppress(Exception):  # closing a port that is gone
        fn()


def _open_one(one, kind: str, name: str, virtual: bool, role: str, on_raw=None):
    """A port on the shared client: a virtual one called `name`, or one named for its role
    and connected to the existing port `name`. Returns the port and the name connected to."""
    from flatgroove.live import oneclient

    try:
        if virtual:
            return one.open_port(kind, name, None, on_raw), name
        names = one.sources() if kind == "input" else one.destinations()
        name = resolve(name, [n for n in names if not n.startswith(f"{one.name}:")], kind)
        side = "in" if kind == "input" else "out"
        with quiet_native():
            return one.open_port(kind, ROLES.get(role, f"{role} {side}"), name, on_raw), name
    except PortError:
        oneclient.release_if_unused(one)
        raise
    except Exception as e:  # noqa: BLE001
        oneclient.release_if_unused(one)
        raise PortError(f"cannot open {kind} port {name!r}: {e}") from None


def _open_rt(kind: str, b: MidiSystem, name: str, virtual: bool, client_name: str | None,
             role: str):
    """An rtmidi input or output ('input' / 'output') on its role's client: a virtual port
    called `name`, or connected to the existing port `name` (resolved among the system's).
    Returns the rtmidi object and the port's full name."""
    import rtmidi

    api = getattr(rtmidi, f"API_{b.api}") if b.api else rtmidi.API_UNSPECIFIED
    cls = rtmidi.MidiIn if kind == "input" else rtmidi.MidiOut
    try:
        with quiet_native():
            rt = cls(rtapi=api, name=client_name or role_client(role))
    except Exception as e:  # noqa: BLE001
        raise PortError(f"cannot open the MIDI system for {kind}: {e}") from None
    try:
        with quiet_native():
            if virtual:
                rt.open_virtual_port(name)
            else:
                names = rt.get_ports()
                name = resolve(name, names, kind)
                # Our end of the connection is named for what it carries.
                side = "in" if kind == "input" else "out"
                rt.open_port(names.index(name), ROLES.get(role, f"{role} {side}"))
    except PortError:
        rt.delete()
        raise
    except Exception as e:  # noqa: BLE001
        rt.delete()
        raise PortError(f"cannot open {kind} port {name!r}: {e}") from None
    return rt, name


class TimedInput(_QueuedInput):
    """A real input port, read with python-rtmidi directly: the callback (rtmidi's thread,
    JACK's process thread on JACK) only stamps the raw bytes with time.monotonic() and
    queues them. Parsing happens later on the engine's thread, so the callback holds the
    GIL for microseconds: a client that is slow in JACK's cycle loses MIDI events, which a
    CC flood would otherwise cause. Only clock messages wake the engine at once (it needs
    the latest tick to place notes); everything else waits for its next step."""

    def __init__(self, b: MidiSystem, name: str, virtual: bool = False,
                 wake: threading.Event | None = None, client_name: str | None = None,
                 role: str = "drums") -> None:
        super().__init__()
        self.wake = wake
        self.role = role
        # whether a MIDI clock on this port drives the jam; the session sets it from --clock,
        # so a drum module's or controller's own clock cannot double the ticks
        self.clock_source = True
        self._rt = self._port = None
        one = b.one() if client_name is None else None
        if one is not None:  # a port on the client 'flatgroove'
            self._port, name = _open_one(one, "input", name, virtual, role, self._on_raw)
            self.own_name = self._port.full_name
        else:
            self._rt, name = _open_rt("input", b, name, virtual, client_name, role)
            self._rt.ignore_types(sysex=False, timing=False, active_sense=True)
            self._rt.set_callback(self._on_message)
            self.own_name = name if virtual else None
        self.name = name
        self.virtual = virtual

    def _on_message(self, event: tuple[list[int], float], data: object = None) -> None:
        self._on_raw(time.monotonic(), event[0])

    def _on_raw(self, t: float, raw: list[int]) -> None:
        if raw and raw[0] == 0xFE:  # active sensing: never wanted (rtmidi ignores it too)
            return
        self._q.append((t, raw))
        if self.wake is not None and raw and raw[0] in _REALTIME:
            self.wake.set()

    def close(self) -> None:
        if self._port is not None:
            from flatgroove.live.oneclient import release

            port = self._port
            close_bounded(lambda: release(port.client, port), f"input {self.name!r}")
            return

        def _close() -> None:
            self._rt.cancel_callback()
            self._rt.close_port()
            self._rt.delete()

        close_bounded(_close, f"input {self.name!r}")


class TimedOutput:
    """A real output port: the machine's notes ('flatgroove:machine out', connected to the
    port named, or a virtual port of that name for others to connect to)."""

    def __init__(self, b: MidiSystem, name: str, virtual: bool = False,
                 client_name: str | None = None, role: str = "machine") -> None:
        self._rt = self._port = None
        one = b.one() if client_name is None else None
        if one is not None:
            self._port, name = _open_one(one, "output", name, virtual, role)
            self.own_name = self._port.full_name
        else:
            self._rt, name = _open_rt("output", b, name, virtual, client_name, role)
            self.own_name = name if virtual else None
        self.name = name
        self.virtual = virtual
        self.role = role
        self._last_send = -math.inf

    # rtmidi queues a message for the backend's next cycle (JACK: a ring buffer emptied by the
    # process callback); a port closed sooner can lose it, and the last message is the stop's
    # all-notes-off. A few of JACK's periods on a loaded machine.
    FLUSH_S = 0.1

    def send(self, msg: mido.Message) -> None:
        if self._port is not None:
            self._port.send(msg.bytes())
        else:
            self._rt.send_message(msg.bytes())
            self._last_send = time.monotonic()

    def close(self) -> None:
        if self._port is not None:
            from flatgroove.live.oneclient import release

            port = self._port
            close_bounded(lambda: release(port.client, port), f"output {self.name!r}")
            return
        wait = self._last_send + self.FLUSH_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)

        def _close() -> None:
            self._rt.close_port()
            self._rt.delete()

        close_bounded(_close, f"output {self.name!r}")


class PortMonitor:
    """Watches, from its own thread, that the ports we connected to still exist (rtmidi
    does not tell us when a device is unplugged or a JACK client quits). Listing ports
    takes milliseconds, which is why this is not done on the scheduling thread."""

    def __init__(self, b: MidiSystem, inputs: list[str], outputs: list[str],
                 on_gone: Callable[[str], None], interval: float = 0.5) -> None:
        from flatgroove.live import oneclient

        # The shared client lists ports itself; else one rtmidi client each, kept open:
        # mido's get_*_names() opens and closes a client per call, and a JACK graph change
        # each time can cost other clients MIDI events.
        self._one = oneclient.current(b.system) if b.why_not is None else None
        self._mi = self._mo = None
        if self._one is None:
            import rtmidi

            api = getattr(rtmidi, f"API_{b.api}") if b.api else rtmidi.API_UNSPECIFIED
            with quiet_native():
                self._mi = rtmidi.MidiIn(rtapi=api, name=f"{CLIENT_NAME}-monitor")
                self._mo = rtmidi.MidiOut(rtapi=api, name=f"{CLIENT_NAME}-monitor")
        self.inputs, self.outputs = inputs, outputs
        self.on_gone = on_gone
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flatgroove-ports", daemon=True)

    def start(self) -> PortMonitor:
        if self.inputs or self.outputs:
            self._thread.start()
        return self

    def check(self) -> str | None:
        try:
            if self._one is not None:
                ins, outs = self._one.sources(), self._one.destinations()
            else:
                ins, outs = self._mi.get_ports(), self._mo.get_ports()
        except Exception as e:  # noqa: BLE001 - the MIDI system itself went away
            return f"the MIDI system stopped answering ({str(e).strip()})"
        for n in self.inputs:
            if n not in ins:
                return f"input port {n!r} disappeared"
        for n in self.outputs:
            if n not in outs:
                return f"output port {n!r} disappeared"
        return None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            why = self.check()
            if why:
                self.on_gone(why)
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        for rt in (self._mi, self._mo):
            if rt is not None:
                close_bounded(rt.delete, "the port monitor")


__all__ = [
    "APIS",
    "ROLES",
    "MemoryInput",
    "MemoryOutput",
    "MidiSystem",
    "PortError",
    "PortMonitor",
    "TimedInput",
    "TimedOutput",
    "backend",
    "is_own",
    "list_ports",
    "quiet_native",
    "resolve",
    "role_client",
]
