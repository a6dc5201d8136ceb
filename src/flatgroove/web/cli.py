"""`flatgroove serve`: the browser front end on localhost."""

from __future__ import annotations

import argparse
import socket
import sys


def _check_port(host: str, port: int) -> None:
    """Fail with a clear message before uvicorn does with a traceback-ish log line."""
    from flatgroove.errors import UserError

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        # As uvicorn does: a port held only by closed connections (TIME_WAIT) is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise UserError(f"cannot listen on {host}:{port} ({e.strerror}); "
                            f"is another server running? try --port {port + 1}") from None


def _port_error(flag: str, e: Exception) -> Exception:
    """A port error as one line naming the option: the ports there are listed on that line
    (at most 8), and no --virtual hint (serve has no --virtual)."""
    from flatgroove.errors import UserError

    head, *rest = str(e).splitlines()
    names = [ln.strip() for ln in rest if ln.startswith("  ")]
    if names and head.endswith(":"):
        more = f", ... ({len(names) - 8} more)" if len(names) > 8 else ""
        head = f"{head} {', '.join(names[:8])}{more}"
    return UserError(f"{flag}: {head} (`flatgroove ports` lists them)" if names else
                     f"{flag}: {head}")


def _open_ports(args: argparse.Namespace) -> tuple[list, list, object | None]:
    """The page jam's MIDI ports, as `flatgroove jam` opens them (ports.TimedInput and
    TimedOutput on the client 'flatgroove'): --midi-in (controls in), --midi-out (machine
    out), --midi-clock (clock in; a --midi-in of the same name is that one port). Returns
    (inputs, outputs, clock); on an error, what was opened is closed again."""
    if not (args.midi_in or args.midi_out or args.midi_clock):
        return [], [], None
    from flatgroove.live.ports import PortError, TimedInput, TimedOutput, backend

    wanted = ([("--midi-clock", args.midi_clock)] if args.midi_clock else []) \
        + [("--midi-in", n) for n in args.midi_in if n != args.midi_clock] \
        + [("--midi-out", n) for n in args.midi_out]
    inputs: list = []
    outputs: list = []
    clock = None
    try:
        try:
            b = backend(args.midi_api)
        except PortError as e:
            raise _port_error(wanted[0][0], e) from None
        for flag, name in wanted:
            try:
                if flag == "--midi-clock":
                    clock = TimedInput(b, name, role="clock")
                elif flag == "--midi-in":
                    inputs.append(TimedInput(b, name, role="controls"))
                else:
                    outputs.append(TimedOutput(b, name, role="machine"))
            except PortError as e:
                raise _port_error(flag, e) from None
    except BaseException:
        for p in inputs + outputs + ([clock] if clock is not None else []):
            p.close()
        raise
    return inputs, outputs, clock


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from flatgroove.errors import UserError
    from flatgroove.generate import resolve_model
    from flatgroove.web.jam import JamSession
    from flatgroove.web.server import create_app, uvicorn_options
    from flatgroove.web.service import ApiError, Studio

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be 0..65535, got {args.port}")
    if args.bpm is not None and not 40 <= args.bpm <= 240:
        raise UserError(f"--bpm must be 40..240, got {args.bpm:g}")
    _check_port(args.host, args.port)
    from flatgroove.live.controls import ControlMap

    ControlMap.load(args.controls)  # a bad controls file is reported now, not in the jam
    # The MIDI ports first: a missing one is one line now, before the model loads.
    inputs, outputs, clock = _open_ports(args)
    try:
        model = resolve_model(args.model)
        data = None if args.no_data else args.data
        studio = Studio(model, model_source=str(args.model), dataset=data)
        try:
            studio.builtin(args.drummer)  # a bad name is a user error now, not in the jam
        except ApiError as e:
            raise UserError(f"--drummer: {e.message}") from None
        jam = JamSession(studio, drummer=args.drummer, bpm=args.bpm, controls=args.controls,
                         inputs=inputs, outputs=outputs, clock=clock)
        wildcard = args.host in ("0.0.0.0", "::", "")
        hosts = ["127.0.0.1", "localhost", "::1"] + ([] if wildcard else [args.host]) + args.allow_host
        app = create_app(studio, jam=jam, warm=True, hosts=hosts, origins=args.allow_origin)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"flatgroove: warning: listening on {args.host}: anyone who can reach this "
                  "machine can use the server (there is no login)", file=sys.stderr)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"flatgroove: serving {model.variant} model (d = {model.latent_dim}) on "
              f"http://{host}:{args.port}/  (Ctrl-C stops)", flush=True)
        from flatgroove.live.session import stop_on_signals

        try:
            # SIGTERM, SIGHUP: as Ctrl-C. uvicorn shuts down and passes the signal on, which
            # then raises here instead of killing the process: the jam stops (all notes
            # off) and the MIDI ports close below, and the exit status is 0.
            with stop_on_signals():
                uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                            **uvicorn_options())
        finally:
            jam.stop()
    finally:
        for p in inputs + outputs + ([clock] if clock is not None else []):
            p.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="the browser front end: latent map, paths, the jam")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--model", default="flat",
                   help="'flat' (shipped, default), 'vae', 'flat16', or a checkpoint file / run folder")
    p.add_argument("--data", default=None,
                   help="dataset for the latent map (default: the Groove MIDI Dataset)")
    p.add_argument("--no-data", action="store_true",
                   help="no dataset: the map shows the built-in grooves only")
    p.add_argument("--drummer", default="rock",
                   help="built-in groove the simulated jam drummer plays (default rock)")
    p.add_argument("--bpm", type=float, default=None, help="jam tempo (default: the drummer's)")
    p.add_argument("--controls", default=None, help="jam controls TOML (see `flatgroove jam`)")
    p.add_argument("--midi-in", action="append", default=[], metavar="PORT",
                   help="a MIDI input (controller) that steers the jam with the page; repeatable")
    p.add_argument("--midi-out", action="append", default=[], metavar="PORT",
                   help="also send the machine's notes to this MIDI output; repeatable")
    p.add_argument("--midi-clock", metavar="NAME", default=None,
                   help="follow this port's MIDI clock (a DAW's or drum machine's Start, ticks, "
                        "Stop) instead of the jam's own tempo; --bpm is then the first guess. "
                        "Until the clock starts the page says it is waiting for it (see "
                        "`flatgroove jam --help`)")
    p.add_argument("--midi-api", default="auto", choices=["auto", "alsa", "jack"],
                   help="MIDI system for --midi-in, --midi-out and --midi-clock (default: ALSA "
                        "if present, else JACK)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer to this Host name (e.g. the machine's name with --host "
                        "0.0.0.0; '*' for any); the server answers to 127.0.0.1 and localhost")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="let pages from this origin (e.g. http://example.com:3000) use the API "
                        "and the jam; by default only the server's own page can")
    p.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"],
                   help="server log detail (default warning)")
    p.set_defaults(func=_serve)
