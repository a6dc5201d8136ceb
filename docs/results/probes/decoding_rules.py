"""Hit F1 of one model's reconstructions (validation) under global thresholds, threshold
patterns, and per-drum thresholds fitted on 4,000 training windows (alone, and as the centres of
a pattern's spread)."""
import argparse

import numpy as np
import torch

from flatgroove.data.gmd import load_gmd
from flatgroove.drums import N_DRUMS
from flatgroove.evaluate.metrics import hit_metrics
from flatgroove.model.checkpoint import load_model
from flatgroove.model.decoding import DecodingRule


def probs(model, split, n=None):
    x = torch.tensor(load_gmd(split=split, progress=False).features)
    if n:
        x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n]]
    with torch.no_grad():
        p = [torch.sigmoid(model.decoder(model.encoder(x[s:s + 512])[0])[0]) for s in range(0, len(x), 512)]
    return torch.cat(p).numpy(), (x[..., :N_DRUMS] > 0.5).numpy()


def f1(p, t, thr):
    return hit_metrics(t, p, thr)["f1"]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    a = ap.parse_args()
    torch.set_num_threads(1)
    m = load_model(a.model).eval()
    ptr, ttr = probs(m, "train", 4000)
    pva, tva = probs(m, "validation")
    print("global:", " ".join(f"{th}: {f1(pva, tva, th):.3f}" for th in (0.35, 0.4, 0.45, 0.5, 0.55)))
    for lo, hi in [(0.25, 0.55), (0.3, 0.5), (0.3, 0.6), (0.35, 0.55), (0.35, 0.6), (0.4, 0.6)]:
        print(f"pattern {lo}–{hi}: {f1(pva, tva, DecodingRule('pattern', low=lo, high=hi).thresholds):.3f}")
    grid = np.arange(0.2, 0.8, 0.025)
    best = np.array([grid[np.argmax([f1(ptr[..., k], ttr[..., k], g) for g in grid])] for k in range(N_DRUMS)])
    print("per-drum thresholds (fitted on training):", np.round(best, 3), f"validation F1 {f1(pva, tva, best):.3f}")
    spread = DecodingRule("pattern", low=0.25, high=0.55).thresholds - 0.4
    for w in (0.5, 1.0):
        print(f"per-drum centres + {w}× the 0.25–0.55 spread: {f1(pva, tva, np.clip(best + w * spread, 0.05, 0.95)):.3f}")


if __name__ == "__main__":
    main()
