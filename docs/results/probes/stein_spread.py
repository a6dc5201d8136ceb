"""How the flatness loss's per-point Stein divergence, tr(G/c²) − log det(G/c²) − d (per d), is
spread over 200 training encodings and 200 mixups: if a few points carried most of it, a robust
(sub-linear) loss would let a model keep curvature at rare grooves while the median stays flat."""
import argparse

import numpy as np
import torch

from flatgroove import geometry
from flatgroove.data.gmd import load_gmd
from flatgroove.model.checkpoint import load_model


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(1)
    train = load_gmd(split="train", progress=False)
    for name in a.models:
        m = load_model(name).eval()
        idx = np.random.default_rng(0).choice(len(train), 200, replace=False)
        z = torch.from_numpy(m.encode(torch.tensor(train.features[idx])))
        zm = geometry.mixup(z, 200, 0.2, generator=torch.Generator().manual_seed(0))
        for where, points in (("data", z), ("mixups", zm)):
            g = geometry.metric(m.f, points).double()
            d = g.shape[-1]
            e = torch.linalg.eigvalsh(g / (g.diagonal(dim1=1, dim2=2).sum(-1).mean() / d))
            s = (e - e.log() - 1).sum(-1) / d
            q = torch.quantile(s, torch.tensor([0.5, 0.9, 0.99], dtype=s.dtype))
            top = s.sort(descending=True).values[: len(s) // 10].sum() / s.sum()
            print(f"{name} at {where}: median {q[0]:.3f}, p90 {q[1]:.3f}, p99 {q[2]:.3f}, "
                  f"max {s.max():.3f}; the top 10 % of points carry {top:.0%}")


if __name__ == "__main__":
    main()
