"""`flatgroove ports` and `flatgroove jam`: the live jam and its simulation from the shell."""

from __future__ import annotations

import argparse
import sys

from flatgroove.errors import UserError

JAM_HELP = """\
Live: flatgroove jam --in DRUMS --out SYNTH [--bpm 120 | --clock PORT] --mode accompany
Simulation (no hardware): flatgroove jam --simulate DRUMMER.mid|BUILTIN --script S.toml
    --out SESSION.mid [--wav SESSION.wav] [--png SESSION.png]
Mappings (CCs, pads, channels): see `flatgroove jam --show-controls`.

Ports: flatgroove's own ports are named for what they carry: 'drums in' (your kit), 'clock in'
(a DAW's clock, when --clock is a port of its own), 'controls in' (more --in ports) and
'machine out' (its notes), all on one MIDI client 'flatgroove' (alsa-midi on ALSA, JACK-Client
on JACK; without them, python-rtmidi opens one client per port: flatgroove-drums, -clock,
-controls, -machine). `flatgroove ports` lists them apart from everyone else's and says which.

External clock (--clock PORT): follow a DAW's or drum machine's MIDI clock (24 ticks per
beat) instead of --bpm. Until the clock starts, the jam waits in silence and says so.
  Start       plays from bar 1; a later Start begins at the next bar line (bar numbers only
              go forward, so start the DAW from a bar line).
  Stop        ends every sounding note (all notes off); the machine holds until the clock
              runs again.
  Continue    carries on from where the clock stopped.
  Song position pointer   ignored: flatgroove keeps its own bar count.
  Clock timeout   no ticks for `clock_timeout` beats (controls file, default 2) count as a
              lost clock (cable pulled, DAW crashed): the machine holds, and carries on
              when ticks come back.
  The tempo follows the ticks (a tempo change is followed within about half a beat); --bpm is
  then only the first guess.
On the internal clock (--bpm) the jam prints one status line per bar, as the simulation does
(when the output is not a terminal; on a terminal it redraws a screen instead)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ports", help="list MIDI ports: sources to listen to, destinations to "
                                     "play to, and flatgroove's own")
    p.add_argument("--api", default="auto", choices=["auto", "alsa", "jack"],
                   help="MIDI system (default: ALSA if present, else JACK)")
    p.set_defaults(func=_ports)

    j = sub.add_parser("jam", help="jam live with a drummer (or simulate a session)",
                       description=JAM_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    j.add_argument("--in", dest="ins", action="append", default=[], metavar="NAME",
                   help="input port: the drummer, pads, knobs (repeat for several)")
    j.add_argument("--out", metavar="NAME|FILE",
                   help="output port (live), or the session MIDI file (with --simulate)")
    t = j.add_mutually_exclusive_group()
    t.add_argument("--bpm", type=float, help="tempo of the internal clock (default 120; with --simulate, the "
                                                  "drummer's groove's own)")
    t.add_argument("--clock", metavar="NAME", help="follow this port's MIDI clock")
    j.add_argument("--mode", choices=["answer", "accompany", "morph"],
                   help="mode at start (default: from the controls file)")
    j.add_argument("--controls", metavar="FILE.toml", help="mappings and settings")
    j.add_argument("--target", help="target at start: bank name or slot, built-in or MIDI file")
    j.add_argument("--a", type=float, help="blend at start, 0..1")
    j.add_argument("--virtual", action="store_true",
                   help="create the --in/--out ports for other programs to connect to")
    j.add_argument("--no-realtime", action="store_true",
                   help="do not ask for real-time priority for the scheduling thread")
    j.add_argument("--api", default="auto", choices=["auto", "alsa", "jack"], help="MIDI system")
    j.add_argument("--model", default="flat",
                   help="flat (shipped, default), vae, flat16, or a checkpoint path / run folder")
    j.add_argument("--bars", type=int, help="stop after this many bars")
    j.add_argument("--simulate", metavar="DRUMMER", help="simulate: MIDI file or built-in name")
    j.add_argument("--script", metavar="FILE.toml", help="simulation: scripted control changes")
    j.add_argument("--wav", metavar="FILE", help="simulation: render the session to WAV")
    j.add_argument("--soundfont", metavar="SF2|gm",
                   help="simulation: render the WAV with this SoundFont's General MIDI drum kit; "
                        "'gm' finds one (pip install 'flatgroove[soundfont]')")
    j.add_argument("--png", metavar="FILE", help="simulation: piano roll of the session")
    j.add_argument("--seed", type=int, help="random seed (sampled targets)")
    j.add_argument("--decode-latency", type=float, default=None,
                   help="simulation: seconds each decode takes (rehearse late patterns)")
    j.add_argument("--show-controls", action="store_true",
                   help="print the default controls file (documented) and exit")
    j.set_defaults(func=_jam)


def _ports(args: argparse.Namespace) -> int:
    from flatgroove.live.ports import backend, is_own, quiet_native

    b = backend(args.api)
    with quiet_native():
        ins, outs = b.get_input_names(), b.get_output_names()
    print(f"MIDI system: {b.system}; {b.layout()}")
    print("Sources: ports flatgroove can listen to (--in for drums and controllers, --clock):")
    for n in [n for n in ins if not is_own(n)] or ["(none)"]:
        print(f"  {n}")
    print("Destinations: ports flatgroove can play to (--out for a synth or a DAW track):")
    for n in [n for n in outs if not is_own(n)] or ["(none)"]:
        print(f"  {n}")
    own = [(n, "sends: the machine's notes; connect it to a synth or a DAW track") for n in ins
           if is_own(n)]
    own += [(n, "receives: connect your drums, controller or DAW clock to it") for n in outs
            if is_own(n)]
    if own:
        print("flatgroove's own ports (a jam or page running now):")
        w = max(len(n) for n, _ in own)
        for n, what in own:
            print(f"  {n:<{w}}  {what}")
    return 0


def load_model(spec: str):
    """flat | vae | flat16 | a checkpoint path / run folder."""
    try:
        import flatgroove

        return flatgroove.load_model(None if spec == "flat" else spec)
    except (ValueError, OSError) as e:  # CheckpointError is a ValueError
        raise UserError(f"cannot load model {spec!r}: {e}") from None


def _controls(args: argparse.Namespace):
    from flatgroove.live.controls import ControlMap

    c = ControlMap.load(args.controls)
    if args.mode:
        c.mode = args.mode
    if args.a is not None:
        if not 0.0 <= args.a <= 1.0:
            raise UserError("--a must be between 0 and 1")
        c.a = args.a
    if args.seed is not None:
        c.seed = args.seed
    return c


def _jam(args: argparse.Namespace) -> int:
    if args.show_controls:
        from flatgroove.live.controls import default_controls_text

        print(default_controls_text(), end="")
        return 0
    if args.bpm is not None and not 20 <= args.bpm <= 400:
        raise UserError("--bpm must be between 20 and 400")
    _check_args(args)
    if args.simulate:
        return _simulate(args)
    if args.script or args.wav or args.png or args.soundfont:
        raise UserError("--script, --wav, --soundfont and --png go with --simulate")
    if not args.out:
        raise UserError("jam needs --out PORT (see `flatgroove ports`), or --simulate")
    if not args.ins and not args.clock:
        print("note: no --in port: the machine plays without hearing a drummer", file=sys.stderr)
    return _live(args)


def _check_args(args: argparse.Namespace) -> None:
    """--bars, --a, --seed, --decode-latency: the ranges of the controls schema."""
    from flatgroove.live.controls import BARS, DECODE_LATENCY, SEED, A, check

    for flag, value, kind in (("--bars", args.bars, BARS), ("--a", args.a, A),
                              ("--seed", args.seed, SEED),
                              ("--decode-latency", args.decode_latency, DECODE_LATENCY)):
        if value is not None:
            check(value, kind, flag, "jam")


def _simulate(args: argparse.Namespace) -> int:
    from flatgroove.live.simulate import simulate

    if args.ins or args.clock or args.virtual:
        raise UserError("--simulate uses in-memory ports; --in/--clock/--virtual do not apply")
    if args.soundfont is not None:
        from flatgroove.audio import resolve_soundfont

        if not args.wav:
            raise UserError("--soundfont goes with --wav (the WAV it renders)")
        args.soundfont = resolve_soundfont(args.soundfont)  # fail before the session, not after
    controls = _controls(args)
    model = load_model(args.model)
    res = simulate(model, args.simulate, args.script, bars=args.bars, controls=controls,
                   bpm=args.bpm, target=args.target, seed=args.seed,
                   mode=args.mode, a=args.a, decode_latency=args.decode_latency,
                   on_bar=lambda b: print(b.line(), flush=True))
    print(res.summary().splitlines()[-1])
    if args.out:
        print(f"wrote {res.write_midi(args.out)}")
    for what, path in (("wav", args.wav), ("png", args.png)):
        if not path:
            continue
        try:
            written = (res.write_wav(path, soundfont=args.soundfont) if what == "wav"
                       else res.write_png(path))
            print(f"wrote {written}")
        except ImportError as e:
            print(f"skipped {path}: {what} output is not available ({e})", file=sys.stderr)
    return 0


def _live(args: argparse.Namespace) -> int:
    from flatgroove.live.session import LiveSession, stop_on_signals
    from flatgroove.live.view import TerminalView

    controls = _controls(args)
    model = load_model(args.model)
    view: TerminalView | None = None

    def on_log(text: str) -> None:
        if view is not None:
            view.message(text)

    bpm = args.bpm or 120.0
    def on_bar(b) -> None:
        if view is not None:
            view.message(b)  # formatted on the view's thread, not the scheduling one

    s = LiveSession(model, args.out, args.ins, controls=controls, bpm=bpm,
                    clock_port=args.clock, virtual=args.virtual, api=args.api,
                    target=args.target, end_bar=args.bars, on_log=on_log, on_bar=on_bar,
                    realtime=not args.no_realtime)
    try:
        view = TerminalView(s.engine, s.ts.now).start()
        names = ", ".join(p.name for p in s.inputs) or "(none)"
        view.message(f"in: {names}   out: {s.output.name}   model: {args.model}   "
                     f"controls: {controls.source}   Ctrl-C stops")
        if args.clock:
            view.message(f"waiting for MIDI clock from {args.clock}: press play (Start) in the "
                         "DAW or drum machine; the machine stays silent until then")
        else:
            view.message(f"internal clock at {bpm:g} BPM: bar 1 starts in a second")
        try:
            with stop_on_signals():  # SIGTERM, SIGHUP: as Ctrl-C, all notes off
                reason = s.run()
        except KeyboardInterrupt as e:
            reason = str(e) or "interrupted (Ctrl-C)"
        finally:
            view.stop()
    finally:
        s.close()
    print(f"jam ended: {reason}")
    normal = ("end of session", "stopped", "interrupted (Ctrl-C)", "terminated (SIGTERM)",
              "terminated (SIGHUP)")
    return 0 if reason in normal else 1


__all__ = ["load_model", "register"]
