"""Where a built-in groove's reconstruction goes wrong: for each model, each drum's row of the
pattern against its decoded hits (X kept, - missed, + added; bars split by |), and the hit
probability of every missed cell. Hits by --threshold (the shipped models' rule, 0.4), so a run
directory saved at the trainer's default rule reads the same as its export (E45)."""
import argparse

import numpy as np
import torch

from flatgroove.drums import DRUMS
from flatgroove.evaluate.metrics import hit_metrics
from flatgroove.groove import STEPS_PER_BAR
from flatgroove.model.checkpoint import load_model
from flatgroove.model.decoding import DecodingRule
from flatgroove.presets import all_builtins


def grid(truth: np.ndarray, heard: np.ndarray) -> str:
    cells = ["X" if t and h else "-" if t else "+" if h else "." for t, h in zip(truth, heard)]
    return "|".join("".join(cells[i : i + STEPS_PER_BAR]) for i in range(0, len(cells), STEPS_PER_BAR))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+", help="shipped names or checkpoint paths")
    ap.add_argument("--grooves", default="shuffle,rock_fill", help="built-in names, comma-separated")
    ap.add_argument("--threshold", type=float, default=0.4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rule = DecodingRule("threshold", threshold=args.threshold)
    gs = all_builtins()
    models = {spec: load_model(spec) for spec in args.models}  # each loaded once, not per groove
    for name in args.grooves.split(","):
        g = gs[name]
        for spec, model in models.items():
            p = model.decode_arrays(model.encode([g]))[0][0]
            heard = rule.hits(p[None])[0] > 0.5
            print(f"{name}  {spec}  F1 {hit_metrics(g.hits, heard)['f1']:.2f}")
            for d, drum in enumerate(DRUMS):
                truth = g.hits[:, d] > 0.5
                if truth.any() or heard[:, d].any():
                    missed = [round(float(v), 2) for v in p[truth & ~heard[:, d], d]]
                    print(f"  {drum:>9} {grid(truth, heard[:, d])}  p at misses {missed}")


if __name__ == "__main__":
    main()
