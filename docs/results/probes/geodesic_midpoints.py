"""What would a perfectly flat twin of the vae draw? A flat decoder's straight lines are its
geodesics, and a decoder made flat without changing what it can play draws the geodesics of the
original's pull-back metric (the metric of y = [p, p·v, p·o], DESIGN §3). This probe decodes the
vae's (and another model's) discrete geodesics (`evaluate.metrics.geodesic_study`, the
evaluation's own) between the evaluation's first line pairs and reads them as heard, beside the
straight lines between the same ends: the heard CV, bunching, changes per line, and the
midpoint's distance to the nearest training window and its density against the ends (goal 3),
and how fast the line moves in y at its middle against its ends (median over lines of the mean
|Δy| of the middle four steps ÷ that of the first two and last two: 1 on a geodesic, which keeps
its speed), and how many cells sit within 0.05 of the rule's threshold at the ends and at the
midpoint (where many do, a step of one length in y crosses more of them).

    python docs/results/probes/geodesic_midpoints.py --data ../shared/data/groove \\
        vae=src/flatgroove/presets/vae.pt@threshold:0.4 E55=src/flatgroove/presets/flat.pt
"""
import argparse

import numpy as np
import torch
from _models import named_models

from flatgroove.data import load_dataset
from flatgroove.drums import N_DRUMS
from flatgroove.evaluate import heard as H
from flatgroove.evaluate import metrics as M
from flatgroove.evaluate.study import decoded_lines, fixed_pairs
from flatgroove.model.decoding import parse_rule


def middle_speed(model, path: torch.Tensor) -> float:
    """Median over lines of the middle four steps' |Δy| ÷ the outer four's; path (pairs, 17, d)."""
    with torch.no_grad():
        y = model.f(path.reshape(-1, path.shape[-1])).view(path.shape[0], path.shape[1], -1)
    step = (y[:, 1:] - y[:, :-1]).norm(dim=-1)  # (pairs, 16)
    outer = torch.cat([step[:, :2], step[:, -2:]], 1).mean(1)
    return float((step[:, 6:10].mean(1) / outer).median())


def crowding(p: np.ndarray, rule) -> str:
    """Mean cells within 0.05 of each cell's threshold at the ends → at the midpoint; p (pairs, 17, 32, 9)."""
    if rule.kind == "count":
        return "–"
    near = (np.abs(p - rule.thresholds) < 0.05).sum((2, 3)).mean(0)
    return f"{0.5 * (near[0] + near[-1]):.1f} → {near[len(near) // 2]:.1f}"


def heard_row(hits, vel, train) -> str:
    ev = H.path_evenness(hits, vel)
    mid = H.midpoint_figures(hits, train)
    return (f"{ev['hit_cv']:.3f} | {ev['hit_bunching']:.3f} | {ev['changes_per_pair']:.1f} | "
            f"{mid['mid_nn_hamming']:g} | {mid['mid_density_ratio']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--pairs", type=int, default=100, help="the first PAIRS of the evaluation's lines")
    ap.add_argument("--steps", type=int, default=100, help="geodesic optimiser steps")
    ap.add_argument("models", nargs="+", help="NAME=CHECKPOINT[@RULE]")
    args = ap.parse_args()
    torch.set_num_threads(2)
    x = load_dataset(args.data, split="validation", progress=False).tensors()
    train = (load_dataset(args.data, split="train", progress=False).tensors()[..., :N_DRUMS] > 0.5).numpy()
    train = train.reshape(len(train), -1).astype(np.int8)
    pairs = fixed_pairs(len(x), 600, 0)[: args.pairs]
    print(f"validation, {len(pairs)} lines, 17 points")
    print("| model | path | CV | bunching | changes a line | mid NN | mid density | length ÷ geodesic's | speed at the middle ÷ ends | cells near θ: ends → middle |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, model, rule in named_models(args.models):
        rule = parse_rule(rule) if rule else model.decoding
        z = torch.from_numpy(model.encode(x))
        za, zb = z[pairs[:, 0]], z[pairs[:, 1]]
        geo = M.geodesic_study(model.f, za, zb, n_points=17, steps=args.steps)
        logits, vel, _ = decoded_lines(model, za, zb, 17)
        p_line, vel = torch.sigmoid(logits).numpy(), vel.numpy()
        hits = rule.hits(p_line)
        line = M._line(za, zb, 17)  # the points decoded_lines decodes
        gp = torch.as_tensor(geo["paths"], dtype=torch.float32)  # (pairs, 17, d)
        print(f"| {name} | straight line | {heard_row(hits, vel, train)} | {geo['ratio_median']:.3f} | "
              f"{middle_speed(model, line):.2f} | {crowding(p_line, rule)} |", flush=True)
        with torch.no_grad():
            p, v, _ = model.decode_arrays(gp.reshape(-1, gp.shape[-1]).numpy())
        shape = (len(pairs), 17, *p.shape[1:])
        print(f"| {name} | geodesic | {heard_row(rule.hits(p).reshape(shape), v.reshape(shape), train)} | 1 | "
              f"{middle_speed(model, gp):.2f} | {crowding(p.reshape(shape), rule)} |",
              flush=True)


if __name__ == "__main__":
    main()
