"""How much of cond(G) is a fixed anisotropy that a linear change of latent coordinates removes.

A linear chart z' = A z maps straight lines to straight lines with the same parametrisation,
so every heard figure is unchanged while G becomes A^-T G A^-1. With A = M^(1/2), M the
log-Euclidean mean of G over training encodings and mixups, the constant part of G's shape is
whitened away; what cond(G) keeps is the part that varies from point to point.
"""
import argparse

import numpy as np
import torch

from flatgroove import geometry
from flatgroove.data.gmd import load_gmd
from flatgroove.evaluate.metrics import flatness
from flatgroove.model.checkpoint import load_model


def metrics(model, windows, n, seed):
    idx = np.random.default_rng(seed).choice(len(windows), n, replace=False)
    z = torch.from_numpy(model.encode(torch.tensor(windows.features[idx])))
    zm = geometry.mixup(z, n, 0.2, generator=torch.Generator().manual_seed(seed))
    return geometry.metric(model.f, z).double(), geometry.metric(model.f, zm).double()


def logm(g):
    e, u = torch.linalg.eigh(0.5 * (g + g.transpose(-1, -2)))
    e = e.clamp_min(e[..., -1:] * 1e-12)
    return u @ torch.diag_embed(e.log()) @ u.transpose(-1, -2)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--fit-points", type=int, default=200, help="training encodings (and as many mixups) to fit A")
    ap.add_argument("--points", type=int, default=50, help="validation encodings (and mixups) to measure")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    train, val = load_gmd(split="train", progress=False), load_gmd(split="validation", progress=False)
    for name in a.models:
        m = load_model(name).eval()
        e, u = torch.linalg.eigh(logm(torch.cat(metrics(m, train, a.fit_points, 1))).mean(0))
        a_inv = u @ torch.diag(torch.exp(-0.25 * e)) @ u.T  # M^(-1/2)
        gd, gm = metrics(m, val, a.points, 0)
        before = [flatness(g) for g in (gm, gd)]
        after = [flatness(a_inv @ g @ a_inv) for g in (gm, gd)]
        print(f"{name}: cond(G) mix / data {before[0]['cond_median']:.1f} / {before[1]['cond_median']:.1f}, "
              f"error {before[0]['flatness_error']:.2f} / {before[1]['flatness_error']:.2f} -> whitened "
              f"{after[0]['cond_median']:.1f} / {after[1]['cond_median']:.1f}, error "
              f"{after[0]['flatness_error']:.2f} / {after[1]['flatness_error']:.2f}; "
              f"eigenvalue ratio of the mean metric {float(torch.exp(e.max() - e.min())):.1f}")


if __name__ == "__main__":
    main()
