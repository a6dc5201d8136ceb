"""`flatgroove encode | reconstruct | sample | interpolate | blend`: generation from the
command line. Inputs are MIDI files or built-in groove names; outputs MIDI, WAV, PNG."""

from __future__ import annotations

import numpy as np


def _model(args):
    from flatgroove.generate import resolve_model

    return resolve_model(args.model)


def _print(grooves, quiet: bool) -> None:
    if quiet:
        return
    for g in grooves:
        print(g.grid())
        print()


def _finish(args, grooves, title) -> int:
    from flatgroove.generate import write_outputs

    _print(grooves, args.quiet)
    if args.out:
        for p in write_outputs(grooves, args.out, args.wav, args.png, title=title, tempo=args.tempo):
            print(f"wrote {p}")
    return 0


def _interpolate(args) -> int:
    from flatgroove.generate import interpolate, resolve_groove

    m = _model(args)
    a, b = resolve_groove(args.a, args.bar), resolve_groove(args.b, args.bar)
    gs = interpolate(m, a, b, steps=args.steps, method=args.method)
    return _finish(args, gs, f"{a.name} -> {b.name} ({m.variant}, {args.method})")


def _blend(args) -> int:
    from flatgroove.generate import blend, resolve_groove

    m = _model(args)
    rows = blend(m, [resolve_groove(c, args.bar) for c in args.corners], grid=args.grid)
    return _finish(args, [g for r in rows for g in r], f"blend ({m.variant})")


def _sample(args) -> int:
    from flatgroove.generate import sample

    m = _model(args)
    gs = sample(m, args.n, args.temperature, args.seed, tempo=args.tempo or 120.0)
    return _finish(args, gs, f"samples ({m.variant}, T = {args.temperature})")


def _reconstruct(args) -> int:
    from flatgroove.generate import reconstruct, resolve_groove

    m = _model(args)
    src = [resolve_groove(g, args.bar) for g in args.grooves]
    gs = []
    for s, r in zip(src, reconstruct(m, src)):
        gs += [s, r]
    return _finish(args, gs, f"input / reconstruction ({m.variant})")


def _encode(args) -> int:
    from flatgroove.generate import encode, resolve_groove

    m = _model(args)
    src = [resolve_groove(g, args.bar) for g in args.grooves]
    z = encode(m, src)
    np.set_printoptions(precision=3, suppress=True, linewidth=120)
    for g, zi in zip(src, z):
        print(f"{g.name}: {zi}")
    if args.save:
        np.save(args.save, z)
        print(f"wrote {args.save}")
    return 0


def _common(p, outputs: bool = True) -> None:
    p.add_argument("--model", default="flat", help="flat (shipped, default) | vae (shipped) | PATH")
    p.add_argument("--bar", type=int, default=0, help="first bar taken from MIDI inputs (0-based)")
    if outputs:
        p.add_argument("--out", "-o", default=None, help="write the grooves in sequence to this MIDI file")
        p.add_argument("--wav", default=None, help="also render a WAV (built-in kit)")
        p.add_argument("--png", default=None, help="also draw a piano-roll PNG")
        p.add_argument("--tempo", type=float, default=None, help="tempo of the output (BPM)")
        p.add_argument("--quiet", "-q", action="store_true", help="do not print the grids")


def register(sub) -> None:
    p = sub.add_parser("interpolate", help="N grooves on the straight line from A to B")
    p.add_argument("a", help="MIDI file or built-in groove name")
    p.add_argument("b", help="MIDI file or built-in groove name")
    p.add_argument("--steps", type=int, default=9, help="grooves in the path, both ends included")
    p.add_argument("--method", choices=["line", "slerp"], default="line",
                   help="line (flat model) or slerp (the usual choice for the vae baseline)")
    _common(p)
    p.set_defaults(func=_interpolate)

    p = sub.add_parser("blend", help="2-D bilinear blend of four corner grooves")
    p.add_argument("corners", nargs=4, metavar="CORNER", help="top-left top-right bottom-left bottom-right")
    p.add_argument("--grid", type=int, default=3)
    _common(p)
    p.set_defaults(func=_blend)

    p = sub.add_parser("sample", help="new grooves from the prior")
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    _common(p)
    p.set_defaults(func=_sample)

    p = sub.add_parser("reconstruct", help="encode and decode grooves (input, output pairs)")
    p.add_argument("grooves", nargs="+")
    _common(p)
    p.set_defaults(func=_reconstruct)

    p = sub.add_parser("encode", help="print the latent codes of grooves")
    p.add_argument("grooves", nargs="+")
    p.add_argument("--save", default=None, help="save the codes as .npy")
    _common(p, outputs=False)
    p.set_defaults(func=_encode)
