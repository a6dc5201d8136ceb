"""How near the training windows can an *even* midpoint be? Goal 3 asks the midpoint of a
straight line to lie no further (Hamming, hits) from its nearest training window than real
windows do; goal 2 asks the line to change its hits evenly. A line that changes evenly and
monotonically (each cell flips at most once, as a flat decoder's straight line does to first
order) from A to B has, at its middle, flipped half of the cells where A and B differ and none
of the others. Over every such "halfway hybrid" m of A and B, the least distance to a training
window w is exact and cheap:

    min over w and h of  #{cells where A = B and w ≠ A}  +  |k_w − h|,  h = ⌊f·D⌋ or ⌈f·D⌉

with D = |A ⊕ B| and k_w = #{cells of A ⊕ B where w agrees with B}: on the cells A and B share, m
holds A's value; on the others m takes B's value on h of them and may choose which (a fraction f
of the way, ½ at the midpoint; `evaluate.heard.even_midpoint_bound`). At f = 0 it is A's
own distance to the data. The probe prints the median of that bound over the evaluation's own
pairs (`study.fixed_pairs`, seed 0) of the split's real windows for f = 0 … ½, and for a random
halfway hybrid (each of the D cells from A or B at random, f·D of them B's), beside goal 3's line
(the split's real windows' median distance).

    python docs/results/probes/even_midpoint_bound.py --data ../shared/data/groove --split validation
"""
import argparse

import numpy as np

from flatgroove.data import load_dataset
from flatgroove.drums import N_DRUMS
from flatgroove.evaluate.heard import (
    even_midpoint_bound,
    nearest_hamming,
    random_hybrid,
    real_nn_reference,
)
from flatgroove.evaluate.study import fixed_pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="validation")
    ap.add_argument("--pairs", type=int, default=200, help="as `flatgroove evaluate --pairs`")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    x = load_dataset(args.data, split=args.split).tensors()
    real = (x[..., :N_DRUMS] > 0.5).numpy().reshape(len(x), -1).astype(np.int8)
    train = (load_dataset(args.data, split="train").tensors()[..., :N_DRUMS] > 0.5).numpy()
    train = train.reshape(len(train), -1).astype(np.int8)
    line = real_nn_reference(real, train)
    pairs = fixed_pairs(len(real), args.pairs, args.seed)
    rng = np.random.default_rng(args.seed)
    print(f"{args.split}: {len(real)} windows, {len(pairs)} pairs, {len(train)} training windows; "
          f"goal 3's line (real windows' median distance): {line:g} cells; "
          f"median |A ⊕ B| {np.median([(real[i] != real[j]).sum() for i, j in pairs]):g} cells")
    print("| share of A ⊕ B flipped | best monotone hybrid (median) | random hybrid (median) |")
    print("|---:|---:|---:|")
    for f in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5):
        best, rand = [], []
        for i, j in pairs:
            a, b = real[i], real[j]
            best.append(even_midpoint_bound(a, b, train, f))
            rand.append(random_hybrid(a, b, f, rng))
        rand_nn = nearest_hamming(np.stack(rand), train)
        print(f"| {f:.1f} | {np.median(best):g} | {np.median(rand_nn):g} |")


if __name__ == "__main__":
    main()
