"""Where does a line's midpoint lose its likeness to real grooves? Goal 3 reads the median
Hamming distance (hits) from each straight line's decoded midpoint m to its nearest training
window; the flat models sit at 16–18 cells, the vae at 11–12, real windows at 14. This probe
splits that distance over the evaluation's own lines (`study.fixed_pairs`, seed 0), with a and b
the line's decoded ends:

- flicker: cells where a and b agree and m does not (on where both ends are silent, off where
  both sound), which no monotone line from a to b holds;
- the share of a ⊕ b that m has taken from b (½ for an even line);
- m with its flicker undone (the agreeing cells set back to a's): how far the midpoint would
  lie from the data if only its flicker went;
- the nearest a monotone halfway hybrid of the decoded ends could lie
  (`evaluate.heard.even_midpoint_bound`): what the decoder's own ends allow;
- a random halfway hybrid of the decoded ends (half of a ⊕ b taken from b, which half drawn at
  random, seeded): the midpoint criterion's chance reference, as the CV's is the same flips on
  random steps;
- the distance per drum, to the same nearest window.

    python docs/results/probes/midpoint_anatomy.py --data ../shared/data/groove \\
        vae=src/flatgroove/presets/vae.pt@threshold:0.4 E55=src/flatgroove/presets/flat.pt
"""
import argparse

import numpy as np
import torch

from flatgroove.data import load_dataset
from flatgroove.drums import DRUMS, N_DRUMS
from flatgroove.evaluate.heard import (
    even_midpoint_bound,
    nearest_hamming,
    random_hybrid,
    real_nn_reference,
)
from flatgroove.evaluate.study import fixed_pairs, heard_paths
from flatgroove.model.checkpoint import load_model
from flatgroove.model.decoding import parse_rule


def anatomy(model, rule, x, train, pairs, bound_pairs: int, seed: int = 0) -> dict:
    z = torch.from_numpy(model.encode(x))
    hits, _ = heard_paths(model, z[pairs[:, 0]], z[pairs[:, 1]], 17, rule)
    n = len(pairs)
    a, m, b = (hits[:, i].reshape(n, -1).astype(np.int8) for i in (0, 8, 16))
    agree = a == b
    flick = agree & (m != a)
    taken = (~agree) & (m == b)
    clean = np.where(agree, a, m)
    nn, at = nearest_hamming(m, train, index=True)
    w = train[at]
    per_drum = (m != w).reshape(n, 32, N_DRUMS).sum(1)
    bound = [even_midpoint_bound(a[i], b[i], train) for i in range(min(bound_pairs, n))]
    rng = np.random.default_rng(seed)
    rand = np.stack([random_hybrid(a[i], b[i], 0.5, rng) for i in range(n)])
    return {
        "mid NN": float(np.median(nn)),
        "flicker on / off": (float((flick & (a == 0)).sum(1).mean()), float((flick & (a == 1)).sum(1).mean())),
        "share of a⊕b taken": float(np.median(taken.sum(1) / np.maximum((~agree).sum(1), 1))),
        "flicker undone NN": float(np.median(nearest_hamming(clean, train))),
        "halfway bound": float(np.median(bound)),
        "random halfway": float(np.median(nearest_hamming(rand, train))),
        "per drum": per_drum.mean(0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="validation")
    ap.add_argument("--pairs", type=int, default=600, help="as `flatgroove evaluate --pairs`")
    ap.add_argument("--bound-pairs", type=int, default=200, help="lines whose halfway bound is read (slow)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("models", nargs="+", help="NAME=CHECKPOINT[@RULE]")
    args = ap.parse_args()
    torch.set_num_threads(1)
    x = load_dataset(args.data, split=args.split, progress=False).tensors()
    real = (x[..., :N_DRUMS] > 0.5).numpy().reshape(len(x), -1).astype(np.int8)
    train = (load_dataset(args.data, split="train", progress=False).tensors()[..., :N_DRUMS] > 0.5).numpy()
    train = train.reshape(len(train), -1).astype(np.int8)
    pairs = fixed_pairs(len(x), args.pairs, args.seed)
    print(f"{args.split}: {len(pairs)} lines; goal 3's line {real_nn_reference(real, train):g} cells")
    print("| model | mid NN | flicker on / off (cells) | share of a ⊕ b taken | NN with flicker undone "
          "| halfway bound of the decoded ends | random halfway hybrid | per drum (" + " ".join(DRUMS) + ") |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for spec in args.models:
        name, _, rest = spec.partition("=")
        path, _, rule = rest.partition("@")
        model = load_model(path)
        model.eval()
        r = anatomy(model, parse_rule(rule) if rule else model.decoding, x, train, pairs, args.bound_pairs,
                    args.seed)
        print(f"| {name} | {r['mid NN']:g} | {r['flicker on / off'][0]:.1f} / {r['flicker on / off'][1]:.1f} | "
              f"{r['share of a⊕b taken']:.2f} | {r['flicker undone NN']:g} | {r['halfway bound']:g} | {r['random halfway']:g} | "
              + " ".join(f"{v:.1f}" for v in r["per drum"]) + " |")


if __name__ == "__main__":
    main()
