"""`flatgroove encode | reconstruct | sample | interpolate | blend`: generation from the
command line. Inputs are MIDI files or built-in groove names; outputs MIDI, WAV, PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

GROOVE_HELP = "a MIDI file (2 bars from --bar) or a built-in groove name (e.g. rock, funk)"


def _model(args):
    from flatgroove.generate import resolve_model

    return resolve_model(args.model)


def _check_outputs(args) -> None:
    """Fail before any work on what can be checked up front: the output paths (a folder
    there, no permission) and the SoundFont."""
    from flatgroove.files import check_writable

    for key in ("out", "wav", "png"):
        if getattr(args, key, None):
            check_writable(getattr(args, key))
    if getattr(args, "soundfont", None) is not None:
        from flatgroove.audio import resolve_soundfont

        args.soundfont = resolve_soundfont(args.soundfont)
        if not args.wav:
            from flatgroove.errors import UserError

            raise UserError("--soundfont goes with --wav (the WAV it renders)")


def _finish(args, grooves, title, rows=None, corners=None) -> int:
    from flatgroove.generate import write_outputs

    if args.tempo is not None:
        # One tempo everywhere: the grids, the MIDI file and the WAV all say the same.
        if not 20 <= args.tempo <= 400:
            from flatgroove.errors import UserError

            raise UserError(f"--tempo must be 20..400 BPM, got {args.tempo:g}")
        for g in grooves:
            g.tempo = float(args.tempo)
    if not args.quiet:
        for g in grooves:
            print(g.grid())
            print()
    for p in write_outputs(grooves, args.out, args.wav, args.png, title=title, tempo=args.tempo,
                           soundfont=args.soundfont, rows=rows, corners=corners):
        print(f"wrote {p}")
    return 0


def _interpolate(args) -> int:
    from flatgroove.generate import interpolate, resolve_groove

    _check_outputs(args)
    m = _model(args)
    a, b = resolve_groove(args.a, args.bar), resolve_groove(args.b, args.bar)
    gs = interpolate(m, a, b, steps=args.steps, method=args.method, refine=args.refine)
    return _finish(args, gs, f"{a.name} -> {b.name} ({m.variant}, {args.method})")


def _blend(args) -> int:
    from flatgroove.generate import blend, resolve_groove

    _check_outputs(args)
    m = _model(args)
    corners = [resolve_groove(c, args.bar) for c in args.corners]
    rows = blend(m, corners, grid=args.grid, refine=args.refine)
    return _finish(args, [g for r in rows for g in r], f"blend ({m.variant})", rows=rows,
                   corners=[c.name or f"corner {i + 1}" for i, c in enumerate(corners)])


def _sample(args) -> int:
    from flatgroove.generate import sample

    _check_outputs(args)
    m = _model(args)
    gs = sample(m, args.n, args.temperature, args.seed, tempo=args.tempo or 120.0)
    return _finish(args, gs, f"samples ({m.variant}, T = {args.temperature})")


def _reconstruct(args) -> int:
    from flatgroove.generate import reconstruct, resolve_groove

    _check_outputs(args)
    m = _model(args)
    src = [resolve_groove(g, args.bar) for g in args.grooves]
    gs = []
    for s, r in zip(src, reconstruct(m, src, refine=args.refine)):
        gs += [s, r]
    return _finish(args, gs, f"input / reconstruction ({m.variant})")


def _encode(args) -> int:
    from flatgroove.files import atomic_path, check_writable
    from flatgroove.generate import encode, resolve_groove

    save = None
    if args.save:  # numpy's name for it (it adds .npy), said and checked before any work
        save = Path(args.save) if str(args.save).endswith(".npy") else Path(f"{args.save}.npy")
        check_writable(save)
    m = _model(args)
    src = [resolve_groove(g, args.bar) for g in args.grooves]
    z = encode(m, src, refine=args.refine)
    np.set_printoptions(precision=3, suppress=True, linewidth=120)
    for g, zi in zip(src, z):
        print(f"{g.name}: {zi}")
    if save is not None:
        with atomic_path(save) as tmp, open(tmp, "wb") as fh:
            np.save(fh, z)
        print(f"wrote {save}")
    return 0


def _common(p, outputs: bool = True, inputs: bool = True) -> None:
    p.add_argument("--model", default="flat",
                   help="flat (shipped, default) | vae | flat16 (shipped) | a checkpoint or run folder")
    if inputs:
        p.add_argument("--bar", type=int, default=0,
                       help="first bar taken from MIDI inputs (0-based, default 0)")
        p.add_argument("--refine", type=int, default=0, metavar="K",
                       help="refine each input's latent code by K gradient steps on its own "
                            "reconstruction (5-10: closer to the input; default 0, the encoder's mean)")
    if outputs:
        p.add_argument("--out", "-o", default=None, metavar="FILE.mid",
                       help="write the grooves in sequence to this MIDI file (markers name them)")
        p.add_argument("--wav", default=None, metavar="FILE.wav",
                       help="also render a WAV (built-in kit, or --soundfont)")
        p.add_argument("--soundfont", default=None, metavar="SF2|gm",
                       help="render the WAV with this SoundFont's General MIDI drum kit; "
                            "'gm' finds one (pip install 'flatgroove[soundfont]')")
        p.add_argument("--png", default=None, metavar="FILE.png",
                       help="also draw the grooves (a piano roll; a grid for blend)")
        p.add_argument("--tempo", type=float, default=None,
                       help="one tempo (BPM) for the grids, MIDI and WAV (default: each "
                            "groove's own; an interpolation glides from A's to B's, a blend "
                            "plays at its corners' mean)")
        p.add_argument("--quiet", "-q", action="store_true", help="do not print the grids")


def register(sub) -> None:
    from flatgroove.cli import nonnegative_int

    p = sub.add_parser("interpolate", help="N grooves on the straight line from A to B")
    p.add_argument("a", help=f"start: {GROOVE_HELP}")
    p.add_argument("b", help=f"end: {GROOVE_HELP}")
    p.add_argument("--steps", type=int, default=9, help="grooves in the path, both ends included")
    p.add_argument("--method", choices=["line", "slerp"], default="line",
                   help="line (flat model) or slerp (the usual choice for the vae baseline)")
    _common(p)
    p.set_defaults(func=_interpolate)

    p = sub.add_parser("blend", help="2-D bilinear blend of four corner grooves")
    p.add_argument("corners", nargs=4, metavar="CORNER",
                   help=f"top-left top-right bottom-left bottom-right, each {GROOVE_HELP}")
    p.add_argument("--grid", type=int, default=3,
                   help="grooves per side of the grid (default 3: a 3x3 blend)")
    _common(p)
    p.set_defaults(func=_blend)

    p = sub.add_parser("sample", help="new grooves from the prior")
    p.add_argument("--n", type=int, default=4, help="how many grooves (default 4)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="spread of the latent samples: < 1 tamer, > 1 wilder (default 1)")
    p.add_argument("--seed", type=nonnegative_int, default=None,
                   help="random seed (repeatable samples), 0 to 2**63 - 1")
    _common(p, inputs=False)
    p.set_defaults(func=_sample)

    p = sub.add_parser("reconstruct", help="encode and decode grooves (input, output pairs)")
    p.add_argument("grooves", nargs="+", metavar="GROOVE", help=GROOVE_HELP)
    _common(p)
    p.set_defaults(func=_reconstruct)

    p = sub.add_parser("encode", help="print the latent codes of grooves")
    p.add_argument("grooves", nargs="+", metavar="GROOVE", help=GROOVE_HELP)
    p.add_argument("--save", default=None, metavar="FILE.npy", help="save the codes as .npy")
    _common(p, outputs=False)
    p.set_defaults(func=_encode)
