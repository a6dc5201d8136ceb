"""The built-ins' F1 over played variants of each pattern, not the one quantised pattern: each
built-in encoded as itself and as N seeded "humanised" takes (the same hits; velocities jittered by
a normal of --vel-sd, offsets by a normal of --off-sd of a step, clipped to their ranges), each take
decoded at the model's own rule (or --threshold) and scored against the pattern's hits. One hit of
one pattern moves a built-in's F1 by 0.02-0.05, so a selection on it reads luck as well as reach
(E57); the mean over takes reads how firmly the model holds the style. Seeded: every model sees
the same takes."""
import argparse

import numpy as np
import torch

from flatgroove.evaluate.metrics import hit_metrics
from flatgroove.groove import Groove
from flatgroove.model.checkpoint import load_model
from flatgroove.model.decoding import DecodingRule
from flatgroove.presets import all_builtins


def takes(g: Groove, n: int, vel_sd: float, off_sd: float, seed: int) -> list[Groove]:
    rng = np.random.default_rng(seed)
    out = [g]
    for _ in range(n):
        v = np.clip(g.velocities + rng.normal(0.0, vel_sd, g.velocities.shape), 0.05, 1.0)
        o = np.clip(g.offsets + rng.normal(0.0, off_sd, g.offsets.shape), -0.5, 0.5)
        out.append(Groove(g.hits, v, o, g.tempo, g.name))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+", help="shipped names or checkpoint paths")
    ap.add_argument("--takes", type=int, default=16)
    ap.add_argument("--vel-sd", type=float, default=0.08)
    ap.add_argument("--off-sd", type=float, default=0.08)
    ap.add_argument("--threshold", type=float, default=None, help="default: each model's own rule")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    gs = all_builtins()
    per_groove = {name: takes(g, args.takes, args.vel_sd, args.off_sd, args.seed + i)
                  for i, (name, g) in enumerate(gs.items())}
    ref: dict[str, float] = {}
    for spec in args.models:
        model = load_model(spec)
        rule = model.decoding if args.threshold is None else DecodingRule("threshold", threshold=args.threshold)
        row = {}
        for name, gg in per_groove.items():
            p = model.decode_arrays(model.encode(gg))[0]
            heard = rule.hits(p) > 0.5
            f1 = [hit_metrics(gs[name].hits, h)["f1"] for h in heard]
            row[name] = (f1[0], float(np.mean(f1[1:])), float(np.min(f1[1:])))
        ref = ref or {k: v[1] for k, v in row.items()}
        print(f"{spec} ({rule.describe()}): pattern / mean of takes / worst take, "
              f"(mean − first model's mean)")
        for name, (f0, fm, fw) in row.items():
            print(f"  {name:16s} {f0:.3f} / {fm:.3f} / {fw:.3f}  ({fm - ref[name]:+.3f})")


if __name__ == "__main__":
    main()
