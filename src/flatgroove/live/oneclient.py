"""One MIDI client named 'flatgroove' that holds all of flatgroove's ports ('drums in',
'clock in', 'controls in', 'machine out'), the way DAWs and synths show up in a patchbay.

python-rtmidi opens one ALSA or JACK client per port object, so with it a jam shows up as
several clients. Here the whole process shares one client per MIDI system:

- ALSA: alsa-midi (cffi bindings to libasound's sequencer): one sequencer client, a port per
  role, a reader thread that stamps incoming events with time.monotonic().
- JACK: JACK-Client (cffi bindings to libjack): one JACK client, a MIDI port per role; its
  process callback stamps incoming events with time.monotonic() and writes the messages
  queued since the last cycle.

`open_client(system)` returns the shared client (opening it on first use) or raises
OneClientUnavailable with the reason (library missing, no MIDI system); ports.py then falls
back to rtmidi's client per port and says so. Each port closes on its own; the client closes
with its last port.

Port names in listings follow rtmidi's formats, so a name from `flatgroove ports` means the
same port whichever path opened it: ALSA 'client:port C:P', JACK 'client:port'.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import select
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("flatgroove.live")

CLIENT_NAME = "flatgroove"
RawHandler = Callable[[float, list[int]], None]


class OneClientUnavailable(RuntimeError):
    """This MIDI system cannot be used with one shared client here; the message says why."""


class _Port:
    """A port on the shared client: `send(raw bytes)` on outputs; inputs call their handler
    with (monotonic time, [bytes])."""

    def __init__(self, client: _Client, kind: str, name: str, handle: object,
                 on_raw: RawHandler | None) -> None:
        self.client, self.kind, self.name, self.handle, self.on_raw = (
            client, kind, name, handle, on_raw)
        self.full_name = client.full_name(self)

    def send(self, data: bytes | list[int]) -> None:
        self.client.send(self, bytes(data))

    def close(self) -> None:
        self.client.close_port(self)


class _Client:
    system = "?"
    library = "?"

    def __init__(self) -> None:
        self.ports: list[_Port] = []
        self.lock = threading.Lock()
        self.closed = False

    # listing, in rtmidi's order and format
    def sources(self) -> list[str]:
        raise NotImplementedError

    def destinations(self) -> list[str]:
        raise NotImplementedError

    def unique(self, name: str) -> str:
        taken = {p.name for p in self.ports}
        out, i = name, 2
        while out in taken:
            out, i = f"{name} {i}", i + 1
        return out

    def open_port(self, kind: str, name: str, connect: str | None,
                  on_raw: RawHandler | None = None) -> _Port:
        """A new port called `name` ('input' or 'output'), connected to the existing port
        `connect` (a listed name) unless None."""
        raise NotImplementedError

    def full_name(self, port: _Port) -> str:
        raise NotImplementedError

    def send(self, port: _Port, data: bytes) -> None:
        raise NotImplementedError

    def close_port(self, port: _Port) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


# -- ALSA --------------------------------------------------------------------------------------
_ALSA_ADDR = re.compile(r"(\d+):(\d+)$")


class AlsaClient(_Client):
    system = "ALSA"
    library = "alsa-midi"

    def __init__(self, name: str = CLIENT_NAME) -> None:
        super().__init__()
        try:
            import alsa_midi
        except ImportError as e:
            raise OneClientUnavailable(f"alsa-midi is not installed ({e})") from None
        self._am = alsa_midi
        if not os.path.exists("/dev/snd/seq"):
            raise OneClientUnavailable("no ALSA sequencer (/dev/snd/seq)")
        from flatgroove.live.ports import quiet_native

        try:
            with quiet_native():
                self.seq = alsa_midi.SequencerClient(name)
        except Exception as e:  # noqa: BLE001
            raise OneClientUnavailable(f"cannot open the ALSA sequencer: {e}") from None
        self.name = name
        self._by_id: dict[int, _Port] = {}
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="flatgroove-alsa-in",
                                        daemon=True)
        self._reader.start()

    def _list(self, readable: bool) -> list[str]:
        am = self._am
        kinds = am.PortType.MIDI_GENERIC | am.PortType.SYNTH | am.PortType.APPLICATION
        infos = self.seq.list_ports(input=readable, output=not readable, type=0,
                                    include_system=False, sort=False)
        return [f"{p.client_name}:{p.name} {p.client_id}:{p.port_id}" for p in infos
                if p.type & kinds]

    def sources(self) -> list[str]:
        return self._list(True)

    def destinations(self) -> list[str]:
        return self._list(False)

    def full_name(self, port: _Port) -> str:
        return f"{self.name}:{port.name} {self.seq.client_id}:{port.handle.port_id}"

    def open_port(self, kind, name, connect, on_raw=None):
        am = self._am
        caps = (am.PortCaps.WRITE | am.PortCaps.SUBS_WRITE if kind == "input"
                else am.PortCaps.READ | am.PortCaps.SUBS_READ)
        with self.lock:
            name = self.unique(name)
            handle = self.seq.create_port(name, caps,
                                          am.PortType.MIDI_GENERIC | am.PortType.APPLICATION)
            port = _Port(self, kind, name, handle, on_raw)
            self.ports.append(port)
            self._by_id[handle.port_id] = port
        if connect is not None:
            m = _ALSA_ADDR.search(connect)
            try:
                if m is None:
                    raise ValueError(f"not an ALSA port name: {connect!r}")
                addr = am.Address(int(m.group(1)), int(m.group(2)))
                if kind == "input":
                    handle.connect_from(addr)
                else:
                    handle.connect_to(addr)
            except Exception:
                self.close_port(port)
                raise
        return port

    def _read(self) -> None:
        """Wait for input without the lock; read what came under it (alsa-midi shares one
        MIDI byte parser between input and output)."""
        am = self._am
        poll = select.poll()
        poll.register(self.seq._fd, select.POLLIN)
        while not self._stop.is_set():
            try:
                if not poll.poll(200):
                    continue
            except (OSError, ValueError):
                return
            while not self._stop.is_set():
                with self.lock:
                    if self.closed:
                        return
                    try:
                        result, ev = self.seq._event_input(prefer_bytes=True)
                    except Exception:
                        log.debug("ALSA: undecodable event", exc_info=True)
                        continue
                if result == -errno.EAGAIN:
                    break
                if result == -errno.ENOSPC:
                    log.warning("ALSA: input overrun, MIDI events were lost")
                    continue
                if result < 0 or ev is None or not isinstance(ev, am.MidiBytesEvent):
                    if result < 0:
                        break
                    continue
                t = time.monotonic()
                port = self._by_id.get(ev.dest.port_id) if ev.dest is not None else None
                if port is not None and port.on_raw is not None:
                    port.on_raw(t, list(ev.midi_bytes))

    def send(self, port, data):
        ev = self._am.MidiBytesEvent(data)
        with self.lock:
            if self.closed:
                raise OSError("the ALSA client is closed")
            self.seq.event_output(ev, port=port.handle)
            self.seq.drain_output()

    def close_port(self, port):
        with self.lock:
            if port not in self.ports:
                return
            self.ports.remove(port)
            self._by_id.pop(port.handle.port_id, None)
            with contextlib.suppress(Exception):
                port.handle.close()

    def close(self):
        self._stop.set()
        self._reader.join(timeout=1.0)
        with self.lock:
            self.closed = True
            for p in list(self.ports):
                with contextlib.suppress(Exception):
                    p.handle.close()
            self.ports.clear()
            self.seq.close()


# -- JACK --------------------------------------------------------------------------------------
class JackClient(_Client):
    system = "JACK"
    library = "JACK-Client"

    def __init__(self, name: str = CLIENT_NAME) -> None:
        super().__init__()
        from flatgroove.live.ports import quiet_native

        try:
            with quiet_native():
                import jack
        except (ImportError, OSError) as e:  # OSError: libjack itself is missing
            raise OneClientUnavailable(f"JACK-Client is not usable ({e})") from None
        self._jack = jack
        jack.set_error_function(lambda msg: log.debug("JACK: %s", msg))
        jack.set_info_function(lambda msg: None)
        try:
            with quiet_native():
                self.c = jack.Client(name, no_start_server=True)
        except Exception as e:  # noqa: BLE001 - no server, or it refused us
            raise OneClientUnavailable(f"cannot open a JACK client: {e}") from None
        self.name = self.c.name  # 'flatgroove-01' when another flatgroove runs
        self._ins: tuple[_Port, ...] = ()
        self._outs: tuple[tuple[_Port, deque], ...] = ()
        self._queues: dict[int, deque] = {}
        self._sr = float(self.c.samplerate)
        self.c.set_process_callback(self._process)
        with quiet_native():
            self.c.activate()

    def _process(self, frames: int) -> None:
        # JACK's thread: only copy bytes in and out; never raise (JACK would drop us).
        try:
            # Stamped when they reach us, as rtmidi's JACK input does: the two paths time a
            # drummer alike (an event is at most one period older than its stamp).
            now = time.monotonic()
            for p in self._ins:
                for _offset, data in p.handle.incoming_midi_events():
                    p.on_raw(now, list(bytes(data)))
            for p, q in self._outs:
                p.handle.clear_buffer()
                while q:
                    data = q.popleft()
                    try:
                        p.handle.write_midi_event(0, data)
                    except Exception:  # noqa: BLE001 - buffer full: the rest next cycle
                        q.appendleft(data)
                        break
        except Exception:
            log.debug("JACK process callback", exc_info=True)

    def _list(self, readable: bool) -> list[str]:
        return [p.name for p in self.c.get_ports(is_midi=True, is_output=readable,
                                                 is_input=not readable)]

    def sources(self):
        return self._list(True)

    def destinations(self):
        return self._list(False)

    def full_name(self, port):
        return port.handle.name

    def open_port(self, kind, name, connect, on_raw=None):
        with self.lock:
            name = self.unique(name)
            ports = self.c.midi_inports if kind == "input" else self.c.midi_outports
            handle = ports.register(name)
            port = _Port(self, kind, name, handle, on_raw)
            self.ports.append(port)
            self._publish()
        if connect is not None:
            try:
                if kind == "input":
                    self.c.connect(connect, handle)
                else:
                    self.c.connect(handle, connect)
            except Exception:
                self.close_port(port)
                raise
        return port

    def _publish(self) -> None:
        # Tuples swapped whole: the process callback always sees a consistent set.
        self._ins = tuple(p for p in self.ports if p.kind == "input" and p.on_raw)
        self._outs = tuple((p, self._queues.setdefault(id(p), deque()))
                           for p in self.ports if p.kind == "output")

    def send(self, port, data):
        q = self._queues.get(id(port))
        if self.closed or q is None:
            raise OSError("the JACK port is closed")
        q.append(data)

    def close_port(self, port):
        # What was sent last (all notes off) goes out first: the process callback empties
        # the queue within a period or two (as rtmidi's JACK output waits for its buffer).
        q = self._queues.get(id(port))
        deadline = time.monotonic() + 0.5
        while q and not self.closed and time.monotonic() < deadline:
            time.sleep(0.002)
        with self.lock:
            if port not in self.ports:
                return
            self.ports.remove(port)
            self._publish()
            self._queues.pop(id(port), None)
        with contextlib.suppress(Exception):
            port.handle.unregister()

    def close(self):
        self.closed = True
        with contextlib.suppress(Exception):
            self.c.deactivate()
        with contextlib.suppress(Exception):
            self.c.close()


# -- the shared clients ---------------------------------------------------------------------------
_CLASSES = {"ALSA": AlsaClient, "JACK": JackClient}
_shared: dict[str, _Client] = {}
_shared_lock = threading.Lock()


def disabled(system: str) -> str | None:
    """Why the one-client path is switched off for `system`, or None.
    FLATGROOVE_MIDI_ONE_CLIENT: 0 = never; 1 = JACK and ALSA; unset = JACK only. The ALSA
    path has not yet run against a real sequencer (none on the machines it was built and
    tested on), so a live set does not depend on it unless asked for."""
    v = os.environ.get("FLATGROOVE_MIDI_ONE_CLIENT", "").strip().lower()
    if v in ("0", "no", "off", "false"):
        return "FLATGROOVE_MIDI_ONE_CLIENT=0"
    if system == "ALSA" and v not in ("1", "yes", "on", "true"):
        return "on ALSA only with FLATGROOVE_MIDI_ONE_CLIENT=1, not yet tested on a real sequencer"
    return None


def open_client(system: str) -> _Client:
    """The process's shared client for 'ALSA' or 'JACK', opened on first use."""
    why = disabled(system)
    if why:
        raise OneClientUnavailable(f"switched off ({why})")
    with _shared_lock:
        c = _shared.get(system)
        if c is None or c.closed:
            c = _shared[system] = _CLASSES[system]()
        return c


def current(system: str) -> _Client | None:
    """The shared client if it is open now (for listings that should not open one)."""
    c = _shared.get(system)
    return c if c is not None and not c.closed else None


def release(client: _Client, port: _Port | None) -> None:
    """Close `port`; close the client too when it was its last port."""
    if port is not None:
        client.close_port(port)
    with _shared_lock:
        if not client.ports and not client.closed:
            client.close()
            if _shared.get(client.system) is client:
                del _shared[client.system]


def release_if_unused(client: _Client) -> None:
    """Close the client if it holds no port (an open that failed)."""
    release(client, None)


def probe(system: str) -> str | None:
    """None when one client can hold all ports on `system` here, else the reason."""
    why = disabled(system)
    if why:
        return f"switched off ({why})"
    if current(system) is not None:
        return None
    if system == "ALSA":
        try:
            import alsa_midi  # noqa: F401
        except ImportError as e:
            return f"alsa-midi is not installed ({e})"
        return None if os.path.exists("/dev/snd/seq") else "no ALSA sequencer (/dev/snd/seq)"
    from flatgroove.live.ports import quiet_native

    try:
        with quiet_native():
            import jack  # noqa: F401
    except (ImportError, OSError) as e:
        return f"JACK-Client is not usable ({e})"
    return None


__all__ = ["CLIENT_NAME", "AlsaClient", "JackClient", "OneClientUnavailable", "current",
           "disabled", "open_client", "probe", "release", "release_if_unused"]
