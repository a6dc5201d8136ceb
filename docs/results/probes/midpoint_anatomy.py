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
- a random and the best *drum-coherent* halfway hybrid: each drum's pattern wholly a's or wholly
  b's, the drums taken from b holding 30–70 % of a ⊕ b (the nearest such split where none does);
  and how far the model's own midpoint lies from the nearest of them (is the vae's likeness to the
  data a drum kept or switched as a unit?);
- the density-matched line: each midpoint's distance less the median distance of the split's
  real windows with as many hits (±10 %) to their nearest training window (a groove with more
  hits lies farther from its nearest window, real or not);
- the distance per drum, to the same nearest window.

    python docs/results/probes/midpoint_anatomy.py --data ../shared/data/groove \\
        vae=src/flatgroove/presets/vae.pt@threshold:0.4 E55=src/flatgroove/presets/flat.pt
"""
import argparse
import itertools

import numpy as np
import torch
from _models import named_models

from flatgroove.data import load_dataset
from flatgroove.drums import DRUMS, N_DRUMS
from flatgroove.evaluate.heard import (
    even_midpoint_bound,
    nearest_hamming,
    random_hybrid,
)
from flatgroove.evaluate.study import fixed_pairs, heard_paths
from flatgroove.model.decoding import parse_rule

# every subset of the drums, as a mask: which drums a drum-coherent hybrid takes from b
SUBSETS = np.array(list(itertools.product([0, 1], repeat=N_DRUMS)), dtype=bool)


def drum_coherent(a: np.ndarray, b: np.ndarray, m: np.ndarray, train: np.ndarray, rng) -> tuple:
    """(random, best) distance to the data of drum-coherent halfway hybrids of a and b, and the
    distance from m to the nearest of them; a, b, m (32, N_DRUMS) binary."""
    diff = (a != b).sum(0)
    share = (SUBSETS * diff).sum(1) / max(diff.sum(), 1)
    off = np.abs(share - 0.5)
    ok = off <= 0.2 if (off <= 0.2).any() else off == off.min()
    cand = np.where(SUBSETS[ok][:, None, :], b[None], a[None]).reshape(ok.sum(), -1)
    d = nearest_hamming(cand, train)
    return d[rng.integers(ok.sum())], d.min(), (cand != m.reshape(1, -1)).sum(1).min()


def density_matched_line(count: np.ndarray, real: np.ndarray, real_nn: np.ndarray) -> np.ndarray:
    """For grooves of `count` hits each, the median distance to the nearest training window of
    the split's real windows with as many hits (±10 %, at least ±1; the 20 nearest in hits where
    fewer are that near: a midpoint can be denser than any real window)."""
    real_count = real.sum(1)
    out = []
    for c in count:
        gap = np.abs(real_count - c)
        near = gap <= max(1, 0.1 * c)
        out.append(np.median(real_nn[near] if near.sum() >= 20 else real_nn[np.argsort(gap)[:20]]))
    return np.array(out)


def anatomy(model, rule, x, train, pairs, bound_pairs: int, real, real_nn, seed: int = 0) -> dict:
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
    coh = np.array([drum_coherent(a[i].reshape(32, N_DRUMS), b[i].reshape(32, N_DRUMS), m[i], train, rng)
                    for i in range(n)])
    return {
        "mid NN": float(np.median(nn)),
        "flicker on / off": (float((flick & (a == 0)).sum(1).mean()), float((flick & (a == 1)).sum(1).mean())),
        "share of a⊕b taken": float(np.median(taken.sum(1) / np.maximum((~agree).sum(1), 1))),
        "flicker undone NN": float(np.median(nearest_hamming(clean, train))),
        "halfway bound": float(np.median(bound)),
        "random halfway": float(np.median(nearest_hamming(rand, train))),
        "drum-coherent random / best / from m": tuple(float(v) for v in np.median(coh, axis=0)),
        "over the density-matched line": float(np.median(nn - density_matched_line(m.sum(1), real, real_nn))),
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
    real_nn = nearest_hamming(real, train)
    print(f"{args.split}: {len(pairs)} lines; goal 3's line {np.median(real_nn):g} cells")
    print("| model | mid NN | flicker on / off (cells) | share of a ⊕ b taken | NN with flicker undone "
          "| halfway bound of the decoded ends | random halfway hybrid "
          "| drum-coherent halfway: random / best / from the midpoint | over the density-matched line | per drum (" + " ".join(DRUMS) + ") |")
    print("|---|---:|---|---:|---:|---:|---:|---|---:|---|")
    for name, model, rule in named_models(args.models):
        r = anatomy(model, parse_rule(rule) if rule else model.decoding, x, train, pairs, args.bound_pairs,
                    real, real_nn, args.seed)
        print(f"| {name} | {r['mid NN']:g} | {r['flicker on / off'][0]:.1f} / {r['flicker on / off'][1]:.1f} | "
              f"{r['share of a⊕b taken']:.2f} | {r['flicker undone NN']:g} | {r['halfway bound']:g} | {r['random halfway']:g} | "
              + " / ".join(f"{v:g}" for v in r["drum-coherent random / best / from m"]) + " | "
              + f"{r['over the density-matched line']:+g} | "
              + " ".join(f"{v:.1f}" for v in r["per drum"]) + " |")


if __name__ == "__main__":
    main()
