"""`flatgroove demo`: the main job on the embedded default. A simulated jam between a drummer
(built-in grooves) and the shipped flat model, with a scripted story of knob turns, pads and
mode changes; writes the session as MIDI (drummer and machine on separate tracks), WAV and a
piano roll, and prints what happened bar by bar. No hardware, no dataset needed."""

from __future__ import annotations

import argparse
from pathlib import Path

DEMO_SCRIPT = Path(__file__).resolve().parent / "live" / "demo_session.toml"
# The drummer: two bars each of rock, rock, half-time, rock, breakbeat, ... looped as needed.
DEMO_DRUMMER = ["rock", "rock", "half_time", "rock", "breakbeat", "rock", "shuffle", "rock"]


def _demo(args: argparse.Namespace) -> int:
    from flatgroove.live.simulate import simulate
    from flatgroove.model.checkpoint import load_model
    from flatgroove.presets import builtin

    soundfont = None
    if args.soundfont is not None:
        from flatgroove.audio import resolve_soundfont

        soundfont = resolve_soundfont(args.soundfont)
    model = load_model(args.model)
    drummer = [builtin(n) for n in DEMO_DRUMMER] * 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    which = (f"the shipped {args.model} model" if args.model in ("flat", "vae", "flat16")
             else f"the {model.variant} model {args.model}")  # flat16 said as flat16, not "flat"
    print(f"flatgroove demo: a simulated jam with {which} "
          f"(d = {model.latent_dim}); script {DEMO_SCRIPT.name}\n")
    res = simulate(model, drummer, str(DEMO_SCRIPT), on_bar=lambda b: print(b.line(), flush=True))
    print(res.summary().splitlines()[-1])
    wav = res.write_wav(out / "session.wav", soundfont=soundfont)
    for p in (res.write_midi(out / "session.mid"), wav, res.write_png(out / "session.png")):
        print(f"wrote {p}")
    print(f"audio: {soundfont if soundfont else 'built-in kit (--soundfont gm for a General MIDI kit)'}")
    print(f"notes left hanging: {len(res.hanging_notes())}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="a simulated jam with the shipped model (no hardware)")
    p.add_argument("--out", default="out/demo", help="folder for session.mid, .wav, .png")
    p.add_argument("--model", default="flat", help="flat (default), vae, flat16 or a checkpoint")
    p.add_argument("--soundfont", default=None, metavar="SF2|gm",
                   help="render session.wav with this SoundFont's General MIDI drum kit; 'gm' "
                        "finds one (pip install 'flatgroove[soundfont]'), 'auto' uses it when "
                        "installed; default: the built-in kit")
    p.set_defaults(func=_demo)
